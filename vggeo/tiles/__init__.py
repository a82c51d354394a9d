"""Vector tiles of residences and regulations (the server ``vggeo_server`` is a thin layer over it).

* :mod:`~vggeo.tiles.grids` — WebMercatorQuad and Lantmäteriet's SWEREF 99 TM "3006" grid.
* :mod:`~vggeo.tiles.layers` — layers, attributes and filters as data.
* :mod:`~vggeo.tiles.index` — the in-memory, Morton-sorted index of a store's tables.
* :mod:`~vggeo.tiles.cluster` — low-zoom clustering with exact counts.
* :mod:`~vggeo.tiles.encode` — MVT encoding (vectorised points, mapbox-vector-tile polygons).
* :mod:`~vggeo.tiles.backends` — :class:`TileSource` and its ``memory``, ``postgis`` and
  ``archive`` implementations, each built from a store by :func:`source_for`:
  ``source.tile(layer, z, x, y, *, grid, filters) -> bytes``.
* :mod:`~vggeo.tiles.service` — a source plus the LRU of final compressed tiles keyed by the
  store's data version, reloaded when it changes.
* :mod:`~vggeo.tiles.pmtiles` — writing PMTiles/MBTiles archives (``vggeo tiles export``).

Example::

    import vggeo.store
    from vggeo.tiles import source_for
    with vggeo.store.open("store.gpkg") as store:   # or "postgresql://…", or "tiles.pmtiles"
        with source_for(store) as src:
            data = src.tile("residences", 10, 550, 297)
"""

from __future__ import annotations

import os
from typing import Any

import vggeo.store
from vggeo.tiles.backends import TileSource, source_for
from vggeo.tiles.grids import get_grid, grid_ids
from vggeo.tiles.layers import Filters, get_layer, layer_ids

__all__ = [
    "source_for",
    "open_source",
    "TileSource",
    "Filters",
    "get_grid",
    "grid_ids",
    "get_layer",
    "layer_ids",
]


def open_source(spec: str | os.PathLike, *, schema: str = "public", **options: Any) -> TileSource:
    """:func:`vggeo.store.open` then :func:`source_for`, for a source used on its own: closing
    the source closes the store too. ``options`` go to :func:`source_for`."""
    store = vggeo.store.open(spec, schema=schema)
    try:
        source = source_for(store, **options)
    except BaseException:
        store.close()
        raise
    source.owns_store = True
    return source
