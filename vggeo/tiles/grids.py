"""Tile grids (OGC tile matrix sets) vggeo serves, and the arithmetic the tile hot path needs.

Two grids:

``WebMercatorQuad``
    The XYZ grid of web maps (EPSG:3857), from morecantile's registry.
``SWEREF99TM``
    Lantmäteriet's WMTS matrix set "3006" on SWEREF 99 TM: top-left corner E −1 200 000,
    N 8 500 000; 4096 m/pixel at level 0, halving per level; 256-pixel tiles. Shipped as data
    (``vggeo/tiles/data/SWEREF99TM.json``, OGC TMS 2.0). Its ``pointOfOrigin`` is written in the
    CRS's own axis order (northing, easting) as OGC TMS 2.0 requires; Lantmäteriet's WMTS
    capabilities write the same corner easting first (BruTile issue 44), which is the trap. Tile
    indices (row from the top, column from the left) coincide with Lantmäteriet's.

morecantile holds the definitions (and renders ``/tileMatrixSets``). For speed the tile path uses
a :class:`Grid`, a frozen description of the same matrix set as a quadtree under a square
*root* cell: tile (z, col, row) is the quadtree cell at depth ``z + root_depth`` below the root.
For WebMercatorQuad the root is tile 0/0/0; for SWEREF99TM it is a 4 × 4 block of level-0
tiles (4 194 304 m square) whose top-left is the matrix origin. Every coordinate on this path is
(easting, northing) in metres — shapely order — whatever the CRS's official axis order.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import NamedTuple

import morecantile

from vggeo.errors import TileError

__all__ = ["Grid", "TileBounds", "get_grid", "grid_ids", "tile_matrix_set"]

#: Alternative names accepted for a grid (Lantmäteriet calls its set "3006").
ALIASES = {"3006": "SWEREF99TM", "webmercatorquad": "WebMercatorQuad", "sweref99tm": "SWEREF99TM"}


class TileBounds(NamedTuple):
    """A tile's extent in its grid's CRS, metres: west (min easting) … north (max northing)."""

    west: float
    south: float
    east: float
    north: float


@dataclass(frozen=True)
class Grid:
    """A tile matrix set seen as a quadtree (see the module docstring).

    Attributes
    ----------
    id
        The matrix set id (``WebMercatorQuad``, ``SWEREF99TM``).
    epsg
        EPSG code of the grid CRS.
    origin_east, origin_north
        Top-left corner of the root cell, metres.
    root_size
        Side of the root cell, metres.
    root_depth
        Depth of level-0 tiles below the root (0 when level 0 is a single tile).
    minzoom, maxzoom
        Levels the grid defines.
    matrix_size0
        (width, height) of the level-0 matrix, in tiles; each level doubles both.
    """

    id: str
    epsg: int
    origin_east: float
    origin_north: float
    root_size: float
    root_depth: int
    minzoom: int
    maxzoom: int
    matrix_size0: tuple[int, int]
    tile_pixels: int = 256

    def matrix_size(self, z: int) -> tuple[int, int]:
        """(width, height) of level ``z`` in tiles."""
        w, h = self.matrix_size0
        return w << z, h << z

    def tile_size(self, z: int) -> float:
        """Side of a tile at level ``z`` in metres."""
        return self.root_size / (1 << (z + self.root_depth))

    def check(self, z: int, x: int, y: int) -> None:
        """Raise :class:`TileError` unless (z, x = column, y = row) is a tile of this grid."""
        if not self.minzoom <= z <= self.maxzoom:
            raise TileError(
                f"zoom {z} outside {self.id}'s levels {self.minzoom}…{self.maxzoom}", value=z
            )
        w, h = self.matrix_size(z)
        if not (0 <= x < w and 0 <= y < h):
            raise TileError(
                f"tile {z}/{x}/{y} outside {self.id}: at zoom {z} column (x) must be in 0…{w - 1}"
                f" and row (y) in 0…{h - 1}",
                value=f"{z}/{x}/{y}",
            )

    def bounds(self, z: int, x: int, y: int) -> TileBounds:
        """The tile's extent (easting, northing in metres); no range check."""
        size = self.tile_size(z)
        west = self.origin_east + x * size
        north = self.origin_north - y * size
        return TileBounds(west, north - size, west + size, north)

    def tiles_for_bounds(self, z: int, bounds: TileBounds) -> tuple[range, range]:
        """Column and row ranges of the tiles at ``z`` that intersect ``bounds`` (clamped)."""
        size = self.tile_size(z)
        w, h = self.matrix_size(z)
        c0 = max(0, math.floor((bounds.west - self.origin_east) / size))
        c1 = min(w - 1, math.floor((bounds.east - self.origin_east) / size))
        r0 = max(0, math.floor((self.origin_north - bounds.north) / size))
        r1 = min(h - 1, math.floor((self.origin_north - bounds.south) / size))
        return range(c0, c1 + 1), range(r0, r1 + 1)


@cache
def tile_matrix_set(grid_id: str) -> morecantile.TileMatrixSet:
    """The morecantile definition of a grid (cached; do not mutate)."""
    grid_id = _resolve(grid_id)
    if grid_id == "WebMercatorQuad":
        return morecantile.tms.get("WebMercatorQuad")
    text = resources.files("vggeo.tiles").joinpath(f"data/{grid_id}.json").read_text("utf-8")
    return morecantile.TileMatrixSet.model_validate(json.loads(text))


def _resolve(grid_id: str) -> str:
    if grid_id in _GRIDS:
        return grid_id
    resolved = ALIASES.get(grid_id.lower())
    if resolved is None:
        raise TileError(
            f"unknown tile matrix set {grid_id!r}; known: {', '.join(_GRIDS)} (alias '3006')",
            value=grid_id,
        )
    return resolved


def _quadtree_from(tms: morecantile.TileMatrixSet, root_depth: int) -> Grid:
    """Derive the quadtree description from a morecantile matrix set, checking it is one."""
    levels = sorted(tms.tileMatrices, key=lambda m: int(m.id))
    m0 = levels[0]
    # pointOfOrigin is in CRS axis order; morecantile knows whether that is northing first.
    north_first = tms._invert_axis
    a, b = m0.pointOfOrigin
    east, north = (b, a) if north_first else (a, b)
    for m in levels:
        z = int(m.id)
        if (
            m.tileWidth != m0.tileWidth
            or not math.isclose(m.cellSize, m0.cellSize / 2**z, rel_tol=1e-12)
            or tuple(m.pointOfOrigin) != tuple(m0.pointOfOrigin)
            or (m.matrixWidth, m.matrixHeight) != (m0.matrixWidth << z, m0.matrixHeight << z)
        ):
            raise TileError(f"tile matrix set {tms.id} is not a quadtree at level {z}")
    epsg = tms.crs.to_epsg()
    if tms.id is None or epsg is None:
        raise TileError(f"tile matrix set {tms.id} has no id or no EPSG code")
    return Grid(
        id=tms.id,
        epsg=epsg,
        origin_east=float(east),
        origin_north=float(north),
        root_size=m0.cellSize * m0.tileWidth * 2**root_depth,
        root_depth=root_depth,
        minzoom=int(levels[0].id),
        maxzoom=int(levels[-1].id),
        matrix_size0=(m0.matrixWidth, m0.matrixHeight),
        tile_pixels=m0.tileWidth,
    )


_GRIDS = {"WebMercatorQuad": 0, "SWEREF99TM": 2}


@cache
def get_grid(grid_id: str = "WebMercatorQuad") -> Grid:
    """The :class:`Grid` for a matrix set id or alias (``"3006"`` → ``SWEREF99TM``)."""
    grid_id = _resolve(grid_id)
    return _quadtree_from(tile_matrix_set(grid_id), _GRIDS[grid_id])


def grid_ids() -> list[str]:
    """Ids of the grids vggeo serves."""
    return list(_GRIDS)
