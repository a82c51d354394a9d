"""Valueguard's three coordinate pairs: the order of preference, and refusals that name the column.

Oracle: the expected positions come from :func:`vggeo.crs.transform` (itself checked against
Lantmäteriet's published control points in tests/test_crs.py), not from the code under test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from vggeo import crs as vc
from vggeo.errors import SwappedAxesError, SwappedAxesWarning
from vggeo.registry.coordinates import valueguard_points

MM = 0.001


def _valueguard_frame():
    lat = np.array([59.3801951334688, 57.70716, 55.60587, 63.82842])
    lon = np.array([13.4808053113366, 11.96679, 13.00073, 20.25972])
    n, e = vc.transform(lat, lon, src=4326, dst=3006)
    rn, re = vc.transform(lat, lon, src=4326, dst=3021)
    return (
        pd.DataFrame(
            {
                "id": [1, 2, 3, 4],
                "sweref99x": [round(n[0]), np.nan, np.nan, np.nan],
                "sweref99y": [round(e[0]), np.nan, 1.0 * round(e[2]), np.nan],
                "rt90x": [rn[0], rn[1], np.nan, np.nan],
                "rt90y": [re[0], re[1], np.nan, np.nan],
                "wgs84lat": [lat[0], lat[1], lat[2], np.nan],
                "wgs84lon": [lon[0], lon[1], lon[2], np.nan],
            }
        ),
        n,
        e,
    )


def test_valueguard_points_use_sweref_then_rt90_then_wgs84():
    frame, n, e = _valueguard_frame()
    geom, source = valueguard_points(frame)
    assert geom.crs.to_epsg() == 3006
    assert source.astype(object).tolist()[:3] == ["sweref99", "rt90", "wgs84"]
    assert pd.isna(source.iloc[3]) and geom.iloc[3] is None
    # sweref99x is the northing: shapely y; easting is x. Rounded to integer metres at source.
    assert geom.iloc[0].x == round(e[0]) and geom.iloc[0].y == round(n[0])
    for i in (1, 2):  # RT 90 (direct route) and WGS 84 agree with the true point within 1 mm.
        assert abs(geom.iloc[i].x - e[i]) < MM and abs(geom.iloc[i].y - n[i]) < MM


def test_valueguard_swapped_columns_name_the_column_and_row():
    frame, _, _ = _valueguard_frame()
    x, y = frame.at[0, "sweref99x"], frame.at[0, "sweref99y"]
    frame.at[0, "sweref99x"], frame.at[0, "sweref99y"] = y, x
    with pytest.raises(SwappedAxesError) as info:
        valueguard_points(frame)
    assert info.value.field == "sweref99x" and info.value.row == 1
    assert "sweref99x" in str(info.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        geom, _ = valueguard_points(frame, swap=True)
    assert any(issubclass(w.category, SwappedAxesWarning) for w in caught)
    assert 6_000_000 < geom.iloc[0].y < 7_000_000


def test_valueguard_without_any_coordinate_columns():
    geom, source = valueguard_points(pd.DataFrame({"id": [1, 2]}))
    assert geom.isna().all() and source.isna().all()


def test_valueguard_points_stays_importable_from_the_package():
    import vggeo
    import vggeo.registry

    assert vggeo.valueguard_points is vggeo.registry.valueguard_points is valueguard_points
