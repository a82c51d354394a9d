"""The QGIS-ready GeoPackage, checked by GDAL's validator, by GDAL itself and by QGIS itself."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pyogrio
import pyproj
import pytest
from click.testing import CliRunner
from system import gdal_json, run_system_python

from vggeo.cli import cli
from vggeo.exports import gpkg as gpkg_mod
from vggeo.exports import styles, write_gpkg

PROBE = Path(__file__).with_name("qgis_probe.py")


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, store_gpkg) -> Path:
    out = tmp_path_factory.mktemp("gpkg") / "vggeo.gpkg"
    r = run(
        "export",
        "gpkg",
        "--store",
        str(store_gpkg),
        "-o",
        str(out),
        "--crs",
        "SWEREF 99 18 00",
        "--no-progress",
    )
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def qgis_view(exported) -> dict:
    r = run_system_python(
        PROBE.read_text(), str(exported), module="qgis.core", packages="python3-qgis"
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout[r.stdout.index("{") :])


@pytest.mark.gdal
def test_gdal_validator_accepts(exported):
    r = run_system_python(
        "import sys; from osgeo_utils.samples import validate_gpkg as v; "
        "sys.exit(v.main(['validate_gpkg.py', sys.argv[1]]))",
        str(exported),
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.qgis
def test_qgis_loads_every_layer_valid_with_counts_and_crs(qgis_view, contract_tables):
    layers = qgis_view["layers"]
    prov = contract_tables["provisions"]
    expected = {
        "residences": len(contract_tables["residences"]),
        "provisions": len(prov),
        "affected_properties": len(contract_tables["affected_properties"]),
        "decisions": len(contract_tables["decisions"]),
    }
    for t, n in prov["provision_type"].astype(str).value_counts().items():
        expected[f"provisions_{t}"] = n
    assert {k: v["count"] for k, v in layers.items() if k != "layer_styles"} == expected
    for name, layer in layers.items():
        assert layer["valid"], name
        if layer["spatial"]:
            assert layer["crs"] == "EPSG:3011", name  # SWEREF 99 18 00, as asked


@pytest.mark.qgis
def test_qgis_applies_default_styles(qgis_view, contract_tables):
    layers = qgis_view["layers"]
    pal = styles.palette()
    res = layers["residences"]["renderer"]
    assert res["type"] == "categorizedSymbol" and res["attribute"] == "home_type"
    cats = {c["value"]: c for c in res["categories"]}
    present = set(contract_tables["residences"]["home_type"].dropna().astype(str))
    assert set(cats) == present | {""}  # "" = QGIS' catch-all category
    for value in present:
        assert cats[value]["color"] == pal["home_type"][value]["color"]
        assert cats[value]["label"] == pal["home_type"][value]["label"]

    prov = contract_tables["provisions"]
    rules = layers["provisions"]["renderer"]
    assert rules["type"] == "RuleRenderer"
    by_label = {r["label"]: r for r in rules["rules"]}
    for t, group in prov.groupby(prov["provision_type"].astype(str)):
        rule = by_label[pal["provision_type"][t]["label"]]
        assert rule["filter"] == f"\"provision_type\" = '{t}'"
        assert {c["label"] for c in rule["children"]} == set(group["status"])
    assert len(rules["rules"]) == prov["provision_type"].nunique() + 1  # + "Other"
    assert "Naturvårdsbestämmelse" in rules["legend"]
    # Per-type layers carry only their own type.
    plan = layers["provisions_plan"]["renderer"]["rules"]
    assert [r["label"] for r in plan][0].startswith("Plan")
    assert len(plan) == 2
    # Aliases from gpkg_data_columns' twin in the QML.
    assert layers["provisions"]["aliases"]["designation"] == "Aktbeteckning"
    assert layers["affected_properties"]["aliases"]["register_unit_id"] == "Registerenhet"
    assert all(v["styles_in_db"] >= 1 for v in layers.values() if v["valid"])


@pytest.mark.qgis
def test_qgis_opens_embedded_project_with_relation(qgis_view, contract_tables):
    project = qgis_view["project"]
    assert project["read"] and project["crs"] == "EPSG:3011"
    layers = project["layers"]
    assert set(layers) == set(qgis_view["layers"]) - {"layer_styles"}
    assert all(v["valid"] for v in layers.values())
    assert layers["residences"]["renderer"] == "categorizedSymbol"
    assert layers["provisions"]["renderer"] == "RuleRenderer"
    assert layers["provisions"]["visible"] and not layers["provisions_plan"]["visible"]
    rels = {r["child"]: r for r in project["relations"]}
    assert set(rels) == {"affected_properties", "decisions"}
    for child, rel in rels.items():
        assert rel["valid"] and rel["parent"] == "provisions"
        # QGIS' "related features" agree with the table, provision by provision.
        expect = contract_tables[child].groupby("provision_id").size().to_dict()
        assert rel["related"] == expect


@pytest.mark.gdal
def test_gdal_sees_relationship_and_field_docs(exported):
    rel = gdal_json(
        "import json, sys; from osgeo import gdal; ds = gdal.OpenEx(sys.argv[1]); "
        "out = {n: [ds.GetRelationship(n).GetLeftTableName(), ds.GetRelationship(n).GetRightTableName(),"
        " ds.GetRelationship(n).GetLeftTableFields(), ds.GetRelationship(n).GetRightTableFields()]"
        " for n in (ds.GetRelationshipNames() or [])}; print(json.dumps(out))",
        str(exported),
    )
    assert ["provisions", "affected_properties", ["provision_id"], ["provision_id"]] in rel.values()
    assert ["provisions", "decisions", ["provision_id"], ["provision_id"]] in rel.values()
    with sqlite3.connect(exported) as conn:
        docs = dict(
            conn.execute(
                "SELECT column_name, title FROM gpkg_data_columns WHERE table_name = 'residences'"
            ).fetchall()
        )
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        styles_rows = conn.execute(
            "SELECT f_table_name, useAsDefault, styleSLD FROM layer_styles"
        ).fetchall()
    assert docs["home_type"] == "Bostadstyp"
    assert len({r[0] for r in styles_rows}) == len(styles_rows)  # one default per layer
    assert all(r[1] == 1 and "StyledLayerDescriptor" in r[2] for r in styles_rows)


def test_coordinates_transformed_exactly(exported, contract_tables):
    res = contract_tables["residences"]
    out = pyogrio.read_dataframe(exported, layer="residences")
    assert len(out) == len(res)
    out = out.set_index("id").loc[res["id"]]
    ok = res.geometry.notna().to_numpy()
    # Independent oracle: PROJ directly (3006 → 3011), not vggeo.crs.
    tr = pyproj.Transformer.from_crs(3006, 3011, always_xy=True)
    ex, ey = tr.transform(res.geometry.x.to_numpy()[ok], res.geometry.y.to_numpy()[ok])
    np.testing.assert_allclose(out.geometry.x.to_numpy()[ok], ex, atol=1e-6, rtol=0)
    np.testing.assert_allclose(out.geometry.y.to_numpy()[ok], ey, atol=1e-6, rtol=0)
    assert out.geometry.isna().to_numpy()[~ok].all()
    assert pyogrio.read_info(exported, layer="residences")["crs"] == "EPSG:3011"


def test_labels_beside_codes(exported):
    prov = pyogrio.read_dataframe(exported, layer="provisions")
    cols = list(prov.columns)
    assert cols.index("provision_type_label") == cols.index("provision_type") + 1
    assert (
        prov.loc[prov["provision_type"] == "naturvardsbestammelse", "provision_type_label"]
        == "Naturvårdsbestämmelse"
    ).all()


def test_layers_option_and_default_crs(tmp_path, store_gpkg):
    out = tmp_path / "two.gpkg"
    r = run(
        "export",
        "gpkg",
        "--store",
        str(store_gpkg),
        "-o",
        str(out),
        "--layers",
        "residences,provisions_plan",
        "--no-progress",
    )
    assert r.exit_code == 0, r.output
    names = {n for n, _ in pyogrio.list_layers(out)}
    assert names == {"residences", "provisions_plan", "layer_styles"}
    assert pyogrio.read_info(out, layer="residences")["crs"] == "EPSG:3006"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--layers", "residences,homes"], "unknown layer(s) homes"),
        (["--crs", "EPSG:9999"], "unsupported EPSG code 9999"),
        (["--crs", "Gauss-Krüger"], "unknown coordinate reference system"),
    ],
)
def test_bad_requests_write_nothing(tmp_path, store_gpkg, args, message):
    out = tmp_path / "bad.gpkg"
    r = run("export", "gpkg", "--store", str(store_gpkg), "-o", str(out), *args)
    assert r.exit_code == 2
    assert message in r.output
    assert list(tmp_path.iterdir()) == []


def test_store_without_tables_and_missing_store(tmp_path):
    from exports.frames import write_store

    empty = write_store(tmp_path / "other.gpkg", {})
    out = tmp_path / "x.gpkg"
    r = run("export", "gpkg", "--store", str(empty), "-o", str(out))
    assert r.exit_code == 2 and "nothing to export" in r.output
    r = run("join", "--store", str(empty), "-o", str(tmp_path / "j.csv"))
    assert r.exit_code == 2 and "lacks table(s) residences, provisions" in r.output
    missing = tmp_path / "nope.gpkg"
    r = run("export", "gpkg", "--store", str(missing), "-o", str(out))
    assert r.exit_code == 2 and "no store at" in r.output, r.output
    assert not missing.exists() and not out.exists()
    assert {p.name for p in tmp_path.iterdir()} == {"other.gpkg"}


def test_existing_output_kept_without_overwrite(tmp_path, store_gpkg):
    out = tmp_path / "keep.gpkg"
    out.write_bytes(b"precious")
    r = run("export", "gpkg", "--store", str(store_gpkg), "-o", str(out))
    assert r.exit_code == 2 and "--overwrite" in r.output
    assert out.read_bytes() == b"precious"


def test_interrupted_export_leaves_nothing(tmp_path, contract_tables, monkeypatch):
    out = tmp_path / "old.gpkg"
    out.write_bytes(b"previous export")

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(gpkg_mod, "_write_styles", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_gpkg(contract_tables, out, overwrite=True)
    assert out.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["old.gpkg"]


@pytest.mark.gdal
def test_full_registry_fields_export(tmp_path):
    """Every Valueguard field (vggeo.sample.registry), through a real store, into the GeoPackage."""
    from exports.frames import write_store

    from vggeo.sample.registry import generate_registry

    reg = generate_registry(400, seed=3)
    store = write_store(tmp_path / "s.gpkg", {"residences": reg})
    out = tmp_path / "reg.gpkg"
    r = run("export", "gpkg", "--store", str(store), "-o", str(out), "--crs", "rt90")
    assert r.exit_code == 0, r.output
    v = run_system_python(
        "import sys; from osgeo_utils.samples import validate_gpkg as v; "
        "sys.exit(v.main(['validate_gpkg.py', sys.argv[1]]))",
        str(out),
    )
    assert v.returncode == 0, v.stdout + v.stderr
    back = pyogrio.read_dataframe(out, layer="residences").set_index("id").loc[reg["id"]]
    assert pyogrio.read_info(out, layer="residences")["crs"] == "EPSG:3021"
    assert set(reg.columns) - {"geometry", "id"} <= set(back.columns)
    # Lists (house numbers) as GeoPackage JSON text, dates and codes unchanged.
    with sqlite3.connect(out) as conn:
        text = dict(conn.execute("SELECT id, number FROM residences").fetchall())
        mime = conn.execute(
            "SELECT mime_type FROM gpkg_data_columns WHERE table_name = "
            "'residences' AND column_name = 'number'"
        ).fetchone()[0]
    assert mime == "application/json"
    got = [None if text[i] is None else json.loads(text[i]) for i in reg["id"].tolist()]
    want = [None if v is None else list(v) for v in reg["number"].tolist()]
    assert got == want
    assert (back["updated_at"].dt.date.to_numpy() == reg["updated_at"].dt.date.to_numpy()).all()
    assert (back["home_type"].to_numpy() == reg["home_type"].astype(str).to_numpy()).all()
    labels = back["type_code_label"].dropna()
    assert len(labels) > 0 and labels.isin(set(gpkg_mod.TYPE_CODE_LABELS.values())).all()


@pytest.mark.parametrize("crs", ["EPSG:3006", "rt90"])
def test_times_before_1970_keep_their_milliseconds(tmp_path, crs):
    """GDAL's Arrow writer turns a time before 1970 in the last second of a minute with
    milliseconds (one in sixty of them) into the next whole minute; the export rewrites those,
    in every batch. Oracle: pandas' own formatting of the frame's times, and GDAL's reading."""
    import pandas as pd

    from vggeo.sample.registry import generate_registry

    reg = generate_registry(300, seed=5)
    rng = np.random.default_rng(5)
    ms = rng.integers(-2 * 10**12, 10**12, len(reg))
    ms[:4] = [-1, -999, -2 * 10**12 + 59_728 - (-2 * 10**12) % 60_000, 10**12 + 59_500]
    ms[150] = -60_001 - 272  # …58:59.727 in a later batch
    reg["updated_at"] = pd.to_datetime(ms, unit="ms")
    want = reg["updated_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").str[:-4] + "Z"
    hit = (ms < 0) & (ms % 60_000 >= 59_000) & (ms % 1000 != 0)
    assert hit.sum() >= 5
    out = tmp_path / "t.gpkg"
    write_gpkg({"residences": reg}, out, crs=crs, batch_size=64)
    with sqlite3.connect(out) as conn:
        got = dict(conn.execute("SELECT id, updated_at FROM residences").fetchall())
    texts = [got[i] for i in reg["id"].tolist()]
    assert texts == want.tolist()
    back = pyogrio.read_dataframe(out, layer="residences", columns=["id", "updated_at"])
    back = back.set_index("id").loc[reg["id"], "updated_at"].dt.tz_localize(None)
    assert (back.to_numpy() == reg["updated_at"].to_numpy()).all()


def test_lists_of_a_frame_written_in_many_batches(tmp_path):
    """A frame larger than a batch is written from slices; a sliced list column (house numbers
    with nulls) used to fail in Arrow ("Null bitmap with offsets slice not supported")."""
    import pandas as pd

    from vggeo.sample.registry import generate_registry

    reg = generate_registry(300, seed=6)
    reg.loc[reg.index[70], "number"] = None
    out = tmp_path / "t.gpkg"
    write_gpkg({"residences": reg}, out, crs="rt90", batch_size=64)
    with sqlite3.connect(out) as conn:
        got = dict(conn.execute("SELECT id, number FROM residences").fetchall())
    want = [None if v is None or v is pd.NA else list(v) for v in reg["number"].tolist()]
    assert [None if got[i] is None else json.loads(got[i]) for i in reg["id"]] == want
    assert want[70] is None
