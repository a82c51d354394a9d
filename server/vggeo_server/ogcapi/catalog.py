"""The few facts the OGC API layer asks of the tile and feature backends, in one place.

Routes never reach into a backend's internals: they call these functions, which use the
backend's public surface only (``bounds_wgs84()``, ``home_types()``, ``kind``; the feature
reader). When the backends move behind another interface, this module is what changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from vggeo.crs import lonlat_to_en
from vggeo.tiles.backends.archive import ArchiveSource
from vggeo.tiles.backends.base import TileSource
from vggeo.tiles.grids import TileBounds, get_grid
from vggeo_server.tilejson import served_layer_ids


def data_bounds(source: TileSource) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) in degrees of the data, or ``None`` when there is none."""
    return source.bounds_wgs84()


def home_types(source: TileSource) -> list[str]:
    return list(source.home_types())


def served_layers(source: TileSource, layers: Iterable[str]) -> list[str]:
    """The layers of ``layers`` a backend answers: a tile archive only those it holds."""
    return served_layer_ids(list(layers), source)


def served_grids(source: TileSource, grids: list[str]) -> list[str]:
    """The grids a backend can render: archives hold Web Mercator tiles only."""
    if isinstance(source, ArchiveSource):
        return [g for g in grids if g == "WebMercatorQuad"]
    return list(grids)


def zoom_range(source: TileSource, grid_id: str, minzoom: int, maxzoom: int) -> tuple[int, int]:
    """Levels a layer is served on in a grid: the configured range on Web Mercator (or what an
    archive holds), every level of the SWEREF 99 TM grid down to its finest."""
    grid = get_grid(grid_id)
    if grid.id == "WebMercatorQuad":
        lo = max(minzoom, getattr(source, "minzoom", minzoom) or minzoom, grid.minzoom)
        hi = min(maxzoom, grid.maxzoom)
        return lo, max(lo, hi)
    return grid.minzoom, grid.maxzoom


def grid_bounds(bounds_wgs84: Sequence[float] | None, grid_id: str) -> TileBounds | None:
    """The data bounds in a grid's CRS (easting/northing), from a densified outline."""
    if not bounds_wgs84:
        return None
    w, s, e, n = bounds_wgs84
    t = np.linspace(0.0, 1.0, 21)
    lon = np.concatenate([w + (e - w) * t, np.full_like(t, e), e - (e - w) * t, np.full_like(t, w)])
    lat = np.concatenate([np.full_like(t, s), s + (n - s) * t, np.full_like(t, n), n - (n - s) * t])
    x, y = lonlat_to_en(lon, lat, dst=get_grid(grid_id).epsg)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return None
    return TileBounds(
        float(x[ok].min()), float(y[ok].min()), float(x[ok].max()), float(y[ok].max())
    )
