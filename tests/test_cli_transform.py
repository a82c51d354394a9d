"""The `vggeo` command as a user runs it: a real subprocess, exit codes, stdout/stderr."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vggeo

VGGEO = str(Path(sys.executable).with_name("vggeo"))
CONTROL = list(csv.DictReader(open(Path(__file__).parent / "data" / "crs_control_points.csv")))


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [VGGEO, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=120,
    )


def assert_one_line_error(r: subprocess.CompletedProcess, *fragments: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    assert r.stdout == ""


def test_version():
    r = run("--version")
    assert r.returncode == 0 and vggeo.__version__ in r.stdout


def test_help_lists_subcommands():
    r = run("--help")
    assert r.returncode == 0
    assert "transform" in r.stdout and "sample" in r.stdout


def test_transform_published_points_defaults_to_each_systems_own_order():
    rows = [r for r in CONTROL if r["source_crs"] == "EPSG:4619" and r["target_crs"] == "EPSG:3006"]
    stdin = "".join(f"{r['in_a']},{r['in_b']}\n" for r in rows)
    r = run("transform", "--from", "EPSG:4619", "--to", "SWEREF 99 TM", stdin=stdin)
    assert r.returncode == 0, r.stderr
    out = [line.split(",") for line in r.stdout.splitlines()]
    assert len(out) == len(rows)
    for (n, e), row in zip(out, rows, strict=True):
        assert len(n.split(".")[1]) >= 4 and len(e.split(".")[1]) >= 4
        assert abs(float(n) - float(row["out_a"])) <= 0.001
        assert abs(float(e) - float(row["out_b"])) <= 0.001


def test_transform_rt90_direct_default_and_helmert_option():
    rows = [r for r in CONTROL if r["source_crs"] == "EPSG:3021" and r["target_crs"] == "EPSG:3006"]
    stdin = "".join(f"{r['in_a']},{r['in_b']}\n" for r in rows)
    direct = run("transform", "--from", "RT 90 2.5 gon V", "--to", "EPSG:3006", stdin=stdin)
    helmert = run("transform", "--from", "rt90", "--to", "3006", "--route", "helmert", stdin=stdin)
    assert direct.returncode == 0 and helmert.returncode == 0
    worst_direct = worst_helmert = 0.0
    for d, h, row in zip(
        direct.stdout.splitlines(), helmert.stdout.splitlines(), rows, strict=True
    ):
        dn, de = map(float, d.split(","))
        hn, he = map(float, h.split(","))
        worst_direct = max(
            worst_direct, abs(dn - float(row["out_a"])), abs(de - float(row["out_b"]))
        )
        worst_helmert = max(
            worst_helmert, abs(hn - float(row["out_a"])), abs(he - float(row["out_b"]))
        )
    assert worst_direct <= 0.001
    assert 0.001 < worst_helmert < 0.3


def test_transform_orders_and_degrees_precision():
    r = run(
        "transform",
        "--from",
        "3006",
        "--to",
        "wgs84",
        "--in-order",
        "en",
        "--out-order",
        "lonlat",
        stdin="500000,6540052.017411\n",
    )
    assert r.returncode == 0, r.stderr
    lon, lat = r.stdout.strip().split(",")
    assert len(lon.split(".")[1]) >= 9 and len(lat.split(".")[1]) >= 9
    assert float(lon) == pytest.approx(15.0, abs=1e-9) and float(lat) == pytest.approx(
        59.0, abs=1e-9
    )


def test_transform_keeps_line_order_and_nan():
    stdin = "59.0,15.0\nnan,nan\n60.0,16.0\n"
    r = run("transform", "--from", "wgs84", "--to", "sweref99 15 00", stdin=stdin)
    out = r.stdout.splitlines()
    assert r.returncode == 0 and len(out) == 3
    assert out[1] == "nan,nan"
    assert float(out[0].split(",")[1]) == pytest.approx(150000.0, abs=1e-6)
    assert float(out[2].split(",")[0]) > float(out[0].split(",")[0])


def test_transform_empty_input_is_empty_output():
    r = run("transform", "--from", "wgs84", "--to", "3006", stdin="")
    assert r.returncode == 0 and r.stdout == ""


@pytest.mark.parametrize(
    "bad, line", [("59.0,15.0\n59.1;15.1\n", 2), ("59,15\n60,16\n61,x\n", 3), ("1,2,3\n", 1)]
)
def test_malformed_line_names_its_number(bad, line):
    r = run("transform", "--from", "wgs84", "--to", "3006", stdin=bad)
    assert_one_line_error(r, f"<stdin>:{line}")


def test_swapped_axes_refused_then_swapped_on_request():
    stdin = "6540052,500000\n500000,6540052\n"
    r = run("transform", "--from", "3006", "--to", "wgs84", stdin=stdin)
    assert_one_line_error(r, "<stdin>:2", "swapped")
    ok = run("transform", "--from", "3006", "--to", "wgs84", "--swap-axes", stdin=stdin)
    assert ok.returncode == 0 and "warning" in ok.stderr
    a, b = ok.stdout.splitlines()
    assert a == b


def test_foreign_values_refused_and_outside_area_warned():
    r = run("transform", "--from", "3006", "--to", "wgs84", stdin="6540052,500000\n100,200\n")
    assert_one_line_error(r, "<stdin>:2", "not plausible")
    w = run("transform", "--from", "wgs84", "--to", "3007", stdin="59.0,15.0\n57.7,11.97\n")
    assert w.returncode == 0 and "outside the area of use" in w.stderr and "line 1" in w.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--from", "EPSG:3857", "--to", "3006"], "EPSG code 3857"),
        (["--from", "sweref 2000", "--to", "3006"], "unknown coordinate reference system"),
        (["--from", "wgs84", "--to", "3006", "--in-order", "ne"], "axis order"),
    ],
)
def test_bad_systems_and_orders_are_one_line_errors(args, fragment):
    r = run("transform", *args, stdin="59,15\n")
    assert_one_line_error(r, fragment)


def test_usage_errors_exit_2():
    r = run("transform", "--from", "wgs84")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_crs_list_and_zone():
    r = run("crs", "list", "--json")
    import json

    codes = {row["epsg"] for row in json.loads(r.stdout)}
    assert r.returncode == 0 and {3006, 3018, 3021, 3847, 4326} <= codes
    z = run("crs", "zone", "--municipality", "2582")
    assert z.returncode == 0 and z.stdout.strip() == "EPSG:3017 SWEREF 99 21 45"
    z = run("crs", "zone", "--lat", "57.7", "--lon", "11.97")
    assert z.stdout.strip() == "EPSG:3007 SWEREF 99 12 00"
    assert_one_line_error(run("crs", "zone", "--municipality", "1480"), "no published local zone")
