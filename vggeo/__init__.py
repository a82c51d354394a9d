"""vggeo — Swedish residences and land-regulating provisions, correct to the millimetre.

The public surface is gathered here; implementations live in submodules.

* :mod:`vggeo.crs` — Swedish coordinate systems, explicit axis order, vectorised transforms.
* :mod:`vggeo.registry` — the Valueguard residential registry (schema, readers, checks, client).
* :mod:`vggeo.lm` — Lantmäteriet deliveries (packages, GML, bestämmelser, inskrivning).
* :mod:`vggeo.store` — GeoPackage and PostGIS stores; change deliveries applied atomically.
* :mod:`vggeo.join`, :mod:`vggeo.exports` — spatial joins and exports for QGIS/GeoParquet.
* :mod:`vggeo.tiles` — vector tiles (the server in ``server/`` is a thin layer over it).
"""

from vggeo._version import __version__
from vggeo.crs import get_crs, transform, valueguard_points
from vggeo.errors import VggeoError

__all__ = ["__version__", "get_crs", "transform", "valueguard_points", "VggeoError"]
