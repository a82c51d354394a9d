"""The library behind ``vggeo registry load|check|fetch``'s output: summaries, rejects file,
check report file, fetch description."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from vggeo.registry.checks import check_file, check_registry
from vggeo.registry.client import FetchResult
from vggeo.registry.readers import read_registry
from vggeo.registry.summary import coordinate_sources, rejects_summary
from vggeo.registry.writers import update_rejects

REJECT = {
    "file": "r.csv",
    "row": 3,
    "id": 7,
    "field": "rooms",
    "rule": "bad_apartment_numbers",
    "value": "x",
    "message": "m",
}


def test_coordinate_sources_counts_every_row():
    frame = pd.DataFrame(
        {
            "coord_source": pd.Categorical(
                ["rt90", "sweref99", None, "sweref99"], categories=["sweref99", "rt90", "wgs84"]
            )
        }
    )
    assert coordinate_sources(frame) == "sweref99 2, rt90 1, none 1"
    assert coordinate_sources(frame.iloc[:0]) == "none"


def test_rejects_summary_counts_values_rows_and_rules():
    assert rejects_summary(None) == "rejects: none"
    assert rejects_summary(pd.DataFrame(columns=list(REJECT)), "r.csv") == "rejects: none → r.csv"
    two = pd.DataFrame([REJECT, {**REJECT, "field": "floor"}])
    line = rejects_summary(two, Path("out.rejects.csv"))
    assert line.startswith("rejects: 2 value(s) in 1 row(s) (")
    assert "bad_apartment_numbers 2" in line and line.endswith("→ out.rejects.csv")


def test_rejects_file_only_when_needed_and_never_stale(tmp_path):
    path = tmp_path / "x.rejects.csv"
    empty = pd.DataFrame(columns=list(REJECT))
    assert update_rejects(empty, path) is None and not path.exists()
    assert update_rejects(pd.DataFrame([REJECT]), path) == path
    assert len(pd.read_csv(path)) == 1
    assert update_rejects(empty, path) == path  # an earlier run's file is replaced, not left
    assert len(pd.read_csv(path)) == 0


def test_check_file_numbers_csv_rows_as_lines_and_writes_every_row(tmp_path, raw_records):
    rows = [dict(r) for r in raw_records[:50]]
    rows[4]["rooms"] = -3  # breaks a documented range: a problem on line 6 of the CSV
    path = tmp_path / "r.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    rep = check_file(path)
    gdf, rejects = read_registry(path, with_rejects=True)
    same = check_registry(gdf, rejects=rejects, first_row=2)
    assert rep.summary == same.summary and rep.n_rows == 50 and not rep.ok
    lines = {int(r) for df in rep.details.values() if "row" in df for r in df["row"]}
    assert 6 in lines and 5 not in lines
    out = rep.write_json(tmp_path / "report.json")
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["n_rows"] == 50 and doc["exit_code"] == 1
    assert all(len(v) == len(rep.details[k]) for k, v in doc["details"].items())


def test_fetch_result_describes_itself():
    r = FetchResult(
        output=Path("o.parquet"),
        rows=10,
        total=12,
        pages=2,
        passes=1,
        retries=3,
        resumed_from=5,
        dropped_inexact=2,
    )
    assert r.describe() == (
        "10 rows → o.parquet (2 pages, 1 pass(es), 3 retries, resumed at "
        "offset 5, 2 inexact address matches left out)"
    )
