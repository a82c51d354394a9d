"""The GeoPackage vector product of provision areas: other spellings read alike, nothing nulled.

The GeoPackages are written here by GDAL (pyogrio), with columns named as a delivery might name
them; what each row must become is written out by hand below, not taken from vggeo.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner

from vggeo.cli import cli
from vggeo.errors import InputError
from vggeo.lm import read_bestammelser

ID_A = "0A1B2C3D-0000-4000-8000-00000000000A"
ID_B = "0a1b2c3d-0000-4000-8000-00000000000b"


def _gpkg(
    tmp_path: Path,
    columns: dict,
    geometry: list,
    *,
    layer: str = "bestammelse",
    crs: int = 3006,
    name: str = "vp.gpkg",
) -> Path:
    path = tmp_path / name
    gdf = gpd.GeoDataFrame(pd.DataFrame(columns), geometry=geometry, crs=crs)
    pyogrio.write_dataframe(gdf, path, layer=layer, append=path.exists())
    return path


def _areas(n: int = 2) -> list:
    return [
        shapely.box(600_000 + 100 * i, 6_600_000, 600_050 + 100 * i, 6_600_050) for i in range(n)
    ]


def test_other_spellings_read_as_the_xml_reads_them(tmp_path):
    path = _gpkg(
        tmp_path,
        {
            # ids with spaces and capitals: trimmed and lower-cased, as every table's ids are
            "ObjektIdentitet": [f"  {ID_A} ", ID_B],
            "Bestämmelsetyp": ["Övrig bestämmelse", "Utredning m.m."],
            "objekt_version": ["3", " 4 "],
            "KOMMUNKOD": ["180", "0181"],
            "Aktbeteckning": ["01-ABC-123", " 0181K-P1 "],
            "STATUS": ["gällande", "Gällande"],
            "Senaste ändring, allmänna delen": ["20190102", "2020-03-04"],
            "extra": ["x", None],
        },
        _areas(),
    )
    got = read_bestammelser(path)
    p = got.provisions
    assert p["provision_id"].tolist() == [ID_A.lower(), ID_B]
    assert p["provision_type"].tolist() == ["ovrig_bestammelse", "utredning"]
    assert p["object_version"].tolist() == [3, 4]
    assert p["municipality"].tolist() == ["0180", "0181"]
    assert p["designation"].tolist() == ["01-ABC-123", "0181K-P1"]
    assert p["status"].tolist() == ["gällande", "Gällande"]
    assert p["last_changed"].tolist() == [pd.Timestamp("2019-01-02"), pd.Timestamp("2020-03-04")]
    assert p.geometry.geom_type.tolist() == ["MultiPolygon", "MultiPolygon"]
    assert got.subsets["provision_id"].tolist() == [ID_A.lower(), ID_B]
    # a column no one maps is reported with its count of values, as unmapped XML elements are
    assert dict(got.unmapped) == {"bestammelse/extra": 1}


def test_a_layer_named_after_a_type_gives_it_and_3d_becomes_2d(tmp_path):
    box = shapely.force_3d(_areas(1)[0], 12.5)
    path = _gpkg(tmp_path, {"objektidentitet": [ID_B]}, [box], layer="Naturvårdsbestämmelse")
    p = read_bestammelser(path).provisions
    assert p["provision_type"].tolist() == ["naturvardsbestammelse"]
    assert not p.geometry.has_z.any()
    assert shapely.equals(p.geometry.iloc[0], shapely.MultiPolygon([_areas(1)[0]]))


def test_what_vggeo_writes_reads_back(tmp_path):
    columns = {
        "provision_id": [ID_B],
        "provision_type": ["plan"],
        "object_version": [2],
        "municipality": ["0180"],
        "last_changed": pd.to_datetime(["2021-05-06"]),
    }
    p = read_bestammelser(_gpkg(tmp_path, columns, _areas(1))).provisions
    assert p[["provision_id", "provision_type", "object_version", "municipality"]].iloc[
        0
    ].tolist() == [ID_B, "plan", 2, "0180"]
    assert p["last_changed"].iloc[0] == pd.Timestamp("2021-05-06")


@pytest.mark.parametrize(
    ("columns", "geometry", "words"),
    [
        ({"typ": ["plan", "planområde"]}, None, [":2, element", "planområde", "provision type"]),
        ({"typ": ["plan", None]}, None, [":2, element", "no provision type"]),
        ({"typ": ["plan", "plan"], "objektversion": ["1", "ett"]}, None, ["'ett'", "integer"]),
        ({"typ": ["plan", "plan"], "kommun": ["0180", "Stockholm"]}, None, ["four digits"]),
        (
            {"typ": ["plan", "plan"], "namn": ["a", "b"], "plannamn": ["a", "b"]},
            None,
            ["'namn'", "'plannamn'"],
        ),
        (
            {"typ": ["plan", "plan"]},
            [shapely.box(0, 0, 1, 1), shapely.LineString([(0, 0), (1, 1)])],
            [":2, element", "LineString", "area"],
        ),
        (
            {"typ": ["plan", "plan"], "objektidentitet": [ID_A, ID_A.lower()]},
            None,
            [ID_A.lower(), "2 times"],
        ),
        # a column nobody matched while one that every provision has is missing: refused
        (
            {"typ": ["plan", "plan"], "tillstand": ["gällande", "upphävd"]},
            None,
            ["status", "'tillstand'", "spelt otherwise"],
        ),
    ],
    ids=[
        "unknown-type",
        "no-type",
        "version",
        "kommun",
        "two-columns",
        "line",
        "twice",
        "misspelt",
    ],
)
def test_refused_not_nulled(tmp_path, columns, geometry, words):
    path = _gpkg(tmp_path, {"objektidentitet": [ID_A, ID_B], **columns}, geometry or _areas())
    before = path.read_bytes()
    with pytest.raises(InputError) as err:
        read_bestammelser(path)
    message = str(err.value)
    assert str(path) in message
    for w in words:
        assert w in message, message
    assert path.read_bytes() == before


def test_missing_id_refused_and_the_cli_says_so_in_one_line(tmp_path):
    path = _gpkg(tmp_path, {"objektidentitet": [ID_A, "  "], "typ": ["plan", "plan"]}, _areas())
    with pytest.raises(InputError, match="objektidentitet") as err:
        read_bestammelser(path)
    assert err.value.row == 2 and err.value.element == "bestammelse"
    out = tmp_path / "out.gpkg"
    r = CliRunner().invoke(cli, ["read", str(path), "-o", str(out), "--no-progress"])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "objektidentitet" in lines[0] and "Traceback" not in r.stderr
    assert f"{path}:2" in lines[0] and "bestammelse" in lines[0]
    assert not out.exists()


def test_the_cli_reads_the_vector_product_and_says_what_it_did_not_map(tmp_path):
    path = _gpkg(
        tmp_path,
        {
            "objektidentitet": [ID_A, ID_B],
            "typ": ["plan", "fornlämning"],
            "objektversion": [1, 2],
            "kommun": ["0180", "0180"],
            "aktbeteckning": ["a", "b"],
            "status": ["gällande", "gällande"],
            "färg": ["röd", "blå"],
        },
        _areas(),
        crs=3011,  # a local zone: the output is EPSG:3006
    )
    out = tmp_path / "out.parquet"
    r = CliRunner().invoke(cli, ["read", str(path), "-o", str(out), "--no-progress"])
    assert r.exit_code == 0, r.stderr
    assert "provisions\t2" in r.stdout
    assert "2 values were not mapped (1 columns)" in r.stderr and "färg" in r.stderr
    back = gpd.read_parquet(out)  # geopandas reads what vggeo wrote
    assert back.crs.to_epsg() == 3006 and len(back) == 2
    assert back["provision_type"].tolist() == ["plan", "fornlamning"]


@pytest.mark.filterwarnings("ignore:GPKG. bad application_id")
def test_not_a_geopackage_is_one_line(tmp_path):
    path = tmp_path / "broken.gpkg"
    path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    r = CliRunner().invoke(cli, ["read", str(path), "-o", str(tmp_path / "o.gpkg")])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "broken.gpkg" in lines[0] and "bug" not in lines[0], r.stderr
