"""Valueguard's three coordinate pairs: which pair a point comes from, in which order.

A registry row may carry its position three times: SWEREF 99 TM (``sweref99x`` = **northing**,
``sweref99y`` = easting, the RT 90 habit of calling the northing *X*), RT 90 2.5 gon V
(``rt90x``/``rt90y``, northing first too) and WGS 84 (``wgs84lat``/``wgs84lon``). This module
says which pair to trust first and hands each pair to :mod:`vggeo.crs`, which owns every axis
and datum decision.
"""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike

from vggeo.crs import AxisOrder, Route, transform
from vggeo.errors import CoordinateRangeError

__all__ = ["VALUEGUARD_PAIRS", "PAIR_LABELS", "valueguard_points"]

#: Coordinate pairs in a Valueguard registry row, in order of preference:
#: (source label, first column, second column, system, order of the two columns).
#: ``sweref99x``/``rt90x`` are **northings** (the RT 90 habit), ``sweref99y``/``rt90y`` eastings.
VALUEGUARD_PAIRS: tuple[tuple[str, str, str, int, AxisOrder], ...] = (
    ("sweref99", "sweref99x", "sweref99y", 3006, "ne"),
    ("rt90", "rt90x", "rt90y", 3021, "ne"),
    ("wgs84", "wgs84lat", "wgs84lon", 4326, "latlon"),
)
#: The pairs' labels, in order of preference (the values of ``coord_source``).
PAIR_LABELS: tuple[str, ...] = tuple(p[0] for p in VALUEGUARD_PAIRS)


def valueguard_points(
    frame: pd.DataFrame | Mapping[str, ArrayLike], *, swap: bool = False, route: Route = "direct"
) -> tuple[gpd.GeoSeries, pd.Series]:
    """EPSG:3006 points from a Valueguard frame, with the source of each point.

    Uses ``sweref99x`` (northing) / ``sweref99y`` (easting); where that pair is missing, falls back
    to ``rt90x``/``rt90y`` (RT 90 2.5 gon V, northing first), then ``wgs84lat``/``wgs84lon``.
    Absent columns count as missing.

    Parameters
    ----------
    frame
        A pandas DataFrame (or mapping of column name → array).
    swap
        Exchange detectably swapped pairs with a warning instead of raising.
    route
        RT 90 only: ``"direct"`` (Lantmäteriet's direct projection) or ``"helmert"``; see
        :mod:`vggeo.crs`.

    Returns
    -------
    (geometry, source) : a GeoSeries in EPSG:3006 (x = easting) and a pandas Categorical Series
        with ``"sweref99"``, ``"rt90"``, ``"wgs84"`` or missing where no pair was complete.

    Raises
    ------
    SwappedAxesError, CoordinateRangeError
        Naming the column and an example value (row numbers are 1-based positions).

    Examples
    --------
    >>> geom, source = valueguard_points({"sweref99x": [6580822.0], "sweref99y": [674032.0]})
    >>> geom.iloc[0].x, geom.iloc[0].y, source.iloc[0]
    (674032.0, 6580822.0, 'sweref99')
    """
    if not hasattr(frame, "index"):
        frame = pd.DataFrame(frame)  # a mapping of column name → array
    n = len(frame)
    index = frame.index
    easting = np.full(n, np.nan)
    northing = np.full(n, np.nan)
    source = np.full(n, -1, dtype=np.int8)
    todo = np.ones(n, dtype=bool)
    for k, (_, col_a, col_b, code, order) in enumerate(VALUEGUARD_PAIRS):
        if not todo.any():
            break
        if col_a not in frame or col_b not in frame:
            continue
        a = pd.to_numeric(pd.Series(np.asarray(frame[col_a])), errors="coerce").to_numpy(float)
        b = pd.to_numeric(pd.Series(np.asarray(frame[col_b])), errors="coerce").to_numpy(float)
        use = todo & ~np.isnan(a) & ~np.isnan(b)
        if not use.any():
            continue
        idx = np.flatnonzero(use)
        try:
            n_out, e_out = transform(
                a[idx],
                b[idx],
                src=code,
                dst=3006,
                in_order=order,
                out_order="ne",
                route=route,
                swap=swap,
                names=(col_a, col_b),
            )
        except CoordinateRangeError as err:
            # Report the row position within the whole frame, not within the subset.
            row = idx[err.row - 1] + 1 if err.row else None
            raise type(err)(err.message, field=err.field, value=err.value, row=row) from err
        northing[idx], easting[idx] = n_out, e_out
        source[idx] = k
        todo &= ~use
    geometry: np.ndarray = np.asarray(shapely.points(easting, northing))  # 1-D: no copy
    geometry[np.isnan(easting)] = None
    geo = gpd.GeoSeries(geometry, crs="EPSG:3006", index=index)
    src = pd.Series(pd.Categorical.from_codes(source, categories=list(PAIR_LABELS)), index=index)
    return geo, src
