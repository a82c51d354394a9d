"""Lägenhetsnummer — the Swedish four-digit apartment number — parsed over whole columns.

The rule (Lantmäteriet, lägenhetsregistret; FORMATS.md §2): four digits; the first two are the
floor code, the entrance level is ``10``, floors above are ``11``, ``12`` …, below ``09``,
``08`` …; the last two are the position on the floor, from ``01`` left of the stairs, clockwise.
Valueguard's ``apartment_nr`` is a number, so leading zeros may be lost: ``902`` is ``0902``.

Examples
--------
>>> parse_apartment_numbers([1101, 902, "0902", 1000]).loc[:, ["floor_code", "relative_floor",
...     "position", "valid"]].to_dict("list")  # 1000: position 00 is impossible
{'floor_code': [11, 9, 9, None], 'relative_floor': [1, -1, -1, None],
 'position': [1, 2, 2, None], 'valid': [True, True, True, False]}
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = [
    "parse_apartment_numbers",
    "apartment_number_problems",
    "floor_disagreements",
    "PROBLEMS",
    "ENTRANCE_CODE",
]

#: Floor code of the entrance level.
ENTRANCE_CODE = 10
#: Lowest floor code accepted as plausible: three levels below the entrance. Deeper dwellings do
#: not occur in practice; a smaller code is far more likely a typo or a lost digit.
MIN_FLOOR_CODE = 7
#: Reasons a number is flagged, in the order they are tested (first match wins).
PROBLEMS = ("not_a_number", "out_of_range", "floor_00", "position_00", "deep_below_entrance")


def _as_numbers(values: pd.Series | ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(numbers as float, present mask, not-a-number mask) for ints, floats or digit strings."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    present = s.notna().to_numpy()
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        num = s.to_numpy(dtype=float, na_value=np.nan)
    else:
        text = s.astype("string").str.strip()
        num = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        present = present & (text.str.len().fillna(0).to_numpy() > 0)
    bad = present & (np.isnan(num) | (num != np.floor(num)))
    return num, present, bad


def _problem_codes(
    num: np.ndarray, present: np.ndarray, not_number: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(numbers as int64 with -1 for missing, problem index per row or -1) — the rule itself."""
    with np.errstate(invalid="ignore"):
        n = np.where(np.isnan(num), -1, num).astype(np.int64)
    floor_code = n // 100
    position = n % 100
    problem = np.full(len(n), -1, dtype=np.int8)
    ok = present & ~not_number
    tests = (
        not_number,
        ok & ((n < 0) | (n > 9999)),
        ok & (floor_code == 0),
        ok & (position == 0),
        ok & (floor_code > 0) & (floor_code < MIN_FLOOR_CODE),
    )
    for k in range(len(tests) - 1, -1, -1):  # reverse: the first matching test wins
        problem[tests[k]] = k
    return n, problem


def apartment_number_problems(values: pd.Series | ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(impossible, problem) for a column of apartment numbers, without building the parse.

    ``impossible`` is a bool mask; ``problem`` the reason per row (an entry of
    :data:`PROBLEMS`, None where the number is possible or missing). Same rule as
    :func:`parse_apartment_numbers`, for checking millions of rows.
    """
    num, present, not_number = _as_numbers(values)
    _, problem = _problem_codes(num, present, not_number)
    bad = present & (problem >= 0)
    reasons = np.full(len(problem), None, dtype=object)
    if bad.any():
        reasons[bad] = np.array(PROBLEMS, dtype=object)[problem[bad]]
    return bad, reasons


def parse_apartment_numbers(values: pd.Series | ArrayLike) -> pd.DataFrame:
    """Parse apartment numbers (vectorised).

    Parameters
    ----------
    values
        ``apartment_nr`` values: integers (``1101``, ``902``), floats, or digit strings
        (``"0902"``). Missing values give missing results and are not flagged.

    Returns
    -------
    DataFrame (same index) with:

    ``apartment_nr``   the number as four digits, ``"0902"`` (string; missing if invalid)
    ``floor_code``     first two digits (Int8)
    ``relative_floor`` floors above (+) or below (−) the entrance level (Int8): 10 → 0, 11 → +1
    ``position``       last two digits, place on the floor clockwise from the stairs (Int8)
    ``valid``          bool; False where a present value is impossible
    ``problem``        categorical reason (see :data:`PROBLEMS`), missing where valid
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    num, present, not_number = _as_numbers(s)
    n, problem = _problem_codes(num, present, not_number)
    floor_code = n // 100
    position = n % 100
    valid = present & (problem < 0)
    ok = valid
    text = pd.Series(n, index=s.index).astype("string").str.zfill(4).where(ok, pd.NA)
    as_int8 = lambda a: pd.array(np.where(ok, a, 0), dtype="Int8").copy()  # noqa: E731
    fc, rf, pos = as_int8(floor_code), as_int8(floor_code - ENTRANCE_CODE), as_int8(position)
    for arr in (fc, rf, pos):
        arr[~ok] = pd.NA
    return pd.DataFrame(
        {
            "apartment_nr": text,
            "floor_code": fc,
            "relative_floor": rf,
            "position": pos,
            "valid": valid | ~present,
            "problem": pd.Categorical.from_codes(problem, categories=list(PROBLEMS)),
        },
        index=s.index,
    )


def floor_disagreements(
    apartment_nr: pd.Series | ArrayLike,
    floor: pd.Series | ArrayLike,
    floors: pd.Series | ArrayLike | None = None,
    *,
    entrance_floor: float = 0.0,
    tolerance: float = 0.0,
) -> pd.DataFrame:
    """Compare the floor implied by ``apartment_nr`` with Valueguard's ``floor`` estimate.

    Parameters
    ----------
    apartment_nr, floor
        Columns of equal length. ``floor`` is Valueguard's separate estimate, which need not agree.
    floors
        Optional highest floor of the address; a number implying a floor above it is reported.
    entrance_floor
        The ``floor`` value Valueguard gives the entrance level (default 0: ``floor`` counts
        floors above the entrance, like the lägenhetsnummer). Use 1 where a source counts the
        entrance level as floor 1.
    tolerance
        Allowed absolute difference.

    Returns
    -------
    DataFrame (same index) with ``implied_floor`` (Float64), ``floor``, ``difference`` and
    ``disagrees`` (bool; False where either side is missing or the number is invalid) and
    ``above_floors`` (bool).
    """
    parsed = parse_apartment_numbers(apartment_nr)
    implied = parsed["relative_floor"].astype("Float64") + entrance_floor
    fl = pd.Series(
        np.asarray(pd.to_numeric(pd.Series(floor), errors="coerce"), dtype=float),
        index=parsed.index,
    )
    diff = fl - implied
    disagrees = (diff.abs() > tolerance).fillna(False).to_numpy(dtype=bool)
    above = np.zeros(len(parsed), dtype=bool)
    if floors is not None:
        top = pd.Series(
            np.asarray(pd.to_numeric(pd.Series(floors), errors="coerce"), dtype=float),
            index=parsed.index,
        )
        above = (implied > top).fillna(False).to_numpy(dtype=bool)
    return pd.DataFrame(
        {
            "implied_floor": implied,
            "floor": fl,
            "difference": diff,
            "disagrees": disagrees,
            "above_floors": above,
        },
        index=parsed.index,
    )
