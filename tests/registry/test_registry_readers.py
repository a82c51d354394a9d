"""Readers: every input form ends in the same canonical frame; bad input is named precisely."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import shapely

from vggeo.errors import CodeError, CoordinateRangeError, ParseError, SchemaError, SwappedAxesError
from vggeo.registry.canonical import RuleWarning
from vggeo.registry.readers import (
    CodeWarning,
    read_api_pages,
    read_registry,
    to_canonical,
    write_registry,
)


def _assert_same(a, b):
    assert list(a.columns) == list(b.columns)
    for c in a.columns:
        if c == "geometry":
            assert shapely.equals_exact(a.geometry.values, b.geometry.values, 0).all()
        else:
            pd.testing.assert_series_equal(a[c], b[c], check_names=False, obj=c)


def test_canonical_dtypes_and_geometry(small_registry):
    g = small_registry
    assert g.crs.to_epsg() == 3006
    assert g["id"].dtype == np.int64 and g["id"].is_unique
    assert str(g["apartment_nr"].dtype) == "Int16"
    assert isinstance(g["kitchen_type"].dtype, pd.CategoricalDtype)
    assert str(g["updated_at"].dtype) == "datetime64[ms]"
    assert "list" in str(g["number"].dtype)
    assert g["county_code"].str.fullmatch(r"\d\d").all()
    assert g["property_key"].str.fullmatch(r"\d{9}").all()
    assert list(g["coord_source"].cat.categories) == ["sweref99", "rt90", "wgs84"]
    # x = easting = sweref99y; y = northing = sweref99x.
    assert (g.geometry.x.to_numpy() == g["sweref99y"].to_numpy()).all()
    assert (g.geometry.y.to_numpy() == g["sweref99x"].to_numpy()).all()


@pytest.mark.parametrize("ext", ["parquet", "gpkg", "csv", "jsonl"])
def test_round_trip_every_format(small_registry, tmp_path, ext):
    path = write_registry(small_registry, tmp_path / f"r.{ext}")
    back = read_registry(path)
    if ext == "parquet":
        # GeoParquet rows are written in Hilbert order (spatial pruning); every row comes back.
        assert sorted(back["id"]) == sorted(small_registry["id"])
        order = pd.Index(back["id"]).get_indexer(small_registry["id"])
        back = back.iloc[order].reset_index(drop=True)
    _assert_same(back, small_registry)
    assert not list(tmp_path.glob(".*tmp*")), "temporary files left behind"


def test_api_pages_and_json_documents(raw_records, small_registry, tmp_path):
    pages = [
        {
            "residences": raw_records[i : i + 100],
            "meta_data": {
                "offset": i,
                "response_rows": len(raw_records[i : i + 100]),
                "total_nr_records": len(raw_records),
            },
        }
        for i in range(0, len(raw_records), 100)
    ]
    _assert_same(read_api_pages(pages), small_registry)
    _assert_same(read_api_pages([json.dumps(p) for p in pages]), small_registry)
    (tmp_path / "pages.json").write_text(json.dumps(pages))
    _assert_same(read_registry(tmp_path / "pages.json"), small_registry)
    (tmp_path / "pages.jsonl").write_text("\n".join(json.dumps(p) for p in pages))
    _assert_same(read_registry(tmp_path / "pages.jsonl"), small_registry)


def test_csv_as_pandas_saves_it(raw_records, small_registry, tmp_path):
    """df.to_csv() with its index column, lists as "[1, 3]", "" and NaN alike."""
    df = pd.DataFrame(raw_records)
    df.loc[0, "number"] = [12, 14, None]
    df.to_csv(tmp_path / "users.csv")  # index kept, as users often do
    back = read_registry(tmp_path / "users.csv")
    assert back["number"].iloc[0] == [12, 14, None]
    expected = small_registry.copy()
    expected["number"] = back["number"]
    _assert_same(back, expected)


@pytest.mark.parametrize(
    ("decimal", "encoding"), [(",", "utf-8-sig"), (".", "utf-8-sig"), (",", "cp1252")]
)
def test_csv_as_swedish_excel_saves_it(raw_records, small_registry, tmp_path, decimal, encoding):
    """Excel in a Swedish locale saves "CSV" with ``;`` between fields and decimal commas, as
    UTF-8 with a byte-order mark or as Windows-1252 (pandas writes the same here, as the
    independent writer): read as the comma form is, å, ä and ö included. With decimal points in
    a ``;`` file too."""
    df = pd.DataFrame(raw_records)
    path = tmp_path / "excel.csv"
    df.to_csv(path, sep=";", decimal=decimal, index=False, encoding=encoding)
    text = path.read_text(encoding=encoding)
    assert any(c in text for c in "åäöÅÄÖ")
    assert ";" in text.splitlines()[0] and (re.search(r";-?\d+,\d+;", text) is not None) == (
        decimal == ","
    )
    back = read_registry(path)
    expected = small_registry.copy()
    expected["number"] = back["number"]
    _assert_same(back, expected)


def test_a_utf8_csv_with_a_stray_byte_is_refused_not_garbled(raw_records, tmp_path):
    """One Windows-1252 byte in a UTF-8 file does not make the file Windows-1252 (every å would
    become Ã¥): it is refused, naming the file."""
    path = tmp_path / "mixed.csv"
    pd.DataFrame(raw_records[:50]).to_csv(path, index=False)
    data = path.read_bytes()
    assert "ä".encode() in data
    lines = data.split(b"\n")
    cells = lines[30].split(b",")
    cells[2] += b"\xe4"  # in the address (the last column is derived, recomputed on reading)
    lines[30] = b",".join(cells)
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(ParseError, match="UTF8") as err:
        read_registry(path)
    assert str(path) in str(err.value)


def test_csv_as_swedish_excel_with_a_bad_value_still_reads_its_decimal_commas(
    raw_records, small_registry, tmp_path
):
    """A value that is not a number sends the file to the text reader: the decimal commas are
    still numbers there, and only the bad value is a reject."""
    df = pd.DataFrame(raw_records[:50])
    df["living_space"] = df["living_space"].astype(object)
    df.loc[20, "living_space"] = "stor"
    df.to_csv(tmp_path / "bad.csv", sep=";", decimal=",", index=False)
    with pytest.warns(RuleWarning):
        g, rejects = read_registry(tmp_path / "bad.csv", with_rejects=True)
    assert rejects[["row", "field", "value"]].values.tolist() == [[22, "living_space", "stor"]]
    want = small_registry.iloc[:50]
    assert shapely.equals_exact(g.geometry.values, want.geometry.values, 0).all()
    keep = np.arange(50) != 20
    np.testing.assert_array_equal(
        g["living_space"].to_numpy(dtype=float)[keep],
        want["living_space"].to_numpy(dtype=float)[keep],
    )


def test_fields_may_be_absent_and_unknown_fields_are_kept(raw_records):
    recs = [
        {k: v for k, v in r.items() if k not in ("rooms", "owner_id", "sweref99x", "sweref99y")}
        | {"shoe_size": 42}
        for r in raw_records[:20]
    ]
    with pytest.warns(UserWarning, match="shoe_size"):
        g = read_api_pages([{"residences": recs}])
    assert "rooms" not in g.columns and "shoe_size" in g.columns
    assert g.attrs["unknown_fields"] == ["shoe_size"]
    assert set(g.attrs["absent_fields"]) == {"rooms", "owner_id", "sweref99x", "sweref99y"}
    assert (g["coord_source"] == "rt90").all()  # fell back to RT 90
    assert g.geometry.notna().all()


def _page(records, offset=0):
    return {
        "residences": records,
        "meta_data": {"offset": offset, "response_rows": len(records), "total_nr_records": 10_000},
    }


def test_wrong_type_names_page_row_field(raw_records):
    recs = [dict(r) for r in raw_records[:50]]
    recs[17]["rooms"] = "three"
    with pytest.raises(SchemaError) as err:
        read_api_pages([_page(raw_records[50:60]), _page(recs, offset=10)], strict=True)
    e = err.value
    assert (e.field, e.row, e.value) == ("rooms", 18, "three")
    assert "page 2 (offset 10)" in str(e) and ":18" in str(e)
    # Without strict the row is kept, the value nulled and listed where it came from.
    with pytest.warns(RuleWarning, match="wrong_type"):
        g, rejects = read_api_pages(
            [_page(raw_records[50:60]), _page(recs, offset=10)], with_rejects=True
        )
    assert len(g) == 60 and np.isnan(g["rooms"].iloc[10 + 17])
    r = rejects.iloc[0]
    assert (r["file"], r["row"], r["field"], r["value"], r["rule"], r["action"]) == (
        "page 2 (offset 10)",
        18,
        "rooms",
        "three",
        "wrong_type",
        "nulled",
    )
    assert r["id"] == recs[17]["id"] and len(rejects) == 1


def test_malformed_page_is_a_parse_error():
    with pytest.raises(ParseError, match="page 1"):
        read_api_pages(['{"residences": [{"id": 1}'])
    with pytest.raises(ParseError, match="response_rows"):
        read_api_pages([{"residences": [{"id": 1}], "meta_data": {"response_rows": 2}}])
    with pytest.raises(ParseError, match="residences"):
        read_api_pages([{"meta_data": {}}])


def test_missing_coordinate_pair_is_named(raw_records):
    recs = [dict(r) for r in raw_records[:30]]
    for k in ("rt90x", "rt90y", "wgs84lat", "wgs84lon"):
        recs[4].pop(k)
    recs[4]["sweref99y"] = None
    with pytest.raises(SchemaError) as err:
        read_api_pages([_page(recs)], strict=True)
    assert err.value.field == "sweref99y" and err.value.row == 5
    with pytest.warns(UserWarning, match="incomplete_coordinates"):
        g, rejects = read_api_pages([_page(recs)], with_rejects=True)
    assert g.geometry.iloc[4] is None and g["sweref99x"].iloc[4] == recs[4]["sweref99x"]
    assert rejects[["row", "field", "rule"]].values.tolist() == [
        [5, "sweref99y", "incomplete_coordinates"]
    ]


def test_rows_without_any_coordinates_have_no_geometry_and_a_warning(raw_records):
    recs = [dict(r) for r in raw_records[:30]]
    for k in ("sweref99x", "sweref99y", "rt90x", "rt90y", "wgs84lat", "wgs84lon"):
        recs[2][k] = None
    with pytest.warns(UserWarning, match="no complete coordinate pair.*:3"):
        g = read_api_pages([_page(recs)])
    assert g.geometry.iloc[2] is None and pd.isna(g["coord_source"].iloc[2])


def test_swapped_sweref_axes_are_refused_or_swapped(raw_records):
    recs = [dict(r) for r in raw_records[:30]]
    for r in recs:
        r["sweref99x"], r["sweref99y"] = r["sweref99y"], r["sweref99x"]
    with pytest.raises(SwappedAxesError) as err:
        read_api_pages([_page(recs)])
    assert err.value.field == "sweref99x" and err.value.row == 1
    with pytest.warns(UserWarning, match="swapped"):
        g = read_api_pages([_page(recs)], swap=True)
    assert (g.geometry.x.to_numpy() == [r["sweref99x"] for r in recs]).all()


def test_foreign_coordinates_are_refused(raw_records):
    recs = [dict(r) for r in raw_records[:5]]
    recs[3]["sweref99x"] = 51.5
    with pytest.raises(CoordinateRangeError) as err:
        read_api_pages([_page(recs)], strict=True)
    assert err.value.row == 4
    # One row's stray pair: kept, not used for the geometry (the RT 90 pair is), rejected.
    with pytest.warns(RuleWarning, match="implausible_coordinates"):
        g, rejects = read_api_pages([_page(recs)], with_rejects=True)
    assert g["coord_source"].iloc[3] == "rt90" and g["sweref99x"].iloc[3] == 51.5
    assert rejects[["row", "rule"]].values.tolist() == [[4, "implausible_coordinates"]]
    # A whole input of foreign coordinates is the file's convention, not a row's slip: refused.
    for r in recs:
        r["sweref99x"], r["rt90x"], r["wgs84lat"] = 51.5, None, None
    with pytest.raises(CoordinateRangeError):
        read_api_pages([_page(recs)])


def test_unknown_code_is_flagged_or_strict(raw_records):
    recs = [dict(r) for r in raw_records[:40]]
    recs[7]["kitchen_type"] = 7
    with pytest.warns(CodeWarning, match="kitchen_type.*:8"):
        g = read_api_pages([_page(recs)])
    assert g["kitchen_type"].iloc[7] == 7  # kept
    assert g.attrs["unknown_codes"]["kitchen_type"]["count"] == 1
    with pytest.raises(CodeError) as err:
        read_api_pages([_page(recs)], strict_codes=True)
    assert (err.value.field, err.value.row, err.value.value) == ("kitchen_type", 8, 7)


def test_duplicate_and_missing_ids(raw_records):
    recs = [dict(r) for r in raw_records[:10]]
    recs[6]["id"] = recs[2]["id"]
    with pytest.raises(SchemaError, match="not unique") as err:
        read_api_pages([_page(recs)])
    assert err.value.row == 7
    recs[6]["id"] = None
    with pytest.raises(SchemaError, match="needs an id"):
        read_api_pages([_page(recs)])


def test_jsonl_wrong_type_falls_back_and_names_line(raw_records, tmp_path):
    recs = [dict(r) for r in raw_records[:100]]
    recs[63]["construction_year"] = "nineteen-sixty"
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in recs))
    with pytest.raises(SchemaError) as err:
        read_registry(p, strict=True)
    assert (err.value.field, err.value.row) == ("construction_year", 64)
    assert str(p) in str(err.value)
    with pytest.warns(RuleWarning):
        g, rejects = read_registry(p, with_rejects=True)
    assert len(g) == 100 and pd.isna(g["construction_year"].iloc[63])
    assert rejects[["row", "field", "value"]].values.tolist() == [
        [64, "construction_year", "nineteen-sixty"]
    ]
    p.write_text("\n".join(json.dumps(r) for r in recs[:10]) + "\n{broken\n")
    with pytest.raises(ParseError) as err:
        read_registry(p)
    assert err.value.row == 11


def test_csv_wrong_type_names_line_and_field(raw_records, tmp_path):
    df = pd.DataFrame(raw_records[:50])
    df["living_space"] = df["living_space"].astype(object)
    df.loc[20, "living_space"] = "big"
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(SchemaError) as err:
        read_registry(tmp_path / "bad.csv", strict=True)
    assert (err.value.field, err.value.row) == ("living_space", 22)  # header is line 1
    with pytest.warns(RuleWarning):
        g, rejects = read_registry(tmp_path / "bad.csv", with_rejects=True)
    assert len(g) == 50 and np.isnan(g["living_space"].iloc[20])
    assert rejects[["row", "field", "value", "action"]].values.tolist() == [
        [22, "living_space", "big", "nulled"]
    ]


def test_id_as_text_and_numbers_as_text_are_accepted(raw_records):
    recs = [dict(r) for r in raw_records[:10]]
    for r in recs:
        r["id"] = str(r["id"])
        r["property_key"] = int(r["property_key"])  # leading zero lost
        r["county_code"] = int(r["county_code"])
    g = read_api_pages([_page(recs)])
    assert g["property_key"].str.len().eq(9).all()
    assert g["county_code"].str.len().eq(2).all()
    assert g["id"].dtype == np.int64


def test_gdal_reads_what_we_write(small_registry, tmp_path):
    """GDAL (python3-gdal under Debian's Python) as an independent reader of the GeoPackage."""
    from system import gdal_json

    path = write_registry(small_registry, tmp_path / "r.gpkg")
    code = """
import json, sys
from osgeo import ogr, osr
ds = ogr.Open(sys.argv[1]); lyr = ds.GetLayer(0)
srs = lyr.GetSpatialRef()
pts = {}
for f in lyr:
    g = f.GetGeometryRef()
    pts[str(f.GetField('id'))] = [g.GetX(), g.GetY(), f.GetField('sweref99x'), f.GetField('sweref99y'),
                                  f.GetField('kitchen_type'), f.GetField('updated_at')]
print(json.dumps({"name": lyr.GetName(), "count": lyr.GetFeatureCount(),
                  "epsg": srs.GetAuthorityCode(None), "pts": pts}))
"""
    out = gdal_json(code, str(path))
    assert out["name"] == "residences" and out["count"] == len(small_registry)
    assert out["epsg"] == "3006"
    g = small_registry
    for i in (0, 17, len(g) - 1):
        x, y, sx, sy, kt, upd = out["pts"][str(g["id"].iloc[i])]
        assert (x, y) == (g["sweref99y"].iloc[i], g["sweref99x"].iloc[i]) == (sy, sx)
        assert upd.startswith(
            g["updated_at"].iloc[i].strftime("%Y/%m/%d").replace("/", "-")
        ) or upd.replace("/", "-").startswith(g["updated_at"].iloc[i].strftime("%Y-%m-%d"))
        exp_kt = g["kitchen_type"].iloc[i]
        assert (kt is None and pd.isna(exp_kt)) or kt == exp_kt


def test_to_canonical_is_idempotent(small_registry):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = to_canonical(pd.DataFrame(small_registry.drop(columns="geometry")))
    _assert_same(again, small_registry)


def test_empty_inputs(small_registry, tmp_path):
    (tmp_path / "e.jsonl").write_text("")
    assert len(read_registry(tmp_path / "e.jsonl")) == 0
    write_registry(small_registry.iloc[:0], tmp_path / "h.csv")
    g = read_registry(tmp_path / "h.csv")
    assert len(g) == 0 and "apartment_nr" in g.columns and g.crs.to_epsg() == 3006
