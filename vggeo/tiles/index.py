"""In-memory, spatially sorted indexes of a store's residences and provisions.

The memory backend (:mod:`vggeo.tiles.backends.memory`) reads a store's two tables once into a
:class:`TileData`. For each grid the data get a :class:`PointIndex`: residences
sorted by the Morton (Z-order) code of their position under the grid's quadtree root, at depth
:data:`DEPTH`. Because a tile is a quadtree cell, the residences of any tile are one contiguous
slice of the sorted arrays, found with two binary searches — no per-tile scan, no R-tree. Cluster
cells inside a tile are, in turn, contiguous runs of that slice (see :mod:`vggeo.tiles.cluster`).
Provisions get a :class:`PolygonIndex`: geometries in the grid CRS in a shapely STRtree, with
per-zoom simplified copies made on first use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pandas as pd
import shapely

from vggeo.crs import en_to_en, en_to_lonlat
from vggeo.tiles.grids import Grid, get_grid
from vggeo.tiles.layers import HOME_TYPES, OWNERSHIP_TYPES, PROVISION_TYPES

T = TypeVar("T")

__all__ = [
    "DEPTH",
    "TileData",
    "PointIndex",
    "PolygonIndex",
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
PROVISION_COLUMNS = (
    "provision_id",
    "provision_type",
    "status",
    "designation",
    "name",
    "municipality",
    "plan_type",
)
# Columns read as categories (codes + labels); the order of known values is fixed so every
# backend numbers them alike.
KNOWN_CATEGORIES = {
    "home_type": HOME_TYPES,
    "ownership_type": OWNERSHIP_TYPES,
    "provision_type": PROVISION_TYPES,
}

_M = [
    np.uint64(m)
    for m in (
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    )
]


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


def morton(col: np.ndarray | np.uint64, row: np.ndarray | np.uint64) -> np.ndarray:
    """Interleave column (even bits) and row (odd bits) into Z-order codes (uint64; a numpy
    scalar for scalar input)."""
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
        return (
            int(np.searchsorted(self.codes, lo, "left")),
            int(np.searchsorted(self.codes, hi, "left")),
        )


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

    def _built(self, cache: dict[str, T], grid: Grid | str, build: Callable[[Grid], T]) -> T:
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
        return self._built(
            self._points,
            grid,
            lambda g: PointIndex.build(
                self.residences["east"].to_numpy(), self.residences["north"].to_numpy(), g
            ),
        )

    def polygons(self, grid: Grid | str) -> PolygonIndex:
        """The polygon index of a grid (built on first use, thread-safe)."""
        return self._built(
            self._polygons, grid, lambda g: PolygonIndex.build(self.provision_geoms, g)
        )

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
        lon, lat = en_to_lonlat(
            np.array([e.min(), e.max(), e.min(), e.max()]),
            np.array([n.min(), n.min(), n.max(), n.max()]),
        )
        return (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
