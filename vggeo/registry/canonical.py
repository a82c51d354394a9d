"""The canonical registry frame: every value checked and typed, geometry from the coordinates.

:func:`to_canonical` applies the field list (:mod:`vggeo.registry.fields`) column by column —
vectorised, naming file/page, row and field on the first bad value — and builds the geometry
with :func:`vggeo.crs.valueguard_points` (``sweref99x`` = northing, then RT 90, then WGS 84).
:func:`canonical_in_batches` does the same over a stream of raw batches, for the national
registry.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from vggeo.errors import CodeError, SchemaError, UnmappedWarning, VggeoError, VggeoWarning
from vggeo.registry.fields import COORDINATE_FIELDS, DERIVED_COLUMNS, FIELD_NAMES, FIELDS, Field
from vggeo.registry.writers import _arrow_array

__all__ = ["to_canonical", "canonical_in_batches", "CodeWarning", "CoordinateWarning"]

Locate = Callable[[int], dict]

_INT_RANGES = {"Int8": (-128, 127), "Int16": (-32768, 32767), "Int32": (-(2**31), 2**31 - 1),
               "Int64": (-(2**63), 2**63 - 1), "int64": (-(2**63), 2**63 - 1)}  # fmt: skip
# Pandas' index column, when a user saved a frame with ``to_csv()`` without ``index=False``.
_INDEX_COLUMNS = ("Unnamed: 0", "", "index")



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
        cats, codes = s.cat.categories, s.cat.codes.to_numpy()
        if pd.api.types.is_numeric_dtype(cats.dtype):
            # Through the category codes: never a per-value conversion of a large column.
            return np.append(cats.to_numpy(dtype=float), np.nan)[np.where(codes < 0, len(cats), codes)]
        s = s.astype(object)
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
        seen = pd.unique(ints[present])  # hash-based: no sort of the whole column
        categories = np.union1d(documented, seen)
        codes = np.searchsorted(categories, ints).astype(np.int32 if len(categories) > 127
                                                          else np.int8)  # fmt: skip
        codes[~present] = -1
        # Unknown-ness is decided once per category, then looked up per row.
        undocumented = np.append(~np.isin(categories, documented), False)
        unknown = undocumented[np.where(present, codes, len(categories))]
        cat = pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype="int64"))
        values_for_msg = ints
    else:
        import pyarrow as pa
        import pyarrow.compute as pc

        # Dictionary-encode in Arrow (C++), then map the few distinct values to categories.
        arr = pc.utf8_trim_whitespace(pa.array(_string(s, f), type=pa.large_string(),
                                               from_pandas=True))  # fmt: skip
        enc = pc.dictionary_encode(arr).combine_chunks() if isinstance(arr, pa.ChunkedArray) \
            else pc.dictionary_encode(arr)  # fmt: skip
        distinct = enc.dictionary.to_pylist()
        documented = list(cl.codes)
        categories = documented + sorted(v for v in distinct if v not in cl.codes)
        to_cat = np.array([categories.index(v) for v in distinct] + [-1], dtype=np.int32)
        idx = enc.indices.to_numpy(zero_copy_only=False)
        present = ~np.asarray(enc.indices.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        codes = to_cat[np.where(present, np.nan_to_num(idx, nan=0).astype(np.int64), len(distinct))]
        cat = pd.Categorical.from_codes(codes, categories=categories)
        unknown = present & (codes >= len(documented))
        values_for_msg = np.array(categories + [None], dtype=object)[np.where(codes < 0, len(categories), codes)] \
            if unknown.any() else None  # fmt: skip
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
        arr = _arrow_array(s)
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
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
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
    consume: bool = False,
    warn: bool = True,
    check_ids: bool = True,
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
    consume
        Drop each column from ``frame`` once converted, so that a national-scale load never
        holds the raw and the canonical copy of the whole table at once. ``frame`` is left
        incomplete; readers that own their frame use this.

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
    if not isinstance(frame.index, pd.RangeIndex) or not consume:
        frame = frame.reset_index(drop=True) if not isinstance(frame.index, pd.RangeIndex) \
            else frame.copy(deep=False)  # fmt: skip
    had = set(frame.columns)
    present = [f for f in FIELDS if f.name in frame.columns]
    dropped_index = [c for c in frame.columns if c in _INDEX_COLUMNS and c not in FIELD_NAMES]
    unknown = [c for c in frame.columns
               if c not in FIELD_NAMES and c not in DERIVED_COLUMNS and c not in dropped_index]  # fmt: skip
    code_report: dict[str, Any] = {"_strict": strict_codes}
    out: dict[str, Any] = {}
    for f in present:
        s = frame[f.name]
        if f.kind == "key":
            out[f.name] = _key(s, f, locate, check_unique=check_ids)
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
        if consume:
            del frame[f.name], s
    for c in unknown:
        out[c] = frame[c].to_numpy() if not isinstance(frame[c].dtype, pd.api.extensions.ExtensionDtype) \
            else frame[c].array  # fmt: skip
    df = pd.DataFrame(out, index=pd.RangeIndex(n), copy=False)
    del out
    if consume:
        _release_arrow_memory()
    _check_half_pairs(df, locate)
    try:
        geometry, coord_source = valueguard_points(df, swap=swap, route=route)
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
    gdf.attrs.update({"source": source, "unknown_fields": unknown,
                      "absent_fields": [f for f in FIELD_NAMES if f not in had],
                      "unknown_codes": {k: v for k, v in code_report.items() if k != "_strict"},
                      "no_geometry": no_geometry})  # fmt: skip
    if warn:
        _warn_from_attrs(gdf.attrs, len(gdf))
    return gdf


def _warn_from_attrs(attrs: Mapping, n: int) -> None:
    """One warning per kind of finding (rows without geometry, unknown codes, unknown fields)."""
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
    if attrs.get("unknown_fields"):
        warnings.warn(f"fields not in Valueguard's field list (kept): "
                      f"{', '.join(attrs['unknown_fields'])}", UnmappedWarning, stacklevel=3)  # fmt: skip


def _where_text(where: Mapping) -> str:
    f, r = where.get("file"), where.get("row")
    if f is not None and r is not None:
        return f"{f}:{r}"
    return f if f is not None else f"row {r}"


def _key(s: pd.Series, f: Field, locate: Locate, *, check_unique: bool = True) -> np.ndarray:
    num = _numeric(s, f, locate)
    missing = np.isnan(num)
    if missing.any():
        i = _first_bad(missing)
        raise SchemaError("every residence needs an id", field=f.name, **locate(i))
    ids = _integer(s, f, locate, "int64")
    if check_unique:
        _check_unique_ids(ids, f, locate)
    return ids


def _check_unique_ids(ids: np.ndarray, f: Field, locate: Locate) -> None:
    order = np.argsort(ids, kind="stable")
    dup = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if dup.size:
        a, b = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
        raise SchemaError(
            f"id is not unique: {int(dup.size)} duplicate(s); the first also at "
            f"{_where_text(locate(a))}",
            field=f.name, value=int(ids[b]), **locate(b),
        )  # fmt: skip


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



def _release_arrow_memory() -> None:
    """Hand memory freed by Arrow back to the system (its allocator keeps it otherwise)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    _malloc_trim()


def _malloc_trim() -> None:
    """Return freed C heap to the system on glibc (numpy/pandas temporaries); no-op elsewhere."""
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass



# --- national scale: canonicalise in batches ---------------------------------------------------------

_BATCH_WARNINGS = (CodeWarning, CoordinateWarning, UnmappedWarning)


def canonical_in_batches(frames: Iterable[pd.DataFrame], *, source: str | None, locate: Locate,
                         progress: bool = False, **kwargs):  # fmt: skip
    """:func:`to_canonical` over a stream of raw frames, merged into one frame.

    Only the canonical form of the rows read so far plus one raw batch are in memory at once,
    which keeps a 5.6-million-row load within a few GB. Messages keep file-wide row numbers,
    ids are checked for uniqueness across all batches, and warnings are given once.
    """
    import sys

    import geopandas as gpd
    from tqdm import tqdm

    parts = []
    start = 0
    bar = tqdm(unit=" rows", unit_scale=True, disable=not progress, file=sys.stderr,
               desc=f"read {source}" if source else "read")  # fmt: skip
    for frame in bar_iter(frames, bar):
        where = (lambda p, off=start: locate(p + off))  # noqa: E731
        with warnings.catch_warnings():
            for cat in _BATCH_WARNINGS:
                warnings.simplefilter("ignore", cat)
            g = to_canonical(frame, source=source, locate=where, consume=True, warn=False,
                             check_ids=False, **kwargs)  # fmt: skip
        del frame
        parts.append(g)
        start += len(g)
        bar.update(len(g))
    bar.close()
    if not parts:
        return to_canonical(pd.DataFrame(columns=["id"]), source=source, locate=locate, **kwargs)
    if len(parts) == 1:
        gdf = parts[0]
    else:
        attrs = _merge_attrs([p.attrs for p in parts])
        geometry = np.concatenate([np.asarray(p.geometry.values) for p in parts])
        columns = list(dict.fromkeys(c for p in parts for c in p.columns if c != "geometry"))
        merged: dict[str, Any] = {}
        for c in columns:
            pieces = [p[c] if c in p.columns else pd.Series([None] * len(p)) for p in parts]
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
        gdf = gpd.GeoDataFrame(pd.DataFrame(merged, index=pd.RangeIndex(n), copy=False), geometry=geometry,
                               crs="EPSG:3006")  # fmt: skip
        gdf.attrs.update(attrs)
    if "id" in gdf.columns:
        from vggeo.registry.fields import field

        _check_unique_ids(gdf["id"].to_numpy(), field("id"), locate)
    _warn_from_attrs(gdf.attrs, len(gdf))
    return gdf


def bar_iter(items, bar):
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
    index = pd.Index(cats, dtype=first.dtype if pd.api.types.is_integer_dtype(first.dtype) else None)
    codes = []
    for x in pieces:
        remap = np.append(index.get_indexer(x.cat.categories), -1).astype(np.int32)
        c = x.cat.codes.to_numpy()
        codes.append(remap[np.where(c < 0, len(remap) - 1, c)])
    return pd.Categorical.from_codes(np.concatenate(codes), categories=index)


def _merge_attrs(all_attrs: list[Mapping]) -> dict:
    out = dict(all_attrs[0])
    out["unknown_fields"] = list(dict.fromkeys(f for a in all_attrs for f in a["unknown_fields"]))
    out["absent_fields"] = [f for f in FIELD_NAMES if all(f in a["absent_fields"] for a in all_attrs)]
    codes: dict[str, Any] = {}
    for a in all_attrs:
        for k, v in (a.get("unknown_codes") or {}).items():
            if k in codes:
                codes[k]["count"] += v["count"]
            else:
                codes[k] = {"count": v["count"], "first": v["first"]}
    out["unknown_codes"] = codes
    ng = [a["no_geometry"] for a in all_attrs if a.get("no_geometry")]
    out["no_geometry"] = ({"count": sum(x["count"] for x in ng), "first": ng[0]["first"]}
                          if ng else None)  # fmt: skip
    return out
