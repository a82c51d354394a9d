"""Lägenhetsnummer: floor code, floor relative to the entrance level, position (seeds 001/002)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vggeo.apartment import floor_disagreements, parse_apartment_numbers


@pytest.mark.parametrize(
    ("value", "floor_code", "relative", "position"),
    [
        (1001, 10, 0, 1),  # entrance level, first flat left of the stairs
        (1101, 11, 1, 1),  # one floor above the entrance (Lantmäteriet's example)
        ("0902", 9, -1, 2),  # one floor below, second flat clockwise
        (902, 9, -1, 2),  # the same with the leading zero lost
        (902.0, 9, -1, 2),
        (1514, 15, 5, 14),
        ("0801", 8, -2, 1),
    ],
)
def test_valid_numbers(value, floor_code, relative, position):
    out = parse_apartment_numbers(pd.Series([value], dtype=object))
    row = out.iloc[0]
    assert (row.floor_code, row.relative_floor, row.position) == (floor_code, relative, position)
    assert row.valid and pd.isna(row.problem)
    assert row.apartment_nr == f"{floor_code:02d}{position:02d}"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (1000, "position_00"),
        (12, "floor_00"),
        (5, "floor_00"),
        (12000, "out_of_range"),
        (-3, "out_of_range"),
        ("11a", "not_a_number"),
        (1101.5, "not_a_number"),
        (601, "deep_below_entrance"),
    ],
)
def test_impossible_numbers_are_flagged(value, problem):
    out = parse_apartment_numbers(pd.Series([value], dtype=object))
    assert not out["valid"].iloc[0]
    assert out["problem"].iloc[0] == problem
    assert pd.isna(out["relative_floor"].iloc[0])


def test_missing_is_neither_valid_problem_nor_value():
    out = parse_apartment_numbers(pd.array([None, 1101], dtype="Int16"))
    assert out["valid"].tolist() == [True, True]
    assert pd.isna(out["floor_code"].iloc[0]) and out["floor_code"].iloc[1] == 11


def test_vectorised_over_a_million_rows_against_digit_arithmetic():
    rng = np.random.default_rng(3)
    floors = rng.integers(7, 30, 1_000_000)
    pos = rng.integers(1, 20, 1_000_000)
    nr = floors * 100 + pos
    out = parse_apartment_numbers(pd.Series(nr))
    text = pd.Series(nr).astype(str).str.zfill(4)  # independent route: string slicing
    assert (out["floor_code"].to_numpy() == text.str[:2].astype(int).to_numpy()).all()
    assert (out["position"].to_numpy() == text.str[2:].astype(int).to_numpy()).all()
    assert (out["relative_floor"].to_numpy() == floors - 10).all()
    assert out["valid"].all()


def test_floor_disagreements():
    fd = floor_disagreements(
        [1101, 902, 1203, 1001, None], [1, -1, 1, np.nan, 2], floors=[5, 5, 1, 3, 3]
    )
    assert fd["disagrees"].tolist() == [False, False, True, False, False]
    assert fd["above_floors"].tolist() == [False, False, True, False, False]
    assert fd["difference"].iloc[2] == -1
    # A source counting the entrance level as floor 1:
    fd1 = floor_disagreements([1101, 1001], [2, 1], entrance_floor=1)
    assert not fd1["disagrees"].any()


def test_problems_without_the_parse_agree_with_the_parse():
    from vggeo.apartment import apartment_number_problems

    values = pd.Series([1101, 902, "0902", 1000, 5, 12, None, 10000, 601, "11a", 1.5, 701])
    bad, reasons = apartment_number_problems(values)
    parsed = parse_apartment_numbers(values)
    assert bad.tolist() == (~parsed["valid"]).tolist()
    assert (
        reasons.tolist() == parsed["problem"].astype(object).where(~parsed["valid"], None).tolist()
    )
