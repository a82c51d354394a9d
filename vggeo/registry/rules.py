"""The documented rules of Valueguard's field list: each quoted, each checked over whole columns.

Every rule a value can break is declared once in :data:`RULES`, with the text that documents it
**quoted word for word** from its source (Valueguard's field list, seed 000, unless ``source``
names another) — ``tests/registry`` checks each quote against the source. Code lists are the
rules of the ``code`` fields; their quotes live in :mod:`vggeo.codes`.

Two severities:

``violation``
    The value breaks a documented rule. A load keeps the row and either **nulls** the value
    (``action="null"``: a value that cannot mean what the field says, e.g. a probability of
    1.5) or **keeps** it flagged (``action="keep"``: the value means something, e.g.
    ``deleted = 1``, or two fields disagree and either may be the wrong one). Either way the row
    is listed in the rejects with its row number, the original value and the rule; ``strict``
    refuses the whole input instead (:class:`~vggeo.errors.RuleError`, exit code 2).
``notice``
    A documented quirk worth counting but not an error (``construction_year`` 1909/1929 used for
    "unknown", a ``floor`` estimate that differs from the apartment number's floor code …).
    ``vggeo registry check`` counts them; they never make a load fail or a check exit 1.

Everything here is vectorised (numpy / pyarrow compute): no Python loop over rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vggeo.apartment import apartment_number_problems, floor_disagreements
from vggeo.codes import CODE_LISTS
from vggeo.registry.fields import FIELDS, field
from vggeo.registry.writers import _arrow_array

__all__ = [
    "Rule",
    "RULES",
    "Finding",
    "rule",
    "rules_of",
    "row_rules",
    "address_rules",
    "notices",
    "normalise_owner_ids",
    "normalise_postal_codes",
    "valid_organisation_numbers",
    "construction_year_placeholder",
    "kommunkod",
    "COUNTY_CODES",
    "PLACEHOLDER_YEARS",
    "HOUSE_TYPES",
    "ENDPOINTS_ALL",
]

ENDPOINTS_ALL = ("registry", "markups", "valuations")

#: The 21 county codes (länskoder) in use since 1998 (Statistics Sweden, SCB). Not in seed 000,
#: which only says "County code"; a code outside this list cannot be joined to anything.
COUNTY_CODES = (
    "01",
    "03",
    "04",
    "05",
    "06",
    "07",
    "08",
    "09",
    "10",
    "12",
    "13",
    "14",
    "17",
    "18",
    "19",
    "20",
    "21",
    "22",
    "23",
    "24",
    "25",
)

#: ``construction_year`` values Lantmäteriet uses for "unknown": houses 1909, flats 1929.
PLACEHOLDER_YEARS = {"house": 1909, "flat": 1929}
#: Home types that are houses for the 1909 placeholder (every documented type but the flat and
#: "okänd"); a row of unknown type takes either placeholder.
HOUSE_TYPES = ("radhus", "kedjehus", "villa", "lantbruk", "småhus övriga", "lantbruk övriga")
#: Valueguard's first information on person_registered (seed 000).
FIRST_PERSON_INFORMATION = np.datetime64("2020-11-16", "ms")

_SEED = "Valueguard, Residential Registry, field list (seed 000)"
_LM = "Lantmäteriet, Contents of the register — lägenhetsregistret (seed 001)"


@dataclass(frozen=True)
class Rule:
    """One documented rule.

    Attributes
    ----------
    id
        Stable name, used in rejects, summaries and ``--json`` output.
    kind
        ``type``, ``value_set``, ``range``, ``format``, ``length``, ``cross_field``,
        ``uniqueness`` or ``coordinates``.
    severity
        ``violation`` or ``notice`` (see the module docstring).
    action
        For violations: ``null`` (the value is removed, the original kept in the rejects) or
        ``keep`` (kept, flagged). ``none`` for notices.
    quotes
        field → the documenting text, word for word.
    summary
        The rule in one line of our words (the reason given in rejects).
    source
        Where the quotes come from.
    endpoints
        API endpoints whose rows the rule applies to (``registry``-only rules do not hold for
        markups, which carry deleted objects and other update sources).
    """

    id: str
    kind: str
    severity: str
    action: str
    quotes: Mapping[str, str]
    summary: str
    source: str = _SEED
    endpoints: tuple[str, ...] = ENDPOINTS_ALL

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.quotes)

    def quote(self, field_name: str | None = None) -> str:
        """The quote for ``field_name`` (the first one by default)."""
        return self.quotes[field_name] if field_name else next(iter(self.quotes.values()))


def _type_quotes() -> dict[str, str]:
    return {f.name: f"{f.name} {f.source_type}" for f in FIELDS}


def _length_quotes() -> dict[str, str]:
    return {
        f.name: f"{f.name} {f.source_type}"
        for f in FIELDS
        if f.kind == "string"
        and _max_length(f.source_type) is not None
        and f.name not in ("owner_id", "postal_code")
    }


def _max_length(source_type: str) -> int | None:
    m = re.fullmatch(r"(?:var)?char\((\d+)\)", source_type)
    return int(m.group(1)) if m else None


def _code_quotes() -> dict[str, str]:
    return {f.name: CODE_LISTS[f.codes or f.name].quote for f in FIELDS if f.kind == "code"}


def _build_rules() -> dict[str, Rule]:
    r = [
        Rule(
            "wrong_type", "type", "violation", "null", _type_quotes(), "not of the documented type"
        ),
        Rule(
            "unknown_codes",
            "value_set",
            "violation",
            "keep",
            _code_quotes(),
            "outside the documented code list",
        ),
        Rule(
            "deleted_in_registry",
            "value_set",
            "violation",
            "keep",
            {"deleted": "OBS! This registry only contains objects with deleted 0 or 2."},
            "deleted = 1 in the registry, which holds only 0 (not deleted) and 2 (maybe deleted)",
            endpoints=("registry",),
        ),
        Rule(
            "updated_from_public_data",
            "value_set",
            "violation",
            "keep",
            {"updated_from": "OBS! Only public_data in this registry!"},
            "an update source other than public_data in the registry",
            endpoints=("registry",),
        ),
        Rule(
            "probability_deleted_range",
            "range",
            "violation",
            "null",
            {
                "probability_deleted": "probability_deleted decimal(3,2) 0.00 sometimes we know "
                "3/4 out of a group of homes are deleted, but we do not "
                "know which 3. Then all get 0.75 here"
            },
            "a probability is 0.00–1.00 with two decimals (decimal(3,2))",
        ),
        Rule(
            "standard_points_range",
            "range",
            "violation",
            "null",
            {"standard_points": "a number between 0-59"},
            "standard points are 0–59",
        ),
        Rule(
            "owner_id_format",
            "format",
            "violation",
            "null",
            {"owner_id": "owner_id char(11) 769613-3375 organizational number"},
            "an organisation number is NNNNNN-NNNN with a valid check digit (Luhn)",
        ),
        Rule(
            "postal_code_format",
            "format",
            "violation",
            "null",
            {"postal_code": "postal_code varchar(7) 65341 postal code"},
            "a Swedish postal code is five digits (written 65341 or 653 41)",
        ),
        Rule(
            "code_format",
            "format",
            "violation",
            "null",
            {
                "county_code": "county_code varchar(2) 05 County code",
                "municipality_code": "municipality_code varchar(2) 13 Municipality code",
                "parish_code": "parish_code varchar(2) 02 Parish code",
                "property_key": "property_key int(8) 170053749 unique id for all properties",
            },
            "county, municipality and parish codes are two digits; property_key at most nine",
        ),
        Rule(
            "county_code_known",
            "value_set",
            "violation",
            "keep",
            {"county_code": "county_code varchar(2) 05 County code"},
            "not one of Sweden's 21 county codes (SCB: 01, 03–10, 12–14, 17–25)",
        ),
        Rule(
            "text_length",
            "length",
            "violation",
            "keep",
            _length_quotes(),
            "longer than the documented varchar/char length",
        ),
        Rule(
            "house_nr_min",
            "range",
            "violation",
            "null",
            {"house_nr": "The numbering is for each building on the property with 1, 2 etc."},
            "building numbers start at 1",
            source=_LM,
        ),
        Rule(
            "non_negative",
            "range",
            "violation",
            "null",
            {
                "living_space": "living_space double 137 area of residence in sqm",
                "apartment_area": "apartment_area smallint(4) 137 area of residence in sqm",
                "living_area": "living_area smallint(5) 130 area of residence in sqm",
                "ancillary_area": "ancillary_area smallint(5) 40 ancillary area in sqm",
                "plot_area": "plot_area int(9) 896 area of the plot belonging to the residence in "
                "sqm",
                "rooms": "rooms double 5 number of rooms for areas above 7sqm",
            },
            "areas and room counts cannot be negative",
        ),
        Rule(
            "floor_above_floors",
            "cross_field",
            "violation",
            "keep",
            {"floor": "floors double 2 the highest floor on the address"},
            "floor is above floors, the highest floor on the address",
        ),
        Rule(
            "bad_apartment_numbers",
            "format",
            "violation",
            "keep",
            {
                "apartment_nr": "The dwelling unit number is four digits. The first two digits "
                "indicate which floor the home is on. The entrance level is set "
                "to 10."
            },
            "not a possible lägenhetsnummer (floor code 07–99, position 01–99)",
            source=_LM,
        ),
        Rule(
            "meter_number_form",
            "cross_field",
            "violation",
            "keep",
            {
                "number": "1 = the address is a meter address (i.e. the number of the address is "
                'of type "302-12")'
            },
            "is_meter_address and the form of number disagree (a meter address has a number "
            "like 302-12, stored as [302, 12]; another address has a single number)",
        ),
        Rule(
            "apartment_nr_unique",
            "uniqueness",
            "violation",
            "keep",
            {"apartment_nr": "unique number on every apartment at the same address"},
            "the same apartment number twice at one address",
        ),
        Rule(
            "swapped_coordinates",
            "coordinates",
            "violation",
            "keep",
            {
                "sweref99x": "sweref99x int(7) 6583373 X-coordinate (latitude) from SWEREF.",
                "rt90x": "rt90x double 6586700 X-coordinate (latitude) from RT90.",
                "wgs84lat": "wgs84lat double 59.3801951334688 Y-coordinate (latitude) from WGS84.",
            },
            "a coordinate pair given in the wrong order (not used for the geometry)",
        ),
        Rule(
            "implausible_coordinates",
            "coordinates",
            "violation",
            "keep",
            {
                "sweref99x": "sweref99x int(7) 6583373 X-coordinate (latitude) from SWEREF.",
                "rt90x": "rt90x double 6586700 X-coordinate (latitude) from RT90.",
                "wgs84lat": "wgs84lat double 59.3801951334688 Y-coordinate (latitude) from WGS84.",
            },
            "a coordinate pair no Swedish position has (not used for the geometry)",
        ),
        Rule(
            "incomplete_coordinates",
            "coordinates",
            "violation",
            "keep",
            {
                "sweref99y": "sweref99y int(7) 413689 Y-coordinate (longitude) from SWEREF.",
                "rt90y": "rt90y double 1367905 Y-coordinate (longitude) from RT90.",
                "wgs84lon": "wgs84lon double 13.4808053113366 X-coordinate (longitude) from WGS84.",
            },
            "one coordinate of a pair without the other, and no other complete pair",
        ),
        # --- notices --------------------------------------------------------------------------
        Rule(
            "construction_year_placeholder",
            "value_set",
            "notice",
            "none",
            {
                "construction_year": "The construction_year = 1909 for houses and 1929 for "
                "flats/apartments are in some cases used by Lantmäteriet when "
                "the true year of construction is unknown."
            },
            "1909 (houses) or 1929 (flats): possibly 'unknown'; see construction_year_placeholder",
        ),
        Rule(
            "floor_disagreements",
            "cross_field",
            "notice",
            "none",
            {
                "floor": "The first two digits indicate which floor the home is on. The entrance "
                "level is set to 10."
            },
            "floor differs from the floor the apartment number gives (Valueguard's floor is an "
            "estimate)",
            source=_LM,
        ),
        Rule(
            "apartment_above_top_floor",
            "cross_field",
            "notice",
            "none",
            {"apartment_nr": "floors double 2 the highest floor on the address"},
            "the apartment number's floor is above floors",
        ),
        Rule(
            "standard_points_cooperative",
            "cross_field",
            "notice",
            "none",
            {"standard_points": "(not available for co-operative apartments)"},
            "standard points given for a co-operative apartment (bostadsrätt)",
        ),
        Rule(
            "rooms_for_house",
            "cross_field",
            "notice",
            "none",
            {"rooms": "excluding kitchen and bathroom (not available for houses)"},
            "rooms given for a house",
        ),
        Rule(
            "person_registered_date_early",
            "range",
            "notice",
            "none",
            {
                "person_registered_date": "Objects that never have had someone registered will "
                "have the date of our first information of "
                "person_registerd(2020-11-16)"
            },
            "person_registered_date before Valueguard's first information (2020-11-16)",
        ),
        Rule(
            "first_registered_without_person",
            "cross_field",
            "notice",
            "none",
            {
                "first_person_registered_date": "The date when the first person currently living "
                "there was registered"
            },
            "first_person_registered_date given although person_registered = 0",
        ),
        Rule(
            "suspected_errors",
            "value_set",
            "notice",
            "none",
            {"error_code": "1 = suspected error in data"},
            "Valueguard suspects an error",
        ),
        Rule(
            "maybe_deleted",
            "value_set",
            "notice",
            "none",
            {"deleted": "2 = maybe deleted"},
            "possibly deleted (see probability_deleted)",
        ),
    ]
    return {x.id: x for x in r}


#: Every rule by id.
RULES: dict[str, Rule] = _build_rules()


def rules_of(field_name: str) -> list[Rule]:
    """The rules that constrain ``field_name``, each with its quote (``rule.quote(field_name)``).

    >>> [r.id for r in rules_of("standard_points")]
    ['wrong_type', 'standard_points_range', 'standard_points_cooperative']
    >>> rule("standard_points_range").quote("standard_points")
    'a number between 0-59'
    """
    return [r for r in RULES.values() if field_name in r.quotes]


def rule(rule_id: str) -> Rule:
    """The rule ``rule_id`` (KeyError naming the known ones otherwise)."""
    try:
        return RULES[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule {rule_id!r}; known: {', '.join(RULES)}") from None


class Finding(NamedTuple):
    """Rows of one frame that break (or are noted by) one rule on one field."""

    rule: str
    field: str
    mask: np.ndarray
    detail: Any = None  # array (same length) or scalar text, or None


# --- column access -------------------------------------------------------------------------------


def _num(df: pd.DataFrame, name: str) -> np.ndarray:
    """float64 values of a numeric, nullable-integer or numeric-categorical column (NaN = none)."""
    s = df[name]
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats, codes = s.cat.categories, s.cat.codes.to_numpy()
        if not pd.api.types.is_numeric_dtype(cats.dtype):
            return np.full(len(s), np.nan)
        return np.append(cats.to_numpy(dtype=float), np.nan)[np.where(codes < 0, len(cats), codes)]
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _arrow_text(s: pd.Series) -> pa.Array:
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if not hasattr(s.array, "_pa_array"):
        s = s.astype("string")
    arr = getattr(s.array, "_pa_array", None)
    if arr is None:
        arr = pa.array(s.array, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    return arr


def _join(*arrays: pa.Array, sep: str) -> pa.Array:
    """Element-wise concatenation of Arrow string arrays with ``sep`` between them."""
    t = arrays[0].type
    return pc.binary_join_element_wise(*(a.cast(t) for a in arrays), pa.scalar(sep, t))


def _bool(arr: pa.Array) -> np.ndarray:
    """A pyarrow boolean array as a numpy bool array (null → False)."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _home_is(df: pd.DataFrame, kinds: Iterable[str]) -> np.ndarray:
    if "home_type" not in df:
        return np.zeros(len(df), dtype=bool)
    return df["home_type"].isin(list(kinds)).to_numpy(dtype=bool)


# --- formats (also used to normalise values) ------------------------------------------------------


def valid_organisation_numbers(digits10: np.ndarray) -> np.ndarray:
    """Luhn check of ten-digit numbers given as an (n, 10) int array (the last digit checks).

    Swedish organisation numbers and personnummer share this check (Skatteverket): weights
    2, 1, 2, … on the first nine digits, digit sums of the products, and the check digit makes
    the total a multiple of ten.
    """
    if digits10.size == 0:
        return np.zeros(len(digits10), dtype=bool)
    d = digits10.astype(np.int16, copy=False)
    doubled = _DOUBLED_DIGIT_SUM[d[:, 0:9:2]].sum(axis=1)  # weight 2: digit sum of 2·d
    total = doubled + d[:, 1:9:2].sum(axis=1)
    return (10 - total % 10) % 10 == d[:, 9]


#: Digit sum of twice each digit: 0→0, 1→2, …, 5→1 (10), 9→9 (18).
_DOUBLED_DIGIT_SUM = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.int16)


def _byte_lengths(arr: pa.Array) -> np.ndarray:
    """UTF-8 byte length of each value of an Arrow string array (-1 where missing)."""
    if len(arr) == 0:
        return np.zeros(0, dtype=np.int64)
    off_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=off_type)[
        arr.offset : arr.offset + len(arr) + 1
    ]
    lengths = np.diff(offsets).astype(np.int64)
    if arr.null_count:
        lengths[~_bool(arr.is_valid())] = -1
    return lengths


def _byte_matrix(arr: pa.Array, rows: np.ndarray, width: int) -> np.ndarray:
    """(k, width) uint8 bytes of the values at ``rows``, each exactly ``width`` bytes long."""
    off_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=off_type)[
        arr.offset : arr.offset + len(arr) + 1
    ]
    data = (
        np.frombuffer(arr.buffers()[2], dtype=np.uint8)
        if arr.buffers()[2] is not None
        else np.zeros(0, dtype=np.uint8)
    )
    return data[np.asarray(offsets[:-1][rows, None], dtype=np.int64) + np.arange(width)]


def _is_digit(b: np.ndarray) -> np.ndarray:
    return (b >= 48) & (b <= 57)


def _digit_matrix(arr: pa.Array, width: int) -> np.ndarray:
    """(n, width) int digits of an Arrow string array whose values are ``width`` ASCII digits."""
    if len(arr) == 0:
        return np.zeros((0, width), dtype=np.int64)
    filled = arr.fill_null("0" * width).cast(pa.binary())
    data = np.frombuffer(filled.buffers()[2], dtype=np.uint8)
    offsets = np.frombuffer(filled.buffers()[1], dtype=np.int32)[
        filled.offset : filled.offset + len(arr) + 1
    ]
    idx = offsets[:-1, None] + np.arange(width)
    return data[idx].astype(np.int64) - ord("0")


def normalise_owner_ids(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Organisation numbers in the documented form ``NNNNNN-NNNN``, and a mask of invalid ones.

    Accepts ``NNNNNN-NNNN``, ``NNNNNNNNNN`` and the twelve-digit ``16NNNNNNNNNN`` form; any other
    text, or a wrong check digit, is invalid. Missing and ``""`` stay as they are, not invalid.
    """
    arr = _arrow_text(values)
    lengths = _byte_lengths(arr)
    present = lengths > 0
    eleven = np.flatnonzero(lengths == 11)
    formed = np.zeros(len(arr), dtype=bool)
    ok = np.zeros(len(arr), dtype=bool)
    if eleven.size:
        b = _byte_matrix(arr, eleven, 11)
        shape_ok = _is_digit(np.delete(b, 6, axis=1)).all(axis=1) & (b[:, 6] == ord("-"))
        formed[eleven] = shape_ok
        digits = np.delete(b[shape_ok], 6, axis=1).astype(np.int16) - ord("0")
        ok[eleven[shape_ok]] = valid_organisation_numbers(digits)
    if not (present & ~formed).any():
        # Every number already in the documented form (the usual case): only the check digit.
        return values, present & ~ok
    text = pc.utf8_trim_whitespace(arr)
    bare = pc.replace_substring_regex(text, r"^(?:16)?(\d{6})-?(\d{4})$", r"\1\2")
    ten = _bool(pc.match_substring_regex(bare, r"^\d{10}$"))
    ok = ten.copy()
    if ten.any():
        digits = _digit_matrix(bare.filter(pa.array(ten)), 10)
        ok[ten] = valid_organisation_numbers(digits)
    formatted = _join(
        pc.utf8_slice_codeunits(bare, 0, 6), pc.utf8_slice_codeunits(bare, 6, 10), sep="-"
    )
    out = pc.if_else(pa.array(ok), formatted, text)
    return _as_like(values, out), present & ~ok


def normalise_postal_codes(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Postal codes as five digits (``"653 41"`` → ``"65341"``), and a mask of invalid ones."""
    arr = _arrow_text(values)
    lengths = _byte_lengths(arr)
    present = lengths > 0
    five = np.flatnonzero(lengths == 5)
    ok = np.zeros(len(arr), dtype=bool)
    if five.size:
        ok[five] = _is_digit(_byte_matrix(arr, five, 5)).all(axis=1)
    if not (present & ~ok).any():
        return values, np.zeros(len(values), dtype=bool)
    text = pc.utf8_trim_whitespace(arr)
    spaced = pc.replace_substring_regex(text, r"^(\d{3}) ?(\d{2})$", r"\1\2")
    ok = _bool(pc.match_substring_regex(spaced, r"^\d{5}$"))
    out = pc.if_else(pa.array(ok), spaced, text)
    return _as_like(values, out), present & ~ok


def _as_like(values: pd.Series, arr: pa.Array) -> pd.Series:
    """An Arrow string array as a Series like ``values`` (same index, pandas ``string``)."""
    series = pd.Series(pd.arrays.ArrowStringArray(arr.cast(pa.large_string())), index=values.index)
    return series.astype(values.dtype) if values.dtype == "string" else series


# --- derived columns ------------------------------------------------------------------------------


def construction_year_placeholder(df: pd.DataFrame) -> np.ndarray:
    """True where ``construction_year`` is the placeholder Lantmäteriet uses for "unknown".

    1909 for houses, 1929 for flats (``home_type`` ``lägenhet``); either for a home of unknown
    type (``okänd`` or missing). Missing years are False.
    """
    if "construction_year" not in df:
        return np.zeros(len(df), dtype=bool)
    year = _num(df, "construction_year")
    flat = _home_is(df, ["lägenhet"])
    house = _home_is(df, HOUSE_TYPES)
    unknown = ~flat & ~house
    y_house, y_flat = PLACEHOLDER_YEARS["house"], PLACEHOLDER_YEARS["flat"]
    return ((year == y_house) & (house | unknown)) | ((year == y_flat) & (flat | unknown))


def kommunkod(df: pd.DataFrame) -> pd.Series:
    """The four-digit municipality code: ``county_code`` + ``municipality_code`` (``"0513"``).

    This is the code Lantmäteriet data carries (``kommun``; vggeo's provisions column
    ``municipality``). Missing where either part is missing or not two digits.
    """
    n = len(df)
    if "county_code" not in df or "municipality_code" not in df:
        return pd.Series(pd.array([None] * n, dtype="string"), index=df.index)
    county, c_len, c_digits = _digit_strings(df, "county_code")
    muni, m_len, m_digits = _digit_strings(df, "municipality_code")
    ok = c_digits & (c_len == 2) & m_digits & (m_len == 2)
    code = _join(county, muni, sep="")
    if not ok.all():
        code = pc.if_else(pa.array(ok), code, pa.scalar(None, code.type))
    return pd.Series(pd.arrays.ArrowStringArray(code.cast(pa.large_string())), index=df.index)


# --- the checks ---------------------------------------------------------------------------------------


def _present(df: pd.DataFrame, name: str) -> np.ndarray:
    return df[name].notna().to_numpy(dtype=bool)


def row_rules(
    df: pd.DataFrame, *, endpoint: str = "registry", invalid: Mapping[str, np.ndarray] | None = None
) -> Iterator[Finding]:
    """Violations of the row-level rules in a canonical frame (types and codes excepted).

    Yields one :class:`Finding` per rule and field that some row breaks. Values are not
    changed here; the caller nulls or keeps them according to the rule's action. ``invalid``:
    the masks :func:`normalise_owner_ids` / :func:`normalise_postal_codes` already gave, by field.
    """
    invalid = invalid or {}

    def applies(rule_id: str) -> bool:
        return endpoint in RULES[rule_id].endpoints

    if "deleted" in df and applies("deleted_in_registry"):
        m = _num(df, "deleted") == 1
        if m.any():
            yield Finding("deleted_in_registry", "deleted", m)
    if "updated_from" in df and applies("updated_from_public_data"):
        text = _arrow_text(df["updated_from"])

        m = _bool(pc.not_equal(text, "public_data"))
        if m.any():
            yield Finding("updated_from_public_data", "updated_from", m)
    if "probability_deleted" in df:
        v = _num(df, "probability_deleted")
        with np.errstate(invalid="ignore"):
            out = (v < 0) | (v > 1)
            steps = ~np.isnan(v) & ~out & (np.abs(v * 100 - np.round(v * 100)) > 1e-6)
        m = out | steps
        if m.any():
            detail = np.full(len(v), None, dtype=object)
            detail[out] = "outside 0.00–1.00"
            detail[steps] = "more than two decimals"
            yield Finding("probability_deleted_range", "probability_deleted", m, detail)
    if "standard_points" in df:
        v = _num(df, "standard_points")
        with np.errstate(invalid="ignore"):
            m = (v < 0) | (v > 59)
        if m.any():
            yield Finding("standard_points_range", "standard_points", m)
    if "owner_id" in df:
        m = invalid["owner_id"] if "owner_id" in invalid else normalise_owner_ids(df["owner_id"])[1]
        if m.any():
            yield Finding("owner_id_format", "owner_id", m)
    if "postal_code" in df:
        m = (
            invalid["postal_code"]
            if "postal_code" in invalid
            else normalise_postal_codes(df["postal_code"])[1]
        )
        if m.any():
            yield Finding("postal_code_format", "postal_code", m)
    yield from _code_formats(df)
    yield from _text_lengths(df)
    if "house_nr" in df:
        with np.errstate(invalid="ignore"):
            m = _num(df, "house_nr") < 1
        if m.any():
            yield Finding("house_nr_min", "house_nr", m)
    for name in RULES["non_negative"].fields:
        if name in df:
            with np.errstate(invalid="ignore"):
                m = _num(df, name) < 0
            if m.any():
                yield Finding("non_negative", name, m)
    if "floor" in df and "floors" in df:
        with np.errstate(invalid="ignore"):
            m = _num(df, "floor") > _num(df, "floors")
        if m.any():
            yield Finding("floor_above_floors", "floor", m)
    if "apartment_nr" in df:
        m, reasons = apartment_number_problems(df["apartment_nr"])
        if m.any():
            yield Finding("bad_apartment_numbers", "apartment_nr", m, reasons)
    if "number" in df and "is_meter_address" in df:
        m, detail = _meter_mismatch(df)
        if m.any():
            yield Finding("meter_number_form", "number", m, detail)


def _digit_strings(df: pd.DataFrame, name: str) -> tuple[Any, np.ndarray, np.ndarray]:
    """(Arrow text, byte lengths, all-digits mask) of a text column."""
    arr = _arrow_text(df[name])
    return arr, _byte_lengths(arr), _bool(pc.utf8_is_digit(arr))


def _code_formats(df: pd.DataFrame) -> Iterator[Finding]:
    widths = {
        "county_code": (2, 2),
        "municipality_code": (2, 2),
        "parish_code": (2, 2),
        "property_key": (1, 9),
    }
    for name, (lo, hi) in widths.items():
        if name not in df:
            continue
        arr, lengths, digits = _digit_strings(df, name)
        bad = (lengths >= 0) & ~(digits & (lengths >= lo) & (lengths <= hi))
        if bad.any():
            yield Finding("code_format", name, bad)
        if name == "county_code":
            two = np.flatnonzero(digits & (lengths == 2))
            if two.size:
                b = _byte_matrix(arr, two, 2).astype(np.int64) - ord("0")
                known = _KNOWN_COUNTY[b[:, 0] * 10 + b[:, 1]]
                unknown = np.zeros(len(arr), dtype=bool)
                unknown[two[~known]] = True
                if unknown.any():
                    yield Finding("county_code_known", "county_code", unknown)


_KNOWN_COUNTY = np.zeros(100, dtype=bool)
_KNOWN_COUNTY[[int(c) for c in COUNTY_CODES]] = True


def _text_lengths(df: pd.DataFrame) -> Iterator[Finding]:
    for name in RULES["text_length"].fields:
        if name not in df:
            continue
        limit = _max_length(field(name).source_type)
        arr = _arrow_text(df[name])
        if _byte_lengths(arr).max(initial=0) <= limit:
            continue  # no value has more bytes than the limit allows characters
        m = _bool(pc.greater(pc.utf8_length(arr), limit))
        if m.any():
            yield Finding("text_length", name, m, f"more than {limit} characters")


def number_parts(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(parts per row, second part present) of the ``number`` lists; null lists count 0."""
    arr = _arrow_array(df["number"])
    offsets = np.asarray(arr.offsets)
    lengths = np.diff(offsets)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    lengths = np.where(valid, lengths, 0)
    values_valid = (
        np.asarray(arr.values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        if len(arr.values)
        else np.zeros(0, dtype=bool)
    )
    second = np.zeros(len(arr), dtype=bool)
    two = lengths >= 2
    if two.any():
        second[two] = values_valid[offsets[:-1][two] + 1 - offsets[0]]
    return lengths, second


def _meter_mismatch(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    lengths, meter_form = number_parts(df)
    flag = _num(df, "is_meter_address")
    has_number = lengths > 0
    meter_without = (flag == 1) & has_number & ~meter_form
    plain_with = (flag == 0) & meter_form
    detail = np.full(len(flag), None, dtype=object)  # filled only where flagged: no n-long text
    detail[meter_without] = "is_meter_address = 1 but the number is not of the form 302-12"
    detail[plain_with] = "the number has the form 302-12 but is_meter_address = 0"
    return meter_without | plain_with, detail


def address_rules(df: pd.DataFrame) -> Iterator[Finding]:
    """Rules across rows: the same apartment number twice at one address.

    Needs the whole frame (rows of one address can be anywhere in a file). The addresses are
    hashed by Arrow (dictionary encoding), so no Python string is made per row.
    """
    if "apartment_nr" not in df or "address" not in df:
        return
    number = _num(df, "apartment_nr")
    present = ~np.isnan(number) & df["address"].notna().to_numpy(dtype=bool)
    if not present.any():
        return
    idx = np.flatnonzero(present)
    # Only the flats' addresses, hashed by Arrow (no Python string per row, no full copy).
    text = _arrow_text(df["address"].iloc[idx])
    codes = pc.dictionary_encode(text).indices.to_numpy(zero_copy_only=False)
    # One integer per (address, number): the number is a smallint, so 2^16 keeps them apart.
    key = codes.astype(np.int64) * 65536 + (number[idx].astype(np.int64) + 32768)
    dup = pd.Series(key).duplicated(keep=False).to_numpy()
    if dup.any():
        m = np.zeros(len(df), dtype=bool)
        m[idx[dup]] = True
        yield Finding("apartment_nr_unique", "apartment_nr", m)


def notices(df: pd.DataFrame, *, entrance_floor: float = 0.0) -> Iterator[Finding]:
    """Documented quirks worth counting (see the ``notice`` rules); never errors."""
    if "construction_year_placeholder" in df:
        m = df["construction_year_placeholder"].to_numpy(dtype=bool)
    else:
        m = construction_year_placeholder(df)
    yield Finding("construction_year_placeholder", "construction_year", m)
    if "apartment_nr" in df and "floor" in df:
        fd = floor_disagreements(
            df["apartment_nr"],
            df["floor"],
            df["floors"] if "floors" in df else None,
            entrance_floor=entrance_floor,
        )
        yield Finding(
            "floor_disagreements",
            "floor",
            fd["disagrees"].to_numpy(),
            fd["implied_floor"].astype(object).to_numpy(),
        )
        yield Finding(
            "apartment_above_top_floor",
            "apartment_nr",
            fd["above_floors"].to_numpy(),
            fd["implied_floor"].astype(object).to_numpy(),
        )
    if "standard_points" in df and "ownership_type" in df:
        m = _present(df, "standard_points") & (df["ownership_type"] == "bostadsrätt").fillna(
            False
        ).to_numpy(dtype=bool)
        yield Finding("standard_points_cooperative", "standard_points", m)
    if "rooms" in df and "home_type" in df:
        yield Finding("rooms_for_house", "rooms", _present(df, "rooms") & _home_is(df, HOUSE_TYPES))
    if "person_registered_date" in df:
        d = df["person_registered_date"].to_numpy(dtype="datetime64[ms]")
        yield Finding(
            "person_registered_date_early",
            "person_registered_date",
            ~np.isnat(d) & (d < FIRST_PERSON_INFORMATION),
        )
    if "first_person_registered_date" in df and "person_registered" in df:
        m = _present(df, "first_person_registered_date") & (_num(df, "person_registered") == 0)
        yield Finding("first_registered_without_person", "first_person_registered_date", m)
    if "error_code" in df:
        yield Finding("suspected_errors", "error_code", _num(df, "error_code") == 1)
    if "deleted" in df:
        yield Finding("maybe_deleted", "deleted", _num(df, "deleted") == 2)
