"""Readers of Valueguard's registry, all ending in one canonical GeoDataFrame.

Inputs: raw API pages (``{"residences": [...], "meta_data": {...}}``), JSON lines (one residence
per line, or one page per line), CSV (as users save it from pandas, or as any tool writes it),
GeoParquet and GeoPackage. Every path goes through :func:`to_canonical`, which applies the field
list in :mod:`vggeo.registry.fields`, checks every value's type, and builds the geometry with
:func:`vggeo.registry.coordinates.valueguard_points` (``sweref99x`` = northing, then RT 90,
then WGS 84).

Speed: JSON lines and CSV are parsed by Arrow's multi-threaded C++ readers with the declared
types; only when that typed fast path refuses the input (a wrong type somewhere) is the file
re-read value by value, which finds and names the offending line and field.

Errors name the file (or API page), the row and the field. Writers live in
:mod:`vggeo.registry.writers` (re-exported here).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pj
import pyarrow.parquet as pq
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError

from vggeo.codes import get_code_list
from vggeo.errors import ParseError
from vggeo.registry.canonical import (
    CanonicalResult,
    CodeWarning,
    CoordinateWarning,
    Locate,
    _default_locate,
    _release_arrow_memory,
    canonical_in_batches,
    to_canonical,
)
from vggeo.registry.fields import COORDINATE_FIELDS, FIELD_NAMES, FIELDS
from vggeo.registry.writers import FORMATS, to_raw, write_registry

__all__ = [
    "read_registry",
    "read_api_pages",
    "records_to_frame",
    "to_canonical",
    "write_registry",
    "to_raw",
    "FORMATS",
    "CodeWarning",
    "CoordinateWarning",
]

log = logging.getLogger(__name__)


# --- raw inputs → raw frames ------------------------------------------------------------------------


def _lone_surrogate(rec: Mapping) -> tuple[str, str] | None:
    """The first field of a residence whose text holds a lone surrogate, and that text."""
    for key, value in rec.items():
        texts = value if isinstance(value, list) else [value]
        for text in texts:
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    return str(key), text
    return None


def _frame_of(records: list, locate: Locate) -> pd.DataFrame:
    """``pd.DataFrame.from_records``, refusing text that is not Unicode by its row and field.

    JSON can spell half a character (``"\\ud800"``, a lone UTF-16 surrogate): ``json.loads``
    keeps it, and no UTF-8 writer (Arrow, GeoPackage, Parquet) can store it.
    """
    try:
        return pd.DataFrame.from_records(records)
    except UnicodeEncodeError:
        for i, rec in enumerate(records):
            found = _lone_surrogate(rec) if isinstance(rec, Mapping) else None
            if found is not None:
                raise ParseError(
                    "text holds a lone UTF-16 surrogate (a \\uD800–\\uDFFF escape without its "
                    "pair), which is not a character",
                    **locate(i),
                    field=found[0],
                    value=found[1],
                ) from None
        raise


def records_to_frame(records: list[Mapping], *, where: str = "") -> pd.DataFrame:
    """Residence dicts (from the API or JSON) → a raw DataFrame, keeping every key."""
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise ParseError(
                f"expected a residence object, got {type(r).__name__}",
                file=where or None,
                row=i + 1,
            )
    if not records:
        return pd.DataFrame()
    return _frame_of(records, lambda i: {"file": where or None, "row": i + 1})


def _page_residences(page: Any, where: str) -> list:
    if not isinstance(page, Mapping):
        raise ParseError(
            f"an API page must be a JSON object, got {type(page).__name__}", file=where
        )
    if "residences" not in page:
        raise ParseError("an API page must hold 'residences'", file=where, value=sorted(page)[:10])
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
                file=where,
                field="meta_data.response_rows",
                value=rows,
            )
    return res


def read_api_pages(
    pages: Iterable[Any], *, source: str | None = None, **kwargs: Any
) -> CanonicalResult:
    """Raw API pages (dicts, or JSON text/bytes) → the canonical GeoDataFrame.

    Messages name the page (1-based), its offset where known, and the row within the page.
    """
    labelled = []
    for k, page in enumerate(pages, start=1):
        label = f"{source + ' ' if source else ''}page {k}"
        if isinstance(page, (bytes, str)):
            try:
                page = json.loads(page)
            except json.JSONDecodeError as err:
                raise ParseError(
                    f"malformed JSON: {err.msg} at line {err.lineno} column {err.colno}", file=label
                ) from None
        if isinstance(page, Mapping) and isinstance(page.get("meta_data"), Mapping):
            off = page["meta_data"].get("offset")
            if off is not None:
                label = f"{label} (offset {off})"
        labelled.append((label, page))
    frame, locate = _labelled_pages_frame(labelled, source)
    return to_canonical(frame, source=source, locate=locate, **kwargs)


def _records_with_locate(records: list, locate: Locate) -> pd.DataFrame:
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise ParseError(f"expected a residence object, got {type(r).__name__}", **locate(i))
    return _frame_of(records, locate) if records else pd.DataFrame(columns=["id"])


def _arrow_json_schema() -> pa.Schema:
    types = {
        "key": pa.int64(),
        "int": pa.float64(),
        "float": pa.float64(),
        "date": pa.string(),
        "list": pa.list_(pa.int64()),
        "string": pa.string(),
        "padded": pa.string(),
    }
    fields = []
    for f in FIELDS:
        if f.kind == "code":
            t = pa.float64() if get_code_list(f.codes or f.name).is_numeric else pa.string()
        else:
            t = types[f.kind]
        fields.append(pa.field(f.name, t))
    return pa.schema(fields)


def _read_jsonl(path: Path, *, progress: bool = False) -> tuple[pd.DataFrame, Locate]:
    """JSON lines: one residence per line (or one API page per line)."""
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b'{"residences"') or head[:200].replace(b" ", b"").startswith(
        b'{"meta_data"'
    ):
        return _read_page_lines(path)
    locate = _default_locate(str(path))
    if path.stat().st_size == 0:
        return pd.DataFrame(columns=["id"]), locate
    try:
        table = pj.read_json(
            path,
            read_options=pj.ReadOptions(block_size=16 << 20),
            parse_options=pj.ParseOptions(
                explicit_schema=_arrow_json_schema(), unexpected_field_behavior="infer"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        log.info("typed JSON fast path refused %s (%s); reading value by value", path, err)
        return _read_jsonl_slow(path), locate
    # Columns the file never mentions come back all-null from the explicit schema: drop them, an
    # account that cannot see a field must not appear to have it empty.
    names = table.column_names
    keep = [c for c in names if c not in FIELD_NAMES or table[c].null_count < len(table)]
    table = table.select(keep)
    frame = table.to_pandas(types_mapper=_types_mapper, split_blocks=True, self_destruct=True)
    del table
    _release_arrow_memory()
    if len(keep) < len(names):
        frame = _restore_present_columns(path, frame, [c for c in names if c not in keep])
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


def _types_mapper(t: pa.DataType) -> pd.ArrowDtype | None:
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pd.ArrowDtype(t)
    return None


def _read_jsonl_slow(path: Path) -> pd.DataFrame:
    records = []
    lines: list[int] = []  # each record's line
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue  # blank lines carry nothing (as Arrow's reader also treats them)
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise ParseError(
                    f"malformed JSON: {err.msg} at column {err.colno}", file=str(path), row=lineno
                ) from None
            if not isinstance(rec, dict):
                raise ParseError(
                    f"expected one residence object per line, got {type(rec).__name__}",
                    file=str(path),
                    row=lineno,
                )
            records.append(rec)
            lines.append(lineno)
    if not records:
        return pd.DataFrame(columns=["id"])
    return _frame_of(records, lambda i: {"file": str(path), "row": lines[i]})


def _read_page_lines(path: Path) -> tuple[pd.DataFrame, Locate]:
    pages = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                pages.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ParseError(
                    f"malformed JSON page: {err.msg} at column {err.colno}",
                    file=str(path),
                    row=lineno,
                ) from None
    return _pages_frame(pages, str(path))


def _pages_frame(pages: list, source: str) -> tuple[pd.DataFrame, Locate]:
    return _labelled_pages_frame(
        [(f"{source} page {k}", page) for k, page in enumerate(pages, start=1)], source
    )


def _labelled_pages_frame(
    pages: list[tuple[str, Any]], source: str | None
) -> tuple[pd.DataFrame, Locate]:
    """(label, page) pairs → one frame of residences, and a locator: position → page and row."""
    records: list = []
    spans: list[tuple[int, str]] = []  # (first position, page label)
    for label, page in pages:
        res = _page_residences(page, label)
        spans.append((len(records), label))
        records.extend(res)
    starts = np.array([s for s, _ in spans] or [0])

    def locate(pos: int) -> dict:
        j = int(np.searchsorted(starts, pos, side="right") - 1)
        return {"file": spans[j][1] if spans else source, "row": pos - spans[j][0] + 1}

    return _records_with_locate(records, locate), locate


def _read_json(path: Path) -> tuple[pd.DataFrame, Locate]:
    """One JSON document: an API page, a list of pages, or a list of residences."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as err:
        raise ParseError(
            f"malformed JSON: {err.msg} at line {err.lineno} column {err.colno}", file=str(path)
        ) from None
    if isinstance(doc, Mapping):
        return _pages_frame([doc], str(path))
    if isinstance(doc, list) and doc and isinstance(doc[0], Mapping) and "residences" in doc[0]:
        return _pages_frame(doc, str(path))
    if isinstance(doc, list):
        locate = _default_locate(str(path))
        return _records_with_locate(doc, locate), locate
    raise ParseError(f"expected an API page or a list, got {type(doc).__name__}", file=str(path))


@dataclass(frozen=True)
class _CsvHead:
    """What a CSV file's first bytes tell: its header, delimiter and encoding."""

    header: list[str]
    delimiter: str
    encoding: str


def _csv_head(path: Path) -> _CsvHead:
    """The header, delimiter and encoding of a CSV file.

    The delimiter is ``,``, or ``;`` as Excel writes "CSV" where the decimal separator is a
    comma (a Swedish locale) — whichever gives an ``id`` column (the standard library's
    ``csv.Sniffer`` guesses from letter frequencies; the id column is what decides here). The
    encoding is UTF-8 (a byte-order mark is no part of the first name), or Windows-1252 — what
    Excel's plain "CSV" is in a Swedish Windows — when the first megabyte has bytes outside ASCII
    and no UTF-8 sequence among them (a file has one encoding; one whose other bytes are not
    UTF-8 is refused naming them, as before).
    """
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    cut = head.rfind(b"\n")  # whole lines: a character cut at the end is no error
    sample = head if cut < 0 or len(head) < 1 << 20 else head[: cut + 1]
    encoding = "utf-8"
    try:
        text = sample.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Windows-1252 only when no byte sequence is UTF-8's: a UTF-8 file with a stray byte
        # is read as UTF-8 (and refused naming the byte), never turned into mojibake.
        lenient = sample.decode("utf-8-sig", errors="replace")
        if any(ord(c) > 127 and c != "\ufffd" for c in lenient):
            text = lenient
        else:
            encoding, text = "cp1252", sample.decode("cp1252", errors="replace")
    first = text.splitlines()[0] if text else ""
    if not first.strip():
        raise ParseError("empty CSV file: no header", file=str(path))
    header = next(csv.reader([first]), [])
    if "id" not in header:
        semicolon = next(csv.reader([first], delimiter=";"), [])
        if "id" in semicolon and len(semicolon) > len(header):
            return _CsvHead(semicolon, ";", encoding)
    return _CsvHead(header, ",", encoding)


def _decimal_commas(frame: pd.DataFrame, header: list[str]) -> pd.DataFrame:
    """A ``;`` file read as text: numbers written with a decimal comma (``6581234,5``) get a
    point in the columns read as numbers, so they type as numbers (not as rejects)."""
    numeric = [c for c, t in _csv_types(header, False).items() if t == pa.float64()]
    for c in numeric:
        if c in frame.columns:
            text = frame[c].astype("string")
            frame[c] = text.str.replace(r"^(\s*[+-]?\d*),(\d+\s*)$", r"\1.\2", regex=True)
    return frame


def _csv_types(header: list[str], all_text: bool) -> dict[str, pa.DataType]:
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
    # Other columns are kept as written: Arrow's guess would read "000123" as the number 123 and
    # "0180" (a kommunkod) as 180. Only the derived flag is left to it (it reads true/false).
    for name in header:
        if name not in FIELD_NAMES and name != "construction_year_placeholder":
            types.setdefault(name, pa.string())
    return types


class _FastPathRefused(Exception):
    """Arrow's typed reader could not read the file as declared."""


def _is_page_lines(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    return head.startswith(b'{"residences"') or head[:200].replace(b" ", b"").startswith(
        b'{"meta_data"'
    )


def _file_locate(path: Path, fmt: str) -> Locate:
    if fmt == "csv":
        return lambda pos: {"file": str(path), "row": pos + 2}  # the header is line 1
    return _default_locate(str(path))


def _first_keys(path: Path, lines: int = 100) -> set[str]:
    """Keys used by the first records (blank lines skipped), for :func:`_unseen_fields`."""
    keys: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        seen = 0
        for line in fh:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break
            if isinstance(rec, dict):
                keys.update(rec)
            seen += 1
            if seen == lines:
                break
    return keys


def _unseen_fields(frame: pd.DataFrame, keys: set[str]) -> list[str]:
    """Declared fields to leave out of a frame: never a key of the first records, and without a
    value in this frame.

    Arrow's explicit schema gives every declared field a column, all-null where the records do
    not carry it; an account that cannot see a field must not appear to have it empty. A column
    holding any value is always kept, whatever the first records held (writers that leave out
    null keys are common), and batches that lack a column another batch has get nulls in it.
    """
    return [
        c
        for c in frame.columns
        if c in FIELD_NAMES and c not in keys and not frame[c].notna().any()
    ]


def _grouped(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pd.DataFrame]:
    """Record batches → pandas frames of about ``rows`` rows (Arrow memory freed as it goes)."""
    group, n = [], 0
    try:
        for b in batches:
            group.append(b)
            n += b.num_rows
            if n >= rows:
                yield _to_frame(pa.Table.from_batches(group))
                group, n = [], 0
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise _FastPathRefused(str(err)) from None
    if group:
        yield _to_frame(pa.Table.from_batches(group))


def _to_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas(types_mapper=_types_mapper, split_blocks=True, self_destruct=True)
    del table
    _release_arrow_memory()
    return frame


def _stream_jsonl(path: Path) -> Iterator[pd.DataFrame]:
    if path.stat().st_size == 0:
        return
    keys = _first_keys(path)
    try:
        reader = pj.open_json(
            path,
            read_options=pj.ReadOptions(block_size=_STREAM_BLOCK),
            parse_options=pj.ParseOptions(
                explicit_schema=_arrow_json_schema(), unexpected_field_behavior="infer"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise _FastPathRefused(str(err)) from None
    for frame in _grouped(reader, _STREAM_ROWS):
        drop = _unseen_fields(frame, keys)
        yield frame.drop(columns=drop) if drop else frame


def _jsonl_chunks(path: Path, size: int) -> Iterator[bytes]:
    """Byte chunks of a JSON-lines file, each ending at a line end."""
    with open(path, "rb") as fh:
        rest = b""
        while True:
            block = fh.read(size)
            if not block:
                if rest.strip():
                    yield rest
                return
            block = rest + block
            cut = block.rfind(b"\n")
            if cut < 0:
                rest = block
                continue
            yield block[: cut + 1]
            rest = block[cut + 1 :]


def _stream_jsonl_lenient(path: Path) -> Iterator[pd.DataFrame]:
    """JSON lines in chunks: Arrow's typed reader where a chunk allows, else line by line.

    Only the chunks holding a value of another type (``"rooms": "many"``, a ``number`` such as
    ``"302-12"`` among integers) are parsed value by value, so one odd row costs one chunk.
    """
    if path.stat().st_size == 0:
        return
    keys = _first_keys(path)
    schema = _arrow_json_schema()
    lineno = 0
    for chunk in _jsonl_chunks(path, _STREAM_BLOCK * 4):
        lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        try:
            table = pj.read_json(
                io.BytesIO(chunk),
                parse_options=pj.ParseOptions(
                    explicit_schema=schema, unexpected_field_behavior="infer"
                ),
            )
            frame = _to_frame(table)
            drop = _unseen_fields(frame, keys)
            frame = frame.drop(columns=drop) if drop else frame
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            frame = _records_frame(chunk.decode("utf-8").splitlines(), path, first_line=lineno + 1)
        lineno += lines
        yield frame


def _records_frame(lines: list[str], path: Path, *, first_line: int) -> pd.DataFrame:
    records = []
    rows: list[int] = []  # each record's line
    for k, line in enumerate(lines):
        if not line.strip():
            continue  # blank lines carry nothing (as Arrow's reader also treats them)
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise ParseError(
                f"malformed JSON: {err.msg} at column {err.colno}",
                file=str(path),
                row=first_line + k,
            ) from None
        if not isinstance(rec, dict):
            raise ParseError(
                f"expected one residence object per line, got {type(rec).__name__}",
                file=str(path),
                row=first_line + k,
            )
        records.append(rec)
        rows.append(first_line + k)
    if not records:
        return pd.DataFrame(columns=["id"])
    return _frame_of(records, lambda i: {"file": str(path), "row": rows[i]})


def _stream_csv(path: Path, *, all_text: bool = False) -> Iterator[pd.DataFrame]:
    head = _csv_head(path)
    header, delimiter = head.header, head.delimiter
    try:
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(block_size=_STREAM_BLOCK, encoding=head.encoding),
            parse_options=pcsv.ParseOptions(delimiter=delimiter),
            convert_options=_csv_convert(header, all_text=all_text, delimiter=delimiter),
        )
    except pa.ArrowInvalid as err:
        if all_text:
            raise ParseError(f"malformed CSV: {err}", file=str(path)) from None
        raise _FastPathRefused(str(err)) from None
    empty = True
    try:
        for frame in _grouped(reader, _STREAM_ROWS):
            empty = False
            if all_text and delimiter == ";":
                frame = _decimal_commas(frame, header)
            yield _csv_fixups(frame)
    except _FastPathRefused as err:
        if all_text:  # as text every value fits: the file itself is malformed
            raise ParseError(f"malformed CSV: {err}", file=str(path)) from None
        raise
    if empty:  # a header without rows still tells which fields the account sees
        yield pd.DataFrame({c: pd.Series([], dtype=object) for c in header})


def _csv_convert(header: list[str], *, all_text: bool, delimiter: str) -> pcsv.ConvertOptions:
    return pcsv.ConvertOptions(
        column_types=_csv_types(header, all_text),
        # a ";" file is Excel's in a locale with a decimal comma; one with points is read as
        # text after this refuses it (its numbers then type as they are written)
        decimal_point="," if delimiter == ";" else ".",
        strings_can_be_null=True,
        null_values=["", "NaN", "nan", "NULL", "null", "None", "<NA>"],
        quoted_strings_can_be_null=True,
    )


def _csv_fixups(frame: pd.DataFrame) -> pd.DataFrame:
    # CSV cannot tell "" from a missing value (pandas writes both as an empty cell). Valueguard
    # uses "" for "no letter / entrance not specified", so that is what an empty cell means here.
    for name in ("letter", "entrance"):
        if name in frame.columns:
            frame[name] = frame[name].astype("string").fillna("")
    return frame


def _read_csv(path: Path, *, all_text: bool = False) -> tuple[pd.DataFrame, Locate]:
    """A whole CSV file as one raw frame (typed, or every declared column as text)."""
    head = _csv_head(path)
    header, delimiter = head.header, head.delimiter

    def read(text: bool) -> pa.Table:
        return pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(block_size=16 << 20, encoding=head.encoding),
            parse_options=pcsv.ParseOptions(delimiter=delimiter),
            convert_options=_csv_convert(header, all_text=text, delimiter=delimiter),
        )

    text = all_text
    try:
        table = read(text)
    except pa.ArrowInvalid as err:
        if all_text:
            raise ParseError(f"malformed CSV: {err}", file=str(path)) from None
        log.info("typed CSV fast path refused %s (%s); reading as text", path, err)
        try:
            table, text = read(True), True
        except pa.ArrowInvalid as err2:
            raise ParseError(f"malformed CSV: {err2}", file=str(path)) from None
    frame = _to_frame(table)
    if text and delimiter == ";":
        frame = _decimal_commas(frame, header)
    return _csv_fixups(frame), _file_locate(path, "csv")


def _covering_columns(metadata: dict | None) -> list[str]:
    """Top-level columns a GeoParquet file's ``geo`` metadata declares as a geometry's covering."""
    try:
        geo = json.loads((metadata or {})[b"geo"])
        return sorted(
            {
                path[0]
                for col in geo["columns"].values()
                for cover in col.get("covering", {}).values()
                for path in cover.values()
            }
        )
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return []


def _read_geo(path: Path, fmt: str) -> tuple[pd.DataFrame, Locate]:
    # GDAL warns on its way to some failures (a bad application_id, a retry as immutable): held
    # back, and shown only if the file was read — a refused file gets the one line that says why.
    with warnings.catch_warnings(record=True) as held:
        try:
            out = _read_geo_file(path, fmt)
        except (pa.ArrowException, DataSourceError, DataLayerError) as err:
            kind = "(Geo)Parquet" if fmt == "parquet" else "GeoPackage"
            raise ParseError(f"not a readable {kind} file: {err}", file=str(path)) from None
    for w in held:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return out


def _read_geo_file(path: Path, fmt: str) -> tuple[pd.DataFrame, Locate]:
    if fmt == "parquet":
        table = pq.read_table(path)
        # GeoParquet 1.1 bbox covering columns are derived from the geometry, not fields.
        table = table.drop_columns(
            [c for c in _covering_columns(table.schema.metadata) if c in table.column_names]
        )
        geo_cols = [c for c in table.column_names if c in ("geometry",)]
        frame = table.to_pandas(types_mapper=_types_mapper)
        if geo_cols and not any(c in frame.columns for c in COORDINATE_FIELDS):
            frame["geometry"] = shapely.from_wkb(frame["geometry"].to_numpy())
    else:
        frame = pyogrio.read_dataframe(path, read_geometry=True)
        if "geometry" in frame.columns and any(c in frame.columns for c in COORDINATE_FIELDS):
            frame = pd.DataFrame(frame.drop(columns="geometry"))
    return frame, _default_locate(str(path))


def read_registry(
    source: str | os.PathLike,
    *,
    format: str | None = None,
    progress: bool = False,
    **kwargs: Any,
) -> CanonicalResult:
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
    progress
        Show a progress bar (rows read) on stderr for JSON lines and CSV.
    **kwargs
        Passed to :func:`to_canonical`: ``strict`` (refuse at the first rejected value),
        ``strict_codes``, ``swap``, ``endpoint``, ``route``, and ``with_rejects=True`` to get
        ``(frame, rejects)``.

    Returns
    -------
    The canonical GeoDataFrame (and the rejects table with ``with_rejects=True``): every row of
    the input, values that broke a documented rule nulled or kept as the rule says and listed
    in the rejects with their row (see :mod:`vggeo.registry.canonical`).
    """
    path = Path(source)
    fmt = format or FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ParseError(
            f"unknown registry format {path.suffix!r}; use one of "
            f"{', '.join(sorted(FORMATS))} or pass format=",
            file=str(path),
        )
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    try:
        return _read_registry(path, fmt, progress=progress, **kwargs)
    except UnicodeDecodeError:
        refusal = _not_utf8(path)
        if refusal is None:  # the file is UTF-8: what failed to decode was not the input
            raise
        raise refusal from None


def _not_utf8(path: Path) -> ParseError | None:
    """The refusal of a text file that is not UTF-8, naming the first bad byte's line; None
    for a file that is UTF-8.

    Python's decoders say only the offset within the block they were given; this reads the file
    again to find where that is (a compressed or binary file under a text file's name, mostly).
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, line_start, offset = 1, 0, 0  # the line, where it starts and the block's start, in bytes
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as err:
                # err.object is the block after the bytes of a character the last one cut
                at = offset - (len(err.object) - len(block)) + err.start
                upto = max(at - offset, 0)
                line += block.count(b"\n", 0, upto)
                if (nl := block.rfind(b"\n", 0, upto)) >= 0:
                    line_start = offset + nl + 1
                bad = err.object[err.start : err.start + 1].hex()
                return ParseError(
                    f"not UTF-8 text: byte 0x{bad}, the line's byte {at - line_start + 1} (a "
                    "compressed or binary file, or another encoding?)",
                    file=str(path),
                    row=line,
                )
            line += block.count(b"\n")
            if (nl := block.rfind(b"\n")) >= 0:
                line_start = offset + nl + 1
            offset += len(block)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return ParseError("not UTF-8 text (cut inside a character at its end)", file=str(path))
    return None


def _read_registry(path: Path, fmt: str, *, progress: bool, **kwargs: Any) -> CanonicalResult:
    if fmt in ("jsonl", "csv") and not _is_page_lines(path):
        # Streamed: Arrow's typed readers in blocks, canonicalised batch by batch. If the typed
        # fast path refuses the file (a value of another type somewhere), it is read again: JSON
        # lines chunk by chunk (Arrow where it can, value by value only in the chunks it cannot),
        # CSV as text. Bad values then become rejects (or, when strict, the named refusal).
        stream = _stream_jsonl(path) if fmt == "jsonl" else _stream_csv(path)
        try:
            return canonical_in_batches(
                stream,
                source=str(path),
                locate=_file_locate(path, fmt),
                progress=progress,
                **kwargs,
            )
        except _FastPathRefused as err:
            log.info("typed fast path refused %s (%s); reading it again", path, err)
            stream = (
                _stream_jsonl_lenient(path) if fmt == "jsonl" else _stream_csv(path, all_text=True)
            )
            return canonical_in_batches(
                stream,
                source=str(path),
                locate=_file_locate(path, fmt),
                progress=progress,
                **kwargs,
            )
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
    return to_canonical(frame, source=str(path), locate=locate, consume=True, **kwargs)


#: Rows per batch when a large file is read as a stream.
_STREAM_ROWS = 250_000
#: Bytes per block of Arrow's streaming JSON/CSV readers. Small blocks keep the reader's
#: read-ahead small and pipeline better on two cores (measured: 8 MB beat 32 MB in time and
#: memory on 0.5–1 M rows).
_STREAM_BLOCK = 8 << 20
