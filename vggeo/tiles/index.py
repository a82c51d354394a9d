"""In-memory, spatially sorted indexes of a store's residences and provisions.

:func:`load_store` reads the two tables once (pyogrio, Arrow; a GeoParquet file holds residences
only) into a :class:`TileData`. For each grid the data get a :class:`PointIndex`: residences
sorted by the Morton (Z-order) code of their position under the grid's quadtree root, at depth
:data:`DEPTH`. Because a tile is a quadtree cell, the residences of any tile are one contiguous
slice of the sorted arrays, found with two binary searches — no per-tile scan, no R-tree. Cluster
cells inside a tile are, in turn, contiguous runs of that slice (see :mod:`vggeo.tiles.cluster`).
Provisions get a :class:`PolygonIndex`: geometries in the grid CRS in a shapely STRtree, with
per-zoom simplified copies made on first use.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from vggeo.crs import en_to_en, en_to_lonlat
from vggeo.errors import StoreError
from vggeo.tiles.grids import Grid, get_grid
from vggeo.tiles.layers import HOME_TYPES, OWNERSHIP_TYPES, PROVISION_TYPES

__all__ = [
    "DEPTH",
    "TileData",
    "PointIndex",
    "PolygonIndex",
    "load_store",
    "store_version",
    "morton",
    "demorton",
    "provision_feature_ids",
]

log = logging.getLogger(__name__)

#: Depth of the Morton codes below a grid's root: 28 levels → 56-bit codes; 15 cm cells in
#: Web Mercator, 1.6 cm in the SWEREF 99 TM grid. Tiles and cluster cells up to this depth map
#: to exact code ranges.
DEPTH = 28
#: Feature ids of residences must stay below this (cluster ids start here; JS numbers are exact).
MAX_RESIDENCE_ID = 1 << 52

RESIDENCE_COLUMNS = ("id", "home_type", "ownership_type", "construction_year", "municipality_code")
PROVISION_COLUMNS = ("provision_id", "provision_type", "status", "designation", "name",
                     "municipality", "plan_type")  # fmt: skip
# Columns read as categories (codes + labels); the order of known values is fixed so every
# backend numbers them alike.
KNOWN_CATEGORIES = {
    "home_type": HOME_TYPES,
    "ownership_type": OWNERSHIP_TYPES,
    "provision_type": PROVISION_TYPES,
}

_M = [np.uint64(m) for m in (0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F,
                             0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF, 0x00000000FFFFFFFF)]  # fmt: skip


def _spread(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.uint64) & _M[5]
    v = (v | (v << np.uint64(16))) & _M[4]
    v = (v | (v << np.uint64(8))) & _M[3]
    v = (v | (v << np.uint64(4))) & _M[2]
    v = (v | (v << np.uint64(2))) & _M[1]
    return (v | (v << np.uint64(1))) & _M[0]


def _compact(v: np.ndarray) -> np.ndarray:
    v = v & _M[0]
    v = (v | (v >> np.uint64(1))) & _M[1]
    v = (v | (v >> np.uint64(2))) & _M[2]
    v = (v | (v >> np.uint64(4))) & _M[3]
    v = (v | (v >> np.uint64(8))) & _M[4]
    return (v | (v >> np.uint64(16))) & _M[5]


def morton(col: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Interleave column (even bits) and row (odd bits) into Z-order codes (uint64)."""
    return _spread(np.asarray(col)) | (_spread(np.asarray(row)) << np.uint64(1))


def demorton(code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`morton`: (column, row) as int64 arrays."""
    code = np.asarray(code, dtype=np.uint64)
    return (_compact(code).astype(np.int64), _compact(code >> np.uint64(1)).astype(np.int64))


def provision_feature_ids(provision_id: pd.Series | np.ndarray) -> np.ndarray:
    """Stable integer feature ids of provisions: the first 52 bits (13 hex digits) of the UUID.

    PostGIS computes the same (see :mod:`vggeo.tiles.postgis`); 52 bits keep ids exact in
    JavaScript and leave collisions at ~1e-7 for a million provisions.
    """
    text = pd.Series(provision_id, dtype="string").str.replace("-", "", regex=False).str[:13]
    return np.array([int(t, 16) for t in text], dtype=np.int64)


def _to_grid_xy(east: np.ndarray, north: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """SWEREF 99 TM (easting, northing) → the grid CRS, easting first."""
    if grid.epsg == 3006:
        return east, north
    return en_to_en(east, north, dst=grid.epsg)


@dataclass
class PointIndex:
    """Residences of one grid, sorted by Morton code (see the module docstring).

    Attributes
    ----------
    codes
        Sorted uint64 Morton codes at :data:`DEPTH`.
    x, y
        Grid-CRS easting/northing in code order.
    order
        Positions in :attr:`TileData.residences` of the sorted points.
    """

    grid: Grid
    codes: np.ndarray
    x: np.ndarray
    y: np.ndarray
    order: np.ndarray
    pyramid: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(cls, east: np.ndarray, north: np.ndarray, grid: Grid) -> PointIndex:
        x, y = _to_grid_xy(east, north, grid)
        scale = (1 << DEPTH) / grid.root_size
        fx = np.floor((x - grid.origin_east) * scale)
        fy = np.floor((grid.origin_north - y) * scale)
        inside = (fx >= 0) & (fx < (1 << DEPTH)) & (fy >= 0) & (fy < (1 << DEPTH))
        if not inside.all():
            log.warning("%d residences outside grid %s left out", (~inside).sum(), grid.id)
        pos = np.flatnonzero(inside)
        codes = morton(fx[pos].astype(np.uint64), fy[pos].astype(np.uint64))
        sort = np.argsort(codes, kind="stable")
        return cls(grid, codes[sort], x[pos][sort], y[pos][sort], pos[sort])

    def tile_range(self, z: int, x: int, y: int) -> tuple[int, int]:
        """[start, stop) of the residences inside tile z/x/y (x = column, y = row)."""
        depth = z + self.grid.root_depth
        shift = np.uint64(2 * (DEPTH - depth))
        lo = morton(np.uint64(x), np.uint64(y)) << shift
        hi = lo + (np.uint64(1) << shift)
        return (int(np.searchsorted(self.codes, lo, "left")),
                int(np.searchsorted(self.codes, hi, "left")))  # fmt: skip


@dataclass
class PolygonIndex:
    """Provisions of one grid: grid-CRS geometries, an STRtree, per-zoom simplified copies."""

    grid: Grid
    geoms: np.ndarray
    tree: shapely.STRtree
    simplified: dict[int, np.ndarray] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def extent(self) -> np.ndarray:
        """Larger side of each geometry's bounding box, grid metres (cached)."""
        got = getattr(self, "_extent", None)
        if got is None:
            b = shapely.bounds(self.geoms)
            got = self._extent = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
        return got

    @classmethod
    def build(cls, geoms: np.ndarray, grid: Grid) -> PolygonIndex:
        if grid.epsg != 3006 and len(geoms):
            coords = shapely.get_coordinates(geoms)
            gx, gy = en_to_en(coords[:, 0], coords[:, 1], dst=grid.epsg)
            geoms = shapely.set_coordinates(geoms.copy(), np.column_stack([gx, gy]))
        return cls(grid, geoms, shapely.STRtree(geoms))

    def at_zoom(self, z: int) -> np.ndarray:
        """Geometries simplified to a quarter of a tile pixel at zoom ``z`` (topology kept)."""
        got = self.simplified.get(z)
        if got is None:
            with self.lock:
                got = self.simplified.get(z)
                if got is None:
                    tol = self.grid.tile_size(z) / self.grid.tile_pixels / 4
                    got = shapely.simplify(self.geoms, tol, preserve_topology=True)
                    self.simplified[z] = got
        return got


@dataclass
class TileData:
    """Everything the embedded backend serves, loaded once.

    Attributes
    ----------
    residences
        DataFrame of the residence attributes (categoricals for codes) plus ``east``/``north``
        (SWEREF 99 TM metres).
    provisions
        DataFrame of provision attributes plus ``fid`` (feature ids); geometries in
        :attr:`provision_geoms` (SWEREF 99 TM).
    version
        Data version (part of every cache key).
    """

    residences: pd.DataFrame
    provisions: pd.DataFrame
    provision_geoms: np.ndarray
    version: str
    source: str = ""
    _points: dict[str, PointIndex] = field(default_factory=dict, repr=False)
    _polygons: dict[str, PolygonIndex] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _memo: dict = field(default_factory=dict, repr=False)

    def _built(self, cache: dict, grid: Grid | str, build):
        """``cache[grid.id]``, built once by ``build(grid)`` (double-checked under the lock)."""
        grid = get_grid(grid) if isinstance(grid, str) else grid
        idx = cache.get(grid.id)
        if idx is None:
            with self._lock:
                idx = cache.get(grid.id)
                if idx is None:
                    idx = cache[grid.id] = build(grid)
        return idx

    def points(self, grid: Grid | str) -> PointIndex:
        """The point index of a grid (built on first use, thread-safe)."""
        return self._built(self._points, grid, lambda g: PointIndex.build(
            self.residences["east"].to_numpy(), self.residences["north"].to_numpy(), g))

    def polygons(self, grid: Grid | str) -> PolygonIndex:
        """The polygon index of a grid (built on first use, thread-safe)."""
        return self._built(self._polygons, grid,
                           lambda g: PolygonIndex.build(self.provision_geoms, g))

    def categories(self, column: str) -> list[str]:
        """The labels a categorical column can take (for filter validation and counts)."""
        for frame in (self.residences, self.provisions):
            if column in frame.columns and isinstance(frame[column].dtype, pd.CategoricalDtype):
                return [str(c) for c in frame[column].cat.categories]
        return []

    def bounds_wgs84(self) -> tuple[float, float, float, float] | None:
        """(west, south, east, north) in degrees of all data, or ``None`` if empty (cached)."""
        if "bounds" not in self._memo:
            self._memo["bounds"] = self._bounds_wgs84()
        return self._memo["bounds"]

    def _bounds_wgs84(self) -> tuple[float, float, float, float] | None:
        es = [self.residences["east"].to_numpy()]
        ns = [self.residences["north"].to_numpy()]
        if len(self.provision_geoms):
            b = shapely.bounds(self.provision_geoms)
            es += [b[:, 0], b[:, 2]]
            ns += [b[:, 1], b[:, 3]]
        e, n = np.concatenate(es), np.concatenate(ns)
        ok = np.isfinite(e) & np.isfinite(n)
        if not ok.any():
            return None
        e, n = e[ok], n[ok]
        lon, lat = en_to_lonlat(np.array([e.min(), e.max(), e.min(), e.max()]),
                             np.array([n.min(), n.min(), n.max(), n.max()]))  # fmt: skip
        return (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))

    def warm(self, grids: tuple[str, ...] = ("WebMercatorQuad",)) -> None:
        """Build the indexes of ``grids`` now (at start-up) instead of on the first request."""
        from vggeo.tiles.cluster import pyramid

        for g in grids:
            pyramid(self, self.points(g))
            self.polygons(g)


def store_version(path: str | os.PathLike) -> str:
    """The data version of a store file.

    A vggeo GeoPackage store's own ``data_version`` (:attr:`vggeo.store.Store.data_version`,
    written with every ingest's ledger entry), so every process and every backend name the same
    version for the same data. Any other file (a GeoPackage written by other tools, GeoParquet):
    a signature of the file and its ``-wal`` (size and modification time), which every writer
    changes.
    """
    p = Path(path)
    version = _vggeo_store_version(p)
    if version is not None:
        return version
    parts = []
    for f in (p, Path(str(p) + "-wal")):
        if f.exists():
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


def _vggeo_store_version(path: Path) -> str | None:
    """``data_version`` from a vggeo GeoPackage store's meta table; None for other files."""
    import sqlite3

    from vggeo.store.schema import META_TABLE

    if path.suffix.lower() != ".gpkg" or not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute(f'SELECT value FROM "{META_TABLE}" WHERE key = ?',
                           ("data_version",)).fetchone()  # fmt: skip
    except sqlite3.Error:  # not a vggeo store (no meta table)
        return None
    finally:
        conn.close()
    return row[0] if row and row[0] else "0"


def _categorical(series: pd.Series, column: str) -> pd.Series:
    """A categorical with the known values first (fixed order), then others sorted."""
    values = series.astype("string")
    known = list(KNOWN_CATEGORIES.get(column, ()))
    present = set(values.dropna().unique())
    cats = [k for k in known if k in present] + sorted(present - set(known))
    return pd.Series(pd.Categorical(values, categories=cats), index=series.index, name=column)


def _read_layer(path: Path, layer: str, wanted: tuple[str, ...]):
    import pyogrio

    try:
        layers = {name for name, _ in pyogrio.list_layers(path)}
    except Exception as err:  # pyogrio raises DataSourceError and friends
        raise StoreError(f"cannot open store: {err}", file=path) from err
    if layer not in layers:
        return None
    info = pyogrio.read_info(path, layer=layer)
    present = [c for c in wanted if c in set(info["fields"])]
    fid = info.get("fid_column") or ""
    if fid in wanted and fid not in present:
        # The key column may be the GeoPackage's integer primary key (FID) itself.
        frame = pyogrio.read_dataframe(path, layer=layer, columns=present, use_arrow=True,
                                       fid_as_index=True)  # fmt: skip
        return frame.rename_axis(fid).reset_index()
    return pyogrio.read_dataframe(path, layer=layer, columns=present, use_arrow=True)


def _residences_frame(gdf) -> pd.DataFrame:
    if gdf is None or len(gdf) == 0:
        return pd.DataFrame({"id": pd.Series([], dtype="int64"), "east": [], "north": []})
    if "id" not in gdf.columns:
        raise StoreError("table residences has no 'id' column", field="id")
    geom = gdf.geometry.values
    ok = ~(shapely.is_missing(np.asarray(geom)) | shapely.is_empty(np.asarray(geom)))
    gdf = gdf[ok]
    coords = shapely.get_coordinates(np.asarray(gdf.geometry.values))
    if len(coords) != len(gdf):
        raise StoreError("table residences must hold single points", field="geometry")
    out = pd.DataFrame(index=pd.RangeIndex(len(gdf)))
    ids = pd.to_numeric(gdf["id"], errors="raise").to_numpy(dtype=np.int64)
    if len(ids) and (ids.min() < 0 or ids.max() >= MAX_RESIDENCE_ID):
        raise StoreError("residence ids must be in 0 … 2^52 − 1", field="id",
                         value=int(ids.max()))  # fmt: skip
    out["id"] = ids
    for c in ("home_type", "ownership_type", "municipality_code"):
        if c in gdf.columns:
            out[c] = _categorical(gdf[c].reset_index(drop=True), c)
    if "construction_year" in gdf.columns:
        out["construction_year"] = pd.to_numeric(gdf["construction_year"]).astype("Int64").values
    out["east"], out["north"] = coords[:, 0], coords[:, 1]
    return out


def _provisions_frame(gdf) -> tuple[pd.DataFrame, np.ndarray]:
    if gdf is None or len(gdf) == 0:
        return pd.DataFrame({"fid": pd.Series([], dtype="int64")}), np.array([], dtype=object)
    geoms = np.asarray(gdf.geometry.values)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    gdf, geoms = gdf[ok], geoms[ok]
    out = pd.DataFrame(index=pd.RangeIndex(len(gdf)))
    out["fid"] = provision_feature_ids(gdf["provision_id"].to_numpy())
    for c in PROVISION_COLUMNS:
        if c in gdf.columns:
            col = gdf[c].reset_index(drop=True)
            out[c] = _categorical(col, c) if c in ("provision_type", "status") else col.astype(
                "string")
    return out, geoms


def load_store(path: str | os.PathLike, *, version: str | None = None) -> TileData:
    """Load a GeoPackage store (tables ``residences``, ``provisions``) or a GeoParquet file.

    Parameters
    ----------
    path
        ``.gpkg`` store, or ``.parquet`` file of residences (canonical form, EPSG:3006).
    version
        Data version; default: :func:`store_version` of the file.

    Raises
    ------
    StoreError
        If the file cannot be read or holds neither table.
    """
    p = Path(path)
    if not p.exists():
        raise StoreError("store not found", file=p)
    # The version is read before the data: an ingest committed in between then makes the next
    # version check reload again, instead of leaving new-looking old data in place for good.
    version = version or store_version(p)
    if p.suffix.lower() in (".parquet", ".geoparquet"):
        import geopandas

        res = geopandas.read_parquet(p)
        res = res[[c for c in (*RESIDENCE_COLUMNS, res.geometry.name) if c in res.columns]]
        prov = None
    else:
        res = _read_layer(p, "residences", RESIDENCE_COLUMNS)
        prov = _read_layer(p, "provisions", PROVISION_COLUMNS)
        if res is None and prov is None:
            raise StoreError("store has neither a 'residences' nor a 'provisions' table", file=p)
    for g in (res, prov):
        if g is not None and len(g) and g.crs is not None and g.crs.to_epsg() != 3006:
            raise StoreError(f"store tables must be in EPSG:3006, found {g.crs.to_string()}",
                             file=p)  # fmt: skip
    residences = _residences_frame(res)
    provisions, geoms = _provisions_frame(prov)
    return TileData(residences, provisions, geoms, version, str(p))
