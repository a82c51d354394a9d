"""``vggeo registry load|check|fetch`` and ``vggeo sample registry`` end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from vg_server import RegistryServer

from vggeo.atomic import atomic_path
from vggeo.cli import cli
from vggeo.registry.readers import read_registry
from vggeo.registry.writers import default_rejects_path, save_rejects


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
    if ext == "gpkg":  # the house numbers as JSON, marked so, as `vggeo export gpkg` writes them
        import sqlite3

        with sqlite3.connect(out) as conn:
            mime = conn.execute(
                "SELECT mime_type FROM gpkg_data_columns WHERE table_name = 'residences' "
                "AND column_name = 'number'"
            ).fetchall()
            texts = [t for (t,) in conn.execute("SELECT number FROM residences") if t]
        assert mime == [("application/json",)]
        assert texts and all(isinstance(json.loads(t), list) for t in texts)


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
    r = run("registry", "load", bad, "-o", out, "--no-progress", "--strict")
    assert r.exit_code == 2
    assert f"{bad}:42" in r.stderr and "'rooms'" in r.stderr and "many" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]
    # Without --strict one bad value does not sink the load: the row is kept, the value nulled
    # and listed with its line in the rejects file beside the output.
    r = run("registry", "load", bad, "-o", out, "--no-progress")
    assert r.exit_code == 0, r.output
    assert "800 residences" in r.stdout and "out.rejects.csv" in r.stdout
    rejects = pd.read_csv(tmp_path / "out.rejects.csv", dtype=str, keep_default_na=False)
    typed = rejects[rejects["rule"] == "wrong_type"]
    assert typed[["file", "row", "field", "value", "action"]].values.tolist() == [
        [str(bad), "42", "rooms", "many", "nulled"]
    ]
    g = read_registry(out)
    assert len(g) == 800 and np.isnan(g.loc[g["id"] == rec["id"], "rooms"]).all()


@pytest.mark.parametrize("field", ["street", "an_unknown_field"])
@pytest.mark.parametrize("form", ["jsonl", "csv"])
def test_text_with_a_nul_character_is_refused(sample_jsonl, tmp_path, field, form):
    """GDAL's drivers end a text at its first NUL: `street` in the GeoPackage read "Ga" for
    "Ga\\0tan 1", exit 0. No writer can keep such a value, so the input is refused."""
    lines = sample_jsonl.read_text().splitlines()
    rec = json.loads(lines[41])
    rec[field] = "Ga\x00tan 1"
    lines[41] = json.dumps(rec)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    if form == "csv":
        frame = pd.read_json(bad, lines=True, dtype=False)
        bad = tmp_path / "bad.csv"
        frame.to_csv(bad, index=False)
        assert b"Ga\x00tan" in bad.read_bytes()
    for ext in ("gpkg", "parquet"):
        out = tmp_path / f"out.{ext}"
        r = run("registry", "load", bad, "-o", out, "--no-progress")
        assert r.exit_code == 2, r.output
        assert f"{bad}:{42 + (form == 'csv')}" in r.stderr and repr(field) in r.stderr
        assert "NUL" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert not out.exists()


def test_strict_codes_fails(sample_jsonl, tmp_path):
    r = run("registry", "load", sample_jsonl, "-o", tmp_path / "o.parquet", "--strict-codes")
    assert r.exit_code == 2 and "kitchen_type" in r.stderr
    assert not (tmp_path / "o.parquet").exists()


def test_check_table_json_and_fail(sample_jsonl, tmp_path):
    r = run("registry", "check", sample_jsonl)
    assert r.exit_code == 1  # problems found: a script can tell
    assert "conflicting_coordinates" in r.stdout and "PROBLEMS FOUND" in r.stdout
    r = run("registry", "check", sample_jsonl, "--json", "--report", tmp_path / "rep.json")
    doc = json.loads(r.stdout)
    full = json.loads((tmp_path / "rep.json").read_text())
    n = round(800 * 0.02)
    assert (
        sum(
            doc["summary"][k]
            for k in ("conflicting_coordinates", "bad_apartment_numbers", "unknown_codes")
        )
        == n
    )
    assert (
        len(full["details"]["conflicting_coordinates"]) == doc["summary"]["conflicting_coordinates"]
    )
    assert doc["exit_code"] == 1 and doc["ok"] is False and doc["n_problems"] == n
    r = run("registry", "check", sample_jsonl, "--fail")
    assert r.exit_code == 1
    r = run("registry", "check", sample_jsonl, "--no-fail")
    assert r.exit_code == 0


def test_fetch_through_the_cli(raw_records, tmp_path):
    env = {
        "VGGEO_VALUEGUARD_USERNAME": "u-cli",
        "VGGEO_VALUEGUARD_PASSWORD": "p-cli-9911",
        "VGGEO_VALUEGUARD_PAGE_SIZE": "40",
        "VGGEO_VALUEGUARD_BACKOFF": "0.01",
    }
    with RegistryServer(raw_records, username="u-cli", password="p-cli-9911") as srv:
        env["VGGEO_VALUEGUARD_BASE_URL"] = srv.url
        out = tmp_path / "f.parquet"
        r = run(
            "registry", "fetch", "-o", out, "--criteria", "rooms_min=2", "--no-progress", env=env
        )
        assert r.exit_code == 0, r.output
        expected = {x["id"] for x in raw_records if (x["rooms"] or 0) >= 2}
        assert set(read_registry(out)["id"]) == expected
        # Several criteria after one --criteria.
        r = run(
            "registry",
            "fetch",
            "-o",
            tmp_path / "two.parquet",
            "--no-progress",
            "--criteria",
            "rooms_min=2",
            "rooms_max=3",
            env=env,
        )
        assert r.exit_code == 0, r.output
        assert set(read_registry(tmp_path / "two.parquet")["id"]) == {
            x["id"] for x in raw_records if 2 <= (x["rooms"] or 0) <= 3
        }
        assert "p-cli-9911" not in r.output
        # Unknown criterion: refused before any request.
        srv.state.log.clear()
        r = run("registry", "fetch", "-o", tmp_path / "g.parquet", "-c", "roms_min=2", env=env)
        assert r.exit_code == 2 and "roms_min" in r.stderr and srv.state.log == []
        # Incremental: a row changes on the server and is merged in by id.
        changed = dict(raw_records[5], updated_at="2030-01-01", rooms=9)
        srv.state.rows[5] = changed
        r = run(
            "registry",
            "fetch",
            "-o",
            out,
            "-c",
            "rooms_min=2",
            "--incremental",
            "--no-progress",
            env=env,
        )
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


def _edit(sample_jsonl, tmp_path, edits: dict[int, dict], name="edited.jsonl"):
    lines = sample_jsonl.read_text().splitlines()
    for k, change in edits.items():
        rec = json.loads(lines[k])
        rec.update(change)
        lines[k] = json.dumps(rec, ensure_ascii=False)
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_load_lists_rule_breakers_and_strict_refuses(sample_jsonl, tmp_path):
    src = _edit(
        sample_jsonl,
        tmp_path,
        {
            9: {"deleted": 1, "probability_deleted": 1.5},
            99: {"number": "302-12", "is_meter_address": 1},
        },
    )
    out, rej = tmp_path / "o.parquet", tmp_path / "my_rejects.jsonl"
    r = run("registry", "load", src, "-o", out, "--rejects", rej, "--no-progress")
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in rej.read_text().splitlines()]
    mine = {(x["row"], x["rule"], x["action"]) for x in lines if x["row"] == 10}
    assert mine == {
        (10, "deleted_in_registry", "kept"),
        (10, "probability_deleted_range", "nulled"),
    }
    assert not [x for x in lines if x["row"] == 100]  # the meter number is legal
    assert "deleted_in_registry 1" in r.stdout and "probability_deleted_range 1" in r.stdout
    g = read_registry(out)
    meter_id = json.loads(src.read_text().splitlines()[99])["id"]
    assert len(g) == 800 and list(g.loc[g["id"] == meter_id, "number"].iloc[0]) == [302, 12]
    # --strict: exit 2, one line naming row and field, nothing written.
    out2 = tmp_path / "strict.parquet"
    r = run("registry", "load", src, "-o", out2, "--strict", "--no-progress")
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert f"{src}:" in r.stderr and "field '" in r.stderr
    assert not out2.exists() and not (tmp_path / "strict.rejects.csv").exists()


def test_load_as_markups_does_not_apply_registry_only_rules(sample_jsonl, tmp_path):
    src = _edit(sample_jsonl, tmp_path, {3: {"deleted": 1, "updated_from": "sales"}})
    r = run(
        "registry",
        "load",
        src,
        "-o",
        tmp_path / "m.parquet",
        "--endpoint",
        "markups",
        "--no-progress",
    )
    assert r.exit_code == 0
    assert "deleted_in_registry" not in r.stdout and "updated_from" not in r.stdout


def test_check_exit_codes_and_json_counts(sample_jsonl, tmp_path):
    clean = tmp_path / "clean.jsonl"
    assert run("sample", "registry", "--n", 300, "--seed", 2, "-o", clean).exit_code == 0
    r = run("registry", "check", clean)
    assert r.exit_code == 0 and r.stdout.rstrip().endswith("OK")
    r = run("registry", "check", clean, "--json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["exit_code"] == 0 and doc["n_problems"] == 0
    assert doc["notices"]["construction_year_placeholder"] > 0  # counted, not a problem
    # Problems: exit 1, and --json carries the very counts the table shows.
    bad = _edit(sample_jsonl, tmp_path, {5: {"standard_points": 70}})
    table = run("registry", "check", bad)
    doc = json.loads(run("registry", "check", bad, "--json").stdout)
    assert table.exit_code == 1 and doc["exit_code"] == 1
    for key, count in doc["summary"].items():
        assert re.search(rf"^ [ !] {key}\s+{count}$", table.stdout, re.M), key
    assert doc["problems"]["standard_points_range"] == 1
    assert doc["n_problems"] == sum(doc["problems"].values())
    assert (
        doc["rules"]["standard_points_range"]["quotes"]["standard_points"]
        == "a number between 0-59"
    )
    # Could not check: exit 2 with one line.
    broken = tmp_path / "broken.jsonl"
    broken.write_text(clean.read_text().splitlines()[0] + "\n{not json\n")
    r = run("registry", "check", broken)
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    dup = tmp_path / "dup.jsonl"
    first = clean.read_text().splitlines()[0]
    dup.write_text(first + "\n" + first + "\n")
    assert run("registry", "check", dup).exit_code == 2


def test_fetch_special_access_exact_address_and_unreachable(raw_records, tmp_path):
    import socket
    import time

    env = {
        "VGGEO_VALUEGUARD_USERNAME": "u-cli",
        "VGGEO_VALUEGUARD_PASSWORD": "p-cli-9911",
        "VGGEO_VALUEGUARD_PAGE_SIZE": "40",
        "VGGEO_VALUEGUARD_BACKOFF": "0.01",
    }
    rows = [dict(r) for r in raw_records]
    rows[0].update(address="Torgatan 1, 65341", street="Torgatan")
    rows[1].update(address="Storgatan 1, 65341", street="Storgatan")
    with RegistryServer(rows, username="u-cli", password="p-cli-9911") as srv:
        env["VGGEO_VALUEGUARD_BASE_URL"] = srv.url
        # Special criteria need the flag; values are checked before any request.
        r = run(
            "registry", "fetch", "-o", tmp_path / "s.parquet", "-c", "SSN=202005302399", env=env
        )
        assert r.exit_code == 2 and "--special-access" in r.stderr and srv.state.log == []
        r = run(
            "registry",
            "fetch",
            "-o",
            tmp_path / "s.parquet",
            "--special-access",
            "-c",
            "sensitive_data=7",
            env=env,
        )
        assert r.exit_code == 2 and "sensitive_data" in r.stderr and srv.state.log == []
        r = CliRunner().invoke(
            cli,
            [
                "-v",
                "-v",
                "registry",
                "fetch",
                "-o",
                str(tmp_path / "s.parquet"),
                "--special-access",
                "-c",
                "SSN=-",
                "-c",
                "sensitive_data=0",
                "--no-progress",
            ],
            env=env,
            input="200530-2399\n",
            catch_exceptions=False,
        )
        assert r.exit_code == 0, r.output
        assert any(p.get("SSN") == "202005302399" for _, p in srv.state.log)
        assert "202005302399" not in r.output and "200530" not in r.output
        # address is LIKE at the API; --exact-address keeps only the address asked for.
        r = run(
            "registry",
            "fetch",
            "-o",
            tmp_path / "a.parquet",
            "-c",
            "address=Torgatan 1",
            "--exact-address",
            "--no-progress",
            env=env,
        )
        assert r.exit_code == 0, r.output
        assert read_registry(tmp_path / "a.parquet")["address"].tolist() == ["Torgatan 1, 65341"]
        assert re.search(r"\d+ inexact address matches left out", r.stdout)
    # Nothing listens: one line, at once.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env["VGGEO_VALUEGUARD_BASE_URL"] = f"http://127.0.0.1:{port}"
    env["VGGEO_VALUEGUARD_BACKOFF"] = "1"
    t0 = time.perf_counter()
    r = run("registry", "fetch", "-o", tmp_path / "n.parquet", "--no-progress", env=env)
    assert time.perf_counter() - t0 < 5
    assert r.exit_code == 2 and "cannot reach" in r.stderr and "attempt" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "n.parquet").exists()


def test_a_clean_load_leaves_no_rejects_file_and_never_a_stale_one(tmp_path):
    clean = tmp_path / "clean.jsonl"
    assert run("sample", "registry", "--n", 200, "--seed", 4, "-o", clean).exit_code == 0
    r = run("registry", "load", clean, "-o", tmp_path / "c.parquet", "--no-progress")
    assert r.exit_code == 0 and "rejects: none" in r.stdout
    assert not (tmp_path / "c.rejects.csv").exists()
    (tmp_path / "c.rejects.csv").write_text("file,row\nold,1\n")  # from an earlier, dirtier run
    r = run("registry", "load", clean, "-o", tmp_path / "c.parquet", "--overwrite", "--no-progress")
    assert r.exit_code == 0
    assert len(pd.read_csv(tmp_path / "c.rejects.csv")) == 0


def test_the_rejects_file_rules_are_library_functions(tmp_path):
    assert default_rejects_path(tmp_path / "out.parquet") == tmp_path / "out.rejects.csv"
    assert default_rejects_path(None, tmp_path / "api.jsonl") == Path("api.rejects.csv")
    assert default_rejects_path(None) == Path("registry.rejects.csv")
    none = pd.DataFrame({"row": pd.Series([], dtype="int64")})
    target = tmp_path / "r.csv"
    assert save_rejects(none, target, explicit=False) is None and not target.exists()
    assert save_rejects(none, target, explicit=True) == target and target.exists()
    assert save_rejects(none, target, explicit=False) == target  # replaced: never stale
