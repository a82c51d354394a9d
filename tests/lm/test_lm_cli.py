"""``vggeo inspect``, ``vggeo read`` and ``vggeo sample delivery`` as a user runs them."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from system import gdal_json

from vggeo.cli import cli

DATA = Path(__file__).parent / "data"


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_inspect_outer_zip(bestammelse_deliveries):
    r = run("inspect", bestammelse_deliveries[1])
    assert r.exit_code == 0, r.output
    out = r.output
    for line in (
        "product:       bestammelse",
        "types:         Markreglerande bestämmelse",
        "extract type:  change",
        "crs:           EPSG:3006",
        "integrity:     ok",
        "unmapped elements: none",
    ):
        assert line in out
    assert "markreglerandebestammelse_borttag.xml" in out and "deletions:" in out
    assert "table provisions:" in out


def test_inspect_json_and_unmapped_elements():
    r = run("inspect", "--json", DATA / "example_provision.xml")
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["product"] == "bestammelse" and info["form"] == "xml"
    assert info["integrity"] == "not checked: no metadata file in this delivery"
    assert info["unmapped_elements"] == {"example_provision: Plan/attribut/framtidaelement": 1}


def test_inspect_refuses_a_delivery_that_does_not_match(bestammelse_deliveries, tmp_path, unpack):
    folder = unpack(bestammelse_deliveries[0], tmp_path / "f")
    next(folder.rglob("markreglerandebestammelse_2.xml")).unlink()
    r = CliRunner().invoke(cli, ["inspect", str(folder)])
    assert r.exit_code == 2
    assert "integrity:     FAILED" in r.output and "missing" in r.output


def test_inspect_inskrivning(inskrivning_deliveries):
    r = run("inspect", inskrivning_deliveries[2])
    assert r.exit_code == 0, r.output
    assert (
        "product:       inskrivning" in r.output and "folkbokford_person_organisation" in r.output
    )
    assert "crs:           -" in r.output


_OGR = r"""
import json, sys
from osgeo import ogr
ds = ogr.Open(sys.argv[1])
out = {}
for i in range(ds.GetLayerCount()):
    lyr = ds.GetLayer(i)
    defn = lyr.GetLayerDefn()
    srs = lyr.GetSpatialRef()
    out[lyr.GetName()] = {
        "count": lyr.GetFeatureCount(),
        "geom": ogr.GeometryTypeToName(lyr.GetGeomType()),
        "epsg": srs.GetAuthorityCode(None) if srs else None,
        "fields": [defn.GetFieldDefn(j).GetName() for j in range(defn.GetFieldCount())],
        "extent": lyr.GetExtent() if srs else None,
    }
print(json.dumps(out))
"""


@pytest.mark.gdal
def test_read_to_geopackage_checked_by_gdal(bestammelse_deliveries, tmp_path):
    out = tmp_path / "out.gpkg"
    r = run("read", bestammelse_deliveries[1], "-o", out, "--no-progress")
    assert r.exit_code == 0, r.output
    layers = gdal_json(_OGR, str(out))
    assert {"provisions", "affected_properties", "decisions", "subsets", "deletions"} <= set(layers)
    p = layers["provisions"]
    assert p["geom"] == "Multi Polygon" and p["epsg"] == "3006" and "provision_id" in p["fields"]
    x0, x1, y0, y1 = p["extent"]
    assert 200_000 < x0 < x1 < 1_000_000 and 6_000_000 < y0 < y1 < 7_800_000  # easting first
    counts = dict(line.split("\t") for line in r.output.strip().splitlines())
    assert (
        int(counts["provisions"]) == p["count"]
        and int(counts["deletions"]) == layers["deletions"]["count"] > 0
    )


def test_read_single_xml_to_parquet(tmp_path):
    out = tmp_path / "p.parquet"
    r = run("read", DATA / "example_provision.xml", "-o", out)
    assert r.exit_code == 0, r.output
    t = pq.read_table(out)
    assert t.num_rows == 2 and "provision_id" in t.column_names
    geo = json.loads(t.schema.metadata[b"geo"])
    assert geo["columns"]["geometry"]["crs"]["id"]["code"] == 3006


def test_read_inskrivning_redacts_unless_asked(inskrivning_deliveries, tmp_path):
    import pyogrio

    out = tmp_path / "i.gpkg"
    assert run("read", inskrivning_deliveries[0], "-o", out).exit_code == 0
    persons = pyogrio.read_dataframe(out, layer="persons")
    assert persons["last_name"].isna().all() and "personnummer" not in persons
    out2 = tmp_path / "i2.gpkg"
    assert run("read", inskrivning_deliveries[0], "-o", out2, "--personal-data").exit_code == 0
    persons = pyogrio.read_dataframe(out2, layer="persons")
    assert persons["last_name"].notna().all() and persons["personnummer"].notna().all()


def test_read_refuses_overwrite_and_hostile_zip(tmp_path, bestammelse_deliveries):
    out = tmp_path / "x.gpkg"
    out.write_bytes(b"keep me")
    r = CliRunner().invoke(cli, ["read", str(bestammelse_deliveries[0]), "-o", str(out)])
    assert r.exit_code == 2 and out.read_bytes() == b"keep me"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../markreglerandebestammelse_1.xml", "<r/>")
    r = CliRunner().invoke(cli, ["read", str(evil), "-o", str(tmp_path / "y.gpkg")])
    assert r.exit_code == 2 and "ZIP slip" in r.output
    assert not (tmp_path / "y.gpkg").exists() and not list(tmp_path.glob(".part-*"))


def test_read_bad_geometry_exit_2_or_kept(tmp_path):
    text = (
        (DATA / "example_provision.xml")
        .read_text()
        .replace("7237640.000 781200.000</gml:posList>", "7237641.000 781200.000</gml:posList>")
    )
    f = tmp_path / "markreglerandebestammelse_1.xml"
    f.write_text(text)
    r = CliRunner().invoke(cli, ["read", str(f), "-o", str(tmp_path / "a.gpkg")])
    assert r.exit_code == 2 and "af065380-11ca-6f58-e040-ed8f65434c76" in r.output
    r = CliRunner().invoke(
        cli, ["read", str(f), "-o", str(tmp_path / "b.gpkg"), "--keep-bad-geometry"]
    )
    assert r.exit_code == 0 and "kept af065380" in r.output


def test_sample_delivery_command(tmp_path):
    r = run(
        "sample",
        "delivery",
        "--product",
        "bestammelse",
        "--n",
        "30",
        "--changes",
        "2",
        "--seed",
        "4",
        "--crs",
        "SWEREF 99 18 00",
        "-o",
        tmp_path / "d",
    )
    assert r.exit_code == 0, r.output
    paths = [Path(p) for p in r.output.split()]
    assert len(paths) == 3 and [p.name for p in paths] == sorted(p.name for p in paths)
    r = run("inspect", "--json", paths[0])
    info = json.loads(r.output)
    assert info["crs"] == "EPSG:3011" and info["integrity"] == "ok"
    r = CliRunner().invoke(
        cli,
        [
            "sample",
            "delivery",
            "--product",
            "bestammelse",
            "--crs",
            "4326",
            "-o",
            str(tmp_path / "e"),
        ],
    )
    assert r.exit_code == 2
