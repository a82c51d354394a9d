"""A GeoPackage store's layer copied into the export by SQLite, without reading it as frames.

Reading the national registry through GDAL into (Geo)DataFrames costs more than GDAL's whole
write of it (benchmarks/export.md); SQLite copies the same rows from the attached store without
any of that. This module is that copy, used by :mod:`vggeo.exports.gpkg` for the
layers it can prove give the file the frame route writes:

* GDAL creates the layer, empty, from the Arrow schema of the frame route's prepared (empty)
  batch: the same column types, ``gpkg_contents``, ``gpkg_geometry_columns``, R-tree, triggers.
* ``INSERT … SELECT`` from the store, in fid order (the output's fids are 1…n, as GDAL gives
  them), with each column's value in the form GDAL would have written: integers of text columns
  as text, the ``*_label`` columns by a ``CASE`` over the code, integer lists as the frame
  route's JSON text (``[1, 3, null]``), point blobs without the envelope GDAL leaves out of points.
  Only columns whose store kind and output type are in :func:`column_expressions`'s list are
  copied; a layer with any other column, or a geometry blob this module does not know the GDAL
  form of (a polygon in a multipolygon layer, say), is left to the frame route. One scan of the
  store before the copy checks the blobs (:func:`survey`).
* The R-tree: when the output's fids are the store's (a whole table whose fids run 1…n, the usual
  case after a load), the store's R-tree is copied node for node into the output's: it holds
  exactly the entries the output's must hold (SQLite's R-tree keeps its nodes in ordinary
  shadow tables, and both files have the same page size, which fixes the node size; the tree's
  shape may differ from the one GDAL would build, its answers do not). Otherwise the store's
  R-tree rows are inserted under the new fids.

The R-tree and feature-count triggers GDAL created are set aside during the copy (they would
call ``ST_MinX`` … per row, which only GDAL provides natively) and put back, as they were, after.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import shapely

from vggeo.store.base import quote_ident, quote_literal
from vggeo.store.gpkg import from_gpkg_blobs
from vggeo.store.schema import GEOMETRY_COLUMN, SRID

q = quote_ident

__all__ = [
    "LabelSpec",
    "attach",
    "fast_writes",
    "column_expressions",
    "copy_rows",
    "geometry_expression",
    "interruptible",
    "survey",
]

#: Store schema "src" is the attached store.
SRC = "src"
_SRS_BYTES = SRID.to_bytes(4, "little").hex().upper()
#: A non-empty little-endian blob with an xy envelope, in the store's SRS: what the store writes.
_HEAD_ENVELOPE = f"47500003{_SRS_BYTES}"
#: An empty geometry's blob head (no envelope): the store's and GDAL's alike.
_HEAD_EMPTY = f"47500011{_SRS_BYTES}"
#: The little-endian ISO WKB type that follows the 40-byte head of the store's blobs.
_WKB_TYPES = {"Point": "0101000000", "MultiPolygon": "0106000000"}


@dataclass(frozen=True)
class LabelSpec:
    """A ``*_label`` column: the readable label of another column's code (by the code's text)."""

    source: str
    labels: Mapping


def column_expressions(
    schema: pa.Schema,
    kinds: Mapping[str, str],
    labels: Mapping[str, LabelSpec],
    geometry: str | None,
) -> list[str] | None:
    """SQL over the attached store giving each output column as GDAL writes it, or None.

    ``schema`` is the frame route's Arrow schema of the layer (geometry last when spatial);
    ``kinds`` the store's column kinds. None when a column is outside what is proven to match
    the frame route (the caller then takes that route).
    """
    exprs = []
    for f in schema:
        if geometry is not None and f.name == schema.names[-1]:
            continue
        t = f.type
        text = pa.types.is_string(t) or pa.types.is_large_string(t)
        if f.name in labels:
            spec = labels[f.name]
            source = kinds.get(spec.source)
            if source == "int" and all(isinstance(k, int) for k in spec.labels):
                # An INTEGER column holds integers: compared as such, without a cast per row.
                cases = " ".join(
                    f"WHEN {int(k)} THEN {quote_literal(v)}" for k, v in spec.labels.items()
                )
                exprs.append(f"CASE {q(spec.source)} {cases} END")
            elif source in ("int", "text"):
                cases = " ".join(
                    f"WHEN {quote_literal(k)} THEN {quote_literal(v)}"
                    for k, v in spec.labels.items()
                )
                exprs.append(f"CASE CAST({q(spec.source)} AS TEXT) {cases} END")
            else:
                return None
            continue
        kind = kinds.get(f.name)
        col = q(f.name)
        if kind == "text" and text:
            exprs.append(col)
        elif kind == "int" and pa.types.is_integer(t):
            exprs.append(col)
        elif kind == "int" and text:
            # Integer categories, which GDAL gets as text: the output column's TEXT affinity
            # stores an integer as its text ("320"), as CAST would, at no cost.
            exprs.append(col)
        elif kind == "float" and pa.types.is_float64(t):
            exprs.append(col)
        elif kind == "bool" and pa.types.is_boolean(t):
            exprs.append(col)
        elif kind == "datetime" and pa.types.is_timestamp(t) and t.tz == "UTC":
            # The store holds GeoPackage DATETIME text (YYYY-MM-DDTHH:MM:SS.SSSZ), GDAL's form.
            exprs.append(col)
        elif kind == "json" and text and (f.metadata or {}).get(b"GDAL:OGR:subtype") == b"JSON":
            # Integer lists, which the frame route writes as JSON text ("[1, 3, null]", "[]":
            # vggeo.exports.gpkg._json_integer_lists); the store holds any JSON spelling of
            # them, which json() makes compact first (no strings inside: the commas are all
            # separators).
            exprs.append(f"replace(json({col}), ',', ', ')")
        else:
            return None
    return exprs


def geometry_expression(geometry: str) -> str:
    """The output blob of a store blob (every blob must pass :func:`survey` first).

    Points: GDAL writes no envelope, so the store's 32-byte one is cut out and the flags say so
    (``||`` gives text, which the cast turns back into the same bytes as a blob); multipolygons
    keep theirs (GDAL writes the same). Empty blobs are the same in both.
    """
    g = q(GEOMETRY_COLUMN)
    if geometry != "Point":
        return g
    return (
        f"CASE WHEN hex(substr({g}, 1, 8)) = '{_HEAD_ENVELOPE}' THEN "
        f"CAST(substr({g}, 1, 3) || x'01' || substr({g}, 5, 4) || substr({g}, 41) AS BLOB) "
        f"ELSE {g} END"
    )


def _known_blob(head: object, wkb_type: object, geometry: str) -> bool:
    """Whether a blob whose first 8 bytes are ``head`` and bytes 41–45 ``wkb_type`` is one
    :func:`geometry_expression` gives GDAL's form of: NULL, empty, or the store's own head with
    an xy envelope followed by the layer's little-endian WKB type."""
    if head is None:
        return True
    if not isinstance(head, bytes):  # a text value in the geometry column
        return False
    if head == bytes.fromhex(_HEAD_EMPTY):
        return True
    return head == bytes.fromhex(_HEAD_ENVELOPE) and wkb_type == bytes.fromhex(_WKB_TYPES[geometry])


def survey(
    conn: sqlite3.Connection, table: str, where: str, geometry: str | None, exprs: list[str]
) -> tuple[bool, set[tuple]]:
    """One scan of the selected store rows: whether every geometry blob is one
    :func:`geometry_expression` knows GDAL's form of, and the distinct values of ``exprs``.

    The blobs' heads are gathered as bytes, distinct with the values, and judged here: SQLite
    compares bytes without converting each row's to text (``hex``), which took twice as long."""
    g = q(GEOMETRY_COLUMN)
    heads = [f"substr({g}, 1, 8)", f"substr({g}, 41, 5)"] if geometry is not None else []
    columns = ", ".join([*exprs, *heads] or ["1"])
    with interruptible(conn):
        rows = conn.execute(
            f"SELECT DISTINCT {columns} FROM {SRC}.{q(table)} WHERE ({where})"
        ).fetchall()
    if geometry is None:
        return True, {tuple(r[: len(exprs)]) for r in rows}
    known = all(_known_blob(r[-2], r[-1], geometry) for r in rows)
    return known, {tuple(r[:-2]) for r in rows}


def copy_rows(
    conn: sqlite3.Connection,
    layer: str,
    table: str,
    where: str,
    columns: list[str],
    exprs: list[str],
    geometry: str | None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Copy the selected store rows into the (empty) layer GDAL created; return their number.

    ``conn`` is the output with the store attached as ``src``, inside a transaction;
    ``progress`` is told the rows copied so far, now and then.
    """
    triggers = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (layer,)
    ).fetchall()
    for name, _ in triggers:
        conn.execute(f"DROP TRIGGER {q(name)}")
    names = [q(c) for c in columns]
    values = list(exprs)
    if geometry is not None:
        names.append(q(GEOMETRY_COLUMN))
        values.append(geometry_expression(geometry))
    before = conn.total_changes
    with interruptible(conn, progress):
        conn.execute(
            f"INSERT INTO {q(layer)} ({', '.join(names)}) SELECT {', '.join(values)} "
            f"FROM {SRC}.{q(table)} WHERE ({where}) ORDER BY fid"
        )
    rows = conn.total_changes - before
    if geometry is not None:
        with interruptible(conn):
            _copy_rtree(conn, layer, table, where, rows)
            _set_extent(conn, layer)
    for _, sql in triggers:
        conn.execute(sql)
    conn.execute(
        "UPDATE gpkg_ogr_contents SET feature_count = ? WHERE lower(table_name) = lower(?)",
        (rows, layer),
    )
    return rows


@contextmanager
def interruptible(
    conn: sqlite3.Connection, progress: Callable[[int], None] | None = None
) -> Iterator[None]:
    """Ctrl-C stops a long statement at once, as :class:`KeyboardInterrupt`.

    Python runs its signal handlers only between bytecodes, never inside one ``execute``; a
    progress handler gives it that chance every million SQLite instructions. The
    :class:`KeyboardInterrupt` raised there makes SQLite abandon the statement (the sqlite3
    module swallows the exception itself and reports "interrupted"), so it is raised again here.
    ``progress``, if given, is told the rows written so far (a progress bar moves during a copy).
    """
    start = conn.total_changes

    def handler() -> int:
        _no_op()
        if progress is not None:
            progress(conn.total_changes - start)
        return 0

    conn.set_progress_handler(handler, PROGRESS_EVERY)
    try:
        yield
    except sqlite3.OperationalError as err:
        if str(err) == "interrupted":  # nothing else interrupts this connection
            raise KeyboardInterrupt from err
        raise
    finally:
        conn.set_progress_handler(None, 0)


#: SQLite instructions between two chances for Python's signal handlers (a few ms of work).
PROGRESS_EVERY = 1_000_000


def _no_op() -> None:
    """Called by the progress handler: a bytecode for Python's signal handlers to run at."""


def _copy_rtree(conn: sqlite3.Connection, layer: str, table: str, where: str, rows: int) -> None:
    out = f"rtree_{layer}_{GEOMETRY_COLUMN}"
    src = f"rtree_{table}_{GEOMETRY_COLUMN}"
    low, high, n = conn.execute(
        f"SELECT min(fid), max(fid), count(*) FROM {SRC}.{q(table)} WHERE ({where})"
    ).fetchone()
    same_fids = n == rows and (n == 0 or (low == 1 and high == n))
    same_page = (
        conn.execute(f"PRAGMA {SRC}.page_size").fetchone()
        == conn.execute("PRAGMA main.page_size").fetchone()
    )
    empty_out = conn.execute(f"SELECT count(*) FROM {q(out + '_rowid')}").fetchone()[0] == 0
    if same_fids and same_page and empty_out and where == "1 = 1":
        # The same entries: the store's tree, node for node (see the module docstring).
        for shadow in ("node", "rowid", "parent"):
            conn.execute(f"DELETE FROM {q(f'{out}_{shadow}')}")
            conn.execute(
                f"INSERT INTO {q(f'{out}_{shadow}')} SELECT * FROM {SRC}.{q(f'{src}_{shadow}')}"
            )
        return
    # Other fids: the store's entries under the new ones (the n-th selected row is fid n).
    conn.execute("DROP TABLE IF EXISTS temp.vggeo_fids")
    conn.execute(
        f"CREATE TEMP TABLE vggeo_fids AS SELECT fid AS old FROM {SRC}.{q(table)} "
        f"WHERE ({where}) ORDER BY fid"
    )
    conn.execute(
        f"INSERT INTO {q(out)} SELECT m.rowid, r.minx, r.maxx, r.miny, r.maxy "
        f"FROM temp.vggeo_fids m JOIN {SRC}.{q(src)} r ON r.id = m.old ORDER BY m.rowid"
    )
    conn.execute("DROP TABLE temp.vggeo_fids")


def _set_extent(conn: sqlite3.Connection, layer: str) -> None:
    """``gpkg_contents``' extent, exact: the R-tree's boxes are floats rounded outwards, so the
    rows on each edge of its extent are read and their geometries' own bounds taken."""
    name = f"rtree_{layer}_{GEOMETRY_COLUMN}"
    rtree = q(name)
    edge = _rtree_bounds(conn, name)
    if edge is None:
        return
    fids = conn.execute(
        f"SELECT id FROM {rtree} WHERE minx <= ? UNION SELECT id FROM {rtree} WHERE miny <= ? "
        f"UNION SELECT id FROM {rtree} WHERE maxx >= ? UNION SELECT id FROM {rtree} "
        "WHERE maxy >= ?",
        edge,
    ).fetchall()
    blobs = [
        conn.execute(f"SELECT {q(GEOMETRY_COLUMN)} FROM {q(layer)} WHERE fid = ?", f).fetchone()[0]
        for f in fids
    ]
    bounds = shapely.bounds(from_gpkg_blobs(blobs))
    ext = (
        float(np.nanmin(bounds[:, 0])),
        float(np.nanmin(bounds[:, 1])),
        float(np.nanmax(bounds[:, 2])),
        float(np.nanmax(bounds[:, 3])),
    )
    conn.execute(
        "UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ? WHERE table_name = ?",
        (*ext, layer),
    )


def _rtree_bounds(conn: sqlite3.Connection, rtree: str) -> tuple[float, float, float, float] | None:
    """(min x, min y, max x, max y) of a 2-D R-tree's boxes, or None when it is empty.

    Read from the root node's entries, which bound everything below them: SQLite's R-tree
    answers ``min(minx)`` only by visiting every entry (a second for the national registry).
    The node layout is SQLite's file format (``ext/rtree/rtree.c``): a 2-byte depth, a 2-byte
    entry count, then per entry an 8-byte id and four big-endian 32-bit floats, minx, maxx,
    miny, maxy. Decoded here since neither SQLite nor Python's ``sqlite3`` exposes it."""
    (node,) = conn.execute(f"SELECT data FROM {q(rtree + '_node')} WHERE nodeno = 1").fetchone()
    (count,) = struct.unpack_from(">H", node, 2)
    if count == 0:
        return None
    boxes = np.array([struct.unpack_from(">4f", node, 4 + 24 * i + 8) for i in range(count)])
    return (
        float(boxes[:, 0].min()),
        float(boxes[:, 2].min()),
        float(boxes[:, 1].max()),
        float(boxes[:, 3].max()),
    )


def fast_writes(conn: sqlite3.Connection) -> None:
    """Settings for filling the export's temporary file (``main``), which is renamed into place
    only when complete and deleted otherwise: no rollback journal and no sync (a crash or an
    error leaves nothing anyone reads), and a page cache of 256 MB so the table's and the
    R-tree's pages are not spilled to the file — and the journal synced — every 2 MB."""
    conn.execute("PRAGMA main.journal_mode = OFF")
    conn.execute("PRAGMA main.synchronous = OFF")
    conn.execute("PRAGMA main.cache_size = -262144")


def attach(conn: sqlite3.Connection, store: Path) -> None:
    """Attach the store, read-only, as ``src``."""
    conn.execute(f"ATTACH DATABASE ? AS {SRC}", (f"{Path(store).resolve().as_uri()}?mode=ro",))
