"""Readers and writers of Valueguard's registry, all ending in one canonical GeoDataFrame.

Inputs: raw API pages (``{"residences": [...], "meta_data": {...}}``), JSON lines (one residence
per line, or one page per line), CSV (as users save it from pandas, or as any tool writes it),
GeoParquet and GeoPackage. Every path goes through :func:`to_canonical`, which applies the field
list in :mod:`vggeo.registry.fields`, checks every value's type, and builds the geometry with
:func:`vggeo.crs.valueguard_points` (``sweref99x`` = northing, then RT 90, then WGS 84).

Speed: JSON lines and CSV are parsed by Arrow's multi-threaded C++ readers with the declared
types; only when that typed fast path refuses the input (a wrong type somewhere) is the file
re-read value by value, which finds and names the offending line and field.

Errors name the file (or API page), the row and the field. Writers go to a temporary file in
the target's directory and are renamed into place, so an error or Ctrl-C never leaves a
half-written output.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vggeo.errors import (
    CodeError,
    ParseError,
    SchemaError,
    UnmappedWarning,
    VggeoError,
    VggeoWarning,
)
from vggeo.registry.fields import COORDINATE_FIELDS, DERIVED_COLUMNS, FIELD_NAMES, FIELDS, Field

__all__ = [
    "read_registry",
    "read_api_pages",
    "records_to_frame",
    "to_canonical",
    "write_registry",
    "to_raw",
    "atomic_path",
    "FORMATS",
]

log = logging.getLogger(__name__)

#: Output/input format by file extension.
FORMATS = {".parquet": "parquet", ".geoparquet": "parquet", ".gpkg": "gpkg", ".csv": "csv",
           ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}  # fmt: skip

_INT_RANGES = {"Int8": (-128, 127), "Int16": (-32768, 32767), "Int32": (-(2**31), 2**31 - 1),
               "Int64": (-(2**63), 2**63 - 1), "int64": (-(2**63), 2**63 - 1)}  # fmt: skip
# Pandas' index column, when a user saved a frame with ``to_csv()`` without ``index=False``.
_INDEX_COLUMNS = ("Unnamed: 0", "", "index")

Locate = Callable[[int], dict]


def _default_locate(source: str | None) -> Locate:
    def locate(pos: int) -> dict:
        return {"file": source, "row": pos + 1}

    return locate


class CoordinateWarning(VggeoWarning):
    """Rows without any complete coordinate pair (they get no geometry)."""


class CodeWarning(VggeoWarning):
    """Values outside their documented code list (kept, flagged)."""


# --- value conversion, one column at a time ------------------------------------------------------


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _numeric(s: pd.Series, f: Field, locate: Locate) -> np.ndarray:
    """float64 array of a column; a present value that is not a number is a SchemaError."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(s.cat.categories.dtype if len(s.cat.categories) else object)
        if pd.api.types.is_numeric_dtype(s.dtype):
            return s.to_numpy(dtype=float, na_value=np.nan)
    text = s.astype("string").str.strip()
    blank = (text == "").fillna(True).to_numpy(dtype=bool)
    num = pd.to_numeric(text.where(~blank), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~blank & np.isnan(num) & ~(text.str.lower().isin(["nan", "null", "none"])
                                     .fillna(False).to_numpy(dtype=bool))  # fmt: skip
    if bad.any():
        i = _first_bad(bad)
        raise SchemaError(
            f"expected a number ({f.source_type}); {int(bad.sum())} value(s) are not",
            field=f.name, value=s.iloc[i], **locate(i),
        )  # fmt: skip
    return num


def _integer(s: pd.Series, f: Field, locate: Locate, dtype: str) -> pd.arrays.IntegerArray:
    num = _numeric(s, f, locate)
    with np.errstate(invalid="ignore"):
        frac = ~np.isnan(num) & (num != np.round(num))
    if frac.any():
        i = _first_bad(frac)
        raise SchemaError(f"expected a whole number ({f.source_type})", field=f.name,
                          value=s.iloc[i], **locate(i))  # fmt: skip
    lo, hi = _INT_RANGES[dtype]
    with np.errstate(invalid="ignore"):
        out = ~np.isnan(num) & ((num < lo) | (num > hi))
    if out.any():
        i = _first_bad(out)
        raise SchemaError(f"value outside the range of {f.source_type} ({lo}…{hi})",
                          field=f.name, value=s.iloc[i], **locate(i))  # fmt: skip
    mask = np.isnan(num)
    values = np.where(mask, 0, num).astype(dtype.lower())
    return pd.arrays.IntegerArray(values, mask) if dtype != "int64" else values


def _string(s: pd.Series, f: Field) -> pd.Series:
    if pd.api.types.is_float_dtype(s.dtype):
        # Numbers read as floats (CSV/JSON): 65341.0 → "65341", never "65341.0".
        num = s.to_numpy(dtype=float, na_value=np.nan)
        integral = np.isnan(num) | (num == np.round(num))
        if integral.all():
            return pd.Series(pd.array(np.where(np.isnan(num), 0, num).astype(np.int64),
                                      dtype="Int64"), index=s.index).where(~np.isnan(num)) \
                .astype("string")  # fmt: skip
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    return s.astype("string")


def _padded(s: pd.Series, f: Field) -> pd.Series:
    text = _string(s, f).str.strip()
    digits = text.str.fullmatch(r"\d+").fillna(False)
    return text.where(~digits, text.str.zfill(f.width or 0))


def _code(s: pd.Series, f: Field, locate: Locate, report: dict) -> pd.Categorical:
    from vggeo.codes import get_code_list

    cl = get_code_list(f.codes or f.name)
    if cl.is_numeric:
        num = _numeric(s, f, locate)
        with np.errstate(invalid="ignore"):
            frac = ~np.isnan(num) & (num != np.round(num))
        if frac.any():
            i = _first_bad(frac)
            raise SchemaError("expected an integer code", field=f.name, value=s.iloc[i],
                              **locate(i))  # fmt: skip
        present = ~np.isnan(num)
        ints = np.where(present, num, 0).astype(np.int64)
        documented = np.array(sorted(cl.codes), dtype=np.int64)
        seen = np.unique(ints[present])
        categories = np.union1d(documented, seen)
        codes = np.searchsorted(categories, ints).astype(np.int32 if len(categories) > 127
                                                          else np.int8)  # fmt: skip
        codes[~present] = -1
        unknown = present & ~np.isin(ints, documented)
        cat = pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype="int64"))
        values_for_msg = ints
    else:
        text = _string(s, f).str.strip()
        present = text.notna().to_numpy()
        documented = list(cl.codes)
        seen = [v for v in pd.unique(text.dropna()) if v not in cl.codes]
        cat = pd.Categorical(text.to_numpy(dtype=object, na_value=None),
                             categories=documented + sorted(seen))  # fmt: skip
        unknown = present & ~text.isin(documented).fillna(False).to_numpy(dtype=bool)
        values_for_msg = text.to_numpy(dtype=object, na_value=None)
    if unknown.any():
        i = _first_bad(unknown)
        where = locate(i)
        report[f.name] = {"count": int(unknown.sum()), "first": {**where, "value": _py(values_for_msg[i])}}
        if report.get("_strict"):
            raise CodeError(
                f"{int(unknown.sum())} value(s) outside the documented {f.name} codes "
                f"({', '.join(map(str, cl.values))})",
                field=f.name, value=_py(values_for_msg[i]), **where,
            )  # fmt: skip
    return cat


def _py(v):
    return v.item() if hasattr(v, "item") else v


def _date(s: pd.Series, f: Field, locate: Locate) -> np.ndarray:
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
        i = _first_bad(bad)
        raise SchemaError("expected a date YYYY-MM-DD", field=f.name, value=s.iloc[i],
                          **locate(i))  # fmt: skip
    return parsed.to_numpy().astype("datetime64[ms]")


def _list_dtype():
    import pyarrow as pa

    return pd.ArrowDtype(pa.list_(pa.int64()))


def _number_list(s: pd.Series, f: Field, locate: Locate) -> pd.Series:
    """``number`` as list<int64>: from lists, Arrow lists, '[1, 3, None]' text or scalars."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_list(s.dtype.pyarrow_dtype):
        arr = pa.array(s)
        if not pa.types.is_integer(arr.type.value_type):
            flat = arr.flatten()
            fnum = pc.cast(flat, pa.float64(), safe=False) if not pa.types.is_string(flat.type) \
                else None  # fmt: skip
            if fnum is None or pc.all(pc.equal(pc.round(fnum), fnum)).as_py() not in (True, None):
                raise SchemaError("expected a list of whole numbers", field=f.name)
            arr = pa.ListArray.from_arrays(arr.offsets, pc.cast(fnum, pa.int64()), mask=arr.is_null())
        return pd.Series(pd.arrays.ArrowExtensionArray(arr.cast(pa.list_(pa.int64()))),
                         index=s.index)  # fmt: skip
    if pd.api.types.is_numeric_dtype(s.dtype):
        num = _integer(s, f, locate, "Int64")
        arr = pa.array(num, type=pa.int64(), from_pandas=True)
        offsets = pa.array(np.arange(len(arr) + 1, dtype=np.int32))
        lists = pa.ListArray.from_arrays(offsets, arr, mask=pc.is_null(arr))
        return pd.Series(pd.arrays.ArrowExtensionArray(lists), index=s.index)
    if s.dtype == object:
        try:
            arr = pa.array(s.to_numpy(), type=pa.list_(pa.int64()), from_pandas=True)
            return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=s.index)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            pass
        # Mixed content: lists, scalars, text. Slow path, reached only for irregular input.
        values = [_one_number(v, i, f, locate) for i, v in enumerate(s.to_numpy())]
        return pd.Series(pd.arrays.ArrowExtensionArray(pa.array(values, type=pa.list_(pa.int64()))),
                         index=s.index)  # fmt: skip
    # Text such as "[1, 3, None]" (pandas' str(list)) or "1": parsed by Arrow, vectorised.
    text = pa.array(s.astype("string").str.strip(), type=pa.large_string(), from_pandas=True)
    null = pc.or_(pc.is_null(text), pc.equal(text, ""))
    inner = pc.replace_substring_regex(text, r"^\[|\]$|\s+", "")
    parts = pc.split_pattern(inner, ",")
    flat = pc.list_flatten(parts)
    nullish = pc.is_in(pc.utf8_lower(flat), value_set=pa.array(["none", "nan", "null", "<na>"]))
    empty_list = pc.equal(pc.list_value_length(parts), 1)
    flat = pc.if_else(nullish, pa.scalar(None, pa.large_string()), flat)
    try:
        vals = pc.cast(flat, pa.float64())
    except pa.ArrowInvalid:
        vals = None
    if vals is None or not pc.all(pc.or_(pc.is_null(vals), pc.equal(pc.round(vals), vals))).as_py():
        # Find the row for the message (rare error path).
        for i, v in enumerate(s.to_numpy()):
            _one_number(v, i, f, locate)
        raise SchemaError("expected a list of whole numbers", field=f.name)
    offsets = pc.list_parent_indices(parts)
    del offsets
    lists = pa.ListArray.from_arrays(pa.array(np.asarray(parts.offsets), type=pa.int32()),
                                     pc.cast(vals, pa.int64()))  # fmt: skip
    # "[]" splits to one empty string, which must become an empty list, not [None].
    is_empty = pc.and_(empty_list, pc.equal(inner, ""))
    if pc.any(is_empty).as_py():
        py = lists.to_pylist()
        empt = np.asarray(is_empty.to_numpy(zero_copy_only=False), dtype=bool)
        py = [[] if e else v for v, e in zip(py, empt, strict=True)]
        lists = pa.array(py, type=pa.list_(pa.int64()))
    lists = pa.ListArray.from_arrays(lists.offsets, lists.values, mask=null)
    return pd.Series(pd.arrays.ArrowExtensionArray(lists), index=s.index)


def _one_number(v, i: int, f: Field, locate: Locate) -> list | None:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, str):
        t = v.strip()
        if not t:
            return None
        t = t.strip("[]")
        items = [x.strip() for x in t.split(",")] if t else []
        v = [None if x.lower() in ("none", "nan", "null", "") else x for x in items]
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, (list, tuple)):
        raise SchemaError("expected a list of street numbers", field=f.name, value=v, **locate(i))
    out = []
    for x in v:
        if x is None:
            out.append(None)
            continue
        try:
            fx = float(x)
        except (TypeError, ValueError):
            raise SchemaError("expected a list of whole numbers", field=f.name, value=v,
                              **locate(i)) from None  # fmt: skip
        if fx != round(fx):
            raise SchemaError("expected a list of whole numbers", field=f.name, value=v,
                              **locate(i))  # fmt: skip
        out.append(int(fx))
    return out


# --- the canonical frame ----------------------------------------------------------------------------


def to_canonical(
    frame: pd.DataFrame,
    *,
    source: str | None = None,
    locate: Locate | None = None,
    swap: bool = False,
    strict_codes: bool = False,
    route: str = "direct",
):
    """Turn a raw registry frame into the canonical GeoDataFrame.

    Parameters
    ----------
    frame
        Columns named as Valueguard names them; any subset of the field list, plus unknown
        columns (kept, reported in ``attrs["unknown_fields"]`` and an ``UnmappedWarning``).
        A ``geometry``/``coord_source`` column from an earlier run is rebuilt from the
        coordinates when they are present.
    source
        Name used in messages (file name, ``"page 3"``).
    locate
        ``position → {"file": ..., "row": ...}`` for messages (default: ``source`` and the
        1-based position).
    swap
        Exchange detectably swapped coordinate pairs (with a warning) instead of failing.
    strict_codes
        Raise :class:`~vggeo.errors.CodeError` on a value outside its code list (default: keep
        it, flag it in ``attrs["unknown_codes"]`` and warn).

    Returns
    -------
    GeoDataFrame in EPSG:3006 (x = easting), declared fields in Valueguard's order with their
    canonical dtypes, then unknown columns, ``coord_source`` and ``geometry``.

    Raises
    ------
    SchemaError, CodeError, SwappedAxesError, CoordinateRangeError, InputError
        Naming file/page, row and field.
    """
    import geopandas as gpd

    from vggeo.crs import valueguard_points

    locate = locate or _default_locate(source)
    n = len(frame)
    frame = frame.reset_index(drop=True) if not isinstance(frame.index, pd.RangeIndex) else frame
    present = [f for f in FIELDS if f.name in frame.columns]
    dropped_index = [c for c in frame.columns if c in _INDEX_COLUMNS and c not in FIELD_NAMES]
    unknown = [c for c in frame.columns
               if c not in FIELD_NAMES and c not in DERIVED_COLUMNS and c not in dropped_index]  # fmt: skip
    code_report: dict[str, Any] = {"_strict": strict_codes}
    out: dict[str, Any] = {}
    for f in present:
        s = frame[f.name]
        if f.kind == "key":
            out[f.name] = _key(s, f, locate)
        elif f.kind == "int":
            out[f.name] = _integer(s, f, locate, f.dtype)
        elif f.kind == "float":
            out[f.name] = _numeric(s, f, locate)
        elif f.kind == "string":
            out[f.name] = _string(s, f).array
        elif f.kind == "padded":
            out[f.name] = _padded(s, f).array
        elif f.kind == "code":
            out[f.name] = _code(s, f, locate, code_report)
        elif f.kind == "date":
            out[f.name] = _date(s, f, locate)
        elif f.kind == "list":
            out[f.name] = _number_list(s, f, locate).array
        else:  # pragma: no cover - the field list is static
            raise AssertionError(f.kind)
    for c in unknown:
        out[c] = frame[c].to_numpy() if not isinstance(frame[c].dtype, pd.ExtensionDtype) \
            else frame[c].array  # fmt: skip
    df = pd.DataFrame(out, index=pd.RangeIndex(n))
    _check_half_pairs(df, locate)
    try:
        geometry, coord_source = valueguard_points(df, swap=swap, route=route)
    except VggeoError as err:
        where = locate(err.row - 1) if err.row else {"file": source}
        raise type(err)(err.message, field=err.field, value=err.value, **where) from err
    df["coord_source"] = coord_source.array
    if "geometry" in frame.columns and not any(c in frame.columns for c in COORDINATE_FIELDS):
        # A geometry without coordinate columns (e.g. a GeoParquet someone else wrote): keep it.
        geometry = gpd.GeoSeries(frame["geometry"].to_numpy(), crs="EPSG:3006")
    gdf = gpd.GeoDataFrame(df, geometry=geometry.to_numpy(), crs="EPSG:3006")
    no_point = gdf.geometry.isna().to_numpy()
    if no_point.any() and any(c in frame.columns for c in COORDINATE_FIELDS):
        i = _first_bad(no_point)
        where = locate(i)
        warnings.warn(
            f"{int(no_point.sum())} of {n} rows have no complete coordinate pair and no "
            f"geometry; first: {_where_text(where)}",
            CoordinateWarning,
            stacklevel=2,
        )
    codes = {k: v for k, v in code_report.items() if k != "_strict"}
    if codes:
        first = next(iter(codes.items()))
        warnings.warn(
            "values outside their code lists (kept, flagged): "
            + ", ".join(f"{k} ×{v['count']}" for k, v in codes.items())
            + f"; first: {_where_text(first[1]['first'])}, field {first[0]!r}, "
            f"value {first[1]['first']['value']!r}",
            CodeWarning,
            stacklevel=2,
        )
    if unknown:
        warnings.warn(f"fields not in Valueguard's field list (kept): {', '.join(unknown)}",
                      UnmappedWarning, stacklevel=2)  # fmt: skip
    gdf.attrs.update({"source": source, "unknown_fields": unknown,
                      "absent_fields": [f for f in FIELD_NAMES if f not in frame.columns],
                      "unknown_codes": codes})  # fmt: skip
    return gdf


def _where_text(where: Mapping) -> str:
    f, r = where.get("file"), where.get("row")
    if f is not None and r is not None:
        return f"{f}:{r}"
    return f if f is not None else f"row {r}"


def _key(s: pd.Series, f: Field, locate: Locate) -> np.ndarray:
    num = _numeric(s, f, locate)
    missing = np.isnan(num)
    if missing.any():
        i = _first_bad(missing)
        raise SchemaError("every residence needs an id", field=f.name, **locate(i))
    ids = _integer(s, f, locate, "int64")
    order = np.argsort(ids, kind="stable")
    dup = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if dup.size:
        a, b = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
        raise SchemaError(
            f"id is not unique: {int(dup.size)} duplicate(s); the first also at "
            f"{_where_text(locate(a))}",
            field=f.name, value=int(ids[b]), **locate(b),
        )  # fmt: skip
    return ids


def _check_half_pairs(df: pd.DataFrame, locate: Locate) -> None:
    """A row holding one coordinate of a pair but not the other, and no complete pair at all."""
    from vggeo.crs import VALUEGUARD_PAIRS

    n = len(df)
    complete = np.zeros(n, dtype=bool)
    half = np.zeros(n, dtype=bool)
    half_col = np.full(n, -1)
    names = []
    for k, (_, a, b, _, _) in enumerate(VALUEGUARD_PAIRS):
        has_a = ~np.isnan(df[a].to_numpy(float)) if a in df else np.zeros(n, dtype=bool)
        has_b = ~np.isnan(df[b].to_numpy(float)) if b in df else np.zeros(n, dtype=bool)
        complete |= has_a & has_b
        h = has_a ^ has_b
        half_col = np.where(h & (half_col < 0), np.where(has_a, 2 * k + 1, 2 * k), half_col)
        half |= h
        names += [a, b]
    bad = half & ~complete
    if bad.any():
        i = _first_bad(bad)
        missing_col = names[half_col[i]]
        raise SchemaError(
            f"incomplete coordinate pair and no other complete pair; {int(bad.sum())} such row(s)",
            field=missing_col, **locate(i),
        )  # fmt: skip


# --- raw inputs → raw frames ------------------------------------------------------------------------


def records_to_frame(records: list[Mapping], *, where: str = "") -> pd.DataFrame:
    """Residence dicts (from the API or JSON) → a raw DataFrame, keeping every key."""
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise ParseError(f"expected a residence object, got {type(r).__name__}",
                             file=where or None, row=i + 1)  # fmt: skip
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def _page_residences(page: Any, where: str) -> list:
    if not isinstance(page, Mapping):
        raise ParseError(f"an API page must be a JSON object, got {type(page).__name__}", file=where)
    if "residences" not in page:
        raise ParseError("an API page must hold 'residences'", file=where,
                         value=sorted(page)[:10])  # fmt: skip
    res = page["residences"]
    if not isinstance(res, list):
        raise ParseError("'residences' must be a list", file=where, field="residences")
    meta = page.get("meta_data")
    if meta is not None:
        if not isinstance(meta, Mapping):
            raise ParseError("'meta_data' must be an object", file=where, field="meta_data")
        rows = meta.get("response_rows")
        if rows is not None and rows != len(res):
            raise ParseError(
                f"meta_data.response_rows says {rows} but the page holds {len(res)} residences",
                file=where, field="meta_data.response_rows", value=rows,
            )  # fmt: skip
    return res


def read_api_pages(pages: Iterable[Any], *, source: str | None = None, **kwargs):
    """Raw API pages (dicts, or JSON text/bytes) → the canonical GeoDataFrame.

    Messages name the page (1-based), its offset where known, and the row within the page.
    """
    records: list = []
    spans: list[tuple[int, str]] = []  # (first position, page label)
    for k, page in enumerate(pages, start=1):
        label = f"{source + ' ' if source else ''}page {k}"
        if isinstance(page, (bytes, str)):
            try:
                page = json.loads(page)
            except json.JSONDecodeError as err:
                raise ParseError(f"malformed JSON: {err.msg} at line {err.lineno} column "
                                 f"{err.colno}", file=label) from None  # fmt: skip
        if isinstance(page, Mapping) and isinstance(page.get("meta_data"), Mapping):
            off = page["meta_data"].get("offset")
            if off is not None:
                label = f"{label} (offset {off})"
        res = _page_residences(page, label)
        spans.append((len(records), label))
        records.extend(res)
    starts = np.array([s for s, _ in spans] or [0])

    def locate(pos: int) -> dict:
        j = int(np.searchsorted(starts, pos, side="right") - 1)
        return {"file": spans[j][1] if spans else source, "row": pos - spans[j][0] + 1}

    frame = _records_with_locate(records, locate)
    return to_canonical(frame, source=source, locate=locate, **kwargs)


def _records_with_locate(records: list, locate: Locate) -> pd.DataFrame:
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise ParseError(f"expected a residence object, got {type(r).__name__}",
                             **locate(i))  # fmt: skip
    return pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=["id"])


def _arrow_json_schema():
    import pyarrow as pa

    types = {"key": pa.int64(), "int": pa.float64(), "float": pa.float64(), "date": pa.string(),
             "list": pa.list_(pa.int64()), "string": pa.string(), "padded": pa.string()}  # fmt: skip
    fields = []
    for f in FIELDS:
        if f.kind == "code":
            from vggeo.codes import get_code_list

            t = pa.float64() if get_code_list(f.codes or f.name).is_numeric else pa.string()
        else:
            t = types[f.kind]
        fields.append(pa.field(f.name, t))
    return pa.schema(fields)


def _read_jsonl(path: Path, *, progress: bool = False) -> tuple[pd.DataFrame, Locate]:
    """JSON lines: one residence per line (or one API page per line)."""
    import pyarrow as pa
    import pyarrow.json as pj

    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b'{"residences"') or head[:200].replace(b" ", b"").startswith(b'{"meta_data"'):
        return _read_page_lines(path)
    locate = _default_locate(str(path))
    if path.stat().st_size == 0:
        return pd.DataFrame(columns=["id"]), locate
    try:
        table = pj.read_json(
            path,
            read_options=pj.ReadOptions(block_size=16 << 20),
            parse_options=pj.ParseOptions(explicit_schema=_arrow_json_schema(),
                                          unexpected_field_behavior="infer"),  # fmt: skip
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        log.info("typed JSON fast path refused %s (%s); reading value by value", path, err)
        return _read_jsonl_slow(path), locate
    # Columns the file never mentions come back all-null from the explicit schema: drop them, an
    # account that cannot see a field must not appear to have it empty.
    keep = [c for c in table.column_names if c not in FIELD_NAMES or table[c].null_count < len(table)]
    frame = table.select(keep).to_pandas(types_mapper=_types_mapper, split_blocks=True,
                                         self_destruct=True)  # fmt: skip
    if len(keep) < table.num_columns:
        frame = _restore_present_columns(path, frame, [c for c in table.column_names if c not in keep])
    return frame, locate


def _restore_present_columns(path: Path, frame: pd.DataFrame, nulls: list[str]) -> pd.DataFrame:
    """A declared field that was null in every row but present as a key: keep it (all missing)."""
    with open(path, "rb") as fh:
        first = fh.readline()
    try:
        keys = set(json.loads(first))
    except (json.JSONDecodeError, TypeError):
        keys = set()
    for c in nulls:
        if c in keys:
            frame[c] = pd.Series([None] * len(frame), dtype=object)
    return frame


def _types_mapper(t):
    import pyarrow as pa

    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pd.ArrowDtype(t)
    return None


def _read_jsonl_slow(path: Path) -> pd.DataFrame:
    records = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                raise ParseError("blank line in JSON lines", file=str(path), row=lineno)
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise ParseError(f"malformed JSON: {err.msg} at column {err.colno}",
                                 file=str(path), row=lineno) from None  # fmt: skip
            if not isinstance(rec, dict):
                raise ParseError(f"expected one residence object per line, got "
                                 f"{type(rec).__name__}", file=str(path), row=lineno)  # fmt: skip
            records.append(rec)
    return pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=["id"])


def _read_page_lines(path: Path) -> tuple[pd.DataFrame, Locate]:
    pages = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                pages.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ParseError(f"malformed JSON page: {err.msg} at column {err.colno}",
                                 file=str(path), row=lineno) from None  # fmt: skip
    return _pages_frame(pages, str(path))


def _pages_frame(pages: list, source: str) -> tuple[pd.DataFrame, Locate]:
    records: list = []
    spans: list[tuple[int, str]] = []
    for k, page in enumerate(pages, start=1):
        label = f"{source} page {k}"
        res = _page_residences(page, label)
        spans.append((len(records), label))
        records.extend(res)
    starts = np.array([s for s, _ in spans] or [0])

    def locate(pos: int) -> dict:
        j = int(np.searchsorted(starts, pos, side="right") - 1)
        return {"file": spans[j][1], "row": pos - spans[j][0] + 1}

    return _records_with_locate(records, locate), locate


def _read_json(path: Path) -> tuple[pd.DataFrame, Locate]:
    """One JSON document: an API page, a list of pages, or a list of residences."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as err:
        raise ParseError(f"malformed JSON: {err.msg} at line {err.lineno} column {err.colno}",
                         file=str(path)) from None  # fmt: skip
    if isinstance(doc, Mapping):
        return _pages_frame([doc], str(path))
    if isinstance(doc, list) and doc and isinstance(doc[0], Mapping) and "residences" in doc[0]:
        return _pages_frame(doc, str(path))
    if isinstance(doc, list):
        locate = _default_locate(str(path))
        return _records_with_locate(doc, locate), locate
    raise ParseError(f"expected an API page or a list, got {type(doc).__name__}", file=str(path))


def _csv_types(header: list[str], all_text: bool):
    import pyarrow as pa

    from vggeo.codes import get_code_list

    types = {}
    for f in FIELDS:
        if f.name not in header:
            continue
        if all_text or f.kind in ("string", "padded", "date", "list"):
            types[f.name] = pa.string()
        elif f.kind == "code" and not get_code_list(f.codes or f.name).is_numeric:
            types[f.name] = pa.string()
        else:
            types[f.name] = pa.float64() if f.kind != "key" else pa.int64()
    return types


def _read_csv(path: Path) -> tuple[pd.DataFrame, Locate]:
    import csv

    import pyarrow as pa
    import pyarrow.csv as pcsv

    with open(path, encoding="utf-8", newline="") as fh:
        first = fh.readline()
    header = next(csv.reader([first])) if first else []
    if not header:
        raise ParseError("empty CSV file: no header", file=str(path))

    # Line numbers for messages: the header is line 1, the first record line 2.
    def locate(pos: int) -> dict:
        return {"file": str(path), "row": pos + 2}

    def read(all_text: bool):
        return pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(block_size=16 << 20),
            convert_options=pcsv.ConvertOptions(
                column_types=_csv_types(header, all_text),
                strings_can_be_null=True,
                null_values=["", "NaN", "nan", "NULL", "null", "None", "<NA>"],
                quoted_strings_can_be_null=True,
            ),
        )

    try:
        table = read(all_text=False)
    except pa.ArrowInvalid as err:
        if "CSV parse error" in str(err) or "Expected" in str(err) and "columns" in str(err):
            raise ParseError(f"malformed CSV: {err}", file=str(path)) from None
        log.info("typed CSV fast path refused %s (%s); reading as text", path, err)
        try:
            table = read(all_text=True)
        except pa.ArrowInvalid as err2:
            raise ParseError(f"malformed CSV: {err2}", file=str(path)) from None
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    # CSV cannot tell "" from a missing value (pandas writes both as an empty cell). Valueguard
    # uses "" for "no letter / entrance not specified", so that is what an empty cell means here.
    for name in ("letter", "entrance"):
        if name in frame.columns:
            frame[name] = frame[name].astype("string").fillna("")
    return frame, locate


def _read_geo(path: Path, fmt: str) -> tuple[pd.DataFrame, Locate]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        geo_cols = [c for c in table.column_names if c in ("geometry",)]
        frame = table.to_pandas(types_mapper=_types_mapper)
        if geo_cols and not any(c in frame.columns for c in COORDINATE_FIELDS):
            import shapely

            frame["geometry"] = shapely.from_wkb(frame["geometry"].to_numpy())
    else:
        import pyogrio

        frame = pyogrio.read_dataframe(path, read_geometry=True)
        if "geometry" in frame.columns and any(c in frame.columns for c in COORDINATE_FIELDS):
            frame = pd.DataFrame(frame.drop(columns="geometry"))
    return frame, _default_locate(str(path))


def read_registry(source: str | os.PathLike, *, format: str | None = None, **kwargs):
    """Read a registry file into the canonical GeoDataFrame.

    Parameters
    ----------
    source
        ``.jsonl``/``.ndjson`` (residences, or API pages, one per line), ``.json`` (an API page,
        a list of pages or a list of residences), ``.csv``, ``.parquet`` (GeoParquet) or
        ``.gpkg``.
    format
        Override the format chosen by extension: ``jsonl``, ``json``, ``csv``, ``parquet``,
        ``gpkg``.
    **kwargs
        Passed to :func:`to_canonical` (``swap``, ``strict_codes``, ``route``).
    """
    path = Path(source)
    fmt = format or FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ParseError(f"unknown registry format {path.suffix!r}; use one of "
                         f"{', '.join(sorted(FORMATS))} or pass format=", file=str(path))  # fmt: skip
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    if fmt == "jsonl":
        frame, locate = _read_jsonl(path)
    elif fmt == "json":
        frame, locate = _read_json(path)
    elif fmt == "csv":
        frame, locate = _read_csv(path)
    elif fmt in ("parquet", "gpkg"):
        frame, locate = _read_geo(path, fmt)
    else:
        raise ParseError(f"unknown registry format {fmt!r}", file=str(path))
    return to_canonical(frame, source=str(path), locate=locate, **kwargs)


# --- writing ----------------------------------------------------------------------------------------


@contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True):
    """Yield a temporary path beside ``path``; rename it into place only on success.

    An exception or Ctrl-C removes the temporary file, so ``path`` is either the complete new
    file or whatever it was before.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(17, "File exists (pass overwrite)", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        for p in (tmp, Path(f"{tmp}-journal"), Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            if p.exists():
                p.unlink()


def to_raw(gdf: pd.DataFrame, *, number_as: str = "list") -> pd.DataFrame:
    """The canonical frame back in Valueguard's raw shape (codes as values, dates as text).

    ``number_as``: ``"list"`` (Python lists, for JSON), ``"text"`` (``"[1, 3, None]"``, as
    pandas writes a list to CSV) or ``"json"`` (``"[1,3,null]"``, for GeoPackage).
    """
    out = {}
    for c in gdf.columns:
        if c == "geometry" or (hasattr(gdf, "geometry") and c == getattr(gdf.geometry, "name", None)):
            continue
        s = gdf[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = s.cat.categories
            if pd.api.types.is_integer_dtype(cats.dtype):
                vals = np.where(s.cat.codes.to_numpy() < 0, 0,
                                cats.to_numpy()[np.maximum(s.cat.codes.to_numpy(), 0)])
                s = pd.Series(pd.arrays.IntegerArray(vals.astype(np.int64),
                                                     s.cat.codes.to_numpy() < 0), index=s.index)  # fmt: skip
            else:
                s = s.astype("string")
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            s = s.dt.strftime("%Y-%m-%d").astype("string")
        elif c == "number" or (isinstance(s.dtype, pd.ArrowDtype) and "list" in str(s.dtype)):
            s = _number_out(s, number_as)
        out[c] = s
    return pd.DataFrame(out, index=gdf.index)


def _number_out(s: pd.Series, how: str) -> pd.Series:
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(s)
    if how == "list":
        return pd.Series(arr.to_pylist(), index=s.index, dtype=object)
    null_txt = "None" if how == "text" else "null"
    sep = ", " if how == "text" else ","
    flat = pc.cast(pc.list_flatten(arr), pa.string())
    flat = pc.fill_null(flat, null_txt)
    lists = pa.ListArray.from_arrays(arr.offsets, flat, mask=arr.is_null())
    joined = pc.binary_join(lists, sep)
    text = pc.binary_join_element_wise("[", joined, "]", "")
    return pd.Series(pd.array(text, dtype="string"), index=s.index)


def write_registry(gdf, path: str | os.PathLike, *, overwrite: bool = True,
                   layer: str = "residences") -> Path:  # fmt: skip
    """Write the canonical frame; the extension chooses the format (atomically).

    ``.parquet`` GeoParquet (types kept: categoricals, lists, dates); ``.gpkg`` GeoPackage via
    pyogrio (codes as integers/text, ``number`` as JSON text); ``.csv`` raw fields plus
    ``coord_source`` (``number`` as ``[1, 3, None]``, as pandas writes lists); ``.jsonl`` one raw
    residence per line, as the API delivers them.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt not in ("parquet", "gpkg", "csv", "jsonl"):
        raise ParseError(f"cannot write {path.suffix!r}; use .parquet, .gpkg, .csv or .jsonl",
                         file=str(path))  # fmt: skip
    with atomic_path(path, overwrite=overwrite) as tmp:
        if fmt == "parquet":
            gdf.to_parquet(tmp, index=False, compression="zstd")
        elif fmt == "gpkg":
            import geopandas as gpd
            import pyogrio

            raw = to_raw(gdf, number_as="json")
            out = gpd.GeoDataFrame(raw, geometry=gdf.geometry.to_numpy(), crs=gdf.crs)
            pyogrio.write_dataframe(out, tmp, layer=layer, driver="GPKG", use_arrow=True)
        elif fmt == "csv":
            import pyarrow as pa
            import pyarrow.csv as pcsv

            raw = to_raw(gdf, number_as="text")
            table = pa.Table.from_pandas(raw, preserve_index=False)
            pcsv.write_csv(table, tmp)
        else:
            raw = to_raw(gdf, number_as="list")
            raw.to_json(tmp, orient="records", lines=True, force_ascii=False)
    return path
