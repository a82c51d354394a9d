"""A tile backend plus the compressed-tile cache, reloaded when the store changes.

:class:`TileService` is what the server holds (one per process) and what ``vggeo tiles export``
uses: ``service.get(layer, z, x, y, grid=…, filters=…)`` returns a gzip-compressed
:class:`~vggeo.tiles.cache.CachedTile` with its ETag. :meth:`TileService.refresh` compares the
store's current data version with the loaded one and swaps in a freshly opened backend when
they differ (a delivery was applied), so the cache — keyed by data version — never serves a tile
of the old data.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from vggeo.tiles.backends.base import TileSource
from vggeo.tiles.cache import CachedTile, TileCache, compress, with_version
from vggeo.tiles.grids import Grid, get_grid
from vggeo.tiles.layers import Filters, get_layer, members

__all__ = ["TileService"]

log = logging.getLogger(__name__)

#: A tile rendered on request is gzipped fast (ISA-L level 2, :func:`~vggeo.tiles.cache.compress`
#: ``fast=True``: 0.06 ms for the median z14–z16 tile of 15 KB, zlib's level 6 took 0.5 ms, its
#: level 1 0.19 ms). A body larger than this is compressed again at zlib's level 6, so that no
#: tile comes near the 500 KB bound (level 6 is 10–14 % smaller on the densest tiles: 407 KB →
#: 358 KB for the largest composite of 5.6 M homes). Not lower: level 6 of a 1 MB MVT costs
#: 30–45 ms, and at 128 KB every dense z14 tile paid both passes, which made them the slowest
#: requests of the z14–z16 list (p99) on top of rendering.
RECOMPRESS_ABOVE = 400 * 1024


#: :meth:`TileService.get_async` gzips a body up to this size on the event loop (ISA-L: 0.15 ms
#: at 64 KB), a larger one in a thread.
GZIP_ON_LOOP_MAX = 64 * 1024


def compress_rendered(mvt: bytes, *, version: str = "") -> CachedTile:
    """gzip a freshly rendered tile: fast for the many small ones, tight for the few large.
    ``version`` (the data version) goes into the ETag."""
    tile = compress(mvt, fast=True, version=version)
    if len(tile.body) > RECOMPRESS_ABOVE:
        tile = compress(mvt, version=version)
    return tile


class TileService:
    """Cached, compressed tiles from a backend that can be reopened.

    Parameters
    ----------
    opener
        Returns a fresh :class:`~vggeo.tiles.TileSource` of the store, e.g.
        ``partial(source_for, store)``.
    cache_bytes
        Size bound of the LRU cache (0: no caching).
    store
        The store the opener reads, closed with the service (after the source); None when
        whoever opened it closes it.
    """

    def __init__(
        self, opener: Callable[[], TileSource], *, cache_bytes: int = 256 * 2**20, store: Any = None
    ) -> None:
        self._opener = opener
        self.store = store
        self.source = opener()
        self.cache = TileCache(cache_bytes)
        self._reload_lock = threading.Lock()

    @property
    def version(self) -> str:
        return self.source.version

    def get(
        self,
        layer: str,
        z: int,
        x: int,
        y: int,
        *,
        grid: str | Grid = "WebMercatorQuad",
        filters: Filters | None = None,
    ) -> CachedTile:
        """The compressed tile (``body == b""`` when empty), from the cache when possible."""
        source, key, hit = self._lookup(layer, z, x, y, grid, filters)
        if hit is not None:
            return hit
        g, lay, f = get_grid(key[1]), get_layer(key[2]), filters or Filters()
        if hasattr(source, "compressed_tile"):  # archives hold tiles compressed already
            tile = with_version(source.compressed_tile(lay, z, x, y, grid=g, filters=f), key[0])
        else:
            tile = compress_rendered(source.tile(lay, z, x, y, grid=g, filters=f), version=key[0])
        self.cache.put(key, tile)
        return tile

    async def get_async(
        self,
        layer: str,
        z: int,
        x: int,
        y: int,
        *,
        grid: str | Grid = "WebMercatorQuad",
        filters: Filters | None = None,
    ) -> CachedTile | None:
        """:meth:`get` on the running event loop, where the backend renders there
        (:meth:`~vggeo.tiles.TileSource.tile_async`); ``None`` where it does not, and the caller
        runs :meth:`get` in a thread. A body over :data:`GZIP_ON_LOOP_MAX` is compressed in a
        thread, so that a dense tile does not hold up the loop."""
        source, key, hit = self._lookup(layer, z, x, y, grid, filters)
        if hit is not None:
            return hit
        g, lay, f = get_grid(key[1]), get_layer(key[2]), filters or Filters()
        mvt = await source.tile_async(lay, z, x, y, grid=g, filters=f)
        if mvt is None:
            return None
        if len(mvt) > GZIP_ON_LOOP_MAX:
            tile = await asyncio.to_thread(compress_rendered, mvt, version=key[0])
        else:
            tile = compress_rendered(mvt, version=key[0])
        self.cache.put(key, tile)
        return tile

    def _lookup(
        self, layer: str, z: int, x: int, y: int, grid: str | Grid, filters: Filters | None
    ) -> tuple[TileSource, tuple, CachedTile | None]:
        """The source now, the tile's cache key under its version, and the cached tile if any."""
        source = self.source
        key = self.key(layer, z, x, y, grid=grid, filters=filters, version=source.version)
        return source, key, self.cache.get(key)

    def cached(
        self,
        layer: str,
        z: int,
        x: int,
        y: int,
        *,
        grid: str | Grid = "WebMercatorQuad",
        filters: Filters | None = None,
    ) -> CachedTile | None:
        """The tile if it is in the cache, else ``None`` (never renders: safe on an event loop)."""
        return self.cache.get(self.key(layer, z, x, y, grid=grid, filters=filters))

    def key(
        self,
        layer: str,
        z: int,
        x: int,
        y: int,
        *,
        grid: str | Grid = "WebMercatorQuad",
        filters: Filters | None = None,
        version: str | None = None,
    ) -> tuple:
        """Cache key: data version, grid, layer, z, x, y and the filters the layer uses.

        Raises :class:`~vggeo.errors.TileError` for a tile outside the grid.
        """
        g = get_grid(grid) if isinstance(grid, str) else grid
        g.check(z, x, y)
        lay = get_layer(layer) if isinstance(layer, str) else layer
        f = filters or Filters()
        # Only the filters that concern the layer's tables take part in the key.
        fkey = "|".join(sorted({f.for_table(m.table).key() for m in members(lay)} - {""}))
        return (version or self.source.version, g.id, lay.id, z, x, y, fkey)

    def refresh(self) -> bool:
        """Reopen the backend if the store's data version changed; True if it did."""
        try:
            current = self.source.current_version()
        except Exception:  # a store mid-write: try again next time
            log.exception("checking the store's data version failed")
            return False
        if current == self.source.version:
            return False
        with self._reload_lock:
            if current == self.source.version:
                return False
            log.info("store changed (%s → %s); reloading", self.source.version, current)
            new = self._opener()
            old, self.source = self.source, new
            self.cache.clear()
            old.close()
            return True

    def close(self) -> None:
        self.source.close()
        if self.store is not None:
            self.store.close()
