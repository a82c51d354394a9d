"""vggeo.crs against published control points, PROJ built from published parameters, and itself."""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from vggeo import crs as vc
from vggeo.errors import (
    CoordinateRangeError,
    CRSError,
    SwappedAxesError,
    SwappedAxesWarning,
)

DATA = Path(__file__).parent / "data"
CONTROL = list(csv.DictReader(open(DATA / "crs_control_points.csv", encoding="utf-8")))
MM = 0.001

LOCAL_ZONES = list(range(3007, 3019))
RT90_ZONES = list(range(3019, 3025))
EMULATIONS = list(range(3845, 3851))
ALL_GRIDS = [3006, *LOCAL_ZONES, *RT90_ZONES, *EMULATIONS]


# --- published control points -------------------------------------------------------------------


@pytest.mark.parametrize(
    "row", CONTROL, ids=[f"{r['source_crs']}->{r['target_crs']}#{i}" for i, r in enumerate(CONTROL)]
)
def test_published_control_point_forward_within_1mm(row):
    n, e = vc.transform(
        [float(row["in_a"])], [float(row["in_b"])], src=row["source_crs"], dst=row["target_crs"]
    )
    assert abs(n[0] - float(row["out_a"])) <= MM
    assert abs(e[0] - float(row["out_b"])) <= MM


@pytest.mark.parametrize(
    "row", CONTROL, ids=[f"{r['target_crs']}->{r['source_crs']}#{i}" for i, r in enumerate(CONTROL)]
)
def test_published_control_point_inverse(row):
    a, b = vc.transform(
        [float(row["out_a"])], [float(row["out_b"])], src=row["target_crs"], dst=row["source_crs"]
    )
    if vc.get_crs(row["source_crs"]).is_geographic:
        # 1 mm on the ground is ~1e-8 degrees of latitude.
        assert abs(a[0] - float(row["in_a"])) < 2e-8
        assert abs(b[0] - float(row["in_b"])) < 4e-8
    else:
        assert abs(a[0] - float(row["in_a"])) <= MM
        assert abs(b[0] - float(row["in_b"])) <= MM


def test_control_points_cover_every_zone():
    targets = {vc.get_crs(r["target_crs"]).epsg for r in CONTROL}
    assert {3006, *LOCAL_ZONES, *RT90_ZONES} <= targets


def test_krueger_worked_example_via_published_parameters():
    """Lantmäteriet's Krüger-formula example (custom TM), checked through PROJ at 0.1 mm."""
    tm = pyproj.CRS.from_proj4(
        "+proj=tmerc +lat_0=0 +lon_0=13.58547 +k=1.00000254 +x_0=84182.879 "
        "+y_0=-6226307.864 +ellps=GRS80 +units=m +no_defs"
    )
    tr = pyproj.Transformer.from_crs(4619, tm, always_xy=True)
    e, n = tr.transform(24.0, 66.0)
    assert abs(n - 1135809.4138) < 1e-4 and abs(e - 555304.0166) < 1e-4


# --- every zone: derived checks -----------------------------------------------------------------

# Published projection parameters (CRS.md), independent of PROJ's EPSG database definitions.
_DMS = lambda d, m, s: d + m / 60 + s / 3600  # noqa: E731
PUBLISHED_TM = {
    3006: (15.0, 0.9996, 500000.0, 0.0, "GRS80"),
    **{
        code: (vc.get_crs(code).central_meridian_deg, 1.0, 150000.0, 0.0, "GRS80")
        for code in LOCAL_ZONES
    },
    3845: (_DMS(11, 18, 22.5), 1.000006, 1500025.141, -667.282, "GRS80"),
    3846: (_DMS(13, 33, 22.56), 1.0000058, 1500044.695, -667.130, "GRS80"),
    3847: (_DMS(15, 48, 22.624306), 1.00000561024, 1500064.274, -667.711, "GRS80"),
    3848: (_DMS(18, 3, 22.68), 1.0000054, 1500083.521, -668.844, "GRS80"),
    3849: (_DMS(20, 18, 22.74), 1.0000052, 1500102.765, -670.706, "GRS80"),
    3850: (_DMS(22, 33, 22.8), 1.0000049, 1500121.846, -672.557, "GRS80"),
}


def _grid_points(code: int, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    west, south, east, north = vc.get_crs(code).area_of_use
    lat, lon = np.meshgrid(
        np.linspace(south + 0.05, north - 0.05, n), np.linspace(west + 0.05, east - 0.05, n)
    )
    return lat.ravel(), lon.ravel()


@pytest.mark.parametrize("code", sorted(PUBLISHED_TM))
def test_forward_and_inverse_agree_with_proj_from_published_parameters(code):
    lon0, k, fe, fn, ellps = PUBLISHED_TM[code]
    reference = pyproj.CRS.from_proj4(
        f"+proj=tmerc +lat_0=0 +lon_0={lon0!r} +k={k!r} +x_0={fe!r} +y_0={fn!r} "
        f"+ellps={ellps} +units=m +no_defs"
    )
    ref = pyproj.Transformer.from_crs(4619, reference, always_xy=True)
    lat, lon = _grid_points(code)
    e_ref, n_ref = ref.transform(lon, lat)
    n, e = vc.transform(lat, lon, src=4619, dst=code, check="off")
    np.testing.assert_allclose(n, n_ref, atol=MM, rtol=0)
    np.testing.assert_allclose(e, e_ref, atol=MM, rtol=0)
    back_lat, back_lon = vc.transform(n_ref, e_ref, src=code, dst=4619, check="off")
    np.testing.assert_allclose(back_lat, lat, atol=1e-9, rtol=0)
    np.testing.assert_allclose(back_lon, lon, atol=1e-9, rtol=0)


@pytest.mark.parametrize("code", ALL_GRIDS)
def test_round_trip_to_1e_9_degrees(code):
    lat, lon = _grid_points(code, n=20)
    n, e = vc.transform(lat, lon, src=4619, dst=code, check="off")
    lat2, lon2 = vc.transform(n, e, src=code, dst=4619, check="off")
    assert np.max(np.abs(lat2 - lat)) < 1e-9
    assert np.max(np.abs(lon2 - lon)) < 1e-9


@pytest.mark.parametrize("code", [3006, *LOCAL_ZONES, *EMULATIONS])
def test_central_meridian_maps_to_false_easting(code):
    lon0, k, fe, fn, _ = PUBLISHED_TM[code]
    lat = np.array([55.5, 58.0, 62.0, 66.0, 68.5])
    n, e = vc.transform(lat, np.full_like(lat, lon0), src=4619, dst=code, check="off")
    np.testing.assert_allclose(e, fe, atol=1e-6, rtol=0)
    # Northing grows with latitude along the meridian and equals k·(meridian arc) + FN.
    assert np.all(np.diff(n) > 0)
    arc = pyproj.Geod(ellps="GRS80").inv(lon0 * np.ones(5), 0 * lat, lon0 * np.ones(5), lat)[2]
    np.testing.assert_allclose(n, k * arc + fn, atol=MM, rtol=0)


def test_local_zones_have_false_easting_150000_not_1500000():
    for code in LOCAL_ZONES:
        _, e = vc.transform(
            [60.0], [vc.get_crs(code).central_meridian_deg], src=4326, dst=code, check="off"
        )
        assert e[0] == pytest.approx(150000.0, abs=1e-6)


# --- RT 90 routes ------------------------------------------------------------------------------


def test_rt90_routes_differ_by_centimetres_not_metres():
    lat, lon = _grid_points(3021, n=10)
    n_d, e_d = vc.transform(lat, lon, src=4619, dst="rt90", route="direct", check="off")
    n_h, e_h = vc.transform(lat, lon, src=4619, dst="rt90", route="helmert", check="off")
    d = np.hypot(n_d - n_h, e_d - e_h)
    assert 0.005 < d.max() < 0.3
    assert d.mean() < 0.2


def test_direct_route_matches_emulation_crs_exactly():
    lat, lon = _grid_points(3021, n=5)
    a = vc.transform(lat, lon, src=4326, dst=3021, check="off")
    b = vc.transform(lat, lon, src=4326, dst=3847, check="off")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("route", ["direct", "helmert"])
def test_same_rt90_zone_is_relabelled_not_shifted(route):
    n, e = vc.transform([6580000.0], [1628000.0], src=3021, dst=3847, route=route)
    assert (n[0], e[0]) == (6580000.0, 1628000.0)


def test_helmert_route_from_wgs84_uses_sweref99_shift():
    """WGS 84 is treated as SWEREF 99 on the datum route: same answer as from EPSG:4619."""
    a = vc.transform([59.0], [16.0], src=4326, dst=3021, route="helmert")
    b = vc.transform([59.0], [16.0], src=4619, dst=3021, route="helmert")
    assert a == b


def test_unknown_route_is_refused():
    with pytest.raises(CRSError, match="route"):
        vc.transform([59.0], [16.0], src=4326, dst=3021, route="molodensky")  # type: ignore[arg-type]


# --- axis order ----------------------------------------------------------------------------------


def test_every_axis_order_gives_the_same_point():
    lat, lon = 59.3293, 18.0686
    n, e = vc.transform([lat], [lon], src=4326, dst=3006)
    e2, n2 = vc.transform([lon], [lat], src=4326, dst=3006, in_order="lonlat", out_order="en")
    assert (n[0], e[0]) == (n2[0], e2[0])
    assert 6_500_000 < n[0] < 6_700_000 and 600_000 < e[0] < 700_000
    lat3, lon3 = vc.transform(n, e, src=3006, dst=4326)
    lon4, lat4 = vc.transform(e, n, src=3006, dst=4326, in_order="en", out_order="lonlat")
    assert lat3[0] == pytest.approx(lat, abs=1e-10) and lon4[0] == pytest.approx(lon, abs=1e-10)
    assert (lat3[0], lon3[0]) == (lat4[0], lon4[0])


def test_order_that_does_not_fit_the_system_is_refused():
    with pytest.raises(CRSError, match="latlon"):
        vc.transform([59.0], [15.0], src=4326, dst=3006, in_order="ne")
    with pytest.raises(CRSError, match="does not fit"):
        vc.transform([6.5e6], [5e5], src=3006, dst=4326, in_order="lonlat")


def test_swapped_grid_input_is_refused_naming_column_and_value():
    with pytest.raises(SwappedAxesError) as info:
        vc.transform(
            [500000.0, 674000.0],
            [6540052.0, 6580000.0],
            src=3006,
            dst=4326,
            names=("sweref99x", "sweref99y"),
        )
    msg = str(info.value)
    assert "sweref99x" in msg and "500000" in msg and "swap" in msg
    assert info.value.field == "sweref99x"


def test_swapped_latlon_is_refused():
    with pytest.raises(SwappedAxesError, match="latitude"):
        vc.transform([18.07], [59.33], src=4326, dst=3006)


def test_swap_option_exchanges_with_a_warning():
    with pytest.warns(SwappedAxesWarning):
        n, e = vc.transform(
            [500000.0, 6540052.0], [6540052.0, 500000.0], src=3006, dst=4326, swap=True
        )
    assert n[0] == pytest.approx(n[1]) and e[0] == pytest.approx(e[1])


def test_foreign_coordinates_are_refused():
    # Web Mercator metres passed off as SWEREF 99 TM.
    with pytest.raises(CoordinateRangeError, match="not plausible"):
        vc.transform([8_275_000.0], [2_011_000.0], src=3006, dst=4326)
    # RT 90 values labelled SWEREF 99 TM (PROJ issue 884, the other way round).
    with pytest.raises(CoordinateRangeError):
        vc.transform([6_580_000.0], [1_628_000.0], src=3006, dst=4326)


def test_check_off_transforms_anything():
    n, e = vc.transform([8_275_000.0], [2_011_000.0], src=3006, dst=4326, check="off")
    assert np.isfinite(n[0]) and np.isfinite(e[0])


def test_nan_stays_nan_and_does_not_trigger_checks():
    n, e = vc.transform([59.0, np.nan, 60.0], [15.0, 16.0, np.nan], src=4326, dst=3006)
    assert np.isfinite(n[0]) and np.isnan(n[1]) and np.isnan(e[1]) and np.isnan(n[2])


def test_scalars_lists_and_empty_arrays():
    n, e = vc.transform(59.0, 15.0, src=4326, dst=3006)
    assert np.ndim(n) == 0 and float(n) == pytest.approx(6540052.0174, abs=1e-3)
    n, e = vc.transform([], [], src=4326, dst=3006)
    assert n.shape == (0,)
    n, e = vc.transform(np.array([[59.0, 60.0]]), np.array([[15.0, 16.0]]), src=4326, dst=3006)
    assert n.shape == (1, 2)


def test_detect_axis_problems_classifies_each_pair():
    swapped, foreign = vc.detect_axis_problems(
        [6.5e6, 5e5, 1.0, np.nan], [5e5, 6.5e6, 2.0, 1.0], 3006
    )
    assert swapped.tolist() == [False, True, False, False]
    assert foreign.tolist() == [False, False, True, False]


def test_outside_area_flags_points_beyond_epsg_area_of_use():
    lat = np.array([57.7, 67.8, 59.0, np.nan])
    lon = np.array([11.97, 20.2, 30.0, 15.0])  # Göteborg, Kiruna, Russia, NaN
    n7, e7 = vc.transform(lat, lon, src=4326, dst=3007, check="off")
    assert vc.outside_area(n7, e7, 3007).tolist() == [False, True, True, False]
    assert vc.outside_area(lat, lon, 4326).tolist() == [False, False, False, False]  # the world
    n, e = vc.transform(lat[:2], lon[:2], src=4326, dst=3006)
    assert vc.outside_area(n, e, 3006).tolist() == [False, False]


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, code",
    [
        ("SWEREF 99 TM", 3006),
        ("sweref99tm", 3006),
        ("EPSG:3006", 3006),
        (3006, 3006),
        ("urn:ogc:def:crs:EPSG::3006", 3006),
        ("http://www.opengis.net/def/crs/EPSG/0/3011", 3011),
        ("sweref99 18 00", 3011),
        ("SWEREF 99 1800", 3011),
        ("SWEREF99 12 00", 3007),
        ("SWEREF 99 23 15", 3018),
        ("RT 90 2.5 gon V", 3021),
        ("rt90", 3021),
        ("RT90 7.5 gon V", 3019),
        ("RT 90 0 gon", 3022),
        ("RT 90 5 gon O", 3024),
        ("RT 90 5 gon Ö", 3024),
        ("wgs84", 4326),
        ("WGS 84", 4326),
        ("SWEREF 99 geographic", 4619),
        ("EPSG:3847", 3847),
        ("SWEREF 99 / RT 90 2.5 gon V emulation", 3847),
    ],
)
def test_names_users_write(name, code):
    assert vc.get_crs(name).epsg == code


def test_registry_holds_every_required_system():
    codes = {c.epsg for c in vc.list_crs()}
    assert codes == {3006, *LOCAL_ZONES, *RT90_ZONES, *EMULATIONS, 4619, 4326}
    for c in vc.list_crs():
        assert c.pyproj_crs.to_epsg() == c.epsg
        # The registry's axis order is the authority's.
        first = c.pyproj_crs.axis_info[0].direction
        assert first == "north"


@pytest.mark.parametrize("bad", ["EPSG:3857", "sweref 2000", 27700, "", None, 3.5])
def test_unknown_systems_list_what_is_supported(bad):
    with pytest.raises(CRSError, match="supported"):
        vc.get_crs(bad)


def test_transformers_are_cached():
    assert vc.transformer(4326, 3006) is vc.transformer("wgs84", "SWEREF 99 TM")


# --- local zones ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, lat, lon, muni, zone",
    [
        ("Boden", 65.825, 21.689, "2582", 3017),
        ("Skellefteå", 64.750, 20.950, "2482", 3016),
        ("Härnösand", 62.632, 17.938, "2280", 3014),
        ("Kumla", 59.128, 15.143, "1881", 3009),
        ("Södertälje", 59.196, 17.626, "0181", 3011),
        ("Visby", 57.640, 18.296, "0980", 3015),
    ],
)
def test_local_zone_of_published_examples(name, lat, lon, muni, zone):
    assert int(vc.local_zone_for(lon, lat)[0]) == zone
    assert vc.local_zone_for_municipality(muni) == zone


def test_municipality_lookup_wins_over_rule_and_rule_is_fallback():
    # Södertälje's published zone, wherever the point is.
    assert vc.local_zone_for_municipality("181", lon=12.0, lat=57.0) == 3011
    assert vc.local_zone_for_municipality("1480", lon=11.97, lat=57.7) == 3007
    with pytest.raises(CRSError, match="no published local zone"):
        vc.local_zone_for_municipality("1480")


def test_local_zone_rule_is_vectorised_and_nan_safe():
    zones = vc.local_zone_for([11.97, 18.07, np.nan, 22.0], [57.7, 59.33, 60.0, 66.0])
    assert zones.tolist() == [3007, 3011, 0, 3017]


def test_local_zone_keeps_scale_error_small():
    """Within a zone's own area the chosen meridian is within ~1.1° of the point."""
    towns = pd.DataFrame({"lon": np.linspace(11.0, 24.0, 60), "lat": np.linspace(55.5, 68.5, 60)})
    zones = vc.local_zone_for(towns.lon, towns.lat)
    cms = np.array([vc.get_crs(int(z)).central_meridian_deg for z in zones])
    assert np.max(np.abs(cms - towns.lon)) <= 1.13


def test_transform_geoseries_honours_route_and_keeps_geometry_types():
    poly = shapely.box(600000, 6500000, 600100, 6500200)
    gs = gpd.GeoSeries([shapely.Point(674577.7, 6580752.2), poly], crs=3006)
    out = vc.transform_geoseries(gs, "rt90")
    assert out.crs.to_epsg() == 3021
    assert out.iloc[1].geom_type == "Polygon"
    n, e = vc.transform([6580752.2], [674577.7], src=3006, dst=3021)
    assert out.iloc[0].x == pytest.approx(e[0], abs=1e-6) and out.iloc[0].y == pytest.approx(n[0])
    helmert = vc.transform_geoseries(gs, "rt90", route="helmert")
    assert 0 < out.iloc[0].distance(helmert.iloc[0]) < 0.3


def test_pandas_nullable_columns_and_non_numeric_input():
    lat = pd.Series([59.0, None], dtype="Float64")
    lon = pd.Series([15.0, 16.0], dtype="Float64")
    n, e = vc.transform(lat, lon, src=4326, dst=3006)
    assert np.isfinite(n[0]) and np.isnan(n[1])
    with pytest.raises(CoordinateRangeError, match="non-numeric"):
        vc.transform(["59.0", "abc"], [15.0, 16.0], src=4326, dst=3006, names=("lat", "lon"))


# --- web maps and OGC API names ----------------------------------------------------------------------

#: EPSG:3857's definition (spherical Mercator on the WGS 84 semi-major axis): the oracle.
_R = 6_378_137.0


def _spherical_mercator(lon, lat):
    lon, lat = np.radians(lon), np.radians(lat)
    return _R * lon, _R * np.log(np.tan(np.pi / 4 + lat / 2))


def test_web_mercator_follows_its_definition_from_control_points():
    rows = [r for r in CONTROL if r["source_crs"] == "EPSG:4619" and r["target_crs"] == "EPSG:3006"]
    assert rows, "the control points hold SWEREF 99 → SWEREF 99 TM pairs"
    lat = np.array([float(r["in_a"]) for r in rows])
    lon = np.array([float(r["in_b"]) for r in rows])
    north = np.array([float(r["out_a"]) for r in rows])
    east = np.array([float(r["out_b"]) for r in rows])
    x, y = vc.en_to_en(east, north, dst=3857)
    want_x, want_y = _spherical_mercator(lon, lat)
    np.testing.assert_allclose(x, want_x, atol=MM)
    np.testing.assert_allclose(y, want_y, atol=MM)
    back_lon, back_lat = vc.en_to_lonlat(east, north)
    np.testing.assert_allclose(back_lon, lon, atol=1e-8)
    np.testing.assert_allclose(back_lat, lat, atol=1e-8)
    e2, n2 = vc.lonlat_to_en(lon, lat, dst="SWEREF 99 TM")
    np.testing.assert_allclose(e2, east, atol=MM)
    np.testing.assert_allclose(n2, north, atol=MM)
    mx, my = vc.lonlat_to_en(lon, lat, dst=3857)
    np.testing.assert_allclose(mx, want_x, atol=MM)
    np.testing.assert_allclose(my, want_y, atol=MM)


def test_web_mercator_is_not_a_system_users_transform_into():
    with pytest.raises(CRSError, match="supported"):
        vc.transform([59.0], [15.0], src=4326, dst=3857)


def test_one_cached_transformer_serves_every_thread():
    """pyproj keeps per-thread state inside a Transformer; vggeo shares one object per pair."""
    from concurrent.futures import ThreadPoolExecutor

    lat, lon = np.linspace(55.5, 68.5, 2000), np.linspace(11.5, 23.5, 2000)
    want = vc.transform(lat, lon, src=4326, dst=3006)

    def run(_):
        return vc.transformer(4326, 3006), vc.transform(lat, lon, src=4326, dst=3006)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(32)))
    assert len({id(tr) for tr, _ in results}) == 1
    for _, (n, e) in results:
        np.testing.assert_array_equal(n, want[0])
        np.testing.assert_array_equal(e, want[1])
    assert vc.en_transformer(3006, 3857) is vc.en_transformer("SWEREF 99 TM", "EPSG:3857")


@pytest.mark.parametrize(
    "text, uri",
    [
        ("EPSG:3006", "http://www.opengis.net/def/crs/EPSG/0/3006"),
        ("[EPSG:3011]", "http://www.opengis.net/def/crs/EPSG/0/3011"),
        ("urn:ogc:def:crs:EPSG::4326", "http://www.opengis.net/def/crs/EPSG/0/4326"),
        ("urn:ogc:def:crs:OGC:1.3:CRS84", "http://www.opengis.net/def/crs/OGC/1.3/CRS84"),
        (
            "http://www.opengis.net/def/crs/EPSG/0/3857",
            "http://www.opengis.net/def/crs/EPSG/0/3857",
        ),
        (
            "  https://www.opengis.net/def/crs/OGC/1.3/CRS84 ",
            "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        ),
    ],
)
def test_crs_uri_accepts_uris_curies_and_urns(text, uri):
    assert vc.crs_uri(text) == uri
    assert uri in vc.supported_crs()


@pytest.mark.parametrize("bad", ["EPSG:27700", "OGC:CRS83", "sweref99", "", "EPSG:3006/../x"])
def test_crs_uri_refuses_others_listing_the_supported(bad):
    with pytest.raises(CRSError, match="CRS84"):
        vc.crs_uri(bad)


@pytest.mark.parametrize(
    "text, northing_first, geographic",
    [
        ("CRS84", False, True),
        ("EPSG:4326", True, True),
        ("EPSG:3006", True, False),
        ("EPSG:3857", False, False),
        ("EPSG:3021", True, False),
    ],
)
def test_ogc_crs_axis_order_is_the_authority_s(text, northing_first, geographic):
    info = vc.ogc_crs(f"OGC:{text}" if text == "CRS84" else text)
    assert (info.northing_first, info.geographic) == (northing_first, geographic)
    # The authority's own axis list says the same (PROJ's database, not vggeo's table).
    if text != "CRS84":
        first = pyproj.CRS.from_user_input(text).axis_info[0].direction
        assert (first in ("north", "south")) == northing_first


def test_ogc_crs_cache_holds_systems_not_spellings():
    for i in range(200):
        assert vc.ogc_crs(" " * i + "EPSG:3006").epsg == 3006
    assert vc._ogc_crs.cache_info().currsize <= len(vc.supported_crs())


# --- srsName in GML (the one place the GML readers ask) ---------------------------------------


@pytest.mark.parametrize(
    "srs",
    [
        "urn:ogc:def:crs:EPSG::3006",
        "urn:ogc:def:crs:EPSG:6.6:3010",
        "http://www.opengis.net/def/crs/EPSG/0/3006",
        "EPSG:3021",
        "urn:ogc:def:crs:OGC:1.3:CRS84",
        "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    ],
)
def test_epsg_from_srs_name_reads_what_proj_reads(srs):
    code = vc.epsg_from_srs_name(f" {srs.lower()} ")
    # PROJ's own parser of the same name (CRS84 is WGS 84 with longitude first: EPSG 4326's datum).
    ref = pyproj.CRS.from_user_input(srs)
    assert code == (4326 if "CRS84" in srs else ref.to_epsg())


def test_epsg_from_srs_name_reads_the_gml2_form():
    # PROJ does not read this form; GML 2's srsName convention (OGC 02-069) gives the code after '#'.
    assert vc.epsg_from_srs_name("http://www.opengis.net/gml/srs/epsg.xml#3006") == 3006


@pytest.mark.parametrize("srs", [None, "", "SWEREF 99 TM", "urn:ogc:def:crs:EPSG::", "EPSG:abc"])
def test_epsg_from_srs_name_is_none_for_what_names_no_code(srs):
    assert vc.epsg_from_srs_name(srs) is None


@pytest.mark.parametrize("code", [3006, 3010, 3021, 4326, 4619, 3857])
def test_epsg_axes_match_proj_s_axis_list(code):
    axes = vc.epsg_axes(code)
    info = pyproj.CRS.from_epsg(code).axis_info
    assert axes.northing_first == (info[0].direction in ("north", "south"))
    assert axes.geographic == (info[0].unit_name == "degree")
    assert axes.dimension == len(info)


def test_epsg_axes_of_an_unknown_code_are_easting_first_metres():
    assert vc.epsg_axes(99999) == vc.EPSGAxes(False, False, 1.0, 2)


def test_northing_first_by_magnitude_on_swedish_values():
    # Kungsträdgården in SWEREF 99 TM: northing 6 580 752, easting 674 577.
    assert bool(vc.northing_first_by_magnitude(6580752.2, 674577.7))
    assert not bool(vc.northing_first_by_magnitude(674577.7, 6580752.2))
    ring = np.array([[6580752.2, 674577.7, 5.0], [6580753.2, 674578.7, 6.0]])
    assert vc.easting_first_by_magnitude(ring).tolist() == [
        [674577.7, 6580752.2, 5.0],
        [674578.7, 6580753.2, 6.0],
    ]
    already = ring[:, [1, 0, 2]]
    assert vc.easting_first_by_magnitude(already) is already
