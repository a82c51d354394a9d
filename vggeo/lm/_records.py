"""The engine that applies a declarative :mod:`vggeo.lm.mapping` to XML elements.

Rows are collected as raw strings while streaming (one dict per record); typing happens once per
column at the end (:func:`typed_frame`), vectorised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vggeo.errors import SchemaError
from vggeo.lm.mapping import SEGMENT_ALIASES, Field, Record

if TYPE_CHECKING:
    from lxml import etree

__all__ = [
    "local",
    "Extractor",
    "typed_frame",
    "typed_columns",
    "column_values",
    "raw_column",
    "identities",
    "parse_dates",
    "normalise_kommun",
]

GEOMETRY_KEY = "__geometry"
SUBSETS_KEY = "__subsets"
ELEMENT_KEY = "__element"


#: Namespaces whose attributes are markup, not data: GML's own (``gml:id``), XML Schema instance
#: (``xsi:nil``, ``xsi:schemaLocation``) and XML's (``xml:lang``). Every other attribute of a
#: non-GML element may hold a value (``<belopp valuta="SEK">``, ``<Registerenhetsreferens
#: objektidentitet="…"/>``, ``xlink:href``): it is read as the element of its name would be, or
#: reported as unmapped — never passed over. Attributes of GML's elements, and ``srsName`` and
#: ``srsDimension`` on any element (GML lets an ancestor state them), belong to the geometry
#: reader (:data:`GEOMETRY_ATTRIBUTES`).
MARKUP_NAMESPACES = frozenset(
    {
        "http://www.opengis.net/gml/3.2",
        "http://www.opengis.net/gml",
        "http://www.w3.org/2001/XMLSchema-instance",
        "http://www.w3.org/XML/1998/namespace",
    }
)


GEOMETRY_ATTRIBUTES = frozenset({"srsName", "srsDimension"})


def data_attributes(el: etree._Element) -> list[tuple[str, str]]:
    """The attributes of ``el`` that may hold data, as (local name, value) in document order
    (see :data:`MARKUP_NAMESPACES`); none for an element of GML's."""
    items = el.items()
    if not items:
        return []
    tag = el.tag
    if tag[0] == "{" and tag[1 : tag.index("}")] in MARKUP_NAMESPACES:
        return []
    out: list[tuple[str, str]] = []
    for key, value in items:
        name = str(key)
        if name[0] == "{":
            uri, _, name = name[1:].partition("}")
            if uri in MARKUP_NAMESPACES:
                continue
        elif name in GEOMETRY_ATTRIBUTES:
            continue
        out.append((name, str(value)))
    return out


def local(el: etree._Element) -> str:
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


class ColumnRows:
    """Rows kept as one list per column — for tables fed row by row at high volume.

    The berörkrets (about ten references per provision) is such a table: appending two values
    costs less than building a dict per reference and reading it back per column.
    """

    __slots__ = ("columns", "n")

    def __init__(self, names: tuple[str, ...]) -> None:
        # lists as rows are fed; the compiled path puts whole (Arrow or numpy) arrays here
        self.columns: dict[str, Any] = {c: [] for c in names}
        self.n = 0

    def column(self, name: str) -> list:
        c = self.columns.get(name)
        return c if c is not None else [None] * self.n

    def __len__(self) -> int:
        return self.n


def as_dicts(rows: list[dict] | ColumnRows, table: str) -> list[dict]:
    """Rows of a table fed by records of several fields: one dict per row (never by column)."""
    if isinstance(rows, ColumnRows):
        raise TypeError(f"table {table} is kept by column (ColumnRows)")
    return rows


class PathCounts(Counter):
    """Unmapped element paths → count; :attr:`unknown` holds those outside any record."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unknown: Counter[str] = Counter()


class CompiledRecord:
    """A :class:`~vggeo.lm.mapping.Record` prepared for the :class:`Extractor`: its fields by
    path, child records by name, and the caches of what it did with each tag met (which the
    compiled path reads to generate its stylesheet)."""

    __slots__ = (
        "rec",
        "index",
        "child_by_name",
        "subset_of",
        "ignore",
        "actions",
        "flat",
        "names",
        "single",
        "constant_keys",
    )

    def __init__(self, rec: Record) -> None:
        self.rec = rec
        self.index: dict[str, Field] = {}
        for f in rec.fields:
            for p in f.paths:
                self.index.setdefault(p, f)
        self.child_by_name: dict[str, CompiledRecord] = {}
        for ch in rec.children:
            c = CompiledRecord(ch)
            for n in ch.names:
                self.child_by_name[n] = c
        self.subset_of = {n: s for s, names in rec.subsets.items() for n in names}
        self.ignore = rec.ignore
        self.actions: dict[tuple[str, object], tuple] = {}
        self.names: dict[str, tuple[str, str]] = {}
        # A "flat" record (only direct leaf fields, e.g. Registerenhetsreferens) takes a shorter
        # path: most child records of a provision are of this kind.
        self.flat = (
            not rec.children
            and rec.geometry is None
            and not rec.subsets
            and all("/" not in p for f in rec.fields for p in f.paths)
        )
        # A flat record of one field and no constants (Registerenhetsreferens → objektidentitet)
        # is read inline by its parent: no call, no walk of its own.
        self.single = self.flat and len(rec.fields) == 1 and not rec.constants
        self.constant_keys = tuple(sorted({k for v in rec.constants.values() for k in v}))

    def action(self, prefix: str, tag: str) -> tuple:
        """What to do with an element of this tag under this path: (kind, argument, path).

        0 container or unmapped leaf (argument: the subset it opens, if any), 1 mapped leaf
        (argument: the Field), 2 child record, 3 geometry property, 4 not an element.
        """
        if not isinstance(tag, str):
            return (4, None, "")
        seg = _segment(tag.rpartition("}")[2] if tag[0] == "{" else tag)
        child = self.child_by_name.get(seg)
        if child is not None:
            return (5 if child.single else 2, child, seg)
        path = f"{prefix}/{seg}" if prefix else seg
        if not prefix and self.rec.geometry is not None and seg == self.rec.geometry:
            return (3, None, path)
        subset = self.subset_of.get(seg) if not prefix else None
        f = self.index.get(path)
        if f is not None:
            return (1, f, path)
        return (0, subset, path)


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
        self.top: dict[str, CompiledRecord] = {}
        for r in records:
            c = CompiledRecord(r)
            for n in r.names:
                self.top[n] = c
        self.geometry = geometry
        self.rows: dict[str, list[dict] | ColumnRows] = {}
        # The same objects as in ``rows``, by kind: records of several fields append dicts,
        # single-field records append to columns.
        self._dicts: dict[str, list[dict]] = {}
        self._columns: dict[str, ColumnRows] = {}
        self._columnar: dict[str, tuple[str, ...]] = {}
        for r in records:
            self._init_tables(r)
        self.unmapped: PathCounts = PathCounts()
        #: Element paths (from the member) that held no record: what was not understood.
        self.unknown_records: Counter[str] = self.unmapped.unknown
        #: Records found, and the chains of grouping elements (qualified tags) they sat in.
        self.recognised = 0
        self.wrappers: Counter[tuple] = Counter()

    def _init_tables(self, r: Record) -> None:
        c = CompiledRecord(r)
        if c.single:
            names = (*r.inherit, r.fields[0].column)
            self._columnar[r.table] = names
            columns = self.rows.setdefault(r.table, ColumnRows(names))
            if not isinstance(columns, ColumnRows):
                raise SchemaError(f"table {r.table} is fed by records of one and of several fields")
            self._columns[r.table] = columns
        else:
            dicts = self.rows.setdefault(r.table, [])
            if isinstance(dicts, ColumnRows):
                raise SchemaError(f"table {r.table} is fed by records of one and of several fields")
            self._dicts[r.table] = dicts
        for ch in r.children:
            self._init_tables(ch)

    def take_rows(self) -> dict[str, list[dict] | ColumnRows]:
        """The rows collected so far; the extractor starts afresh."""
        rows = self.rows
        self._columns = {k: ColumnRows(names) for k, names in self._columnar.items() if k in rows}
        self._dicts = {k: [] for k in rows if k not in self._columnar}
        self.rows = {k: self._columns[k] if k in self._columnar else self._dicts[k] for k in rows}
        return rows

    def dict_rows(self, table: str) -> list[dict]:
        """The rows of ``table`` as dicts (of a table fed by records of several fields)."""
        return as_dicts(self.rows.get(table, []), table)

    def record_for(self, el: etree._Element) -> CompiledRecord | None:
        return self.top.get(local(el).lower())

    def feed_member(self, member: etree._Element) -> int:
        """Extract every record element inside a member (or the member itself); return how many.

        A record is found at any depth: Lantmäteriet's information model has grouping objects
        (*Markreglerande bestämmelse*, *Inskrivningsinformation*) that a delivery may show as an
        element level between the member and the feature (FORMATS.md §7). Elements passed on
        the way are remembered (:attr:`wrappers`, by qualified tag chain); an element holding no
        record at all is counted in :attr:`unknown_records` and :attr:`unmapped` by its path.
        """
        comp = self.top.get(local(member).lower())
        if comp is not None:
            self.extract(member, comp, None)
            self.recognised += 1
            return 1
        name = local(member)
        for attr, value in data_attributes(member):  # a grouping level's: not understood
            if value.strip():
                self.unmapped[f"{name}/@{attr}"] += 1
        n, lost = self._search(member, (), name)
        for path in lost:  # the outermost elements that held no record, by path
            self.unknown_records[f"{name}/{path}"] += 1
            self.unmapped[f"{name}/{path}"] += 1
        if not n and not lost and (member.text or "").strip():  # a leaf with text: data too
            self.unknown_records[name] += 1
            self.unmapped[name] += 1
        self.recognised += n
        return n

    def _search(self, node: etree._Element, chain: tuple, where: str) -> tuple[int, list[str]]:
        """Records found below ``node`` (at path ``where`` from the member) and the paths (from
        it) of elements that held none."""
        n = 0
        lost: list[str] = []
        for el in node:
            tag = el.tag
            if not isinstance(tag, str):
                continue
            name = local(el)
            comp = self.top.get(name.lower())
            if comp is not None:
                self.wrappers[chain] += 1
                self.extract(el, comp, None)
                n += 1
            elif len(el):
                k, sub = self._search(el, (*chain, tag), f"{where}/{name}")
                if k:
                    for attr, value in data_attributes(el):
                        if value.strip():
                            self.unmapped[f"{where}/{name}/@{attr}"] += 1
                    n += k
                    lost.extend(f"{name}/{p}" for p in sub)
                else:
                    lost.append(name)
            else:
                lost.append(name)
        return n, lost

    def _attributes(
        self, el: etree._Element, comp: CompiledRecord, path: str, row: dict, top_name: str
    ) -> bool:
        """Read the data attributes of ``el`` (at ``path`` in its record) into ``row``: each as
        the element of its name below ``el`` would be, or counted in :attr:`unmapped` as
        ``path/@name``. Return whether any was read or held no value.

        A blank attribute holds no value, as an empty element does not. The record's ``ignore``
        list names elements (wrappers, and leaves known to be dropped), so an attribute on it
        holds a value the mapping has not seen: it is reported, not dropped."""
        read = False
        for name, value in data_attributes(el):
            if not value.strip():
                read = True
                continue
            seg = _segment(name)
            apath = f"{path}/{seg}" if path else seg
            f = comp.index.get(apath)
            if f is None:
                where = f"{path}/@{name}" if path else f"@{name}"
                self.unmapped[f"{top_name}/{where}"] += 1
            elif _set(row, f, value):
                read = True
            else:
                self.unmapped[f"{top_name}/{apath}{ANOTHER_VALUE}"] += 1
        return read

    def _single(self, el: etree._Element, comp: CompiledRecord) -> str | None:
        """The value of a one-field record read inline whose elements carry attributes (the
        path without them is in :meth:`extract`): attributes and leaves alike, as a flat record
        reads them."""
        name = local(el)
        row: dict = {}
        self._attributes(el, comp, "", row, name)
        for leaf in el:
            act = comp.action("", leaf.tag)
            if act[0] == 4:
                continue
            held = leaf.items() and self._attributes(leaf, comp, act[2], row, name)
            if act[0] == 1 and not len(leaf):
                if not _set(row, act[1], leaf.text):
                    self.unmapped[f"{name}/{act[2]}{ANOTHER_VALUE}"] += 1
            elif held and not len(leaf) and not (leaf.text or "").strip():
                continue
            elif act[2] not in comp.ignore:
                self.unmapped[f"{name}/{act[2]}"] += 1
        return row.get(comp.rec.fields[0].column)

    def extract(
        self, el: etree._Element, comp: CompiledRecord, parent: dict | None, within: str = ""
    ) -> dict:
        """Read ``el`` as a record of ``comp`` into a row of its table (its child records into
        theirs, ``parent`` the row they inherit from, ``within`` the path of the containers
        between the two); return the row."""
        rec = comp.rec
        row: dict = {ELEMENT_KEY: el}
        if parent is not None:
            for k in rec.inherit:
                row[k] = parent.get(k)
        names = comp.names.get(el.tag)
        if names is None:
            top = local(el)
            names = comp.names[el.tag] = (top, top.lower())
        top_name, name = names
        if rec.constants:
            said = _constant_key(comp.constant_keys, name, within) if within else name
            if said is None:  # containers that say otherwise than the record's name
                said = name
                self.unmapped[f"{within}/{top_name}{ANOTHER_VALUE}"] += 1
            for col, values in rec.constants.items():
                row[col] = values.get(said)
        if el.items():  # gml:id, or data (read before the children: an attribute comes first)
            self._attributes(el, comp, "", row, top_name)
        if comp.flat:
            actions = comp.actions
            for child in el:
                key = ("", child.tag)
                act = actions.get(key)
                if act is None:
                    act = actions[key] = comp.action("", child.tag)
                if act[0] == 4:
                    continue
                if child.items() and self._attributes(child, comp, act[2], row, top_name):
                    if act[0] != 1 and not len(child) and not (child.text or "").strip():
                        continue  # an element that holds its data in attributes only
                if act[0] == 1 and not len(child):
                    f = act[1]
                    if f.kind == "list":
                        row.setdefault(f.column, []).append(child.text)
                    elif row.get(f.column) is None:
                        row[f.column] = child.text
                    elif differs(row[f.column], child.text):
                        self.unmapped[f"{top_name}/{act[2]}{ANOTHER_VALUE}"] += 1
                elif act[2] not in comp.ignore:
                    self.unmapped[f"{top_name}/{act[2]}"] += 1
            del row[ELEMENT_KEY]
            self._dicts[rec.table].append(row)
            return row
        deferred: list[tuple] = []
        singles: list[tuple] = []
        # The hot loop of reading a delivery: per element one cached tag → action lookup.
        actions = comp.actions
        unmapped = self.unmapped
        subsets: set[str] | None = set() if rec.subsets else None
        todo = [(el, "")]
        while todo:
            node, prefix = todo.pop()
            for child in node:
                tag = child.tag
                key = (prefix, tag)
                act = actions.get(key)
                if act is None:
                    act = comp.action(prefix, tag)
                    actions[key] = act
                kind, arg, path = act
                if kind == 0:  # container: descend
                    held = child.items() and self._attributes(child, comp, path, row, top_name)
                    if len(child):
                        todo.append((child, path))
                    elif held and not (child.text or "").strip():
                        pass  # its data is in its attributes
                    elif path not in comp.ignore:
                        f = comp.index.get(path)
                        if f is None:
                            unmapped[f"{top_name}/{path}"] += 1
                        elif not _set(row, f, child.text):
                            unmapped[f"{top_name}/{path}{ANOTHER_VALUE}"] += 1
                    if subsets is not None and arg:
                        subsets.add(arg)
                elif kind == 1:  # a mapped leaf
                    if child.items():
                        self._attributes(child, comp, path, row, top_name)
                    if len(child):
                        todo.append((child, path))
                    elif arg.kind == "list":
                        row.setdefault(arg.column, []).append(child.text)
                    elif row.get(arg.column) is None:
                        row[arg.column] = child.text
                    elif differs(row[arg.column], child.text):
                        unmapped[f"{top_name}/{path}{ANOTHER_VALUE}"] += 1
                elif kind == 2:  # a child record
                    deferred.append((child, arg, prefix))
                elif kind == 5:  # a one-field child record, read inline
                    value = None
                    sub_actions = arg.actions
                    if child.items():
                        singles.append((arg, self._single(child, arg)))
                        continue
                    if len(child) == 1:
                        leaf = child[0]
                        a2 = sub_actions.get(("", leaf.tag))
                        if a2 is not None and a2[0] == 1 and not len(leaf) and not leaf.items():
                            singles.append((arg, leaf.text))
                            continue
                    if any(leaf.items() for leaf in child):
                        singles.append((arg, self._single(child, arg)))
                        continue
                    for leaf in child:
                        k2 = ("", leaf.tag)
                        a2 = sub_actions.get(k2)
                        if a2 is None:
                            a2 = sub_actions[k2] = arg.action("", leaf.tag)
                        if a2[0] == 1 and not len(leaf):
                            if value is None:
                                value = leaf.text
                            elif differs(value, leaf.text):
                                unmapped[f"{local(child)}/{a2[2]}{ANOTHER_VALUE}"] += 1
                        elif a2[0] != 4 and a2[2] not in arg.ignore:
                            unmapped[f"{local(child)}/{a2[2]}"] += 1
                    singles.append((arg, value))
                elif kind == 3:  # the geometry property
                    if child.items():
                        self._attributes(child, comp, path, row, top_name)
                    if subsets is not None and path in comp.subset_of:
                        subsets.add(comp.subset_of[path])
                    if self.geometry is not None:
                        row[GEOMETRY_KEY] = self.geometry(child, row)
                # kind 4: comments, processing instructions — nothing to map
        if subsets is not None:
            row[SUBSETS_KEY] = subsets
        row.pop(ELEMENT_KEY, None)
        self._dicts[rec.table].append(row)
        for comp_c, value in singles:
            crec = comp_c.rec
            target = self._columns[crec.table]
            cols = target.columns
            for k in crec.inherit:
                cols[k].append(row.get(k))
            cols[crec.fields[0].column].append(value)
            target.n += 1
        for node, child, within in deferred:
            self.extract(node, child, row, within)
        return row


@lru_cache(maxsize=1024)
def _constant_key(keys: tuple[str, ...], own: str, within: str) -> str | None:
    """Which name gives a child record's constants when containers sit between it and its
    parent: its own, or a container's that begins with another of the record's names and says
    more (``tidigareAganden/Agande`` is a former owner: ``tidigareagande`` ends with ``agande``).
    None when they disagree and neither says more (the caller reports it)."""
    said = [own] if own in keys else []
    for seg in within.split("/"):
        k = max((k for k in keys if seg.startswith(k)), key=len, default=None)
        if k is not None:
            said.append(k)
    if not said:
        return own
    best = max(said, key=len)
    return best if all(best.endswith(k) for k in said) else None


def _set(row: dict, f: Field, text: str | None) -> bool:
    """Put a leaf's text in its column; False if the column already holds another value."""
    if f.kind == "list":
        row.setdefault(f.column, []).append(text)
    elif row.get(f.column) is None:
        row[f.column] = text
    elif differs(row[f.column], text):
        return False
    return True


#: Suffix of an unmapped path whose element repeats a single-valued column with another value:
#: the first value is kept, the other is data the tables would not hold, so it is reported (and
#: refused by a store unless accepted) like any element the mapping does not use.
ANOTHER_VALUE = " (another value)"


def differs(kept: object, text: str | None) -> bool:
    """Whether a further element's text is a value other than the one kept (an alias or a
    repeat carrying the same value, or no value, loses nothing)."""
    return text is not None and text.strip() != "" and text.strip() != str(kept).strip()


# --- typing -------------------------------------------------------------------------------------


def parse_dates(values: pd.Series, *, column: str, file: str | None = None) -> pd.Series:
    """Dates from any of the three forms (``YYYY-MM-DD``, ``YYYYMMDD``, ``xs:dateTime`` with or
    without offset) → ``datetime64[ms]``.

    A date-time keeps its wall-clock time as written; its UTC offset is dropped, not applied (a
    decision dated ``2019-04-24T00:00:00+02:00`` stays on the 24th — GDAL would move it to UTC,
    the 23rd). A value that names no day (2019-02-30, 23:59:60) is refused, not rolled over.
    Vectorised with pyarrow compute: each form is recognised by a regex, rewritten to
    ``YYYY-MM-DD[THH:MM:SS]`` and parsed by Arrow's ISO 8601 parser, which checks the calendar.
    Anything else is refused: the C library's lenient forms (2019-4-5) no longer pass.
    """
    s = pc.utf8_trim_whitespace(_arrow_strings(values))
    # A column's dates are nearly always in one form: one match and one rewrite for it.
    for pattern, rewrite in _DATE_FORMS:
        if pc.all(pc.match_substring_regex(s, pattern)).as_py():
            out = _iso_timestamps(rewrite(s))
            if out.null_count == s.null_count:
                return _datetimes(out, values.index)
            break
    iso = pa.nulls(len(s), pa.string())
    for pattern, rewrite in _DATE_FORMS:
        iso = pc.if_else(pc.match_substring_regex(s, pattern), rewrite(s), iso)
    out = _iso_timestamps(iso)
    bad = pc.and_(pc.is_null(out), pc.and_(pc.is_valid(s), pc.not_equal(s, ""))).to_numpy(
        zero_copy_only=False
    )
    _refuse_first(
        bad, values, "not a date (YYYY-MM-DD, YYYYMMDD or xs:dateTime)", column=column, file=file
    )
    return _datetimes(out, values.index)


#: The three date forms (each matched whole) and their rewrite to ISO 8601's
#: ``YYYY-MM-DD[THH:MM:SS]``: a date-time keeps its wall clock, without fraction or offset.
_DATE_FORMS: tuple[tuple[str, Callable[[pa.Array], pa.Array]], ...] = (
    (r"^\d{4}-\d{2}-\d{2}$", lambda s: s),
    (r"^\d{8}$", lambda s: pc.replace_substring_regex(s, r"^(\d{4})(\d{2})", r"\1-\2-")),
    (
        r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$",
        lambda s: pc.utf8_slice_codeunits(s, 0, 19),
    ),
)


def _iso_timestamps(text: pa.Array) -> pa.Array:
    """``YYYY-MM-DD[THH:MM:SS]`` (or null) → timestamp[ms]; null for a day that does not exist.

    Arrow's cast checks the calendar (the C library's strptime, which pc.strptime uses, checks
    each field alone: 2019-02-30 became 2 March). It refuses a whole array for one bad value, so
    a failing array is parsed value by value.
    """
    try:
        return pc.cast(text, pa.timestamp("ms"))
    except pa.ArrowInvalid:
        out = []
        for v in text.to_pylist():
            try:
                out.append(pc.cast(pa.scalar(v, pa.string()), pa.timestamp("ms")))
            except pa.ArrowInvalid:
                out.append(None)
        return pa.array(out, pa.timestamp("ms"))


def _arrow_strings(values: pd.Series | list | pa.Array | pa.ChunkedArray) -> pa.Array:
    """The values as Arrow strings, as pandas' ``astype("string")`` has them (Arrow stays)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    if isinstance(values, pd.Series):
        if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
            return pa.array(values.array).cast(pa.string())  # already Arrow: no Python strings
        values = values.to_numpy(dtype=object)
    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # not all strings: pandas writes them as str()
        return pa.array(pd.Series(values, dtype=object).astype("string").array).cast(pa.string())


def _datetimes(out: pa.Array, index: pd.Index) -> pd.Series:
    return pd.Series(out.to_numpy(zero_copy_only=False), index=index, dtype="datetime64[ms]")


def normalise_kommun(values: pd.Series, *, column: str, file: str | None = None) -> pd.Series:
    """Municipality codes as four-digit strings (zero-padded; ``"180"`` → ``"0180"``)."""
    trimmed = pc.utf8_trim_whitespace(_arrow_strings(values))
    if pc.all(pc.match_substring_regex(trimmed, r"^\d{1,4}$")).as_py():
        # All digits, as nearly always: padded in one call (what the route below does by value).
        return pd.Series(pc.utf8_lpad(trimmed, 4, "0"), index=values.index, dtype="string")
    s = values.astype("string").str.strip()
    # [0-9], not \d: Python's \d also matches other scripts' digits (١٨٠ would become 0١٨٠).
    s = s.where(~s.str.fullmatch(r"[0-9]{1,3}").fillna(False), s.str.zfill(4))
    bad = s.notna() & ~s.str.fullmatch(r"[0-9]{4}").fillna(False)
    _refuse_first(bad, values, "municipality code is not four digits", column=column, file=file)
    return s


def _to_int(values: pd.Series, column: str, file: str | None) -> pd.Series:
    s = pc.utf8_trim_whitespace(_arrow_strings(values))
    if pc.all(pc.match_substring_regex(s, r"^-?\d{1,18}$")).as_py():
        # Plain decimal integers, as nearly always: one cast, which cannot overflow. Anything
        # else (1.0, 1e3, +1, a stray letter) takes pandas' route below, which accepts what is
        # integral and names what is not. (Arrow's cast alone would read 0x10 as 16.)
        ints = pc.cast(s, pa.int64())
        return pd.Series(
            pd.arrays.IntegerArray(
                ints.fill_null(0).to_numpy(), ints.is_null().to_numpy(zero_copy_only=False)
            ),
            index=values.index,
        )
    num = pd.to_numeric(values.astype("string").str.strip(), errors="coerce")
    unreadable = num.isna() & values.notna()
    fractional = (num % 1 != 0).fillna(False)
    _refuse_first(unreadable | fractional, values, "not an integer", column=column, file=file)
    # Beyond 64 bits the cast would wrap around (20 digits read as a negative number): refused.
    huge = (num.astype("Float64").abs() >= 2.0**63).fillna(False)
    _refuse_first(
        huge, values, "integer out of range (more than 64 bits)", column=column, file=file
    )
    return num.astype("Int64")


def _to_float(values: pd.Series, column: str, file: str | None) -> pd.Series:
    num = pd.to_numeric(
        values.astype("string").str.strip().str.replace(",", ".", regex=False), errors="coerce"
    )
    _refuse_first(num.isna() & values.notna(), values, "not a number", column=column, file=file)
    return num.astype("Float64")


def _to_bool(values: pd.Series, column: str, file: str | None) -> pd.Series:
    s = values.astype("string").str.strip().str.lower()
    m = s.map({"true": True, "1": True, "ja": True, "false": False, "0": False, "nej": False})
    _refuse_first(m.isna() & s.notna(), values, "not a boolean", column=column, file=file)
    return m.astype("boolean")


def _refuse_first(
    bad: pd.Series | np.ndarray, values: pd.Series, message: str, *, column: str, file: str | None
) -> None:
    """Raise SchemaError naming the first value where ``bad`` is true (nothing if none is): the
    one refusal of every typing function here."""
    mask = np.asarray(bad, dtype=bool)
    if mask.any():
        i = int(np.flatnonzero(mask)[0])
        raise SchemaError(message, field=column, value=str(values.iloc[i]), file=file)


def column_values(rows: list[dict] | ColumnRows, name: str) -> Any:
    """A table's column: a list of raw values, or the Arrow array the compiled path put there."""
    if isinstance(rows, ColumnRows):
        return rows.column(name)
    return [r.get(name) for r in rows]


def typed_frame(
    rows: list[dict] | ColumnRows,
    fields: tuple[Field, ...],
    *,
    extra: tuple[str, ...] = (),
    file: str | None = None,
) -> pd.DataFrame:
    """A DataFrame with one typed column per field (in mapping order), plus ``extra`` raw columns."""
    return pd.DataFrame(typed_columns(rows, fields, extra=extra, file=file))


def typed_columns(
    rows: list[dict] | ColumnRows,
    fields: tuple[Field, ...],
    *,
    extra: tuple[str, ...] = (),
    file: str | None = None,
) -> dict[str, Any]:
    """The columns of :func:`typed_frame`, for a caller that builds its frame from them."""
    cols: dict[str, Any] = {}
    for f in fields:
        if f.column in cols:
            continue
        values = column_values(rows, f.column)
        kind = f.kind
        if kind in ("str", "personal", "address", "idnumber"):
            # What pandas' .str.strip() does to Arrow-backed strings, without a Series per step.
            s = pc.utf8_trim_whitespace(_arrow_strings(values))
            cols[f.column] = pd.Series(s, dtype="string")
            continue
        if kind == "uuid":
            cols[f.column] = identities(values)
            continue
        raw = raw_column(values)
        if kind == "int":
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
            cols[name] = raw_column(column_values(rows, name))
    return cols


def identities(values: pd.Series | list | pa.Array | pa.ChunkedArray) -> pd.Series:
    """Object identities (``objektidentitet``, UUIDs) as every table holds them: trimmed and
    lower-cased, by the same Arrow functions wherever they are read, so that they join."""
    return pd.Series(
        pc.utf8_lower(pc.utf8_trim_whitespace(_arrow_strings(values))),
        index=values.index if isinstance(values, pd.Series) else None,
        dtype="string",
    )


def raw_column(values: list | pa.Array | pa.ChunkedArray) -> pd.Series:
    """A raw column: Python strings/None (object), or an Arrow string array (kept in Arrow)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return pd.Series(values, dtype="string")
    return pd.Series(values, dtype=object)
