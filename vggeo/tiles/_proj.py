"""Projections the tile path needs beyond :mod:`vggeo.crs`: SWEREF 99 TM → Web Mercator.

:mod:`vggeo.crs` deliberately knows only Swedish systems and WGS 84, so EPSG:3857 is reached here
with pyproj directly (``always_xy``: easting first in and out). PROJ treats SWEREF 99 → WGS 84
as a null shift, as vggeo.crs does. Transformers are built once per thread (pyproj objects are
not safe to share between the server's worker threads).
"""

from __future__ import annotations

import threading

import numpy as np
import pyproj

_local = threading.local()


def _transformer(src: int, dst: int) -> pyproj.Transformer:
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    tr = cache.get((src, dst))
    if tr is None:
        tr = cache[(src, dst)] = pyproj.Transformer.from_crs(src, dst, always_xy=True)
    return tr


def to_grid_crs(east: np.ndarray, north: np.ndarray, epsg: int) -> tuple[np.ndarray, np.ndarray]:
    """SWEREF 99 TM (easting, northing) → ``epsg`` (easting first), vectorised."""
    x, y = _transformer(3006, epsg).transform(np.asarray(east, float), np.asarray(north, float))
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def to_lonlat(east: np.ndarray, north: np.ndarray, src: int = 3006) -> tuple[np.ndarray, np.ndarray]:
    """Grid (easting, northing) in ``src`` → (longitude, latitude) degrees."""
    lon, lat = _transformer(src, 4326).transform(np.asarray(east, float), np.asarray(north, float))
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def from_lonlat(lon: np.ndarray, lat: np.ndarray, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """(longitude, latitude) degrees → ``dst`` (easting, northing)."""
    x, y = _transformer(4326, dst).transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
