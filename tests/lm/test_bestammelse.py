"""Markreglerande bestämmelser: the tables, their types, geometry — checked against GDAL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from system import gdal_json

from vggeo.errors import GeometryError, SchemaError, SwappedAxesError
from vggeo.lm import open_delivery, read_bestammelser
from vggeo.lm._records import normalise_kommun, parse_dates

DATA = Path(__file__).parent / "data"
SET = "markreglerandebestammelse"


def example_file(tmp_path: Path, old: str = "", new: str = "") -> Path:
    """Lantmäteriet's example provision as a data file, with ``old`` replaced by ``new``."""
    text = (DATA / "example_provision.xml").read_text()
    if old:
        assert old in text  # the edit applies
        text = text.replace(old, new)
    f = tmp_path / f"{SET}_1.xml"
    f.write_text(text)
    return f


TYPES = {
    "plan",
    "naturvardsbestammelse",
    "ovrig_bestammelse",
    "mineralrattighet",
    "utredning",
    "fornlamning",
}


def test_lantmateriets_example_provision():
    d = read_bestammelser(DATA / "example_provision.xml")
    p = d.provisions.set_index("provision_id")
    row = p.loc["af065380-11ca-6f58-e040-ed8f65434c76"]  # identity lower-cased
    assert row.provision_type == "plan" and row.object_version == 1
    assert (row.municipality, row.designation, row["name"], row.status, row.plan_type) == (
        "2883",
        "2883-117B/BH",
        "SOLHEM",
        "gällande",
        "tomtindelning",
    )
    assert row.alt_designation == "2883 ¤ 421"
    assert row.last_changed == pd.Timestamp("1988-06-07")
    # A date-time with an offset keeps its date (GDAL would move it to UTC, the day before).
    assert row.implementation_start == pd.Timestamp("2019-04-24")
    assert row.geometry.bounds == (781200.0, 7237640.0, 781300.0, 7237700.0)  # x = easting
    nat = p.loc["c0ffee00-0000-4000-8000-000000000002"]
    assert nat.provision_type == "naturvardsbestammelse" and nat.status == "avregistrerad"
    assert nat.municipality == "0180" and nat.object_version == 3
    assert nat.geometry.geom_type == "MultiPolygon" and len(nat.geometry.geoms) == 2
    assert nat.geometry.area == 1000 * 1000 - 200 * 200 + 100 * 100 / 2  # hole and triangle
    dec = d.decisions.iloc[0]
    assert (dec.kind, dec.object_version, dec.valid_from, dec.decision_date) == (
        "bildandebeslut",
        1,
        pd.Timestamp("2019-04-24"),
        pd.Timestamp("1940-12-31"),
    )
    assert sorted(d.affected["register_unit_id"]) == [
        "909a6a63-5b0d-90ec-e040-ed8f66444c3f",
        "909a6a63-5b0e-90ec-e040-ed8f66444c3f",
    ]
    assert set(d.affected["provision_id"]) == {"af065380-11ca-6f58-e040-ed8f65434c76"}
    subs = d.subsets.groupby("provision_id")["subset"].apply(set).to_dict()
    assert subs["af065380-11ca-6f58-e040-ed8f65434c76"] == {"basinformation", "berorkrets"}
    assert subs["c0ffee00-0000-4000-8000-000000000002"] == {"basinformation"}
    # the element no mapping knows is reported, with its path
    assert d.unmapped == {"Plan/attribut/framtidaelement": 1}


def test_types(bestammelse_deliveries):
    d = read_bestammelser(bestammelse_deliveries[0])
    p = d.provisions
    assert p.crs.to_epsg() == 3006
    assert (
        str(p["provision_type"].dtype) == "category"
        and set(p["provision_type"].cat.categories) == TYPES
    )
    assert str(p["object_version"].dtype) == "Int64"
    for c in ("last_changed", "implementation_start", "implementation_end"):
        assert str(p[c].dtype) == "datetime64[ms]"
    assert p["municipality"].str.fullmatch(r"\d{4}").all()
    for c in ("valid_from", "decision_date"):
        assert str(d.decisions[c].dtype) == "datetime64[ms]"
    assert p["provision_id"].is_unique and len(p) == 160
    assert (p.geometry.geom_type == "MultiPolygon").all() and p.geometry.is_valid.all()
    assert set(p["provision_type"]) == TYPES and set(p["status"]) == {"gällande", "avregistrerad"}
    assert {"bildandebeslut", "upphavandebeslut"} <= set(d.decisions["kind"])


_GDAL_READ = r"""
import json, sys
from osgeo import ogr, gdal
gdal.UseExceptions()
ds = ogr.Open(sys.argv[1])
out = {}
for i in range(ds.GetLayerCount()):
    lyr = ds.GetLayer(i)
    for f in lyr:
        g = f.GetGeometryRef()
        if g.HasCurveGeometry():
            g = g.GetLinearGeometry(1.0)
        ident = f.GetField("objektidentitet")
        out[ident] = {"layer": lyr.GetName(), "wkt": g.ExportToIsoWkt(),
                      "status": f.GetField("status"), "aktbeteckning": f.GetField("aktbeteckning")}
print(json.dumps(out))
"""


@pytest.mark.gdal
def test_agrees_with_gdal_gml_driver(bestammelse_deliveries, tmp_path, unpack):
    """GDAL's GML driver reads the same file: same provisions, same attributes, same areas."""
    folder = unpack(bestammelse_deliveries[0], tmp_path / "u")
    xml = next(folder.rglob(f"{SET}_1.xml"))
    mine = read_bestammelser(xml).provisions.set_index("provision_id")
    theirs = gdal_json(_GDAL_READ, str(xml))
    assert set(theirs) == set(mine.index)
    layer_of = {
        "plan": "Plan",
        "naturvardsbestammelse": "Naturvardsbestammelse",
        "ovrig_bestammelse": "OvrigBestammelse",
        "mineralrattighet": "Mineralrattighet",
        "utredning": "Utredning",
        "fornlamning": "Fornlamning",
    }
    for ident, t in theirs.items():
        row = mine.loc[ident]
        assert layer_of[row.provision_type] == t["layer"]
        assert (row.status, row.designation) == (t["status"], t["aktbeteckning"])
        g = shapely.from_wkt(t["wkt"])  # GDAL swaps urn:…:3006 to x = easting as well
        # 2 mm (ours) + GDAL's 1° chords on arcs of ≤ 100 m radius (< 4 mm)
        assert shapely.hausdorff_distance(row.geometry, g) < 0.01, ident
        assert abs(row.geometry.area - g.area) <= 1e-6 * g.area + 0.5


_GDAL_ZONE = r"""
import json, sys
from osgeo import ogr, osr, gdal
gdal.UseExceptions()
ds = ogr.Open(sys.argv[1])
src = osr.SpatialReference(); src.ImportFromEPSG(int(sys.argv[2]))
dst = osr.SpatialReference(); dst.ImportFromEPSG(3006)
for s in (src, dst):
    s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
ct = osr.CoordinateTransformation(src, dst)
out = {}
for i in range(ds.GetLayerCount()):
    for f in ds.GetLayer(i):
        g = f.GetGeometryRef()
        if g.HasCurveGeometry():
            g = g.GetLinearGeometry(1.0)
        g.AssignSpatialReference(src)
        g.Transform(ct)
        out[f.GetField("objektidentitet")] = g.ExportToIsoWkt()
print(json.dumps(out))
"""


@pytest.mark.gdal
def test_local_zone_becomes_3006(bestammelse_local_zone, tmp_path, unpack):
    """SWEREF 99 16 30 in, EPSG:3006 out — checked against GDAL + PROJ doing the same."""
    d = open_delivery(bestammelse_local_zone[0])
    assert d.crs == 3010
    mine = read_bestammelser(d).provisions.set_index("provision_id")
    assert mine.crs.to_epsg() == 3006
    folder = unpack(bestammelse_local_zone[0], tmp_path / "u")
    theirs = {}
    for xml in sorted(folder.rglob(f"{SET}_[0-9]*.xml")):
        theirs.update(gdal_json(_GDAL_ZONE, str(xml), "3010"))
    assert set(theirs) == set(mine.index)
    dist = [
        shapely.hausdorff_distance(mine.loc[i].geometry, shapely.from_wkt(w))
        for i, w in theirs.items()
    ]
    assert max(dist) < 0.01
    # the 3006 values are real SWEREF 99 TM eastings near the 16°30' meridian
    x0, y0, x1, y1 = mine.total_bounds
    assert 400_000 < x0 < x1 < 750_000 and 6_100_000 < y0 < y1 < 7_700_000


def test_change_delivery_subsets(bestammelse_deliveries):
    d = read_bestammelser(bestammelse_deliveries[1])
    subs = d.subsets.groupby("provision_id")["subset"].apply(frozenset)
    only_beror = subs[subs == frozenset({"berorkrets"})].index
    assert len(only_beror) > 0  # some changes carry only the berörkrets subset
    p = d.provisions.set_index("provision_id").loc[only_beror]
    assert p["status"].isna().all() and p.geometry.is_empty.all()
    assert set(d.affected["provision_id"]) >= set(only_beror)


def test_malformed_geometry_raise_or_keep(tmp_path):
    f = example_file(
        tmp_path, "7237640.000 781200.000</gml:posList>", "7237641.000 781200.000</gml:posList>"
    )
    with pytest.raises(GeometryError) as info:
        read_bestammelser(f)
    assert "af065380-11ca-6f58-e040-ed8f65434c76" in str(info.value) and "posList" in str(
        info.value
    )
    d = read_bestammelser(f, on_geometry_error="keep")
    p = d.provisions.set_index("provision_id")
    assert p.loc["af065380-11ca-6f58-e040-ed8f65434c76"].geometry.is_empty
    assert not p.loc["c0ffee00-0000-4000-8000-000000000002"].geometry.is_empty
    [(ident, msg)] = d.geometry_errors
    assert ident == "af065380-11ca-6f58-e040-ed8f65434c76" and "not closed" in msg
    assert f"{f}:" in msg  # file and line


def test_non_numeric_coordinates_refused(tmp_path):
    f = example_file(tmp_path, "674000 6580000 675000", "674000 6580000 67x000")
    with pytest.raises(GeometryError, match="c0ffee00-0000-4000-8000-000000000002.*non-numeric"):
        read_bestammelser(f)


def test_pretty_printed_and_blank_poslists(tmp_path):
    """Whitespace around coordinates adds none; a posList of whitespace only is a named error."""
    import re

    text = (DATA / "example_provision.xml").read_text()
    compact = tmp_path / "compact" / f"{SET}_1.xml"
    pretty = tmp_path / "pretty" / f"{SET}_1.xml"
    for f, t in (
        (compact, text),
        (
            pretty,
            re.sub(
                r"<gml:posList>([^<]*)</gml:posList>",
                r"<gml:posList>\n      \1\n    </gml:posList>",
                text,
            ),
        ),
    ):
        f.parent.mkdir()
        f.write_text(t)
    assert pretty.read_text() != text
    a, b = read_bestammelser(compact).provisions, read_bestammelser(pretty).provisions
    assert shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=0).all()
    blank = tmp_path / f"{SET}_1.xml"
    blank.write_text(
        re.sub(
            r"<gml:posList>[^<]*</gml:posList>", "<gml:posList> \n </gml:posList>", text, count=1
        )
    )
    with pytest.raises(GeometryError, match="af065380.*at least 4 positions, got 0") as info:
        read_bestammelser(blank)
    assert "posList" in str(info.value) and f"{blank}:" in str(info.value)


def test_swapped_axes_detected(tmp_path):
    # A short EPSG:3006 form means easting first; northing-first values under it are swapped.
    f = example_file(tmp_path, 'srsName="urn:ogc:def:crs:EPSG::3006"', 'srsName="EPSG:3006"')
    with pytest.raises(SwappedAxesError, match="af065380"):
        read_bestammelser(f)


def test_a_geometry_in_wgs84_comes_out_in_sweref99tm(tmp_path):
    # Latitude first under the URN form; the oracle is PROJ (pyproj), not vggeo.crs.
    from pyproj import Transformer

    ring = [(7237640.0, 781200.0), (7237640.0, 781300.0), (7237700.0, 781300.0)]
    ring += [(7237700.0, 781200.0), (7237640.0, 781200.0)]
    to_wgs84 = Transformer.from_crs("EPSG:3006", "EPSG:4326")  # authority order both sides
    latlon = [to_wgs84.transform(n, e) for n, e in ring]
    old = 'srsName="urn:ogc:def:crs:EPSG::3006">\n          <gml:exterior><gml:LinearRing><gml:posList>'
    old += " ".join(f"{n:.3f} {e:.3f}" for n, e in ring)
    new = 'srsName="urn:ogc:def:crs:EPSG::4326">\n          <gml:exterior><gml:LinearRing><gml:posList>'
    new += " ".join(f"{lat:.12f} {lon:.12f}" for lat, lon in latlon)
    f = example_file(tmp_path, old, new)
    p = read_bestammelser(f).provisions.set_index("provision_id")
    got = p.loc["af065380-11ca-6f58-e040-ed8f65434c76"].geometry.bounds
    assert got == pytest.approx((781200.0, 7237640.0, 781300.0, 7237700.0), abs=0.001)


def test_geometry_without_srsname_uses_magnitudes(tmp_path):
    f = example_file(tmp_path, ' srsName="urn:ogc:def:crs:EPSG::3006"', "")
    p = read_bestammelser(f).provisions.set_index("provision_id")
    assert p.loc["af065380-11ca-6f58-e040-ed8f65434c76"].geometry.bounds == (
        781200.0,
        7237640.0,
        781300.0,
        7237700.0,
    )


def test_parallel_equals_sequential(tmp_path, monkeypatch):
    from vggeo.lm import _parallel
    from vggeo.sample.delivery import generate_deliveries

    [p] = generate_deliveries(tmp_path, product="bestammelse", n=400, changes=0, seed=3)
    monkeypatch.setattr(_parallel, "CHUNK_BYTES", 200_000)
    import vggeo.lm.bestammelse as B

    monkeypatch.setattr(B, "BATCH_SIZE", 64)
    seq = read_bestammelser(p, workers=1)
    par = read_bestammelser(p, workers=2)
    from geopandas.testing import assert_geodataframe_equal

    assert_geodataframe_equal(seq.provisions, par.provisions)
    for t in ("affected", "decisions", "subsets"):
        pd.testing.assert_frame_equal(getattr(seq, t), getattr(par, t))


def test_dates_in_three_forms():
    s = pd.Series(
        ["19401231", "2019-04-24", "2019-04-24T23:30:00+02:00", "2019-04-24T00:00:00Z", None]
    )
    out = parse_dates(s, column="d")
    assert out.tolist()[:4] == [
        pd.Timestamp("1940-12-31"),
        pd.Timestamp("2019-04-24"),
        pd.Timestamp("2019-04-24 23:30"),
        pd.Timestamp("2019-04-24"),
    ]
    assert pd.isna(out.iloc[4]) and str(out.dtype) == "datetime64[ms]"
    with pytest.raises(SchemaError, match="'24/4 2019'"):
        parse_dates(pd.Series(["24/4 2019"]), column="d")


def test_kommun_codes_keep_leading_zero():
    assert normalise_kommun(pd.Series(["180", "0180", " 2883 ", None]), column="k").tolist()[
        :3
    ] == ["0180", "0180", "2883"]
    with pytest.raises(SchemaError):
        normalise_kommun(pd.Series(["18O0"]), column="k")


# Columns in one form take a one-match, one-parse route; a column with one value in another
# form takes the general route. Both must give the same values, nulls, dtypes and refusals.
_ONE_FORM_DATES = {
    "dashed": ["2019-04-24", " 2019-04-24 ", "1900-01-01", "2024-02-29", None],
    "digits": ["19401231", "20190424", " 20240229", None, "00010101"],
    "date-times": [
        "2019-04-24T23:30:00+02:00",
        "2019-04-24T00:00:00Z",
        "2019-04-24T00:00:00.125-0130",
        "2019-04-24T12:00:00",
        None,
    ],
}
_OTHER_FORM = {"dashed": "20190101", "digits": "2019-01-01", "date-times": "2019-01-01"}


@pytest.mark.parametrize("form", sorted(_ONE_FORM_DATES))
@pytest.mark.parametrize("dtype", [object, "string"])
def test_dates_in_one_form_parse_as_in_mixed_columns(form, dtype):
    values = _ONE_FORM_DATES[form]
    one = parse_dates(pd.Series(values, dtype=dtype), column="d")
    mixed = parse_dates(pd.Series([*values, _OTHER_FORM[form]], dtype=dtype), column="d")
    pd.testing.assert_series_equal(one, mixed.iloc[:-1])
    assert str(one.dtype) == "datetime64[ms]" and one.isna().sum() == values.count(None)


@pytest.mark.parametrize(
    "bad",
    [
        "2019-02-30",  # the C library's strptime takes it, and the timestamp rolls to 2 March
        "20190229",
        "2019-04-24T23:59:60",
        "20191301",
        "2019-04-24T25:00:00",
        "2019-4-24",
        "٢٠١٩-04-24",
        "2019-04-24T12:00",
    ],
)
def test_a_date_that_names_no_day_is_refused_by_name(bad):
    for good in ("2019-04-24", "20190424", "2019-04-24T00:00:00"):
        with pytest.raises(SchemaError, match="not a date") as err:
            parse_dates(pd.Series([good, bad, good]), column="d")
        assert err.value.value == bad
    with pytest.raises(SchemaError, match="not a date"):
        parse_dates(pd.Series([bad]), column="d")


def test_plain_integers_type_as_pandas_reads_them():
    from vggeo.lm._records import _to_int

    plain = ["1", " 2 ", "-3", "0042", None, "999999999999999999"]
    out = _to_int(pd.Series(plain), "n", None)
    # "1.0" sends the column to pandas' route: the same values, nulls and dtype.
    general = _to_int(pd.Series([*plain[:-1], "1.0"]), "n", None)
    pd.testing.assert_series_equal(out.iloc[:-1], general.iloc[:-1])
    assert out.iloc[-1] == 999_999_999_999_999_999 and str(out.dtype) == "Int64"
    for bad in ("0x10", "1.5", "1e", "٣", ""):
        with pytest.raises(SchemaError, match="not an integer"):
            _to_int(pd.Series(["1", bad]), "n", None)


def test_kommun_codes_of_digits_pad_as_before():
    out = normalise_kommun(pd.Series(["1", "12", "123", "1234", None]), column="k")
    assert out.tolist()[:4] == ["0001", "0012", "0123", "1234"] and pd.isna(out.iloc[4])
    assert out.dtype == pd.Series(["x"]).astype("string").dtype
    for bad in ("12345", "", "١٨٠", "18 0"):
        with pytest.raises(SchemaError, match="four digits"):
            normalise_kommun(pd.Series(["0180", bad]), column="k")


def test_typed_columns_of_values_that_are_not_text():
    """Rows may carry numbers where text was expected (a vector product's integer kommun): they
    are typed from their text, as pandas' astype("string") writes them."""
    from vggeo.lm._records import typed_frame
    from vggeo.lm.mapping import Field

    fields = (
        Field("a", "a", "str"),
        Field("n", "n", "int"),
        Field("k", "k", "kommun"),
        Field("d", "d", "date"),
    )
    rows = [{"a": 5, "n": 3, "k": 180, "d": 20190102}, {"a": " x ", "n": " 7 ", "k": "0181"}]
    out = typed_frame(rows, fields)
    assert out["a"].tolist() == ["5", "x"] and out["n"].tolist() == [3, 7]
    assert out["k"].tolist() == ["0180", "0181"]
    assert out["d"].iloc[0] == pd.Timestamp("2019-01-02") and pd.isna(out["d"].iloc[1])


def test_vector_product_geopackage(tmp_path, bestammelse_deliveries):
    import geopandas as gpd

    ref = read_bestammelser(bestammelse_deliveries[0]).provisions
    swedish = pd.DataFrame(
        {
            "objektidentitet": ref["provision_id"].str.upper(),
            "typ": ref["provision_type"].astype(str),
            "objektversion": ref["object_version"],
            "kommun": ref["municipality"],
            "aktbeteckning": ref["designation"],
            "namn": ref["name"],
            "status": ref["status"],
            "senasteAndringAllmannaDelen": ref["last_changed"].dt.strftime("%Y%m%d"),
        }
    )
    gdf = gpd.GeoDataFrame(swedish, geometry=ref.geometry.values, crs="EPSG:3006").to_crs(3010)
    path = tmp_path / "bestammelser.gpkg"
    pyogrio.write_dataframe(gdf, path, layer="markreglerande_bestammelse")
    got = read_bestammelser(path)
    p = got.provisions
    assert p.crs.to_epsg() == 3006 and list(p.columns) == list(ref.columns)
    assert p["provision_id"].tolist() == ref["provision_id"].tolist()
    assert p["last_changed"].tolist() == ref["last_changed"].tolist()
    assert p["municipality"].tolist() == ref["municipality"].tolist()
    assert np.nanmax(shapely.hausdorff_distance(p.geometry.values, ref.geometry.values)) < 0.001


def test_bounded_memory_streaming(bestammelse_deliveries):
    """Members are cleared and detached as they are read: the tree never accumulates them."""
    from vggeo.lm.package import iter_members

    with open_delivery(bestammelse_deliveries[0]) as d:
        f = d.data_files()[0]
        most = 0
        n = 0
        for m in iter_members(f):
            # the member just completed plus those the parser has begun in its read-ahead buffer
            most = max(most, len(m.getparent()))
            n += 1
        assert n == 70 and most <= 20


def test_json_roundtrip_of_unmapped_report(tmp_path):
    f = example_file(tmp_path, "<mb:Beror>", "<mb:Beror><mb:extra>1</mb:extra>")
    d = read_bestammelser(f)
    assert json.loads(json.dumps(dict(d.unmapped))) == {
        "Plan/attribut/framtidaelement": 1,
        "Plan/beror/extra": 1,
    }
    _ = shutil


def test_a_second_value_of_a_single_valued_field_is_reported_not_dropped(tmp_path):
    """The first value is kept; another is data the tables would not hold, so it is reported in
    ``unmapped`` (and refused by a store unless accepted). The same value twice loses nothing."""
    two = example_file(
        tmp_path,
        "<mb:namn>SOLHEM</mb:namn>",
        "<mb:namn>SOLHEM</mb:namn><mb:namn>SOLBACKEN</mb:namn>",
    )
    d = read_bestammelser(two)
    assert d.provisions["name"].tolist()[0] == "SOLHEM"
    assert d.unmapped["Plan/attribut/namn (another value)"] == 1
    same = example_file(
        tmp_path,
        "<mb:namn>SOLHEM</mb:namn>",
        "<mb:namn>SOLHEM</mb:namn><mb:namn> SOLHEM </mb:namn>",
    )
    assert not any("another value" in k for k in read_bestammelser(same).unmapped)
    from vggeo.lm.package import UnmappedError, refuse_unmapped

    with pytest.raises(UnmappedError) as err:  # what a store does with it
        refuse_unmapped(d.unmapped)
    assert "Plan/attribut/namn (another value)" in err.value.paths
    accept = ["Plan/attribut/namn*", "Plan/attribut/framtidaelement"]
    assert refuse_unmapped(d.unmapped, accept) == dict(d.unmapped)


def test_an_srs_dimension_in_other_scripts_digits_is_refused_not_a_crash(tmp_path):
    """ "³".isdigit() is true but int("³") fails: the reader raised a bare ValueError."""
    f = example_file(tmp_path, "<gml:posList>", '<gml:posList srsDimension="\u00b3">')
    with pytest.raises(GeometryError, match="srsDimension"):
        read_bestammelser(f)
