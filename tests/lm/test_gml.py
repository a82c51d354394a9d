"""The GML geometry reader against GDAL: recorded answers of GDAL 3.6.2 and live ``ogr``."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
from hostile import data_file, ident, polygon, provision
from system import gdal_json

from vggeo.crs import gml_axis_swap
from vggeo.errors import (
    GeometryError,
    GeometryLimitError,
    LimitError,
    ParseError,
    SettingsError,
    UnsafeInputError,
    VggeoError,
)
from vggeo.lm.gml import (
    DEFAULT_ARC_TOLERANCE,
    ArcBudget,
    convert_texts,
    geometry_from_string,
    parse_geometry,
    to_shapely,
)
from vggeo.lm.safety import geometry_limits, safe_fromstring

DATA = Path(__file__).parent / "data"
CASES = [json.loads(line) for line in (DATA / "gml_cases.jsonl").read_text().splitlines()]
BY_ID = {c["id"]: c for c in CASES}

#: Fragments GDAL 3.6.2 reads that vggeo refuses on purpose, with the reason. Every one of them
#: must raise a GeometryError/ParseError (checked below), so the list cannot hide a crash.
REFUSED_BY_DESIGN = {
    # strictness: what GDAL leniently accepts
    "handmade_unclosed_ring": "unclosed ring",
    "handmade_ring_too_few_points": "ring of 3 positions",
    "handmade_text_in_pos": "'1.5 abc' is not a coordinate",
    "handmade_text_in_coordinates": "'foo' is not a coordinate",
    "data.inspire_cadastralparcel.xml.Surface0": "unclosed ring",
    "data.inspire_cadastralzoning.xml.MultiSurface0": "unclosed ring",
    "data.ticket_2349_test_1.gml.LineString0": "stray separator makes a 3-D tuple",
    "ogr_gml_geom.test_gml_Coordinates_ts_cs_decimal.L2124": "space-separated coordinates with cs=','",
    "ogr_gml_geom.test_gml_invalid_geoms.L1362": "empty pos",
    "ogr_gml_geom.test_gml_invalid_geoms.L1370": "empty posList",
    "ogr_gml_geom.test_gml_invalid_geoms.L1386": "polygon without exterior",
    "ogr_gml_geom.test_gml_invalid_geoms.L1738": "triangle without exterior",
    "ogr_gml_geom.test_gml_invalid_geoms.L1436": "unknown element inside MultiSurface",
    "ogr_gml_geom.test_gml_MultiSurfaceOfSurfaceOfPolygonPatchWithInteriorRing.L2050": "a patch with only an interior ring",
    # not land areas / outside the GML subset read
    "ogr_gml_geom.test_gml_Solid.L727": "Solid",
    "ogr_gml_geom.test_gml_invalid_geoms.L1591": "Solid",
    "data.citygml_compound_crs.gml.Solid0": "Solid",
    "ogr_gml_geom.test_gml_SimplePolygon.L1895": "GML 3.3 compact encoding",
    "ogr_gml_geom.test_gml_SimpleTriangle.L1925": "GML 3.3 compact encoding",
    "ogr_gml_geom.test_gml_ArcByBulge.L2290": "ArcByBulge",
    "data.GmlTopo-sample.xml.TopoCurve0": "GML topology",
    "data.curveProperty.xml.TopoSurface0": "GML topology",
    "data.aixm_ElevatedSurface.xml.ElevatedSurface0": "non-GML root element",
    "ogr_gml_geom.test_gml_CompoundCurve_of_ArcByCenterPoint_curve_in_same_segments.L2465": "non-GML root element",
    "ogr_gml_geom.test_gml_Ring_starting_with_ArcByCenterPoint.L2514": "non-GML root element",
    "ogr_gml_geom.test_gml_Ring_ending_with_ArcByCenterPoint.L2567": "GeodesicString",
    "ogr_gml_geom.test_gml_CompoundCurve_of_ArcByCenterPoint.L2349": "geodesic radius (NM) in degrees",
    "ogr_gml_geom.test_gml_CircleByCenterPoint_srs_geog_uom_m_km.L2424": "geodesic circle",
    "ogr_gml_geom.test_gml_CircleByCenterPoint_srs_geog_uom_m_km.L2428": "geodesic circle",
    "ogr_gml_geom.test_gml_CircleByCenterPoint_srs_geog_unnhandled_uom.L2440": "unknown unit",
}

#: Fragments GDAL 3.6.2 refuses and vggeo reads (newer GDAL agrees with vggeo where recorded).
READ_BEYOND_GDAL_362 = {
    "ogr_gml_geom.test_gml_OrientableCurve.L3089",
    "ogr_gml_geom.test_gml_OrientableCurve.L3095",
    "ogr_gml_geom.test_gml_nested.L1872.2",  # 32 levels: GDAL's own recursion limit, not bad GML
}

_TYPE_MAP = [
    ("POLYHEDRALSURFACE", "MULTIPOLYGON"),
    ("TRIANGLE", "POLYGON"),
    ("TIN", "MULTIPOLYGON"),
    ("LINEARRING", "LINESTRING"),
]


def _gdal_shape(wkt: str) -> shapely.Geometry:
    for a, b in _TYPE_MAP:
        wkt = wkt.replace(a, b)
    return shapely.from_wkt(wkt)


def _has_arcs(case) -> bool:
    return any(k in case["gml"] for k in ("Arc", "Circle"))


def _tolerance(case, geom) -> float:
    if not _has_arcs(case):
        return 1e-9
    # GDAL's default linearisation steps 4°: its chords stray up to r(1 − cos 2°) ≈ 6.1e-4 r.
    x0, y0, x1, y1 = shapely.bounds(geom)
    r = max(x1 - x0, y1 - y0, 1e-12)
    return DEFAULT_ARC_TOLERANCE + 6.1e-4 * r + 1e-9


def _same(mine: shapely.Geometry, theirs: shapely.Geometry, tol: float) -> None:
    if theirs.is_empty:
        assert mine.is_empty
        return
    kinds = {mine.geom_type, theirs.geom_type}
    assert len(kinds) == 1 or kinds == {"MultiPolygon", "GeometryCollection"}, kinds
    d = shapely.hausdorff_distance(shapely.force_2d(mine), shapely.force_2d(theirs))
    assert d <= tol, (d, tol, mine.wkt[:200], theirs.wkt[:200])


ACCEPTED = [
    c
    for c in CASES
    if c["gdal_linear_wkt"] is not None
    and c["id"] not in REFUSED_BY_DESIGN
    and "gdal_version_dependent" not in c["tags"]
]


@pytest.mark.parametrize("case", ACCEPTED, ids=[c["id"] for c in ACCEPTED])
def test_agrees_with_recorded_gdal(case):
    mine = geometry_from_string(case["gml"], axis="file")
    theirs = _gdal_shape(case["gdal_linear_wkt"])
    _same(mine, theirs, _tolerance(case, theirs))
    if not _has_arcs(case) and not theirs.is_empty and "Box" not in case["gml"][:20]:
        assert shapely.has_z(mine) == (case["gdal_coord_dim"] == 3)


@pytest.mark.parametrize("case_id", sorted(REFUSED_BY_DESIGN))
def test_refuses_what_gdal_leniently_reads(case_id):
    with pytest.raises((GeometryError, ParseError)) as info:
        geometry_from_string(BY_ID[case_id]["gml"], axis="file")
    assert info.value.element  # the error names the element


REFUSED_BY_GDAL = [
    c for c in CASES if c["gdal_linear_wkt"] is None and c["id"] not in READ_BEYOND_GDAL_362
]


@pytest.mark.parametrize("case", REFUSED_BY_GDAL, ids=[c["id"] for c in REFUSED_BY_GDAL])
def test_refuses_what_gdal_refuses(case):
    with pytest.raises(VggeoError):
        geometry_from_string(case["gml"], axis="file")


@pytest.mark.parametrize(
    "case_id", sorted(READ_BEYOND_GDAL_362 - {"ogr_gml_geom.test_gml_nested.L1872.2"})
)
def test_orientable_curve_as_newer_gdal(case_id):
    case = BY_ID[case_id]
    assert geometry_from_string(case["gml"], axis="file").equals(
        shapely.from_wkt(case["upstream_expected_wkt"])
    )


def test_ten_thousand_levels_of_nesting_refused():
    inner = "<gml:MultiPolygon></gml:MultiPolygon>"
    gml = (
        '<gml:MultiGeometry xmlns:gml="http://www.opengis.net/gml/3.2">'
        + "<gml:geometryMember><gml:MultiGeometry>" * 9999
        + "<gml:geometryMember>"
        + inner
        + "</gml:geometryMember>"
        + "</gml:MultiGeometry></gml:geometryMember>" * 9999
        + "</gml:MultiGeometry>"
    )
    with pytest.raises((GeometryError, ParseError)):
        geometry_from_string(gml)


def test_gdal_version_dependent_cases_follow_newer_gdal():
    # ArcByCenterPoint radius with uom: 0.002 km = 2 m; 0.6096 m = 2 ft in a foot-based CRS.
    for cid in (
        "ogr_gml_geom.test_gml_ArcByCenterPoint.L2311",
        "ogr_gml_geom.test_gml_ArcByCenterPoint.L2326",
    ):
        g = geometry_from_string(BY_ID[cid]["gml"], axis="file")
        d = np.hypot(*(shapely.get_coordinates(g) - [1, 2]).T)
        assert np.allclose(d, 2.0, atol=1e-9)
        assert shapely.get_coordinates(g)[0] == pytest.approx([1, 4]) and shapely.get_coordinates(
            g
        )[-1] == pytest.approx([1, 0])
    # srsName of a 3-D CRS without srsDimension: 3-D coordinates (newer GDAL).
    g = geometry_from_string(
        BY_ID["ogr_gml_geom.test_gml_posList_line3d_srsName_only.L183"]["gml"], axis="file"
    )
    assert g.equals(shapely.from_wkt("LINESTRING Z (49 2 10,50 3 11)"))


# --- arcs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("radius", [0.5, 30.0, 2500.0])
@pytest.mark.parametrize("tol", [0.002, 0.0005])
def test_arc_linearisation_within_stated_deviation(radius, tol):
    cx, cy = 500000.0, 6500000.0
    a0, a1, a2 = 0.3, 1.2, 2.9
    pts = [(cx + radius * math.cos(a), cy + radius * math.sin(a)) for a in (a0, a1, a2)]
    pos = " ".join(f"{x!r} {y!r}" for x, y in pts)
    gml = f'<gml:Arc xmlns:gml="http://www.opengis.net/gml/3.2"><gml:posList>{pos}</gml:posList></gml:Arc>'
    g = geometry_from_string(gml, axis="file", arc_tolerance=tol)
    xy = shapely.get_coordinates(g)
    assert xy[0] == pytest.approx(pts[0], abs=0) and xy[-1] == pytest.approx(pts[2], abs=0)
    # Vertices on the circle; chord mid-points within tol of it; angles monotonic (right way round).
    assert np.allclose(np.hypot(xy[:, 0] - cx, xy[:, 1] - cy), radius, atol=1e-6)
    mid = (xy[1:] + xy[:-1]) / 2
    dev = radius - np.hypot(mid[:, 0] - cx, mid[:, 1] - cy)
    assert dev.max() <= tol + 1e-9
    assert dev.max() > tol / 5 or len(xy) <= 5  # not absurdly over-sampled
    ang = np.unwrap(np.arctan2(xy[:, 1] - cy, xy[:, 0] - cx))
    assert np.all(np.diff(ang) > 0) and ang[-1] == pytest.approx(a2)


def test_circle_is_closed_and_round():
    gml = (
        '<gml:Curve xmlns:gml="http://www.opengis.net/gml/3.2"><gml:segments><gml:Circle>'
        "<gml:posList>10 0 0 10 -10 0</gml:posList></gml:Circle></gml:segments></gml:Curve>"
    )
    g = geometry_from_string(gml, axis="file")
    xy = shapely.get_coordinates(g)
    assert (xy[0] == xy[-1]).all()
    area = shapely.Polygon(xy).area
    assert math.pi * 100 - 2 * math.pi * 10 * DEFAULT_ARC_TOLERANCE <= area < math.pi * 100


# --- axis order ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("srs", "swap"),
    [
        ("urn:ogc:def:crs:EPSG::3006", True),
        ("http://www.opengis.net/def/crs/EPSG/0/3006", True),
        ("urn:ogc:def:crs:EPSG::3010", True),
        ("EPSG:3006", False),
        ("http://www.opengis.net/gml/srs/epsg.xml#3006", False),
        ("urn:ogc:def:crs:EPSG::4326", True),
        ("urn:ogc:def:crs:OGC:1.3:CRS84", False),
        ("urn:ogc:def:crs:EPSG::3857", False),  # easting-first by authority
        (None, False),
    ],
)
def test_axis_order_from_srsname_form(srs, swap):
    assert gml_axis_swap(srs) is swap


def test_urn_3006_is_read_northing_first():
    gml = (
        '<gml:Point xmlns:gml="http://www.opengis.net/gml/3.2" srsName="urn:ogc:def:crs:EPSG::3006">'
        "<gml:pos>6580752.2 674577.7</gml:pos></gml:Point>"
    )
    assert geometry_from_string(gml).coords[0] == (674577.7, 6580752.2)
    short = gml.replace("urn:ogc:def:crs:EPSG::3006", "EPSG:3006").replace(
        "6580752.2 674577.7", "674577.7 6580752.2"
    )
    assert geometry_from_string(short).coords[0] == (674577.7, 6580752.2)


# --- errors name feature and element --------------------------------------------------------------


def test_error_names_feature_element_and_line():
    text = (
        '<gml:Polygon xmlns:gml="http://www.opengis.net/gml/3.2">\n<gml:exterior><gml:LinearRing>\n'
        "<gml:posList>0 0 1 0 1 1 0 1</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>"
    )
    root = safe_fromstring(text)
    with pytest.raises(GeometryError) as info:
        parse_geometry(root, feature="af065380-11ca-6f58-e040-ed8f65434c76", file="x.xml")
    msg = str(info.value)
    assert (
        "af065380-11ca-6f58-e040-ed8f65434c76" in msg and "LinearRing" in msg and "x.xml:2" in msg
    )


@pytest.mark.parametrize(
    "bad", ["1 2 3 4 5", "1 2 nan 4 5 6 1 2", "1 2 3 inf 1 2 3 4", "1,2 3,4 5,6 1,2"]
)
def test_bad_coordinate_text_refused(bad):
    gml = f'<gml:LineString xmlns:gml="http://www.opengis.net/gml/3.2"><gml:posList>{bad}</gml:posList></gml:LineString>'
    with pytest.raises(GeometryError):
        geometry_from_string(gml)


# --- live GDAL ---------------------------------------------------------------------------------------

_LIVE = r"""
import json, sys
from osgeo import ogr, gdal
gdal.UseExceptions()
cases = json.load(open(sys.argv[1]))
out = {}
for c in cases:
    try:
        g = ogr.CreateGeometryFromGML(c["gml"])
    except Exception as e:
        g = None
    if g is None:
        out[c["id"]] = None
        continue
    if g.HasCurveGeometry():
        g = g.GetLinearGeometry(1.0)
    out[c["id"]] = g.ExportToIsoWkt()
print(json.dumps(out))
"""


@pytest.mark.gdal
def test_agrees_with_live_gdal(tmp_path):
    """Every fragment vggeo reads, read by Debian's GDAL in the same run (1° arc steps)."""
    mine = {}
    for c in CASES:
        if "gdal_version_dependent" in c["tags"]:
            continue
        try:
            mine[c["id"]] = geometry_from_string(c["gml"], axis="file")
        except VggeoError:
            continue
    cases = [BY_ID[i] for i in mine]
    p = tmp_path / "cases.json"
    p.write_text(json.dumps([{"id": c["id"], "gml": c["gml"]} for c in cases]))
    theirs = gdal_json(_LIVE, str(p))
    compared = 0
    for cid, geom in mine.items():
        wkt = theirs[cid]
        if wkt is None:
            assert cid in READ_BEYOND_GDAL_362
            continue
        t = _gdal_shape(wkt)
        tol = 1e-9
        if _has_arcs(BY_ID[cid]):
            x0, y0, x1, y1 = shapely.bounds(t)
            tol = DEFAULT_ARC_TOLERANCE + 3.9e-5 * max(x1 - x0, y1 - y0) + 1e-9  # r(1 − cos 0.5°)
        _same(geom, t, tol)
        compared += 1
    assert compared >= 90


def test_intermediate_to_shapely_multipolygon_with_hole():
    gml = (
        '<gml:MultiSurface xmlns:gml="http://www.opengis.net/gml/3.2" srsName="urn:ogc:def:crs:EPSG::3006">'
        "<gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>"
        "6500000 500000 6500000 500100 6500100 500100 6500100 500000 6500000 500000"
        "</gml:posList></gml:LinearRing></gml:exterior><gml:interior><gml:LinearRing><gml:posList>"
        "6500010 500010 6500020 500010 6500020 500020 6500010 500020 6500010 500010"
        "</gml:posList></gml:LinearRing></gml:interior></gml:Polygon></gml:surfaceMember>"
        "</gml:MultiSurface>"
    )
    g, srs = parse_geometry(safe_fromstring(gml))
    shp = to_shapely(g)
    assert srs.endswith("3006") and shp.area == 100 * 100 - 10 * 10
    assert shapely.bounds(shp).tolist() == [500000, 6500000, 500100, 6500100]


def test_xxe_fragment_refused():
    with pytest.raises(UnsafeInputError):
        geometry_from_string(BY_ID["handmade_xxe_file_passwd"]["gml"])


@pytest.mark.parametrize(
    "texts",
    [
        ["6580000 674000 6580000 675000", "1 2"],
        ["\n      6580000 674000\n    6580001 674001\n  ", "\t1\t2\t"],  # pretty-printed
        ["   ", "", "1 2"],  # nothing but whitespace: no numbers
        [
            "1\xa02 3",
            "1_000 2e3",
            " +4 -5 ",
        ],  # what Python's float reads and Arrow's parser refuses
    ],
)
def test_convert_texts_is_the_per_text_conversion(texts):
    """The batch conversion gives what ``np.array(text.split(), float)`` gives, text by text."""
    import pyarrow as pa

    expected = [np.array(t.split(), dtype=np.float64) for t in texts]
    for given in (texts, pa.array(texts)):
        values, offsets = convert_texts(given)
        got = [values[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_array_equal(g, e)


def test_convert_texts_names_the_first_bad_text():
    with pytest.raises(ValueError) as info:
        convert_texts(["1 2", " 3 4 ", "5 x6", "y"])
    assert info.value.args == (2,)


# --- bounded arcs ------------------------------------------------------------------------------------

CIRCLE = (
    '<gml:CircleByCenterPoint xmlns:gml="http://www.opengis.net/gml/3.2" numArc="1">'
    '<gml:pos>6580000 674000</gml:pos><gml:radius uom="m">{}</gml:radius></gml:CircleByCenterPoint>'
)


def _full_circle_vertices(radius: float, tol: float) -> int:
    """Vertices of a full circle within ``tol``: chords over at most 2·acos(1 - tol/r) (exact)."""
    from fractions import Fraction

    step = 2 * math.acos(float(1 - Fraction(tol) / Fraction(radius)))
    return math.ceil(2 * math.pi / step) + 1


@pytest.mark.parametrize(
    "radius", ["0", "-5", "nan", "inf", "-inf", "1e15", "1e-300", "1e308", "3e2"]
)
def test_no_radius_crashes_the_reader(radius):
    """Zero, negative, non-finite, astronomical and vanishing radii: an error or a bounded ring."""
    try:
        g = geometry_from_string(CIRCLE.format(radius))
    except GeometryError as err:
        assert "CircleByCenterPoint" in str(err) or "radius" in str(err)
        return
    assert (
        len(shapely.get_coordinates(g)) < 10_000 and np.isfinite(shapely.get_coordinates(g)).all()
    )


@pytest.mark.parametrize("tol", [0.0, -0.002, math.nan, math.inf, -math.inf, "2 mm"])
def test_arc_tolerance_must_be_positive_and_finite(tol):
    with pytest.raises(ValueError, match="arc tolerance"):
        geometry_from_string(CIRCLE.format(100), arc_tolerance=tol)


@pytest.mark.parametrize("tol", [1e-300, 5e-324])
def test_vanishing_tolerance_hits_the_arc_cap(tol):
    with pytest.raises(GeometryLimitError, match="VGGEO_MAX_ARC_VERTICES"):
        geometry_from_string(CIRCLE.format(100), arc_tolerance=tol)


def test_huge_circle_refused_naming_the_setting_and_feature():
    root = safe_fromstring(CIRCLE.format(1e15))
    with pytest.raises(GeometryLimitError) as info:
        parse_geometry(root, feature="c0ffee", file="f.xml")
    msg = str(info.value)
    assert "feature c0ffee" in msg and "VGGEO_MAX_ARC_VERTICES" in msg and "10,000 per arc" in msg
    assert "1,570,796,32" in msg  # the vertices it would have needed (π / (2·sqrt(tol/2r)))


def test_arc_cap_is_a_setting(monkeypatch):
    """300 km is refused by default; raising the cap in the environment reads it, exactly as big."""
    with pytest.raises(GeometryLimitError):
        geometry_from_string(CIRCLE.format(300_000))
    monkeypatch.setenv("VGGEO_MAX_ARC_VERTICES", "30000")
    g = geometry_from_string(CIRCLE.format(300_000))
    assert len(shapely.get_coordinates(g)) == _full_circle_vertices(300_000, DEFAULT_ARC_TOLERANCE)
    monkeypatch.setenv("VGGEO_MAX_ARC_VERTICES", "many")
    with pytest.raises(SettingsError, match="VGGEO_MAX_ARC_VERTICES"):
        geometry_from_string(CIRCLE.format(10))


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ({"VGGEO_MAX_ARC_VERTICES": " 30000 "}, 30_000),
        ({"vggeo_max_arc_vertices": "30000"}, 30_000),  # names match without regard to case
        ({"VGGEO_MAX_ARC_VERTICES": "+4"}, 4),
        ({}, 10_000),
    ],
)
def test_limits_read_from_the_environment(monkeypatch, env, value):
    for key, text in env.items():
        monkeypatch.setenv(key, text)
    assert geometry_limits().max_arc_vertices == value
    assert geometry_limits(max_arc_vertices=50).max_arc_vertices == 50  # an override wins


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("VGGEO_MAX_ARC_VERTICES", "3"),  # below the least a ring needs
        ("VGGEO_MAX_ARC_VERTICES", "10_000"),
        ("VGGEO_MAX_ARC_VERTICES", "1e4"),
        ("VGGEO_MAX_ARC_VERTICES", "\u0661\u0662\u0663\u0664"),  # Arabic-Indic digits
        ("VGGEO_MAX_ARC_VERTICES", ""),
        ("VGGEO_MAX_FEATURE_ARC_VERTICES", "-1"),
        ("VGGEO_MAX_ARC_VERTICES_PER_KIB", "-1"),
        ("VGGEO_MAX_ARC_VERTICES_PER_KIB", "lots\nof"),
    ],
)
def test_a_limit_that_is_not_a_whole_number_in_range_is_refused_by_name(monkeypatch, name, text):
    monkeypatch.setenv(name, text)
    with pytest.raises(SettingsError, match=name) as info:
        geometry_limits()
    assert "\n" not in str(info.value)


def test_an_override_is_checked_like_the_environment():
    with pytest.raises(SettingsError, match="VGGEO_MAX_ARC_VERTICES"):
        geometry_limits(max_arc_vertices=True)  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="VGGEO_MAX_FEATURE_ARC_VERTICES"):
        geometry_limits(max_feature_arc_vertices=2)
    with pytest.raises(TypeError, match="max_vertices"):
        geometry_limits(max_vertices=5)  # type: ignore[call-arg]


def test_a_read_imports_no_settings_library(tmp_path):
    """The limits are read without pydantic-settings: importing and tearing it down cost every
    read in a fresh process ≈ 0.1 s (benchmarks/lm.md, seventh pass)."""
    xml = tmp_path / "one.xml"
    xml.write_bytes(data_file([provision(ident(1), polygon())]))
    code = (
        "import sys\n"
        "from vggeo.lm import read_bestammelser\n"
        "assert len(read_bestammelser(sys.argv[1]).provisions) == 1\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('pydantic')))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(xml)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_feature_cap_counts_every_arc_of_the_feature():
    # Eleven circles of 36 km: each within the per-arc cap (about 9 400), together above 100 000.
    members = "".join(
        "<gml:surfaceMember><gml:Polygon><gml:exterior><gml:Ring><gml:curveMember><gml:Curve>"
        f'<gml:segments><gml:CircleByCenterPoint numArc="1"><gml:pos>{6_000_000 + 100_000 * i} 500000'
        '</gml:pos><gml:radius uom="m">36000</gml:radius></gml:CircleByCenterPoint></gml:segments>'
        "</gml:Curve></gml:curveMember></gml:Ring></gml:exterior></gml:Polygon></gml:surfaceMember>"
        for i in range(11)
    )
    gml = (
        f'<gml:MultiSurface xmlns:gml="http://www.opengis.net/gml/3.2">{members}</gml:MultiSurface>'
    )
    with pytest.raises(GeometryLimitError, match="VGGEO_MAX_FEATURE_ARC_VERTICES"):
        geometry_from_string(gml)
    assert len(shapely.get_coordinates(geometry_from_string(gml.replace("36000", "3600")))) < 40_000


def test_budget_per_file_is_shared_by_features():
    budget = ArcBudget(geometry_limits(), file_bytes=100 * 1024)  # 100 KiB: 100 000 vertices
    root = safe_fromstring(CIRCLE.format(30_000))  # about 8 600 vertices
    for _ in range(11):
        budget.start_feature()
        parse_geometry(root, budget=budget)
    budget.start_feature()
    with pytest.raises(LimitError, match="VGGEO_MAX_ARC_VERTICES_PER_KIB") as info:
        parse_geometry(root, budget=budget)
    assert not isinstance(info.value, GeometryError)  # the file's fault, not one feature's


def test_nearly_straight_arc_of_huge_radius_stays_between_chord_and_arc():
    """Sagitta 1 µm over 2 km (radius 5·10^11 m): every vertex within the sliver chord–arc.

    Computed as centre + r·(cos, sin), the points would scatter by r·2^-53 ≈ 0.06 mm around it.
    """
    x0, y0, s = 674000.0, 6580000.0, 1e-6
    pos = f"{x0!r} {y0!r} {x0 + 1000!r} {y0 + s!r} {x0 + 2000!r} {y0!r}"
    gml = f'<gml:Arc xmlns:gml="http://www.opengis.net/gml/3.2"><gml:posList>{pos}</gml:posList></gml:Arc>'
    xy = shapely.get_coordinates(geometry_from_string(gml, axis="file", arc_tolerance=1e-8))
    assert len(xy) > 5
    assert (xy[:, 1] - y0 >= -2e-9).all() and (xy[:, 1] - y0 <= s + 2e-9).all()
    assert (np.diff(xy[:, 0]) > 0).all()


@pytest.mark.parametrize("pos", ["0 0 1e200 1e300 1e300 0", "0 0 1e154 1e154 2e154 0"])
def test_arc_through_astronomical_coordinates_never_overflows(pos):
    """Either refused or (squares overflow to 'collinear') the straight piece GDAL makes of it."""
    gml = f'<gml:Arc xmlns:gml="http://www.opengis.net/gml/3.2"><gml:posList>{pos}</gml:posList></gml:Arc>'
    try:
        g = geometry_from_string(gml, axis="file")
    except GeometryError as err:
        assert "too large" in str(err)
        return
    assert np.isfinite(shapely.get_coordinates(g)).all() and len(shapely.get_coordinates(g)) == 3


@pytest.mark.parametrize(("dim", "values"), [(2, 9), (3, 10), (3, 14)])
def test_count_not_a_multiple_of_srs_dimension_refused(dim, values):
    nums = " ".join(str(i) for i in range(values))
    gml = (
        f'<gml:LineString xmlns:gml="http://www.opengis.net/gml/3.2" srsDimension="{dim}">'
        f"<gml:posList>{nums}</gml:posList></gml:LineString>"
    )
    with pytest.raises(
        GeometryError, match=f"coordinate count {values} is not a multiple of the dimension {dim}"
    ):
        geometry_from_string(gml)


@pytest.mark.parametrize("value", ["x", "", "0", "4", "³", " 2.0 ", "99999999999999999999"])
@pytest.mark.parametrize(
    "where",
    [
        "<gml:LineString{a}><gml:posList>1 2 3 4</gml:posList></gml:LineString>",
        "<gml:LineString><gml:pos{a}>1 2</gml:pos><gml:pos>3 4</gml:pos></gml:LineString>",
        "<gml:Polygon{a}><gml:exterior><gml:LinearRing><gml:posList>0 0 0 1 1 1 0 0"
        "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>",
    ],
)
def test_an_srs_dimension_that_is_not_2_or_3_is_named(value, where):
    """Whatever srsDimension says, if it is not 2 or 3 the error names what it says (it used to
    print -1 for a text, crash on a gml:pos's text, and read "0" on an ancestor as absent)."""
    body = where.format(a=f' srsDimension="{value}"')
    gml = body.replace(">", ' xmlns:gml="http://www.opengis.net/gml/3.2">', 1)
    with pytest.raises(GeometryError, match="unsupported srsDimension") as err:
        geometry_from_string(gml)
    assert repr(value[:40]) in str(err.value) and "\n" not in str(err.value)
