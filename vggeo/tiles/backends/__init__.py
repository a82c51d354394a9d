"""Tile backends, one interface (:class:`TileSource`), each built from a store by
:func:`source_for`:

* :mod:`~vggeo.tiles.backends.memory` — GeoPackage and GeoParquet: the tables read once into
  Morton-sorted numpy indexes, tiles encoded in Python;
* :mod:`~vggeo.tiles.backends.postgis` — PostGIS: ``ST_AsMVT`` in the store's schema, through a
  pool the store opens;
* :mod:`~vggeo.tiles.backends.archive` — PMTiles/MBTiles written by ``vggeo tiles export``:
  tiles served as stored.
"""

from __future__ import annotations

from vggeo.store import DataSource
from vggeo.tiles.backends.archive import ArchiveSource
from vggeo.tiles.backends.base import TileSource
from vggeo.tiles.backends.memory import MemorySource
from vggeo.tiles.backends.postgis import PostGISSource
from vggeo.tiles.cluster import DEFAULT_OPTIONS, ClusterOptions

__all__ = ["TileSource", "source_for"]


def source_for(
    store: DataSource,
    options: ClusterOptions = DEFAULT_OPTIONS,
    *,
    pool_size: int = 8,
    precompute: bool = True,
) -> TileSource:
    """The tile backend of a store (what :func:`vggeo.store.open` returned).

    Parameters
    ----------
    store
        A tile archive gets the archive backend, a PostGIS store (or PostGIS tables) the PostGIS
        backend in the store's schema, anything else (GeoPackage, GeoParquet) the memory backend.
        The store stays open and is asked for its data version on every reload check; whoever
        opened it closes it, after the source.
    options
        Clustering options (ignored by archives, whose tiles are made already).
    pool_size
        PostGIS only: maximum connections of the backend's pool.
    precompute
        PostGIS only: build/refresh the cell-aggregate table for unfiltered low-zoom tiles.

    Raises
    ------
    StoreError
        The store's tables cannot be served (missing, wrong CRS, unreadable).
    """
    if store.backend == "archive":
        # backend "archive" is a TileArchive
        return ArchiveSource(store)  # type: ignore[arg-type]
    if store.backend == "postgis":
        return PostGISSource(store, options=options, pool_size=pool_size, precompute=precompute)
    return MemorySource.from_store(store, options=options)
