"""vggeo.pairs: ``a,b`` lines in, transformed lines out — the library behind ``vggeo transform``.

Oracle: Lantmäteriet's published control points (tests/data/crs_control_points.csv).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from vggeo.errors import InputError, SwappedAxesError
from vggeo.pairs import parse_pairs, transform_lines

CONTROL = [
    r
    for r in csv.DictReader(
        open(Path(__file__).parent / "data" / "crs_control_points.csv", encoding="utf-8")
    )
    if (r["source_crs"], r["target_crs"]) == ("EPSG:4619", "EPSG:3006")
]


def test_control_points_line_by_line_with_blank_lines_kept():
    text = (
        "\n".join(f"{r['in_a']},{r['in_b']}" for r in CONTROL[:3])
        + "\n\n"
        + f"{CONTROL[3]['in_a']},{CONTROL[3]['in_b']}\n"
    )
    out = transform_lines(text, src="EPSG:4619", dst="EPSG:3006")
    assert len(out.lines) == 5 and out.lines[3] == "" and out.warnings == []
    for line, row in zip(out.lines[:3] + out.lines[4:], CONTROL[:4], strict=True):
        n, e = (float(v) for v in line.split(","))
        assert abs(n - float(row["out_a"])) <= 0.001 and abs(e - float(row["out_b"])) <= 0.001
    assert out.text.endswith("\n") and out.text.count("\n") == 5


def test_degrees_get_ten_decimals_and_orders_are_honoured():
    row = CONTROL[0]
    out = transform_lines(
        f"{row['out_b']},{row['out_a']}", src=3006, dst=4326, in_order="en", out_order="lonlat"
    )
    lon, lat = out.lines[0].split(",")
    assert len(lat.split(".")[1]) == 10
    assert (
        abs(float(lat) - float(row["in_a"])) < 2e-8 and abs(float(lon) - float(row["in_b"])) < 4e-8
    )


def test_errors_name_the_line():
    with pytest.raises(InputError) as info:
        parse_pairs("59,15\n\n59;15\n", source="in.txt")
    assert info.value.row == 3 and info.value.file == "in.txt"
    with pytest.raises(SwappedAxesError) as info:
        transform_lines("\n500000,6540052\n", src=3006, dst=4326)
    assert info.value.row == 2


def test_swap_on_request_and_outside_area_are_warnings():
    out = transform_lines("500000,6540052", src=3006, dst=4326, swap=True)
    assert any("swap" in w.lower() for w in out.warnings)
    # Skåne (13.0 E) is far outside SWEREF 99 23 15's band.
    out = transform_lines("55.6,13.0", src=4326, dst=3018)
    assert any("outside the area of use" in w and "line 1" in w for w in out.warnings)
    assert transform_lines("55.6,13.0", src=4326, dst=3018, check=False).warnings == []


def test_empty_text_is_empty_output():
    assert transform_lines("", src=3006, dst=4326).text == ""
