"""The engine that applies a declarative :mod:`vggeo.lm.mapping` to XML elements.

Rows are collected as raw strings while streaming (one dict per record); typing happens once per
column at the end (:func:`typed_frame`), vectorised.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd

from vggeo.errors import SchemaError
from vggeo.lm.mapping import SEGMENT_ALIASES, Field, Record

__all__ = ["local", "Extractor", "typed_frame", "parse_dates", "normalise_kommun"]

GEOMETRY_KEY = "__geometry"
SUBSETS_KEY = "__subsets"
ELEMENT_KEY = "__element"


def local(el) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2] if tag[0] == "{" else tag


@lru_cache(maxsize=4096)
def _segment(name: str) -> str:
    s = name.lower()
    for rx, repl in SEGMENT_ALIASES:
        if rx.match(s):
            return repl
    return s


class _Compiled:
    __slots__ = ("rec", "index", "child_by_name", "subset_of", "ignore")

    def __init__(self, rec: Record) -> None:
        self.rec = rec
        self.index: dict[str, Field] = {}
        for f in rec.fields:
            for p in f.paths:
                self.index.setdefault(p, f)
        self.child_by_name: dict[str, _Compiled] = {}
        for ch in rec.children:
            c = _Compiled(ch)
            for n in ch.names:
                self.child_by_name[n] = c
        self.subset_of = {n: s for s, names in rec.subsets.items() for n in names}
        self.ignore = rec.ignore


class Extractor:
    """Turns record elements into raw rows per table and counts every unmapped element path.

    Parameters
    ----------
    records
        The top-level records a data file may hold.
    geometry
        Called as ``geometry(element, row)`` for a record's geometry element; its return value is
        stored in the row under ``__geometry``.
    """

    def __init__(self, records: tuple[Record, ...], *, geometry: Callable | None = None) -> None:
        self.top: dict[str, _Compiled] = {}
        for r in records:
            c = _Compiled(r)
            for n in r.names:
                self.top[n] = c
        self.geometry = geometry
        self.rows: dict[str, list[dict]] = {}
        for r in records:
            self._init_tables(r)
        self.unmapped: Counter[str] = Counter()
        self.unknown_records: Counter[str] = Counter()

    def _init_tables(self, r: Record) -> None:
        self.rows.setdefault(r.table, [])
        for ch in r.children:
            self._init_tables(ch)

    def record_for(self, el) -> _Compiled | None:
        return self.top.get(local(el).lower())

    def feed_member(self, member) -> int:
        """Extract every record element directly inside a member (or the member itself)."""
        n = 0
        comp = self.top.get(local(member).lower())
        if comp is not None:
            self._extract(member, comp, None)
            return 1
        for el in member:
            if not isinstance(el.tag, str):
                continue
            comp = self.top.get(local(el).lower())
            if comp is None:
                self.unknown_records[local(el)] += 1
                self.unmapped[f"{local(member)}/{local(el)}"] += 1
                continue
            self._extract(el, comp, None)
            n += 1
        return n

    def _extract(self, el, comp: _Compiled, parent: dict | None) -> dict:
        rec = comp.rec
        row: dict = {ELEMENT_KEY: el}
        if parent is not None:
            for k in rec.inherit:
                row[k] = parent.get(k)
        name = local(el).lower()
        for col, values in rec.constants.items():
            row[col] = values.get(name)
        subsets: set[str] = set()
        deferred: list[tuple] = []
        index = comp.index
        top_name = local(el)
        unmapped = self.unmapped
        stack = [(child, "") for child in reversed(el)]
        geometry_name = rec.geometry
        while stack:
            node, prefix = stack.pop()
            tag = node.tag
            if not isinstance(tag, str):
                continue
            seg = _segment(tag.rpartition("}")[2] if tag[0] == "{" else tag)
            if not prefix:
                s = comp.subset_of.get(seg)
                if s is not None:
                    subsets.add(s)
            child = comp.child_by_name.get(seg)
            if child is not None:
                deferred.append((node, child))
                continue
            path = f"{prefix}/{seg}" if prefix else seg
            if geometry_name is not None and seg == geometry_name and not prefix:
                if self.geometry is not None:
                    row[GEOMETRY_KEY] = self.geometry(node, row)
                continue
            if len(node):
                stack.extend((c, path) for c in reversed(node))
                continue
            f = index.get(path)
            if f is None:
                if path in comp.ignore:
                    continue
                unmapped[f"{top_name}/{path}"] += 1
                continue
            text = node.text
            if f.kind == "list":
                row.setdefault(f.column, []).append(text)
            elif f.column not in row or row[f.column] is None:
                row[f.column] = text
        if rec.subsets:
            row[SUBSETS_KEY] = subsets
        row.pop(ELEMENT_KEY, None)
        self.rows[rec.table].append(row)
        for node, child in deferred:
            self._extract(node, child, row)
        return row


# --- typing -------------------------------------------------------------------------------------

_DATE8 = re.compile(r"^\d{8}$")


def parse_dates(values: pd.Series, *, column: str, file: str | None = None) -> pd.Series:
    """Dates from any of the three forms (``YYYY-MM-DD``, ``YYYYMMDD``, ``xs:dateTime`` with or
    without offset) → ``datetime64[ms]``.

    A date-time keeps its wall-clock time as written; its UTC offset is dropped, not applied (a
    decision dated ``2019-04-24T00:00:00+02:00`` stays on the 24th — GDAL would move it to UTC,
    the 23rd).
    """
    s = values.astype("string").str.strip()
    is8 = s.str.fullmatch(r"\d{8}").fillna(False)
    s = s.where(~is8, s.str.slice(0, 4) + "-" + s.str.slice(4, 6) + "-" + s.str.slice(6, 8))
    body = s.str.slice(0, 19).str.replace("T", " ", regex=False)
    body = body.where(body.str.len() != 10, body + " 00:00:00")
    out = pd.to_datetime(body, format="%Y-%m-%d %H:%M:%S", errors="coerce")
    bad = out.isna() & s.notna() & (s != "")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise SchemaError(
            "not a date (YYYY-MM-DD, YYYYMMDD or xs:dateTime)", field=column,
            value=str(values.iloc[i]), file=file,
        )  # fmt: skip
    return out.astype("datetime64[ms]")


def normalise_kommun(values: pd.Series, *, column: str, file: str | None = None) -> pd.Series:
    """Municipality codes as four-digit strings (zero-padded; ``"180"`` → ``"0180"``)."""
    s = values.astype("string").str.strip()
    s = s.where(~s.str.fullmatch(r"\d{1,3}").fillna(False), s.str.zfill(4))
    bad = s.notna() & ~s.str.fullmatch(r"\d{4}").fillna(False)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise SchemaError("municipality code is not four digits", field=column,
                          value=str(values.iloc[i]), file=file)  # fmt: skip
    return s


def _to_int(values: pd.Series, column: str, file) -> pd.Series:
    num = pd.to_numeric(values.astype("string").str.strip(), errors="coerce")
    bad = num.isna() & values.notna()
    if bad.any() or ((num.dropna() % 1) != 0).any():
        i = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
        raise SchemaError("not an integer", field=column, value=str(values.iloc[i]), file=file)
    return num.astype("Int64")


def _to_float(values: pd.Series, column: str, file) -> pd.Series:
    num = pd.to_numeric(values.astype("string").str.strip().str.replace(",", ".", regex=False),
                        errors="coerce")  # fmt: skip
    bad = num.isna() & values.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise SchemaError("not a number", field=column, value=str(values.iloc[i]), file=file)
    return num.astype("Float64")


def _to_bool(values: pd.Series, column: str, file) -> pd.Series:
    s = values.astype("string").str.strip().str.lower()
    m = s.map({"true": True, "1": True, "ja": True, "false": False, "0": False, "nej": False})
    bad = m.isna() & s.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise SchemaError("not a boolean", field=column, value=str(values.iloc[i]), file=file)
    return m.astype("boolean")


def typed_frame(rows: list[dict], fields: tuple[Field, ...], *, extra: tuple[str, ...] = (),
                file: str | None = None) -> pd.DataFrame:  # fmt: skip
    """A DataFrame with one typed column per field (in mapping order), plus ``extra`` raw columns."""
    cols: dict[str, pd.Series] = {}
    seen: set[str] = set()
    for f in fields:
        if f.column in seen:
            continue
        seen.add(f.column)
        raw = pd.Series([r.get(f.column) for r in rows], dtype=object)
        kind = f.kind
        if kind in ("str", "personal", "address", "idnumber"):
            s = raw.astype("string").str.strip()
            cols[f.column] = s
        elif kind == "uuid":
            cols[f.column] = raw.astype("string").str.strip().str.lower()
        elif kind == "int":
            cols[f.column] = _to_int(raw, f.column, file)
        elif kind == "float":
            cols[f.column] = _to_float(raw, f.column, file)
        elif kind == "bool":
            cols[f.column] = _to_bool(raw, f.column, file)
        elif kind == "date":
            cols[f.column] = parse_dates(raw, column=f.column, file=file)
        elif kind == "kommun":
            cols[f.column] = normalise_kommun(raw, column=f.column, file=file)
        else:
            cols[f.column] = raw
    for name in extra:
        if name not in cols:
            cols[name] = pd.Series([r.get(name) for r in rows], dtype=object)
    return pd.DataFrame(cols)
