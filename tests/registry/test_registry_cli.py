"""``vggeo registry load|check|fetch`` and ``vggeo sample registry`` end to end."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from vg_server import RegistryServer

from vggeo.cli import cli
from vggeo.registry.readers import atomic_path, read_registry


def run(*args, env=None):
    return CliRunner().invoke(cli, list(map(str, args)), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def sample_jsonl(tmp_path_factory):
    p = tmp_path_factory.mktemp("cli") / "sample.jsonl"
    r = run("sample", "registry", "--n", 800, "--seed", 9, "--defects", 0.02, "-o", p)
    assert r.exit_code == 0, r.output
    assert "800 residences" in r.stdout
    return p


@pytest.mark.parametrize("ext", ["parquet", "gpkg", "csv", "jsonl"])
def test_load_writes_the_canonical_form(sample_jsonl, tmp_path, ext):
    out = tmp_path / f"out.{ext}"
    r = run("registry", "load", sample_jsonl, "-o", out)
    assert r.exit_code == 0, r.output
    assert "800 residences" in r.stdout and "sweref99 800" in r.stdout
    assert "kitchen_type" in r.stderr  # the injected unknown codes are warned about
    g = read_registry(out)
    assert len(g) == 800 and g.crs.to_epsg() == 3006


def test_load_refuses_to_overwrite(sample_jsonl, tmp_path):
    out = tmp_path / "o.parquet"
    out.write_text("keep me")
    r = run("registry", "load", sample_jsonl, "-o", out)
    assert r.exit_code == 2 and "--overwrite" in r.output
    assert out.read_text() == "keep me"


def test_bad_input_exit_2_names_row_field_and_writes_nothing(sample_jsonl, tmp_path):
    lines = sample_jsonl.read_text().splitlines()
    rec = json.loads(lines[41])
    rec["rooms"] = "many"
    lines[41] = json.dumps(rec)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.gpkg"
    r = run("registry", "load", bad, "-o", out, "--no-progress")
    assert r.exit_code == 2
    assert f"{bad}:42" in r.stderr and "'rooms'" in r.stderr and "many" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_strict_codes_fails(sample_jsonl, tmp_path):
    r = run("registry", "load", sample_jsonl, "-o", tmp_path / "o.parquet", "--strict-codes")
    assert r.exit_code == 2 and "kitchen_type" in r.stderr
    assert not (tmp_path / "o.parquet").exists()


def test_check_table_json_and_fail(sample_jsonl, tmp_path):
    r = run("registry", "check", sample_jsonl)
    assert r.exit_code == 0
    assert "conflicting_coordinates" in r.stdout and "PROBLEMS FOUND" in r.stdout
    r = run("registry", "check", sample_jsonl, "--json", "--report", tmp_path / "rep.json")
    doc = json.loads(r.stdout)
    full = json.loads((tmp_path / "rep.json").read_text())
    n = round(800 * 0.02)
    assert sum(doc["summary"][k] for k in ("conflicting_coordinates", "bad_apartment_numbers",
                                          "unknown_codes")) == n  # fmt: skip
    assert len(full["details"]["conflicting_coordinates"]) == doc["summary"]["conflicting_coordinates"]
    r = run("registry", "check", sample_jsonl, "--fail")
    assert r.exit_code == 1


def test_fetch_through_the_cli(raw_records, tmp_path):
    env = {"VGGEO_VALUEGUARD_USERNAME": "u-cli", "VGGEO_VALUEGUARD_PASSWORD": "p-cli-9911",
           "VGGEO_VALUEGUARD_PAGE_SIZE": "40", "VGGEO_VALUEGUARD_BACKOFF": "0.01"}  # fmt: skip
    with RegistryServer(raw_records, username="u-cli", password="p-cli-9911") as srv:
        env["VGGEO_VALUEGUARD_BASE_URL"] = srv.url
        out = tmp_path / "f.parquet"
        r = run("registry", "fetch", "-o", out, "--criteria", "rooms_min=2", "--no-progress", env=env)
        assert r.exit_code == 0, r.output
        expected = {x["id"] for x in raw_records if (x["rooms"] or 0) >= 2}
        assert set(read_registry(out)["id"]) == expected
        # Several criteria after one --criteria.
        r = run("registry", "fetch", "-o", tmp_path / "two.parquet", "--no-progress", "--criteria",
                "rooms_min=2", "rooms_max=3", env=env)  # fmt: skip
        assert r.exit_code == 0, r.output
        assert set(read_registry(tmp_path / "two.parquet")["id"]) == {
            x["id"] for x in raw_records if 2 <= (x["rooms"] or 0) <= 3}
        assert "p-cli-9911" not in r.output
        # Unknown criterion: refused before any request.
        srv.state.log.clear()
        r = run("registry", "fetch", "-o", tmp_path / "g.parquet", "-c", "roms_min=2", env=env)
        assert r.exit_code == 2 and "roms_min" in r.stderr and srv.state.log == []
        # Incremental: a row changes on the server and is merged in by id.
        changed = dict(raw_records[5], updated_at="2030-01-01", rooms=9)
        srv.state.rows[5] = changed
        r = run("registry", "fetch", "-o", out, "-c", "rooms_min=2", "--incremental",
                "--no-progress", env=env)  # fmt: skip
        assert r.exit_code == 0, r.output
        g = read_registry(out)
        assert g["id"].is_unique
        assert g.loc[g["id"] == changed["id"], "rooms"].tolist() == [9.0]
        assert len(g) == len(expected | {changed["id"]})


def test_atomic_path_leaves_nothing_on_interrupt(tmp_path):
    target = tmp_path / "x.parquet"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
