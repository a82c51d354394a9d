"""vggeo — Swedish residences and land-regulating provisions, correct to the millimetre.

The public surface is gathered here; implementations live in submodules and are imported on first
use (so ``import vggeo`` and ``vggeo --help`` stay fast).

* :mod:`vggeo.crs` — Swedish coordinate systems, explicit axis order, vectorised transforms.
* :mod:`vggeo.registry` — the Valueguard residential registry (schema, readers, checks, client).
* :mod:`vggeo.lm` — Lantmäteriet deliveries (packages, GML, bestämmelser, inskrivning).
* :mod:`vggeo.store` — GeoPackage and PostGIS stores; change deliveries applied atomically.
* :mod:`vggeo.join`, :mod:`vggeo.exports` — spatial joins and exports for QGIS/GeoParquet.
* :mod:`vggeo.tiles` — vector tiles (the server in ``server/`` is a thin layer over it).

>>> import vggeo
>>> vggeo.get_crs("sweref99 18 00").epsg
3011
"""

from __future__ import annotations

import importlib
from typing import Any

from vggeo._version import __version__
from vggeo.crs import get_crs, transform, transform_geoseries
from vggeo.errors import VggeoError

#: Lazily exported names → the module that defines them.
_LAZY = {
    "read_registry": "vggeo.registry",
    "check_registry": "vggeo.registry",
    "valueguard_points": "vggeo.registry",
    "write_registry": "vggeo.registry",
    "open_delivery": "vggeo.lm",
    "read_bestammelser": "vggeo.lm",
    "read_inskrivning": "vggeo.lm",
    "open_store": "vggeo.store",
    "residences_in": "vggeo.join",
    "write_gpkg": "vggeo.exports",
    "export_store_gpkg": "vggeo.exports",
    "write_parquet": "vggeo.exports",
    "open_source": "vggeo.tiles",
}

__all__ = ["__version__", "get_crs", "transform", "transform_geoseries", "VggeoError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vggeo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
