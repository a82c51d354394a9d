"""The archive backend: tiles as stored in a PMTiles or MBTiles archive written by
:func:`vggeo.tiles.pmtiles.export_archive` (the store is a :class:`~vggeo.store.TileArchive`)."""

from __future__ import annotations

import gzip
import json

from vggeo.errors import InputError, StoreError
from vggeo.store import TileArchive
from vggeo.tiles.backends.base import TileSource
from vggeo.tiles.cache import CachedTile, compress, etag
from vggeo.tiles.grids import Grid, get_grid
from vggeo.tiles.layers import Composite, Filters, Layer, get_layer, members
from vggeo.tiles.pmtiles import layer_from_tile, open_archive_file, overzoom

__all__ = ["ArchiveSource"]


class ArchiveSource(TileSource):
    """Serve a PMTiles or MBTiles archive written by :func:`export_archive`.

    PMTiles: memory-mapped; all directories decoded once into sorted arrays. MBTiles: sqlite,
    one indexed lookup per tile. Tiles are served as stored (gzip). Only unfiltered Web Mercator
    tiles of the archived layer (or, for a composite, of its member layers) exist; the archive's
    own metadata says which layers, fields and zooms it holds (:meth:`served_layers`,
    :meth:`vector_layers`, :attr:`minzoom`, :attr:`maxzoom`). A tile deeper than the archive's
    deepest zoom is cut out of its ancestor there (:func:`overzoom`), so no zoom is blank.

    Attribute filters cannot be applied to stored tiles: :meth:`allowed_values` names what a
    client can filter itself (``filter_mode = "client"``), exactly at every zoom.
    """

    kind = "archive"
    filter_mode = "client"
    #: Filters a client can apply to archived tiles exactly, clusters included (home types
    #: through the clusters' ``count_<home type>`` fields).
    CLIENT_FILTERS = ("home_type", "provision_type", "status")

    def __init__(self, store: TileArchive) -> None:
        if not isinstance(store, TileArchive):
            raise StoreError(f"{store.location} is not a tile archive")
        self.store = store
        self.path = store.path
        self._file = open_archive_file(self.path)
        self.version = self.current_version()
        try:
            meta = self._file.metadata
            self.layer = get_layer(meta.get("vggeo:layer") or meta.get("name") or "")
        except KeyError as err:
            self._file.close()
            raise StoreError(
                "not a vggeo archive: its metadata names no vggeo layer (write it "
                "with `vggeo tiles export`)",
                file=self.path,
            ) from err
        self.metadata = meta
        held = {vl.get("id") for vl in meta.get("vector_layers", [])}
        self.layer_ids = {m.id for m in members(self.layer) if not held or m.id in held}
        if len(self.layer_ids) == len(members(self.layer)):
            self.layer_ids.add(self.layer.id)
        self._gzip = self._file.gzip
        self.minzoom, self.maxzoom = self._file.minzoom, self._file.maxzoom

    def served_layers(self) -> list[str]:
        """Ids of the layers this archive answers (the archived one and its members)."""
        return [
            lid
            for lid in (self.layer.id, *(m.id for m in members(self.layer)))
            if lid in self.layer_ids
        ]

    def vector_layers(self, layer: Layer | Composite) -> list[dict]:
        """The archive's own ``vector_layers`` entries of ``layer`` (its members for a
        composite): ids, fields and zoom ranges as written into the archive."""
        wanted = [m.id for m in members(layer)]
        held = {vl.get("id"): vl for vl in self.metadata.get("vector_layers", [])}
        return [held[w] for w in wanted if w in held]

    def allowed_values(self) -> dict[str, list[str]]:
        """Values of the filters a client can apply to this archive's tiles (from the archive's
        metadata; empty for archives written before it was recorded)."""
        recorded = self.metadata.get("vggeo:filters") or {}
        if isinstance(recorded, str):  # MBTiles metadata values are text
            recorded = json.loads(recorded)
        return {name: list(recorded.get(name) or []) for name in self.CLIENT_FILTERS}

    def home_types(self) -> list[str]:
        recorded = self.metadata.get("vggeo:home_types")
        if isinstance(recorded, str):
            recorded = json.loads(recorded)
        if recorded:
            return list(recorded)
        for vl in self.metadata.get("vector_layers", []):
            if vl.get("id") == "residences":  # older archives keep only the field names (slugs)
                return [k[len("count_") :] for k in vl.get("fields", {}) if k.startswith("count_")]
        return []

    def bounds_wgs84(self) -> tuple[float, float, float, float] | None:
        b = self._file.bounds  # from the archive's metadata: not four numbers means none
        return None if b is None or len(b) != 4 else (b[0], b[1], b[2], b[3])

    def _release(self) -> None:
        self._file.close()

    def _check(self, layer: Layer | Composite, grid: Grid, filters: Filters | None) -> None:
        if grid.id != "WebMercatorQuad":
            raise InputError("an archive holds Web Mercator tiles only", value=grid.id)
        if filters:
            raise InputError(
                "an archive holds unfiltered tiles only; filter on the client (see /layers)",
                value=filters.key(),
            )
        if layer.id not in self.layer_ids:
            raise LookupError(
                f"layer {layer.id!r} is not in this archive; it holds "
                f"{', '.join(self.served_layers())}"
            )

    def _raw(self, body: bytes) -> bytes:
        return gzip.decompress(body) if self._gzip else bytes(body)

    def compressed_tile(
        self,
        layer: str | Layer | Composite,
        z: int,
        x: int,
        y: int,
        *,
        grid: str | Grid = "WebMercatorQuad",
        filters: Filters | None = None,
    ) -> CachedTile:
        """The stored gzip tile (cut to one member layer when asked; cut out of its ancestor at
        the archive's deepest zoom when deeper)."""
        g = get_grid(grid) if isinstance(grid, str) else grid
        lay = get_layer(layer) if isinstance(layer, str) else layer
        self._check(lay, g, filters)
        g.check(z, x, y)
        if z > self.maxzoom:
            levels = z - self.maxzoom
            body = self._file.get(self.maxzoom, x >> levels, y >> levels)
            if not body:
                return compress(b"")
            mask = (1 << levels) - 1
            names = {m.id for m in members(lay)}
            return compress(overzoom(self._raw(body), levels, x & mask, y & mask, layers=names))
        body = self._file.get(z, x, y)
        if not body:
            return compress(b"")
        if lay.id != self.layer.id or not self._gzip:
            raw = self._raw(body)
            return compress(layer_from_tile(raw, lay.id) if lay.id != self.layer.id else raw)
        return CachedTile(body, etag(body))  # served as stored

    def tile(
        self,
        layer: str | Layer | Composite,
        z: int,
        x: int,
        y: int,
        *,
        grid: str | Grid = "WebMercatorQuad",
        filters: Filters | None = None,
    ) -> bytes:
        """The uncompressed MVT (``b""`` when the archive has no such tile)."""
        body = self.compressed_tile(layer, z, x, y, grid=grid, filters=filters).body
        return gzip.decompress(body) if body else b""
