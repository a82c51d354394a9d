"""Static tile archives: ``vggeo tiles export`` (PMTiles v3 or MBTiles) and serving them.

:func:`export_archive` renders every non-empty Web Mercator tile of a zoom range — the tiles
that hold a residence (read straight off the Morton index: no empty tile is ever rendered) and
the tiles that a provision at least one pixel large touches — in PMTiles' Hilbert order, on all
cores (forked workers share the loaded index), with a progress bar. The archive is written to a
temporary file beside the target and renamed only when complete: Ctrl-C leaves nothing behind.

The archive backend (:class:`~vggeo.tiles.backends.archive.ArchiveSource`) serves such an
archive through :func:`open_archive_file`: the file is memory-mapped and all directories are
decoded once, at open, into sorted numpy arrays, so a tile is one binary search and one slice.
Tiles stay gzip-compressed from disk to socket. A composite archive also serves its member
layers: an MVT tile is a concatenation of layer messages, so a layer is cut out without
decoding features. The archive's own header and metadata say which zooms, layers and fields it
holds, and that is what the server advertises; a tile deeper than the archive's deepest zoom is
cut out of its ancestor there (:func:`overzoom`), so a z14 archive is not blank at z15–16.
"""

from __future__ import annotations

import gzip
import json
import mmap
import multiprocessing
import os
import sqlite3
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import shapely
from tqdm import tqdm

from vggeo.atomic import atomic_path
from vggeo.errors import InputError, StoreError
from vggeo.store import DataSource
from vggeo.tiles.backends.base import TileSource
from vggeo.tiles.backends.memory import MemorySource
from vggeo.tiles.cache import compress
from vggeo.tiles.encode import encode_features
from vggeo.tiles.grids import get_grid
from vggeo.tiles.index import DEPTH, demorton
from vggeo.tiles.layers import Composite, Layer, get_layer, members, vector_layers

__all__ = [
    "export_archive",
    "export_source",
    "tiles_to_render",
    "open_archive_file",
    "overzoom",
    "layer_from_tile",
]

_WORKER_STATE: dict = {}


def _hilbert_ids(z: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """PMTiles tile ids (Hilbert curve per zoom, zooms stacked), vectorised."""
    # lazy: pmtiles is in the server extra
    from pmtiles.tile import zxy_to_tileid

    # Vectorised port of the reference algorithm would be faster; the per-tile call costs
    # ~2 µs, negligible next to rendering.
    return np.array(
        [zxy_to_tileid(z, int(a), int(b)) for a, b in zip(x, y, strict=True)], dtype=np.uint64
    )


def tiles_to_render(
    source: MemorySource, layer: Layer | Composite, z: int
) -> tuple[np.ndarray, np.ndarray]:
    """Columns and rows of the tiles at ``z`` that may hold a feature of ``layer``."""
    g = get_grid("WebMercatorQuad")
    cols, rows = [], []
    data = source.data
    for m in members(layer):
        if z < m.minzoom:
            continue
        if m.table == "residences" and len(data.residences):
            idx = data.points(g)
            tiles = np.unique(idx.codes >> np.uint64(2 * (DEPTH - z)))
            c, r = demorton(tiles)
            cols.append(c)
            rows.append(r)
        elif m.table == "provisions" and len(data.provision_geoms):
            pidx = data.polygons(g)
            size = g.tile_size(z)
            big = pidx.extent >= size / g.tile_pixels
            if not big.any():
                continue
            pad = size * 64 / 4096
            b = shapely.bounds(pidx.geoms[big])
            c0 = np.floor((b[:, 0] - pad - g.origin_east) / size).astype(np.int64)
            c1 = np.floor((b[:, 2] + pad - g.origin_east) / size).astype(np.int64)
            r0 = np.floor((g.origin_north - b[:, 3] - pad) / size).astype(np.int64)
            r1 = np.floor((g.origin_north - b[:, 1] + pad) / size).astype(np.int64)
            n = (c1 - c0 + 1) * (r1 - r0 + 1)
            k = np.repeat(np.arange(len(n)), n)
            off = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
            w = (c1 - c0 + 1)[k]
            cols.append(c0[k] + off % w)
            rows.append(r0[k] + off // w)
    if not cols:
        return np.array([], np.int64), np.array([], np.int64)
    c, r = np.concatenate(cols), np.concatenate(rows)
    lim = 1 << z
    ok = (c >= 0) & (c < lim) & (r >= 0) & (r < lim)
    pairs = np.unique(np.column_stack([c[ok], r[ok]]), axis=0)
    return pairs[:, 0], pairs[:, 1]


def _render_chunk(chunk: list[tuple[int, int, int]]) -> list[tuple[int, int, int, bytes]]:
    source, layer = _WORKER_STATE["source"], _WORKER_STATE["layer"]
    out = []
    for z, x, y in chunk:
        tile = source.tile(layer, z, x, y)
        if tile:
            out.append((z, x, y, compress(tile).body))
    return out


def export_source(store: DataSource) -> MemorySource:
    """The tile source an archive is rendered from: the memory backend over ``store``'s tables.

    Also for a PostGIS store: an export renders every tile once, which the in-memory index does
    in forked worker processes without a query per tile; the archive then holds the same tiles
    as a memory backend over the same data would serve, and names the store's data version.
    """
    if getattr(store, "backend", None) == "archive":
        raise InputError(
            "a tile archive cannot be exported again; export from the store it was made from"
        )

    return MemorySource.from_store(store)


def export_archive(
    source: TileSource,
    output: str | os.PathLike,
    *,
    layer: str = "composite",
    minzoom: int = 0,
    maxzoom: int = 14,
    progress: bool = True,
    workers: int | None = None,
) -> dict:
    """Write every non-empty tile of ``layer`` from ``minzoom`` to ``maxzoom`` into an archive.

    Parameters
    ----------
    source
        An embedded backend (:class:`~vggeo.tiles.embedded.EmbeddedSource`).
    output
        ``.pmtiles`` or ``.mbtiles`` path; written atomically.
    workers
        Rendering processes (default: all cores).

    Returns
    -------
    dict with ``tiles`` (number written) and ``max_bytes`` (largest compressed tile).
    """
    output = Path(output)
    kind = output.suffix.lower()
    if kind not in (".pmtiles", ".mbtiles"):
        raise InputError("output must end in .pmtiles or .mbtiles", file=output)

    if not isinstance(source, MemorySource):
        raise InputError("export needs the embedded backend (a GeoPackage or GeoParquet store)")
    lay = get_layer(layer)
    jobs: list[tuple[int, int, int]] = []
    for z in range(minzoom, maxzoom + 1):
        c, r = tiles_to_render(source, lay, z)
        tid = _hilbert_ids(z, c, r)
        order = np.argsort(tid)
        jobs.extend(zip([z] * len(c), c[order].tolist(), r[order].tolist(), strict=True))

    written, max_bytes = 0, 0
    _WORKER_STATE.update(source=source, layer=lay)
    workers = workers or os.cpu_count() or 1
    chunks = [jobs[i : i + 64] for i in range(0, len(jobs), 64)]
    bar = tqdm(total=len(jobs), unit="tile", disable=not progress, desc=output.name)
    try:
        with (
            atomic_path(output) as tmp,
            _ArchiveWriter(tmp, kind, source, lay, minzoom, maxzoom) as writer,
        ):
            if workers > 1 and len(jobs) > 256:
                ctx = multiprocessing.get_context("fork")
                with ctx.Pool(workers) as pool:
                    results = pool.imap(_render_chunk, chunks)
                    for chunk, done in zip(chunks, results, strict=True):
                        for z, x, y, body in done:
                            writer.add(z, x, y, body)
                            written += 1
                            max_bytes = max(max_bytes, len(body))
                        bar.update(len(chunk))
            else:
                for chunk in chunks:
                    for z, x, y, body in _render_chunk(chunk):
                        writer.add(z, x, y, body)
                        written += 1
                        max_bytes = max(max_bytes, len(body))
                    bar.update(len(chunk))
    finally:
        bar.close()
        _WORKER_STATE.clear()
    return {"tiles": written, "max_bytes": max_bytes}


class _ArchiveWriter:
    """PMTiles (via the ``pmtiles`` package) or MBTiles (sqlite) writer of gzip tiles."""

    def __init__(
        self,
        path: Path,
        kind: str,
        source: TileSource,
        layer: Layer | Composite,
        minzoom: int,
        maxzoom: int,
    ) -> None:
        self.path, self.kind = path, kind
        bounds = source.bounds_wgs84() or (10.0, 55.0, 24.2, 69.1)
        self.bounds = bounds
        self.metadata = {
            "name": layer.id,
            "description": layer.description,
            "format": "pbf",
            "vggeo:layer": layer.id,
            "vggeo:data_version": source.version,
            "vector_layers": vector_layers(
                layer, source.home_types(), minzoom=minzoom, maxzoom=maxzoom, types=True
            ),
            # What a client may filter on (the archive cannot filter): the values the data held.
            "vggeo:filters": {k: list(v) for k, v in source.allowed_values().items()},
            "vggeo:home_types": list(source.home_types()),
        }
        self.minzoom, self.maxzoom = minzoom, maxzoom

    def __enter__(self) -> _ArchiveWriter:
        if self.kind == ".pmtiles":
            # lazy: pmtiles is in the server extra
            from pmtiles.writer import Writer

            self.file = open(self.path, "wb")  # noqa: SIM115 - closed in __exit__
            self.writer = Writer(self.file)
            self.count = 0
        else:
            self.db = sqlite3.connect(self.path)
            self.db.executescript(
                "CREATE TABLE metadata (name TEXT, value TEXT);"
                "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER,"
                " tile_data BLOB);"
            )
        return self

    def add(self, z: int, x: int, y: int, body: bytes) -> None:
        if self.kind == ".pmtiles":
            # lazy: pmtiles is in the server extra
            from pmtiles.tile import zxy_to_tileid

            self.writer.write_tile(zxy_to_tileid(z, x, y), body)
            self.count += 1
        else:  # MBTiles rows are TMS: y counted from the south
            self.db.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, (1 << z) - 1 - y, body))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        w, s, e, n = self.bounds
        if self.kind == ".pmtiles":
            try:
                if exc_type is None:
                    if self.count == 0:
                        raise StoreError("nothing to export: the store holds no features")
                    # lazy: pmtiles is in the server extra
                    from pmtiles.tile import Compression, TileType

                    self.writer.finalize(
                        {
                            "tile_type": TileType.MVT,
                            "tile_compression": Compression.GZIP,
                            "min_lon_e7": int(w * 1e7),
                            "min_lat_e7": int(s * 1e7),
                            "max_lon_e7": int(e * 1e7),
                            "max_lat_e7": int(n * 1e7),
                            "center_zoom": max(self.minzoom, min(self.maxzoom, 6)),
                            "center_lon_e7": int((w + e) / 2 * 1e7),
                            "center_lat_e7": int((s + n) / 2 * 1e7),
                        },
                        self.metadata,
                    )
            finally:
                self.file.close()
        else:
            try:
                if exc_type is None:
                    meta = {
                        "name": self.metadata["name"],
                        "format": "pbf",
                        "minzoom": str(self.minzoom),
                        "maxzoom": str(self.maxzoom),
                        "bounds": f"{w},{s},{e},{n}",
                        "center": f"{(w + e) / 2},{(s + n) / 2},{self.minzoom}",
                        "json": json.dumps({"vector_layers": self.metadata["vector_layers"]}),
                        "description": self.metadata["description"],
                        "vggeo:layer": self.metadata["vggeo:layer"],
                        "vggeo:filters": json.dumps(self.metadata["vggeo:filters"]),
                        "vggeo:home_types": json.dumps(self.metadata["vggeo:home_types"]),
                    }
                    self.db.executemany("INSERT INTO metadata VALUES (?, ?)", meta.items())
                    self.db.execute(
                        "CREATE UNIQUE INDEX tile_index ON tiles "
                        "(zoom_level, tile_column, tile_row)"
                    )
                    self.db.commit()
            finally:
                self.db.close()


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def layer_from_tile(tile: bytes, name: str) -> bytes:
    """Cut one layer (``Tile.layers`` entry named ``name``) out of an MVT, without decoding."""
    out, pos, key = [], 0, name.encode("utf-8")
    while pos < len(tile):
        field_start = pos
        tag, pos = _read_varint(tile, pos)
        if tag != 0x1A:  # Tile.layers (field 3, length-delimited) is the only field of a Tile
            raise StoreError(f"unexpected field in tile: tag {tag}")
        length, pos = _read_varint(tile, pos)
        end = pos + length
        layer, p = tile[pos:end], 0
        while p < len(layer):  # find Layer.name (field 1, tag 0x0A)
            t, p = _read_varint(layer, p)
            if t & 7 == 2:
                n, p = _read_varint(layer, p)
                if t == 0x0A:
                    if layer[p : p + n] == key:
                        out.append(tile[field_start:end])
                    break
                p += n
            elif t & 7 == 0:
                _, p = _read_varint(layer, p)
            else:
                raise StoreError("malformed layer in tile")
        pos = end
    return b"".join(out)


def overzoom(
    tile: bytes, levels: int, dx: int, dy: int, *, layers: set[str] | None = None, buffer: int = 64
) -> bytes:
    """The part of an MVT that a descendant ``levels`` zooms down covers, at that zoom.

    ``(dx, dy)`` is the descendant's column and row inside the tile (0 … 2**levels − 1).
    Coordinates are scaled by ``2**levels`` and clipped to the descendant plus ``buffer`` units
    (points: to the descendant itself, as tiles hold each point once); ids and properties are
    kept. Layers not in ``layers`` (when given) and layers left without a feature are dropped;
    ``b""`` when nothing is left.

    Written here because no Python library overzooms MVT (tippecanoe-overzoom is a program);
    decoding and encoding are mapbox-vector-tile's, the geometry work shapely's.
    """
    # lazy: mapbox_vector_tile is in the server extra
    import mapbox_vector_tile

    decoded = mapbox_vector_tile.decode(tile, default_options={"y_coord_down": True})
    scale = 1 << levels
    out = []
    extent = 4096
    for name, layer in decoded.items():
        if layers is not None and name not in layers:
            continue
        extent = layer.get("extent", 4096)
        feats = layer["features"]
        if not feats:
            continue
        geoms = np.array([shapely.geometry.shape(f["geometry"]) for f in feats], dtype=object)
        ox, oy = dx * extent, dy * extent
        geoms = shapely.transform(geoms, lambda c: c * scale - (ox, oy))  # noqa: B023
        points = shapely.get_type_id(geoms) == 0  # plain points; a tile holds each only once
        xy = shapely.get_coordinates(geoms[points]) if points.any() else np.empty((0, 2))
        keep = np.ones(len(geoms), bool)
        keep[points] = (xy >= 0).all(axis=1) & (xy < extent).all(axis=1)
        rest = ~points
        geoms[rest] = shapely.clip_by_rect(
            geoms[rest], -buffer, -buffer, extent + buffer, extent + buffer
        )
        keep &= ~shapely.is_empty(geoms)
        kept = [
            {"geometry": g, "properties": f["properties"], "id": f.get("id")}
            for g, f, k in zip(geoms, feats, keep, strict=True)
            if k
        ]
        out.append((name, kept))
    return encode_features(out, extent=extent)


class _PMTilesFile:
    """A PMTiles v3 archive, memory-mapped, its directories decoded once into sorted arrays
    (so a tile is one binary search and one slice)."""

    def __init__(self, path: Path) -> None:
        # lazy: pmtiles is in the server extra
        from pmtiles.tile import Compression, deserialize_directory, deserialize_header

        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        try:
            self._mm = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            h = deserialize_header(self._mm[:127])
            if self._mm[:7] != b"PMTiles" or h["version"] != 3:
                raise ValueError("no PMTiles v3 header")
        except Exception as err:
            self._file.close()
            raise StoreError(f"not a PMTiles v3 archive: {err}", file=path) from err
        self.header = h
        internal_gzip = h["internal_compression"] == Compression.GZIP
        if h["internal_compression"] not in (Compression.GZIP, Compression.NONE):
            self.close()
            raise StoreError(
                "PMTiles directories must be gzip-compressed or uncompressed", file=path
            )

        def directory(offset: int, length: int) -> Any:  # pmtiles has no types
            raw = self._mm[offset : offset + length]
            # deserialize_directory gunzips; an uncompressed directory is gzipped for it.
            return deserialize_directory(raw if internal_gzip else gzip.compress(raw))

        ids, offs, lens, runs = [], [], [], []
        stack = [(h["root_offset"], h["root_length"])]
        while stack:
            off, length = stack.pop()
            for e in directory(off, length):
                if e.run_length == 0:
                    stack.append((h["leaf_directory_offset"] + e.offset, e.length))
                else:
                    ids.append(e.tile_id)
                    offs.append(e.offset)
                    lens.append(e.length)
                    runs.append(e.run_length)
        order = np.argsort(np.array(ids, dtype=np.uint64))
        self.ids = np.array(ids, dtype=np.uint64)[order]
        self._offs = np.array(offs, dtype=np.int64)[order] + h["tile_data_offset"]
        self._lens = np.array(lens, dtype=np.int64)[order]
        self._runs = np.array(runs, dtype=np.int64)[order]
        meta = self._mm[h["metadata_offset"] : h["metadata_offset"] + h["metadata_length"]]
        self.metadata = json.loads(gzip.decompress(meta) if internal_gzip else meta) if meta else {}
        self.gzip = h["tile_compression"] == Compression.GZIP
        self.minzoom, self.maxzoom = h["min_zoom"], h["max_zoom"]
        self.bounds = (
            h["min_lon_e7"] / 1e7,
            h["min_lat_e7"] / 1e7,
            h["max_lon_e7"] / 1e7,
            h["max_lat_e7"] / 1e7,
        )

    def get(self, z: int, x: int, y: int) -> bytes:
        # lazy: pmtiles is in the server extra
        from pmtiles.tile import zxy_to_tileid

        tid = np.uint64(zxy_to_tileid(z, x, y))
        i = int(np.searchsorted(self.ids, tid, side="right")) - 1
        if i < 0 or tid >= self.ids[i] + np.uint64(self._runs[i]):
            return b""
        return self._mm[self._offs[i] : self._offs[i] + self._lens[i]]

    def close(self) -> None:
        self._mm.close()
        self._file.close()


class _MBTilesFile:
    """An MBTiles 1.3 archive: sqlite, one indexed lookup per tile."""

    gzip = True

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        try:
            meta = dict(self._db.execute("SELECT name, value FROM metadata").fetchall())
            zooms = self._db.execute(
                "SELECT min(zoom_level), max(zoom_level) FROM tiles"
            ).fetchone()
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise StoreError(f"not an MBTiles archive: {err}", file=path) from err
        try:
            self.metadata = {**meta, **json.loads(meta.get("json") or "{}")}
            b = meta.get("bounds")
            self.bounds = tuple(float(v) for v in b.split(",")) if b else None
        except ValueError as err:
            self._db.close()
            raise StoreError(f"malformed MBTiles metadata: {err}", file=path) from err
        self.minzoom, self.maxzoom = (int(zooms[0] or 0), int(zooms[1] or 0))

    def get(self, z: int, x: int, y: int) -> bytes:
        row = self._db.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            (z, x, (1 << z) - 1 - y),
        ).fetchone()
        return bytes(row[0]) if row else b""

    def close(self) -> None:
        self._db.close()


def open_archive_file(path: str | os.PathLike) -> _PMTilesFile | _MBTilesFile:
    """The raw reader of a ``.pmtiles`` or ``.mbtiles`` file: ``get(z, x, y)`` gives the tile as
    stored, ``metadata``, ``minzoom``/``maxzoom`` and ``bounds`` describe the archive."""
    path = Path(path)
    if not path.exists():
        raise StoreError("archive not found", file=path)
    return _PMTilesFile(path) if path.suffix.lower() == ".pmtiles" else _MBTilesFile(path)
