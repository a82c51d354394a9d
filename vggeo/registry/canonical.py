"""The canonical registry frame: every value checked and typed, geometry from the coordinates.

:func:`to_canonical` applies the field list (:mod:`vggeo.registry.fields`) column by column,
vectorised, then every documented rule (:mod:`vggeo.registry.rules`), derives ``kommunkod`` and
``construction_year_placeholder``, and builds the geometry with
:func:`~vggeo.registry.coordinates.valueguard_points` (``sweref99x`` = northing, then RT 90,
then WGS 84).
:func:`canonical_in_batches` does the same over a stream of raw batches, for the national
registry.

**One bad row never sinks a load.** A value that is not of its documented type, or breaks a
documented rule, is nulled or kept flagged (the rule says which) and listed as a *reject*:
file/page, row, id, field, rule, the original value, what was done. ``strict=True`` refuses the
input at the first such value instead (naming file, row, field and value). What is always
refused: a row without an ``id``, an ``id`` twice, and a whole input whose coordinates are
swapped or foreign (more than half the rows of a batch: the file's convention, not a row's
slip — ``swap=True`` exchanges swapped pairs).
"""

from __future__ import annotations

import ctypes
import json
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike
from tqdm import tqdm

from vggeo.codes import get_code_list
from vggeo.crs import Route, detect_axis_problems
from vggeo.errors import (
    CodeError,
    CoordinateError,
    InputError,
    RuleError,
    SchemaError,
    UnmappedWarning,
    VggeoError,
    VggeoWarning,
)
from vggeo.registry.coordinates import VALUEGUARD_PAIRS, valueguard_points
from vggeo.registry.fields import (
    COORDINATE_FIELDS,
    DERIVED_COLUMNS,
    FIELD_NAMES,
    FIELDS,
    Field,
    field,
)
from vggeo.registry.rules import (
    RULES,
    address_rules,
    construction_year_placeholder,
    kommunkod,
    normalise_owner_ids,
    normalise_postal_codes,
    row_rules,
)
from vggeo.registry.writers import _arrow_array

__all__ = [
    "to_canonical",
    "canonical_in_batches",
    "CodeWarning",
    "CoordinateWarning",
    "RuleWarning",
    "REJECT_COLUMNS",
    "empty_rejects",
]


T = TypeVar("T")
#: What the readers return: the canonical GeoDataFrame, or ``(frame, rejects)`` with
#: ``with_rejects=True``. Any: the shape follows a flag, and geopandas has no types to check the
#: frame against.
CanonicalResult = Any
Locate = Callable[[int], dict]

_INT_RANGES = {
    "Int8": (-128, 127),
    "Int16": (-32768, 32767),
    "Int32": (-(2**31), 2**31 - 1),
    "Int64": (-(2**63), 2**63 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
# Pandas' index column, when a user saved a frame with ``to_csv()`` without ``index=False``.
_INDEX_COLUMNS = ("Unnamed: 0", "", "index")


def _is_saved_index(values: pd.Series) -> bool:
    """Whether a column named like pandas' index (:data:`_INDEX_COLUMNS`) holds one: whole numbers
    counting up by one. Anything else under such a name is the user's data and is kept."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    steps = np.diff(numbers)
    return bool(
        len(numbers)
        and np.isfinite(numbers).all()
        and numbers[0] == np.floor(numbers[0])
        and (steps == 1).all()
    )


#: Share of a batch's complete pairs that must be swapped (or foreign) before the whole input is
#: taken to be in another axis order (or system) and refused, rather than the rows rejected.
_SYSTEMATIC_SHARE = 0.5

#: Columns of the rejects table, in order.
REJECT_COLUMNS = ("file", "row", "id", "field", "rule", "value", "action", "detail", "reason")


def _default_locate(source: str | None) -> Locate:
    def locate(pos: int) -> dict:
        return {"file": source, "row": pos + 1}

    return locate


class CoordinateWarning(VggeoWarning):
    """Rows without any complete coordinate pair (they get no geometry)."""


class CodeWarning(VggeoWarning):
    """Values outside their documented code list (kept, flagged)."""


class RuleWarning(VggeoWarning):
    """Values that broke a documented rule (nulled or kept, listed as rejects)."""


def empty_rejects() -> pd.DataFrame:
    """A rejects table without rows (the columns and dtypes of :data:`REJECT_COLUMNS`)."""
    return pd.DataFrame(
        {
            c: pd.Series([], dtype="Int64" if c in ("row", "id") else "string")
            for c in REJECT_COLUMNS
        }
    )


# --- rejects ---------------------------------------------------------------------------------------


class _Rejects:
    """Collects the values of one frame that broke a rule; refuses instead when strict.

    ``add`` takes whole-column masks, so the checks stay vectorised; only rejected rows are
    turned into Python values (for the table and messages).
    """

    def __init__(self, locate: Locate, *, strict: bool, strict_codes: bool) -> None:
        self.locate = locate
        self.strict = strict
        self.strict_codes = strict_codes or strict
        self.parts: list[tuple[str, str, np.ndarray, np.ndarray, Any]] = []
        self.ids: np.ndarray | None = None

    def refuses(self, rule_id: str) -> bool:
        return self.strict_codes if rule_id == "unknown_codes" else self.strict

    def add(
        self,
        rule_id: str,
        field_name: str,
        mask: np.ndarray,
        values: pd.Series | ArrayLike | None,
        *,
        detail: str | ArrayLike | None = None,
        message: str | None = None,
    ) -> None:
        idx = np.flatnonzero(mask)
        if not idx.size:
            return
        texts = _texts(values, idx)
        if self.refuses(rule_id):
            i = int(idx[0])
            cls = {"wrong_type": SchemaError, "unknown_codes": CodeError}.get(rule_id, RuleError)
            d = _pick(detail, [0], idx)[0] if detail is not None else None
            text = message or RULES[rule_id].summary + (f" ({d})" if d else "")
            raise cls(
                f"{text} [rule {rule_id}; when not strict the value is "
                f"{'nulled' if RULES[rule_id].action == 'null' else 'kept'} and listed as a "
                "reject]",
                field=field_name,
                value=_raw_value(values, i),
                **self.locate(i),
            )
        self.parts.append(
            (
                rule_id,
                field_name,
                idx,
                texts,
                None if detail is None else _pick(detail, range(idx.size), idx),
            )
        )

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rule_id, _, idx, _, _ in self.parts:
            out[rule_id] = out.get(rule_id, 0) + int(idx.size)
        return out

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return empty_rejects()
        parts = []
        for rule_id, field_name, idx, texts, detail in self.parts:
            r = RULES[rule_id]
            files, rows = self._where(idx)
            parts.append(
                pd.DataFrame(
                    {
                        "_position": idx,
                        "file": pd.array(files, dtype="string"),
                        "row": pd.array(rows, dtype="Int64"),
                        "id": pd.array(
                            self.ids[idx] if self.ids is not None else [None] * idx.size,
                            dtype="Int64",
                        ),
                        "field": pd.array([field_name] * idx.size, dtype="string"),
                        "rule": pd.array([rule_id] * idx.size, dtype="string"),
                        "value": pd.array(texts, dtype="string"),
                        "action": pd.array(
                            [{"null": "nulled", "keep": "kept"}.get(r.action, r.action)] * idx.size,
                            dtype="string",
                        ),
                        "detail": pd.array(
                            [None] * idx.size
                            if detail is None
                            else [_str_or_none(x) for x in detail],
                            dtype="string",
                        ),
                        "reason": pd.array([r.summary] * idx.size, dtype="string"),
                    }
                )
            )
        out = pd.concat(parts, ignore_index=True)
        # In input order (rows of API pages restart at 1 on every page).
        out = out.sort_values(["_position", "field", "rule"], kind="stable", ignore_index=True)
        return out.drop(columns="_position")

    def _where(self, idx: np.ndarray) -> tuple[list, np.ndarray]:
        """(file per row, row number per row) of frame positions ``idx`` (sorted).

        A file's rows, and the rows of one API page, number consecutively: when the first and
        last position lie in the same file or page and their rows are as far apart as their
        positions, every position between does too, and one call of ``locate`` serves all.
        """
        first, last = self.locate(int(idx[0])), self.locate(int(idx[-1]))
        if (
            first.get("file") == last.get("file")
            and first.get("row") is not None
            and last["row"] - first["row"] == int(idx[-1] - idx[0])
        ):
            return [first.get("file")] * idx.size, first["row"] + (idx - idx[0])
        where = [self.locate(int(i)) for i in idx]
        return [w.get("file") for w in where], np.array([w.get("row") for w in where])


def _pick(detail: str | ArrayLike, positions: Iterable[int], idx: np.ndarray) -> list:
    if isinstance(detail, str):
        return [detail] * len(idx)
    arr = np.asarray(detail, dtype=object)
    return [arr[idx[p]] for p in positions]


def _str_or_none(v: object) -> str | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else str(v)


def _raw_value(values: pd.Series | ArrayLike | None, i: int) -> Any:
    if values is None:
        return None
    v = values.iloc[i] if isinstance(values, pd.Series) else np.asarray(values, dtype=object)[i]
    return _py(v)


def _texts(values: pd.Series | ArrayLike | None, idx: np.ndarray) -> np.ndarray:
    """The rejected values as text (``None`` for missing), as a user would write them."""
    if values is None:
        return np.full(idx.size, None, dtype=object)
    if isinstance(values, pd.Series):
        picked = values.iloc[idx].to_numpy(dtype=object)
    else:
        picked = np.asarray(values, dtype=object)[idx]
    return np.array([_text(v) for v in picked], dtype=object)


def _text(v: Any) -> str | None:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (float, np.floating)):
        if np.isnan(v):
            return None
        return str(int(v)) if float(v).is_integer() and abs(float(v)) < 2**53 else repr(float(v))
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        return json.dumps([_py(x) for x in v], ensure_ascii=False)
    if isinstance(v, (np.datetime64, pd.Timestamp)):
        return str(pd.Timestamp(v).date())
    return str(_py(v))


def _py(v: Any) -> Any:
    """A numpy scalar as the Python value it holds; anything else as it is."""
    return v.item() if hasattr(v, "item") else v


# --- value conversion, one column at a time ------------------------------------------------------


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _numeric(s: pd.Series, f: Field, rej: _Rejects) -> np.ndarray:
    """float64 array of a column; a present value that is not a number is a type reject (NaN)."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats, codes = s.cat.categories, s.cat.codes.to_numpy()
        if pd.api.types.is_numeric_dtype(cats.dtype):
            # Through the category codes: never a per-value conversion of a large column.
            return np.append(cats.to_numpy(dtype=float), np.nan)[
                np.where(codes < 0, len(cats), codes)
            ]
        s = s.astype(object)
    text = s.astype("string").str.strip()
    blank = (text == "").fillna(True).to_numpy(dtype=bool)
    num = pd.to_numeric(text.where(~blank), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = (
        ~blank
        & np.isnan(num)
        & ~(text.str.lower().isin(["nan", "null", "none"]).fillna(False).to_numpy(dtype=bool))
    )
    if bad.any():
        rej.add(
            "wrong_type",
            f.name,
            bad,
            s,
            message=f"expected a number ({f.source_type}); {int(bad.sum())} value(s) are not",
        )
    return num


def _integer(s: pd.Series, f: Field, rej: _Rejects, dtype: str) -> pd.Series:
    num = _numeric(s, f, rej)
    with np.errstate(invalid="ignore"):
        frac = ~np.isnan(num) & (num != np.round(num))
    if frac.any():
        rej.add("wrong_type", f.name, frac, s, message=f"expected a whole number ({f.source_type})")
        num = np.where(frac, np.nan, num)
    lo, hi = _INT_RANGES[dtype]
    with np.errstate(invalid="ignore"):
        out = ~np.isnan(num) & ((num < lo) | (num > hi))
    if out.any():
        rej.add(
            "wrong_type",
            f.name,
            out,
            s,
            message=f"value outside the range of {f.source_type} ({lo}…{hi})",
        )
        num = np.where(out, np.nan, num)
    mask = np.isnan(num)
    values = np.where(mask, 0, num).astype(dtype.lower())
    return pd.arrays.IntegerArray(values, mask) if dtype != "int64" else values


def _string(s: pd.Series, f: Field) -> pd.Series:
    if pd.api.types.is_float_dtype(s.dtype):
        # Numbers read as floats (CSV/JSON): 65341.0 → "65341", never "65341.0".
        num = s.to_numpy(dtype=float, na_value=np.nan)
        integral = np.isnan(num) | (num == np.round(num))
        if integral.all():
            return (
                pd.Series(
                    pd.array(np.where(np.isnan(num), 0, num).astype(np.int64), dtype="Int64"),
                    index=s.index,
                )
                .where(~np.isnan(num))
                .astype("string")
            )
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    return s.astype("string")


def _padded(s: pd.Series, f: Field) -> pd.Series:
    text = _string(s, f).str.strip()
    digits = text.str.fullmatch(r"\d+").fillna(False)
    return text.where(~digits, text.str.zfill(f.width or 0))


def _code(s: pd.Series, f: Field, rej: _Rejects, report: dict) -> pd.Categorical:
    cl = get_code_list(f.codes or f.name)
    documented: Any  # the documented codes: integers or strings, by the code list's kind
    values_for_msg: Any
    if cl.is_numeric:
        num = _numeric(s, f, rej)
        with np.errstate(invalid="ignore"):
            frac = ~np.isnan(num) & (num != np.round(num))
        if frac.any():
            rej.add("wrong_type", f.name, frac, s, message="expected an integer code")
            num = np.where(frac, np.nan, num)
        present = ~np.isnan(num)
        ints = np.where(present, num, 0).astype(np.int64)
        documented = np.array(sorted(cl.codes), dtype=np.int64)
        seen = pd.unique(ints[present])  # hash-based: no sort of the whole column
        categories = np.union1d(documented, seen)
        codes = np.searchsorted(categories, ints).astype(
            np.int32 if len(categories) > 127 else np.int8
        )
        codes[~present] = -1
        # Unknown-ness is decided once per category, then looked up per row.
        undocumented = np.append(~np.isin(categories, documented), False)
        unknown = undocumented[np.where(present, codes, len(categories))]
        cat = pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype="int64"))
        values_for_msg = ints
    else:
        # Dictionary-encode in Arrow (C++), then map the few distinct values to categories.
        arr = pc.utf8_trim_whitespace(
            pa.array(_string(s, f), type=pa.large_string(), from_pandas=True)
        )
        enc = (
            pc.dictionary_encode(arr).combine_chunks()
            if isinstance(arr, pa.ChunkedArray)
            else pc.dictionary_encode(arr)
        )
        distinct = enc.dictionary.to_pylist()
        documented = list(cl.codes)
        categories = documented + sorted(v for v in distinct if v not in cl.codes)
        to_cat = np.array([categories.index(v) for v in distinct] + [-1], dtype=np.int32)
        idx = enc.indices.to_numpy(zero_copy_only=False)
        present = ~np.asarray(enc.indices.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        codes = to_cat[np.where(present, np.nan_to_num(idx, nan=0).astype(np.int64), len(distinct))]
        cat = pd.Categorical.from_codes(codes, categories=categories)
        unknown = present & (codes >= len(documented))
        values_for_msg = (
            np.array(categories + [None], dtype=object)[np.where(codes < 0, len(categories), codes)]
            if unknown.any()
            else None
        )
    if unknown.any():
        i = _first_bad(unknown)
        where = rej.locate(i)
        report[f.name] = {
            "count": int(unknown.sum()),
            "first": {**where, "value": _py(values_for_msg[i])},
        }
        rej.add(
            "unknown_codes",
            f.name,
            unknown,
            values_for_msg,
            message=f"{int(unknown.sum())} value(s) outside the documented {f.name} codes "
            f"({', '.join(map(str, cl.values))})",
        )
    return cat


def _date(s: pd.Series, f: Field, rej: _Rejects) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        out = s
        if getattr(s.dtype, "tz", None) is not None:
            out = s.dt.tz_convert("UTC").dt.tz_localize(None)
        return out.astype("datetime64[ms]").to_numpy()
    text = s.astype("string").str.strip()
    blank = (text == "").fillna(True).to_numpy(dtype=bool)
    parsed = pd.to_datetime(text.where(~blank), format="%Y-%m-%d", errors="coerce")
    bad = ~blank & parsed.isna().to_numpy()
    if bad.any():
        # Accept other ISO 8601 forms (a timestamp) where the plain date format did not fit.
        again = pd.to_datetime(text.where(bad), format="ISO8601", errors="coerce", utc=True)
        again = again.dt.tz_localize(None)
        parsed = parsed.where(~bad, again)
        bad = ~blank & parsed.isna().to_numpy()
    if bad.any():
        rej.add("wrong_type", f.name, bad, s, message="expected a date YYYY-MM-DD")
    return parsed.to_numpy().astype("datetime64[ms]")


def _number_list(s: pd.Series, f: Field, rej: _Rejects) -> pd.Series:
    """``number`` as list<int64> from lists, Arrow lists, text or scalars.

    A meter-address number ``"302-12"`` (as text, or as a list item) becomes its parts
    ``[302, 12]``; see :mod:`vggeo.registry.fields`.
    """
    if isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_list(s.dtype.pyarrow_dtype):
        arr = _arrow_array(s)
        vt = arr.type.value_type
        if pa.types.is_integer(vt):
            return _series(arr.cast(pa.list_(pa.int64())), s.index)
        if pa.types.is_floating(vt):
            flat = arr.values.cast(pa.float64())
            f_np = flat.to_numpy(zero_copy_only=False)
            with np.errstate(invalid="ignore"):
                bad_item = ~np.isnan(f_np) & (f_np != np.round(f_np))
            values = pa.array(
                np.where(bad_item | np.isnan(f_np), 0, f_np).astype(np.int64),
                mask=bad_item | np.isnan(f_np),
            )
            lists = pa.ListArray.from_arrays(arr.offsets, values, mask=arr.is_null())
            return _reject_bad_rows(lists, _rows_of_items(arr, bad_item), s, f, rej)
        # Lists of text (or mixed, as Arrow read them): parse every item.
        items = pa.ListArray.from_arrays(
            arr.offsets, arr.values.cast(pa.large_string()), mask=arr.is_null()
        )
        lists, bad = _parse_items(items)
        return _reject_bad_rows(lists, bad, s, f, rej)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        num = _integer(s, f, rej, "Int64")
        arr = pa.array(num, type=pa.int64(), from_pandas=True)
        offsets = pa.array(np.arange(len(arr) + 1, dtype=np.int32))
        return _series(pa.ListArray.from_arrays(offsets, arr, mask=pc.is_null(arr)), s.index)
    if s.dtype == object:
        try:
            arr = pa.array(s.to_numpy(), type=pa.list_(pa.int64()), from_pandas=True)
            return _series(arr, s.index)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            pass
        # Mixed content: lists, scalars, text. Slow path, reached only for irregular input.
        parsed = [_one_number(v) for v in s.to_numpy()]
        bad = np.array([p is _BAD for p in parsed], dtype=bool)
        values = [None if p is _BAD else p for p in parsed]
        lists = pa.array(values, type=pa.list_(pa.int64()))
        return _reject_bad_rows(lists, bad, s, f, rej)
    # Text such as "[1, 3, None]" (pandas' str(list)), "302-12" or "7": parsed by Arrow.
    text = pa.array(s.astype("string").str.strip(), type=pa.large_string(), from_pandas=True)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    null = pc.or_(pc.is_null(text), pc.equal(text, ""))
    inner = pc.replace_substring_regex(text, r"^\[|\]$|\s+", "")
    parts = pc.split_pattern(inner, ",")
    # "[]" splits to one empty item, which must give an empty list, not [None].
    empty = np.asarray(
        pc.fill_null(pc.equal(inner, ""), True).to_numpy(zero_copy_only=False), dtype=bool
    )
    parts = pa.ListArray.from_arrays(parts.offsets, parts.values, mask=null)
    if empty.any():
        parts = _empty_where(
            parts, empty & ~np.asarray(null.to_numpy(zero_copy_only=False), dtype=bool)
        )
    lists, bad = _parse_items(parts)
    return _reject_bad_rows(lists, bad, s, f, rej)


def _series(arr: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=index)


def _empty_where(lists: pa.ListArray, empty: np.ndarray) -> pa.ListArray:
    """``lists`` with the rows in ``empty`` made empty (their items dropped)."""
    offsets = np.asarray(lists.offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    lengths[empty] = 0
    keep_item = np.repeat(~empty, np.diff(offsets))
    values = lists.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    values = values.filter(pa.array(keep_item))
    new_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(new_offsets), values, mask=lists.is_null())


def _rows_of_items(lists: pa.ListArray, bad_item: np.ndarray) -> np.ndarray:
    offsets = np.asarray(lists.offsets, dtype=np.int64)
    parents = np.repeat(np.arange(len(lists)), np.diff(offsets))
    bad = np.zeros(len(lists), dtype=bool)
    bad[parents[bad_item[: len(parents)]]] = True
    return bad


_NULLISH = ("", "none", "nan", "null", "<na>")


def _parse_items(items: pa.ListArray) -> tuple[pa.ListArray, np.ndarray]:
    """list<string> of address-number items → (list<int64>, rows with an item that is not one).

    Each item is a whole number, a meter-address number ``302-12`` (two parts), or a null
    spelling (``None``, ``nan``, ``null``, ``""``), which stays a null element.
    """
    n = len(items)
    offsets = np.asarray(items.offsets, dtype=np.int64)
    flat = items.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0])).cast(
        pa.large_string()
    )
    if pc.all(pc.utf8_is_digit(flat)).as_py() is not False:
        # Plain whole numbers only (the usual case): one cast.
        lists = pa.ListArray.from_arrays(
            pa.array(offsets - offsets[0], type=pa.int32()),
            pc.cast(flat, pa.int64()),
            mask=items.is_null(),
        )
        return lists, np.zeros(n, dtype=bool)
    flat = pc.utf8_trim(pc.utf8_trim_whitespace(flat), "'\"")
    nullish = np.asarray(
        pc.fill_null(
            pc.is_in(
                pc.utf8_lower(flat), value_set=pa.array(list(_NULLISH), type=pa.large_string())
            ),
            True,
        ).to_numpy(zero_copy_only=False),
        dtype=bool,
    )
    parents = np.repeat(np.arange(n), np.diff(offsets))
    if pc.any(pc.match_substring(flat, "-")).as_py():
        # Meter numbers: split each item into its parts.
        split = pc.split_pattern(pc.if_else(pa.array(nullish), "", flat), "-")
        per_item = np.asarray(pc.list_value_length(split).to_numpy(zero_copy_only=False))
        pieces = pc.list_flatten(split)
        piece_null = np.repeat(nullish, per_item)
        piece_parent = np.repeat(parents, per_item)
    else:
        per_item = np.ones(len(flat), dtype=np.int64)
        pieces, piece_null, piece_parent = flat, nullish, parents
    try:
        values = pc.cast(
            pc.if_else(pa.array(piece_null), pa.scalar(None, pieces.type), pieces), pa.int64()
        )
        bad_piece = np.zeros(len(pieces), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Some piece is not an integer: find which (rare; whole numbers written as 3.0 pass).
        as_float = pc.cast(
            pc.if_else(
                pc.and_(
                    pa.array(~piece_null), pc.match_substring_regex(pieces, r"^[+-]?\d+(\.0*)?$")
                ),
                pieces,
                pa.scalar(None, pieces.type),
            ),
            pa.float64(),
        )
        ok = np.asarray(pc.is_valid(as_float).to_numpy(zero_copy_only=False), dtype=bool)
        bad_piece = ~ok & ~piece_null
        f_np = as_float.to_numpy(zero_copy_only=False)
        values = pa.array(np.where(ok, np.nan_to_num(f_np), 0).astype(np.int64), mask=~ok)
    row_len = (
        np.bincount(parents, weights=per_item, minlength=n).astype(np.int64)
        if len(parents)
        else np.zeros(n, dtype=np.int64)
    )
    new_offsets = np.concatenate([[0], np.cumsum(row_len)]).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(new_offsets), values, mask=items.is_null())
    bad = np.zeros(n, dtype=bool)
    if bad_piece.any():
        bad[piece_parent[bad_piece]] = True
    return lists, bad


def _reject_bad_rows(
    lists: pa.ListArray, bad: np.ndarray, s: pd.Series, f: Field, rej: _Rejects
) -> pd.Series:
    if bad.any():
        rej.add(
            "wrong_type",
            f.name,
            bad,
            s,
            message="expected a list of whole numbers (a meter address: 302-12)",
        )
        lists = pa.ListArray.from_arrays(
            lists.offsets,
            lists.values,
            mask=pa.array(bad | np.asarray(lists.is_null().to_numpy(zero_copy_only=False))),
        )
    return _series(lists.cast(pa.list_(pa.int64())), s.index)


_BAD = object()


def _one_number(v: Any) -> list[int] | object | None:
    """One ``number`` value of irregular input → list of ints, None, or _BAD."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, str):
        t = v.strip()
        if not t:
            return None
        t = t.strip("[]")
        v = [x.strip().strip("'\"") for x in t.split(",")] if t else []
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, (list, tuple)):
        return _BAD
    out: list = []
    for x in v:
        if x is None or (isinstance(x, str) and x.strip().lower() in _NULLISH):
            out.append(None)
            continue
        for piece in str(x).split("-") if isinstance(x, str) else [x]:
            try:
                fx = float(piece)
            except (TypeError, ValueError):
                return _BAD
            if fx != round(fx) or isinstance(piece, bool):
                return _BAD
            out.append(int(fx))
    return out


# --- rules after conversion ----------------------------------------------------------------------------


def _null_out(df: pd.DataFrame, name: str, mask: np.ndarray) -> None:
    """Remove the values at ``mask`` (the originals are in the rejects)."""
    s = df[name]
    if isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_list(s.dtype.pyarrow_dtype):
        arr = _arrow_array(s)
        null = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool) | mask
        df[name] = _series(
            pa.ListArray.from_arrays(arr.offsets, arr.values, mask=pa.array(null)), df.index
        )
    elif s.dtype == np.float64:
        df[name] = np.where(mask, np.nan, s.to_numpy())
    elif isinstance(s.dtype, np.dtype) and np.issubdtype(s.dtype, np.datetime64):
        df[name] = np.where(mask, np.datetime64("NaT", "ms"), s.to_numpy())
    else:
        df[name] = s.mask(mask)


def _apply_row_rules(df: pd.DataFrame, rej: _Rejects, endpoint: str) -> None:
    # The documented forms first: "653 41" → "65341", "7696133375" → "769613-3375".
    invalid = {}
    for name, normalise in (
        ("owner_id", normalise_owner_ids),
        ("postal_code", normalise_postal_codes),
    ):
        if name in df:
            df[name], invalid[name] = normalise(df[name])
    for finding in list(row_rules(df, endpoint=endpoint, invalid=invalid)):
        r = RULES[finding.rule]
        rej.add(finding.rule, finding.field, finding.mask, df[finding.field], detail=finding.detail)
        if r.action == "null":
            _null_out(df, finding.field, finding.mask)


def _add_derived(df: pd.DataFrame, given: Mapping[str, Any]) -> None:
    """``kommunkod`` and ``construction_year_placeholder`` (after the fields, before geometry)."""
    if "county_code" in df and "municipality_code" in df:
        df["kommunkod"] = kommunkod(df).array
    elif "kommunkod" in given:
        df["kommunkod"] = pd.Series(given["kommunkod"]).astype("string").array
    if "construction_year" in df:
        df["construction_year_placeholder"] = construction_year_placeholder(df)
    elif "construction_year_placeholder" in given:
        df["construction_year_placeholder"] = (
            pd.Series(given["construction_year_placeholder"]).fillna(False).astype(bool).to_numpy()
        )


# --- coordinates -----------------------------------------------------------------------------------------


def _half_pairs(df: pd.DataFrame, rej: _Rejects) -> None:
    """Rows holding one coordinate of a pair without the other, and no complete pair at all."""
    n = len(df)
    complete_any = np.zeros(n, dtype=bool)
    half = np.zeros(n, dtype=bool)
    half_field = np.full(n, None, dtype=object)
    for _, a_col, b_col, _, _ in VALUEGUARD_PAIRS:
        ok_a = (
            ~np.isnan(df[a_col].to_numpy(dtype=float)) if a_col in df else np.zeros(n, dtype=bool)
        )
        ok_b = (
            ~np.isnan(df[b_col].to_numpy(dtype=float)) if b_col in df else np.zeros(n, dtype=bool)
        )
        h = ok_a ^ ok_b
        if h.any():
            half_field = np.where(
                h & (half_field == None),  # noqa: E711 - elementwise, on an object array
                np.where(ok_a, b_col, a_col),
                half_field,
            )
            half |= h
        complete_any |= ok_a & ok_b
    bad_half = half & ~complete_any
    if not bad_half.any():
        return
    if rej.strict:
        i = _first_bad(bad_half)
        raise SchemaError(
            f"incomplete coordinate pair and no other complete pair; {int(bad_half.sum())} "
            "such row(s)",
            field=half_field[i],
            **rej.locate(i),
        )
    for name in dict.fromkeys(half_field[bad_half]):
        m = bad_half & (half_field == name)
        rej.add("incomplete_coordinates", name, m, None, detail=f"{name} missing")


def _screened_coordinates(df: pd.DataFrame, rej: _Rejects, *, swap: bool) -> dict[str, Any]:
    """The coordinate columns with each row's unusable pairs blanked (for the geometry only).

    Called only when :func:`~vggeo.registry.coordinates.valueguard_points` refused the batch. A
    pair that is swapped (and ``swap`` is off) or fits no Swedish system is a reject (kept in its
    columns, not used for the geometry; the next complete pair is). When more than half of a
    batch's complete pairs are so, the input's convention is wrong, not a row: the columns are
    handed on unchanged, and ``valueguard_points`` refuses them again.
    """
    cols: dict[str, Any] = {c: df[c] for c in COORDINATE_FIELDS if c in df}
    for _, a_col, b_col, code, order in VALUEGUARD_PAIRS:
        if a_col not in df or b_col not in df:
            continue
        a, b = df[a_col].to_numpy(dtype=float), df[b_col].to_numpy(dtype=float)
        complete = ~np.isnan(a) & ~np.isnan(b)
        if not complete.any():
            continue
        swapped, foreign = detect_axis_problems(a, b, code, order, names=(a_col, b_col))
        usable = complete.copy()
        for rule_id, m, skip in (
            ("swapped_coordinates", swapped, swap),
            ("implausible_coordinates", foreign, False),
        ):
            if skip or not m.any() or m.sum() > _SYSTEMATIC_SHARE * complete.sum():
                continue  # none, or the input's convention: valueguard_points decides
            rej.add(rule_id, a_col, m, _pair_text(a, b, m), detail=f"{a_col}/{b_col}")
            usable &= ~m
        if (usable != complete).any():
            cols[a_col] = np.where(usable | ~complete, a, np.nan)
            cols[b_col] = np.where(usable | ~complete, b, np.nan)
    return cols


def _points(
    df: pd.DataFrame, rej: _Rejects, *, swap: bool, route: Route
) -> tuple[gpd.GeoSeries, pd.Series]:
    """Geometry and source of every row; rows with an unusable pair are rejects, not failures.

    The batch is first handed to :func:`~vggeo.registry.coordinates.valueguard_points` as it is
    (it checks every pair anyway); only if that refuses are the offending rows found and set aside.
    """
    _half_pairs(df, rej)
    coords = pd.DataFrame(
        {c: df[c] for c in COORDINATE_FIELDS if c in df}, index=df.index, copy=False
    )
    try:
        return valueguard_points(coords, swap=swap, route=route)
    except CoordinateError:
        if rej.strict:
            raise
    coords = pd.DataFrame(_screened_coordinates(df, rej, swap=swap), index=df.index, copy=False)
    return valueguard_points(coords, swap=swap, route=route)


def _pair_text(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.full(len(a), None, dtype=object)
    for i in np.flatnonzero(mask):
        out[i] = f"{_text(a[i])}, {_text(b[i])}"
    return out


# --- the canonical frame ----------------------------------------------------------------------------


def to_canonical(
    frame: pd.DataFrame,
    *,
    source: str | None = None,
    locate: Locate | None = None,
    swap: bool = False,
    strict: bool = False,
    strict_codes: bool = False,
    endpoint: str = "registry",
    route: Route = "direct",
    consume: bool = False,
    warn: bool = True,
    check_ids: bool = True,
    with_rejects: bool = False,
) -> CanonicalResult:
    """Turn a raw registry frame into the canonical GeoDataFrame.

    Parameters
    ----------
    frame
        Columns named as Valueguard names them; any subset of the field list, plus unknown
        columns (kept, reported in ``attrs["unknown_fields"]`` and an ``UnmappedWarning``).
        Derived columns from an earlier run (``geometry``, ``coord_source``, ``kommunkod``,
        ``construction_year_placeholder``) are rebuilt from the fields when those are present.
    source
        Name used in messages (file name, ``"page 3"``).
    locate
        ``position → {"file": ..., "row": ...}`` for messages (default: ``source`` and the
        1-based position).
    swap
        Exchange detectably swapped coordinate pairs (with a warning) instead of rejecting them.
    strict
        Refuse the input at the first value that is not of its type or breaks a documented
        rule (:class:`~vggeo.errors.SchemaError`, :class:`~vggeo.errors.CodeError`,
        :class:`~vggeo.errors.RuleError`, or the coordinate errors), instead of nulling or
        flagging it and listing it as a reject.
    strict_codes
        Refuse only values outside their code lists (the rest as without ``strict``).
    endpoint
        Which API endpoint the rows come from (``registry``, ``markups``, ``valuations``):
        the registry-only rules (``deleted`` 0 or 2, ``updated_from`` ``public_data``) are not
        applied to the others.
    consume
        Drop each column from ``frame`` once converted, so that a national-scale load never
        holds the raw and the canonical copy of the whole table at once. ``frame`` is left
        incomplete; readers that own their frame use this.
    with_rejects
        Return ``(frame, rejects)``: the rejects table (:data:`REJECT_COLUMNS`) besides the
        frame. Either way ``attrs["violations"]`` counts them by rule.

    Returns
    -------
    GeoDataFrame in EPSG:3006 (x = easting): declared fields in Valueguard's order with their
    canonical dtypes, then unknown columns, ``kommunkod``, ``construction_year_placeholder``,
    ``coord_source`` and ``geometry``. With ``with_rejects``, also the rejects table.

    Raises
    ------
    SchemaError, CodeError, RuleError, SwappedAxesError, CoordinateRangeError, InputError
        Naming file/page, row and field: always for a missing or repeated ``id`` and for a whole
        input in another axis order or system; for any rejected value when ``strict``.
    """
    gdf, rej = _canonical(
        frame,
        source=source,
        locate=locate,
        swap=swap,
        strict=strict,
        strict_codes=strict_codes,
        endpoint=endpoint,
        route=route,
        consume=consume,
        check_ids=check_ids,
    )
    rejects = rej.frame()
    extra = _whole_frame_rules(gdf, rej.locate, strict=strict)
    if len(extra):
        rejects = _concat_rejects([rejects, extra])
        _count_into(gdf.attrs, extra)
    if warn:
        _warn_from_attrs(gdf.attrs, len(gdf))
    return (gdf, rejects) if with_rejects else gdf


def _whole_frame_rules(gdf: pd.DataFrame, locate: Locate, *, strict: bool) -> pd.DataFrame:
    """Rules across rows (the same apartment number twice at an address), on the whole frame."""
    rej = _Rejects(locate, strict=strict, strict_codes=strict)
    rej.ids = gdf["id"].to_numpy() if "id" in gdf else None
    for finding in address_rules(gdf):
        rej.add(
            finding.rule, finding.field, finding.mask, gdf[finding.field], detail=finding.detail
        )
    return rej.frame()


def _refuse_nul(df: pd.DataFrame, locate: Locate) -> None:
    """Refuse text holding a NUL character (U+0000), naming the first row and field.

    GDAL's drivers (GeoPackage, CSV, FlatGeobuf) and the QGIS built on them end a text at its
    first NUL, so a value would reach the user's tools cut short while vggeo's own readers kept
    it whole: no writer could keep it, and no address or code holds one.

    Raises
    ------
    InputError
        Naming the file, row and field of the first such value.
    """
    for col in df.columns:
        s = df[col]
        if not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
            continue  # numbers, dates and code columns (checked against their lists)
        try:
            arr = pa.array(s, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed values: their text ones
            arr = pa.array([v if isinstance(v, str) else None for v in s], pa.large_string())
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            continue
        if not any(_holds_nul(c) for c in getattr(arr, "chunks", [arr])):
            continue
        hit = pc.match_substring(arr, "\x00")
        if pc.any(hit).as_py():
            pos = int(pc.index(hit, True).as_py())
            raise InputError(
                "text holds a NUL character (U+0000), which GeoPackage and CSV readers cut "
                "the text at; remove it from the input",
                field=str(col),
                **locate(pos),
            )


def _holds_nul(arr: pa.Array) -> bool:
    """Whether the text bytes of a string array hold a zero byte (one ``memchr`` over its data
    buffer: ten times faster than a per-value search, which then only locates it)."""
    _, offset_buffer, data = arr.buffers()
    if offset_buffer is None or data is None or not len(arr):
        return False
    offsets = np.frombuffer(
        offset_buffer, np.int64 if pa.types.is_large_string(arr.type) else np.int32
    )[arr.offset : arr.offset + len(arr) + 1]
    return memoryview(data)[int(offsets[0]) : int(offsets[-1])].tobytes().find(b"\x00") >= 0


def _count_into(attrs: dict, rejects: pd.DataFrame) -> None:
    counts = dict(attrs.get("violations") or {})
    for rule_id, k in rejects["rule"].value_counts(sort=False).items():
        counts[str(rule_id)] = counts.get(str(rule_id), 0) + int(k)
    attrs["violations"] = counts
    if attrs.get("first_violation") is None:
        first = rejects[rejects["rule"] != "unknown_codes"].head(1)
        if len(first):
            r = first.iloc[0]
            attrs["first_violation"] = {
                "file": r["file"] if pd.notna(r["file"]) else None,
                "row": int(r["row"]),
                "field": r["field"],
                "rule": r["rule"],
            }


def _concat_rejects(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_rejects()
    return pd.concat(parts, ignore_index=True)


def _canonical(
    frame: pd.DataFrame,
    *,
    source: str | None,
    locate: Locate | None,
    swap: bool,
    strict: bool,
    strict_codes: bool,
    endpoint: str,
    route: Route,
    consume: bool,
    check_ids: bool,
) -> tuple[gpd.GeoDataFrame, _Rejects]:
    locate = locate or _default_locate(source)
    rej = _Rejects(locate, strict=strict, strict_codes=strict_codes)
    key_rej = _Rejects(locate, strict=True, strict_codes=True)  # the key is never optional
    n = len(frame)
    if not isinstance(frame.index, pd.RangeIndex) or not consume:
        frame = (
            frame.reset_index(drop=True)
            if not isinstance(frame.index, pd.RangeIndex)
            else frame.copy(deep=False)
        )
    had = set(frame.columns)
    present = [f for f in FIELDS if f.name in frame.columns]
    dropped_index = [
        c
        for c in frame.columns
        if c in _INDEX_COLUMNS and c not in FIELD_NAMES and _is_saved_index(frame[c])
    ]
    unknown = [
        c
        for c in frame.columns
        if c not in FIELD_NAMES and c not in DERIVED_COLUMNS and c not in dropped_index
    ]
    given_derived = {
        c: frame[c].to_numpy()
        for c in ("kommunkod", "construction_year_placeholder")
        if c in frame.columns
    }
    key = next(f for f in FIELDS if f.kind == "key")
    if n and key not in present:  # not one row has an id: as refused as one row without it
        raise SchemaError(
            f"every residence needs an id; the input has no {key.name!r} field "
            f"(its fields: {', '.join(map(str, list(frame.columns)[:8]))}"
            f"{', …' if len(frame.columns) > 8 else ''})",
            field=key.name,
            **key_rej.locate(0),
        )
    code_report: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for f in present:
        s = frame[f.name]
        if f.kind == "key":
            out[f.name] = _key(s, f, key_rej, check_unique=check_ids)
            rej.ids = out[f.name]
        elif f.kind == "int":
            out[f.name] = _integer(s, f, rej, f.dtype)
        elif f.kind == "float":
            out[f.name] = _numeric(s, f, rej)
        elif f.kind == "string":
            out[f.name] = _string(s, f).array
        elif f.kind == "padded":
            out[f.name] = _padded(s, f).array
        elif f.kind == "code":
            out[f.name] = _code(s, f, rej, code_report)
        elif f.kind == "date":
            out[f.name] = _date(s, f, rej)
        elif f.kind == "list":
            out[f.name] = _number_list(s, f, rej).array
        else:  # pragma: no cover - the field list is static
            raise AssertionError(f.kind)
        if consume:
            del frame[f.name], s
    for c in unknown:
        out[c] = (
            frame[c].to_numpy()
            if not isinstance(frame[c].dtype, pd.api.extensions.ExtensionDtype)
            else frame[c].array
        )
    df = pd.DataFrame(out, index=pd.RangeIndex(n), copy=False)
    del out
    _refuse_nul(df, locate)
    if consume:
        _release_arrow_memory()
    _apply_row_rules(df, rej, endpoint)
    _add_derived(df, given_derived)
    try:
        geometry, coord_source = _points(df, rej, swap=swap, route=route)
    except VggeoError as err:
        where = locate(err.row - 1) if err.row else {"file": source}
        raise type(err)(err.message, field=err.field, value=err.value, **where) from err
    df["coord_source"] = coord_source.array
    if "geometry" in frame.columns and not any(c in had for c in COORDINATE_FIELDS):
        # A geometry without coordinate columns (e.g. a GeoParquet someone else wrote): keep it.
        geometry = gpd.GeoSeries(frame["geometry"].to_numpy(), crs="EPSG:3006")
    gdf = gpd.GeoDataFrame(df, geometry=geometry.to_numpy(), crs="EPSG:3006")
    no_point = gdf.geometry.isna().to_numpy()
    no_geometry = None
    if no_point.any() and any(c in had for c in COORDINATE_FIELDS):
        no_geometry = {"count": int(no_point.sum()), "first": locate(_first_bad(no_point))}
    counts = rej.counts()
    first = _first_reject(rej)
    gdf.attrs.update(
        {
            "source": source,
            "unknown_fields": unknown,
            "absent_fields": [f for f in FIELD_NAMES if f not in had],
            "unknown_codes": code_report,
            "no_geometry": no_geometry,
            "violations": counts,
            "first_violation": first,
        }
    )
    return gdf, rej


def _first_reject(rej: _Rejects) -> dict | None:
    """Where the first non-code reject is (for the warning), as file/row/field/rule."""
    best = None
    for rule_id, field_name, idx, _, _ in rej.parts:
        if rule_id == "unknown_codes":
            continue
        i = int(idx[0])
        if best is None or i < best[0]:
            best = (i, rule_id, field_name)
    if best is None:
        return None
    return {**rej.locate(best[0]), "field": best[2], "rule": best[1]}


def _warn_from_attrs(attrs: Mapping, n: int) -> None:
    """One warning per kind of finding (rows without geometry, unknown codes, rules, fields)."""
    ng = attrs.get("no_geometry")
    if ng:
        warnings.warn(
            f"{ng['count']} of {n} rows have no complete coordinate pair and no geometry; "
            f"first: {_where_text(ng['first'])}",
            CoordinateWarning,
            stacklevel=3,
        )
    codes = attrs.get("unknown_codes") or {}
    if codes:
        name, first = next(iter(codes.items()))
        warnings.warn(
            "values outside their code lists (kept, flagged): "
            + ", ".join(f"{k} ×{v['count']}" for k, v in codes.items())
            + f"; first: {_where_text(first['first'])}, field {name!r}, "
            f"value {first['first']['value']!r}",
            CodeWarning,
            stacklevel=3,
        )
    rules = {k: v for k, v in (attrs.get("violations") or {}).items() if k != "unknown_codes"}
    if rules:
        first = attrs.get("first_violation") or {}
        nulled = sum(v for k, v in rules.items() if RULES[k].action == "null")
        warnings.warn(
            f"{sum(rules.values())} value(s) broke documented rules ({nulled} nulled, "
            f"{sum(rules.values()) - nulled} kept; all listed as rejects): "
            + ", ".join(f"{k} ×{v}" for k, v in rules.items())
            + (f"; first: {_where_text(first)}, field {first.get('field')!r}" if first else ""),
            RuleWarning,
            stacklevel=3,
        )
    if attrs.get("unknown_fields"):
        warnings.warn(
            f"fields not in Valueguard's field list (kept): {', '.join(attrs['unknown_fields'])}",
            UnmappedWarning,
            stacklevel=3,
        )


def _where_text(where: Mapping) -> str:
    f, r = where.get("file"), where.get("row")
    if f is not None and r is not None:
        return f"{f}:{r}"
    return f if f is not None else f"row {r}"


def _key(s: pd.Series, f: Field, rej: _Rejects, *, check_unique: bool = True) -> np.ndarray:
    num = _numeric(s, f, rej)
    missing = np.isnan(num)
    if missing.any():
        i = _first_bad(missing)
        raise SchemaError("every residence needs an id", field=f.name, **rej.locate(i))
    ids = _integer(s, f, rej, "int64")
    if check_unique:
        _check_unique_ids(ids, f, rej.locate)
    return ids


def _check_unique_ids(ids: np.ndarray, f: Field, locate: Locate) -> None:
    order = np.argsort(ids, kind="stable")
    dup = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if dup.size:
        a, b = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
        raise SchemaError(
            f"id is not unique: {int(dup.size)} duplicate(s); the first also at "
            f"{_where_text(locate(a))}",
            field=f.name,
            value=int(ids[b]),
            **locate(b),
        )


def _release_arrow_memory() -> None:
    """Hand memory freed by Arrow back to the system (its allocator keeps it otherwise)."""
    pa.default_memory_pool().release_unused()
    _malloc_trim()


def _malloc_trim() -> None:
    """Return freed C heap to the system on glibc (numpy/pandas temporaries); no-op elsewhere."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


# --- national scale: canonicalise in batches ---------------------------------------------------------


def canonical_in_batches(
    frames: Iterable[pd.DataFrame],
    *,
    source: str | None,
    locate: Locate,
    progress: bool = False,
    with_rejects: bool = False,
    **kwargs: Any,
) -> CanonicalResult:
    """:func:`to_canonical` over a stream of raw frames, merged into one frame.

    Only the canonical form of the rows read so far plus one raw batch are in memory at once,
    which keeps a 5.6-million-row load within a few GB. Messages and rejects keep file-wide row
    numbers, ids are checked for uniqueness and apartment numbers per address across all
    batches, and warnings are given once.
    """
    parts = []
    rejects = []
    start = 0
    strict = bool(kwargs.get("strict"))
    bar = tqdm(
        unit=" rows",
        unit_scale=True,
        disable=not progress,
        file=sys.stderr,
        desc=f"read {source}" if source else "read",
    )
    for frame in bar_iter(frames, bar):
        where = lambda p, off=start: locate(p + off)  # noqa: E731
        g, rej = _canonical(
            frame,
            source=source,
            locate=where,
            consume=True,
            check_ids=False,
            **_canonical_kwargs(kwargs),
        )
        del frame
        parts.append(g)
        rejects.append(rej.frame())
        start += len(g)
        bar.update(len(g))
    bar.close()
    if not parts:
        return to_canonical(
            pd.DataFrame(columns=["id"]),
            source=source,
            locate=locate,
            with_rejects=with_rejects,
            **kwargs,
        )
    if len(parts) == 1:
        gdf = parts[0]
    else:
        attrs = _merge_attrs([p.attrs for p in parts])
        geometry = np.concatenate([np.asarray(p.geometry.values) for p in parts])
        columns = list(dict.fromkeys(c for p in parts for c in p.columns if c != "geometry"))
        merged: dict[str, Any] = {}
        for c in columns:
            # a batch without the column (its records did not carry it): nulls of its type
            dtype = next(p[c].dtype for p in parts if c in p.columns)
            pieces = [
                p[c] if c in p.columns else pd.Series(index=pd.RangeIndex(len(p)), dtype=dtype)
                for p in parts
            ]
            if all(isinstance(x.dtype, pd.CategoricalDtype) for x in pieces):
                merged[c] = _concat_categoricals(pieces)
            else:
                merged[c] = pd.concat(pieces, ignore_index=True).array
            for p in parts:  # free each column of the parts as soon as it is merged
                if c in p.columns:
                    del p[c]
            del pieces
        n = len(geometry)
        del parts
        gdf = gpd.GeoDataFrame(
            pd.DataFrame(merged, index=pd.RangeIndex(n), copy=False),
            geometry=geometry,
            crs="EPSG:3006",
        )
        gdf.attrs.update(attrs)
    if "id" in gdf.columns:
        _check_unique_ids(gdf["id"].to_numpy(), field("id"), locate)
    extra = _whole_frame_rules(gdf, locate, strict=strict)
    if len(extra):
        _count_into(gdf.attrs, extra)
    _warn_from_attrs(gdf.attrs, len(gdf))
    if with_rejects:
        return gdf, _concat_rejects([*rejects, extra])
    return gdf


def _canonical_kwargs(kwargs: Mapping) -> dict:
    """The options of :func:`to_canonical` that :func:`_canonical` takes, with their defaults."""
    return {
        "swap": kwargs.get("swap", False),
        "strict": kwargs.get("strict", False),
        "strict_codes": kwargs.get("strict_codes", False),
        "endpoint": kwargs.get("endpoint", "registry"),
        "route": kwargs.get("route", "direct"),
    }


def bar_iter(items: Iterable[T], bar: tqdm) -> Iterator[T]:
    """Iterate, closing the progress bar if the consumer stops early (errors, Ctrl-C)."""
    try:
        yield from items
    finally:
        bar.close()


def _concat_categoricals(pieces: list[pd.Series]) -> pd.Categorical:
    """Concatenate categoricals whose category sets may differ (unknown codes per batch)."""
    first = pieces[0].cat.categories
    cats = list(first)
    seen = set(cats)
    for x in pieces[1:]:
        for v in x.cat.categories:
            if v not in seen:
                cats.append(v)
                seen.add(v)
    if len(cats) > len(first) and pd.api.types.is_integer_dtype(first.dtype):
        cats = sorted(cats)  # numeric code lists are kept in order
    index = pd.Index(
        cats, dtype=first.dtype if pd.api.types.is_integer_dtype(first.dtype) else None
    )
    codes = []
    for x in pieces:
        remap = np.append(index.get_indexer(x.cat.categories), -1).astype(np.int32)
        c = x.cat.codes.to_numpy()
        codes.append(remap[np.where(c < 0, len(remap) - 1, c)])
    return pd.Categorical.from_codes(np.concatenate(codes), categories=index)


def _merge_attrs(all_attrs: list[Mapping]) -> dict:
    out = dict(all_attrs[0])
    out["unknown_fields"] = list(dict.fromkeys(f for a in all_attrs for f in a["unknown_fields"]))
    out["absent_fields"] = [
        f for f in FIELD_NAMES if all(f in a["absent_fields"] for a in all_attrs)
    ]
    codes: dict[str, Any] = {}
    for a in all_attrs:
        for k, v in (a.get("unknown_codes") or {}).items():
            if k in codes:
                codes[k]["count"] += v["count"]
            else:
                codes[k] = {"count": v["count"], "first": v["first"]}
    out["unknown_codes"] = codes
    violations: dict[str, int] = {}
    for a in all_attrs:
        for k, v in (a.get("violations") or {}).items():
            violations[k] = violations.get(k, 0) + v
    out["violations"] = violations
    out["first_violation"] = next(
        (a["first_violation"] for a in all_attrs if a.get("first_violation")), None
    )
    ng = [a["no_geometry"] for a in all_attrs if a.get("no_geometry")]
    out["no_geometry"] = (
        {"count": sum(x["count"] for x in ng), "first": ng[0]["first"]} if ng else None
    )
    return out
