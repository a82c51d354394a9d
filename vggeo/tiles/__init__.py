"""Vector tiles of residences and regulations (the server in ``server/`` is a thin layer over it).

* :mod:`~vggeo.tiles.grids` — WebMercatorQuad and Lantmäteriet's SWEREF 99 TM "3006" grid.
* :mod:`~vggeo.tiles.layers` — layers, attributes and filters as data.
* :mod:`~vggeo.tiles.index` — the in-memory, Morton-sorted index of a store.
* :mod:`~vggeo.tiles.cluster` — low-zoom clustering with exact counts.
* :mod:`~vggeo.tiles.encode` — MVT encoding (vectorised points, mapbox-vector-tile polygons).
* :mod:`~vggeo.tiles.embedded`, :mod:`~vggeo.tiles.postgis`, :mod:`~vggeo.tiles.pmtiles` —
  the three backends, one interface: ``source.tile(layer, z, x, y, *, grid, filters) -> bytes``.
* :mod:`~vggeo.tiles.cache` — LRU of final compressed tiles keyed by data version.

Example::

    from vggeo.tiles import open_source
    src = open_source("store.gpkg")          # or "postgresql://…", or "tiles.pmtiles"
    data = src.tile("residences", 10, 550, 297)
"""

from __future__ import annotations

import os

from vggeo.tiles.grids import get_grid, grid_ids
from vggeo.tiles.layers import Filters, get_layer, layer_ids

__all__ = ["open_source", "Filters", "get_grid", "grid_ids", "get_layer", "layer_ids"]


def open_source(spec: str | os.PathLike, **options):
    """Open a tile backend from a store spec.

    ``postgresql://…`` → :class:`~vggeo.tiles.postgis.PostGISSource`; ``*.pmtiles`` /
    ``*.mbtiles`` → :class:`~vggeo.tiles.pmtiles.ArchiveSource`; anything else (GeoPackage,
    GeoParquet) → :class:`~vggeo.tiles.embedded.EmbeddedSource`.
    """
    text = os.fspath(spec)
    if text.startswith(("postgresql://", "postgres://")):
        from vggeo.tiles.postgis import PostGISSource

        return PostGISSource(text, **options)
    if text.lower().endswith((".pmtiles", ".mbtiles")):
        from vggeo.tiles.pmtiles import ArchiveSource

        return ArchiveSource(text)
    from vggeo.tiles.embedded import EmbeddedSource

    return EmbeddedSource.from_store(text, **options)
