"""The GeoPackage backend: one file, written through SQLite itself.

Why not pyogrio for the writes: a delivery must be applied in *one* transaction that spans
deletes, inserts, the ledger row and the data version, across several tables — and pyogrio writes
one layer per call, each committed on its own. So the file is written through :mod:`sqlite3` with
the GeoPackage structures done by hand (GeoPackage 1.3: ``gpkg_spatial_ref_sys``,
``gpkg_contents``, ``gpkg_geometry_columns``, ``gpkg_extensions``, an R-tree per geometry table
kept by the standard triggers), and GDAL reads it back in the tests as an independent check.

The R-tree triggers call ``ST_IsEmpty``/``ST_MinX`` …, which GDAL and SpatiaLite provide; they are
registered here on every connection from the GeoPackage blob header (which vggeo always writes
with its envelope), falling back to parsing the WKB for blobs without one.

Crash safety is SQLite's: the rollback journal makes an interrupted transaction (Ctrl-C, SIGKILL,
power loss with ``synchronous=FULL``) roll back when the file is next opened.
"""

from __future__ import annotations

import base64
import io
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pj
import pyogrio
import pyproj
import shapely

from vggeo.errors import SchemaError, StoreError
from vggeo.store.base import OWNER_SECRET_META, BBox, Store, python_values, quote_ident, restore
from vggeo.store.ledger import LEDGER_COLUMNS, LedgerEntry
from vggeo.store.schema import (
    COLUMNS_TABLE,
    GEOMETRY_COLUMN,
    LEDGER_TABLE,
    META_TABLE,
    SRID,
    TABLES,
    Column,
    Table,
    parse_category,
)
from vggeo.store.secret import new_owner_secret

__all__ = ["GeoPackageStore", "to_gpkg_blobs", "from_gpkg_blobs"]

GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
GPKG_USER_VERSION = 10300  # GeoPackage 1.3
SQL_TYPES = {
    "text": "TEXT",
    "int": "INTEGER",
    "float": "REAL",
    "bool": "BOOLEAN",
    "datetime": "DATETIME",
    "json": "TEXT",
}
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
SCHEMA_VERSION = "1"


q = quote_ident


# --- GeoPackage geometry blobs -------------------------------------------------------------------

_HEADER = np.dtype(
    [
        ("magic", "S2"),
        ("version", "u1"),
        ("flags", "u1"),
        ("srs_id", "<i4"),
        ("envelope", "<f8", (4,)),
    ]
)


def to_gpkg_blobs(geoms: np.ndarray, srs_id: int = SRID) -> list[bytes | None]:
    """GeoPackage geometry blobs (little-endian, xy envelope) for an array of shapely geometries.

    Headers are built as one numpy structured array; only the final concatenation is per row.
    """
    geoms = np.asarray(geoms, dtype=object)
    missing = shapely.is_missing(geoms)
    empty = shapely.is_empty(geoms) & ~missing
    wkb = shapely.to_wkb(geoms, byte_order=1, flavor="iso")
    bounds = shapely.bounds(geoms)  # minx, miny, maxx, maxy
    head = np.zeros(len(geoms), dtype=_HEADER)
    head["magic"] = b"GP"
    head["flags"] = np.where(empty, 0b00010001, 0b00000011)  # little-endian; envelope [x, y]
    head["srs_id"] = srs_id
    head["envelope"] = bounds[:, [0, 2, 1, 3]]  # GeoPackage order: minx, maxx, miny, maxy
    raw = head.tobytes()
    size = _HEADER.itemsize
    out: list[bytes | None] = []
    for i, w in enumerate(wkb.tolist()):
        if missing[i]:
            out.append(None)
        elif empty[i]:
            out.append(raw[i * size : i * size + 8] + w)  # no envelope for an empty geometry
        else:
            out.append(raw[i * size : (i + 1) * size] + w)
    return out


def _wkb_offset(blob: bytes) -> int:
    if blob[:2] != b"GP":
        raise StoreError("not a GeoPackage geometry blob")
    return 8 + _ENVELOPE_BYTES.get((blob[3] >> 1) & 0b111, 0)


def from_gpkg_blobs(blobs: Iterable[bytes | None]) -> np.ndarray:
    """Shapely geometries from GeoPackage blobs (None stays None)."""
    wkb = [None if b is None else b[_wkb_offset(b) :] for b in blobs]
    return np.asarray(shapely.from_wkb(np.asarray(wkb, dtype=object)), dtype=object)


def _envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """(minx, maxx, miny, maxy) of a blob, from its header when it has one."""
    if blob is None:
        return None
    blob = bytes(blob)
    env = (blob[3] >> 1) & 0b111
    if env:
        return struct.unpack_from("<dddd" if blob[3] & 1 else ">dddd", blob, 8)

    g = shapely.from_wkb(blob[_wkb_offset(blob) :])
    if g.is_empty:
        return None
    x0, y0, x1, y1 = g.bounds
    return (x0, x1, y0, y1)


def _st_is_empty(blob: bytes | None) -> int | None:
    if blob is None:
        return None
    blob = bytes(blob)
    if blob[3] & 0b00010000:
        return 1
    return 0 if _envelope(blob) is not None else 1


def _st(i: int) -> Callable[[bytes | None], float | None]:
    def f(blob: bytes | None) -> float | None:
        env = _envelope(blob)
        return None if env is None else env[i]

    return f


def gpkg_datetimes(series: pd.Series) -> list[str | None]:
    """GeoPackage DATETIME text of a datetime column: ``YYYY-MM-DDTHH:MM:SS.SSSZ``, in UTC.

    The standard allows this one form (Req 5; GDAL's ``validate_gpkg.py`` checks it): always
    milliseconds, always ``Z``. Naive values are UTC by the store's contract.

    Raises
    ------
    SchemaError
        A value finer than a millisecond, or outside the years 0000–9999: the form cannot hold
        it, and the store refuses rather than rounds.
    """
    s = series
    if not pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = pd.to_datetime(s)
    if getattr(s.dtype, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    exact = s.to_numpy()
    ms = exact.astype("datetime64[ms]")
    present = ~np.isnat(exact)
    if (ms[present] != exact[present]).any():
        raise SchemaError(
            "a GeoPackage DATETIME holds milliseconds; this column has finer values",
            field=series.name,
        )
    text = np.datetime_as_string(ms, unit="ms")
    if present.any() and (np.char.str_len(text[present].astype(str)) != 23).any():
        raise SchemaError("a GeoPackage DATETIME holds the years 0000–9999 only", field=series.name)
    return [t + "Z" if p else None for t, p in zip(text.tolist(), present.tolist(), strict=True)]


def register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions GeoPackage's R-tree triggers call (GDAL/SpatiaLite provide them too)."""
    conn.create_function("ST_IsEmpty", 1, _st_is_empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, _st(i), deterministic=True)


# --- DDL -----------------------------------------------------------------------------------------

_CORE_DDL = """
CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (
  srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY, organization TEXT NOT NULL,
  organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT);
CREATE TABLE IF NOT EXISTS gpkg_contents (
  table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE,
  description TEXT DEFAULT '',
  last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (
  table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
  CONSTRAINT uk_gc_table_name UNIQUE (table_name),
  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
CREATE TABLE IF NOT EXISTS gpkg_extensions (
  table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL, definition TEXT NOT NULL,
  scope TEXT NOT NULL,
  CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name));
"""


def _srs_rows() -> list[tuple]:
    wkt = pyproj.CRS.from_epsg(SRID).to_wkt("WKT1_GDAL")
    wgs = pyproj.CRS.from_epsg(4326).to_wkt("WKT1_GDAL")
    return [
        (
            "Undefined cartesian SRS",
            -1,
            "NONE",
            -1,
            "undefined",
            "undefined cartesian coordinate reference system",
        ),
        (
            "Undefined geographic SRS",
            0,
            "NONE",
            0,
            "undefined",
            "undefined geographic coordinate reference system",
        ),
        (
            "WGS 84 geodetic",
            4326,
            "EPSG",
            4326,
            wgs,
            "longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid",
        ),
        ("SWEREF99 TM", SRID, "EPSG", SRID, wkt, "SWEREF 99 TM (Sweden)"),
    ]


def _rtree_triggers(t: str, c: str, i: str = "fid") -> list[str]:
    """The R-tree maintenance triggers of the GeoPackage 1.3 rtree extension (Annex F.3)."""
    r = q(f"rtree_{t}_{c}")
    tq, cq = q(t), q(c)
    vals = f"(NEW.{i}, ST_MinX(NEW.{cq}), ST_MaxX(NEW.{cq}), ST_MinY(NEW.{cq}), ST_MaxY(NEW.{cq}))"
    has = f"(NEW.{cq} NOTNULL AND NOT ST_IsEmpty(NEW.{cq}))"
    hasnt = f"(NEW.{cq} ISNULL OR ST_IsEmpty(NEW.{cq}))"
    return [
        f"CREATE TRIGGER {q(f'rtree_{t}_{c}_insert')} AFTER INSERT ON {tq} WHEN {has} "
        f"BEGIN INSERT OR REPLACE INTO {r} VALUES {vals}; END",
        f"CREATE TRIGGER {q(f'rtree_{t}_{c}_update1')} AFTER UPDATE OF {cq} ON {tq} "
        f"WHEN OLD.{i} = NEW.{i} AND {has} BEGIN INSERT OR REPLACE INTO {r} VALUES {vals}; END",
        f"CREATE TRIGGER {q(f'rtree_{t}_{c}_update2')} AFTER UPDATE OF {cq} ON {tq} "
        f"WHEN OLD.{i} = NEW.{i} AND {hasnt} BEGIN DELETE FROM {r} WHERE id = OLD.{i}; END",
        f"CREATE TRIGGER {q(f'rtree_{t}_{c}_update3')} AFTER UPDATE ON {tq} "
        f"WHEN OLD.{i} != NEW.{i} AND {has} BEGIN DELETE FROM {r} WHERE id = OLD.{i}; "
        f"INSERT OR REPLACE INTO {r} VALUES {vals}; END",
        f"CREATE TRIGGER {q(f'rtree_{t}_{c}_update4')} AFTER UPDATE ON {tq} "
        f"WHEN OLD.{i} != NEW.{i} AND {hasnt} "
        f"BEGIN DELETE FROM {r} WHERE id IN (OLD.{i}, NEW.{i}); END",
        f"CREATE TRIGGER {q(f'rtree_{t}_{c}_delete')} AFTER DELETE ON {tq} "
        f"WHEN OLD.{cq} NOT NULL BEGIN DELETE FROM {r} WHERE id = OLD.{i}; END",
    ]


class GeoPackageStore(Store):
    """A store in one GeoPackage file (the default; what QGIS users open directly).

    Parameters
    ----------
    path
        The ``.gpkg`` file.
    create
        Create the file (or add vggeo's tables to an existing GeoPackage) when absent.
    """

    backend = "gpkg"
    _param = "?"
    _sql_types = SQL_TYPES

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        exists = self.path.exists()
        if not exists and not create:
            raise StoreError(
                f"no store at {self.path}; create one with create=True (the CLI's ingest does)"
            )
        if exists and self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a GeoPackage")
        if exists and self.path.stat().st_size > 0:
            with open(self.path, "rb") as fh:
                if fh.read(16) != b"SQLite format 3\x00":
                    raise StoreError(f"{self.path} is not a GeoPackage (not an SQLite file)")
        try:
            self.conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=60, check_same_thread=False
            )
        except sqlite3.Error as err:
            raise StoreError(f"cannot open {self.path}: {err}") from err
        register_functions(self.conn)
        self.conn.execute("PRAGMA busy_timeout = 60000")
        self._columns_cache: dict[str, list[Column]] = {}
        self._in_tx = False
        self._wrote = False
        # one connection, possibly used by a server's worker threads: reads take turns
        self._lock = threading.RLock()
        have = self._has_table(META_TABLE)
        if not have:
            if not create:
                self.conn.close()
                raise StoreError(
                    f"{self.path} is not a vggeo store (no {META_TABLE} table); "
                    f"open it with create=True to add vggeo's tables"
                )
            try:
                self._create()
            except BaseException:
                self.conn.close()
                if not exists:
                    _unlink_database(self.path)
                raise
        # Only a file this object brought into being may be removed again (remove_if_unused).
        self.created = not exists

    # -- setup ------------------------------------------------------------------------------
    def _has_table(self, name: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type IN ('table','view') AND name = ?", (name,)
        ).fetchone()
        return row is not None

    def _create(self) -> None:
        with self._transaction():
            c = self.conn
            if self._has_table(META_TABLE):  # another process created it while we waited
                return
            app = c.execute("PRAGMA application_id").fetchone()[0]
            if app not in (0, GPKG_APPLICATION_ID):
                raise StoreError(
                    f"{self.path} is an SQLite file of another application "
                    f"(application_id {app:#x}), not a GeoPackage"
                )
            c.execute(f"PRAGMA application_id = {GPKG_APPLICATION_ID}")
            if c.execute("PRAGMA user_version").fetchone()[0] == 0:
                c.execute(f"PRAGMA user_version = {GPKG_USER_VERSION}")
            for stmt in _CORE_DDL.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            c.executemany(
                "INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES (?,?,?,?,?,?)", _srs_rows()
            )
            c.execute(f"CREATE TABLE {q(META_TABLE)} (key TEXT PRIMARY KEY, value TEXT)")
            c.execute(
                f"CREATE TABLE {q(COLUMNS_TABLE)} (table_name TEXT NOT NULL, "
                "column_name TEXT NOT NULL, kind TEXT NOT NULL, dtype TEXT NOT NULL, "
                "position INTEGER NOT NULL, PRIMARY KEY (table_name, column_name))"
            )
            ledger_cols = ", ".join(
                f"{q(n)} {SQL_TYPES[k]}" for n, k in LEDGER_COLUMNS if n != "seq"
            )
            c.execute(
                f"CREATE TABLE {q(LEDGER_TABLE)} (fid INTEGER PRIMARY KEY AUTOINCREMENT "
                f"NOT NULL, seq INTEGER NOT NULL UNIQUE, {ledger_cols})"
            )
            self._contents(LEDGER_TABLE, "attributes", "vggeo: applied deliveries")
            for table in TABLES.values():
                self._create_table(table)
            now = datetime.now(UTC).isoformat()
            c.executemany(
                f"INSERT INTO {q(META_TABLE)} VALUES (?, ?)",
                [
                    ("schema_version", SCHEMA_VERSION),
                    ("created_at", now),
                    ("data_version", "0"),
                    (OWNER_SECRET_META, new_owner_secret()),
                ],
            )

    def _add_missing_tables(self) -> list[str]:
        missing = [t for t in TABLES.values() if not self._has_table(t.name)]
        for table in missing:
            self._create_table(table)
        return [t.name for t in missing]

    def _contents(self, name: str, kind: str, description: str) -> None:
        self.conn.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) "
            "VALUES (?, ?, ?, ?, ?)",
            (name, kind, name, description, SRID if kind == "features" else None),
        )

    def _create_table(self, table: Table) -> None:
        c = self.conn
        cols = ["fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL"]
        if table.geometry_type:
            cols.append(f"{q(GEOMETRY_COLUMN)} {table.geometry_type}")
        for col in table.columns:
            null = " NOT NULL" if col.name == table.key else ""
            cols.append(f"{q(col.name)} {SQL_TYPES[col.kind]}{null}")
        c.execute(f"CREATE TABLE {q(table.name)} ({', '.join(cols)})")
        c.execute(
            f"CREATE {'UNIQUE ' if table.unique else ''}INDEX "
            f"{q(f'idx_{table.name}_{table.key}')} ON {q(table.name)} ({q(table.key)})"
        )
        for extra in table.indexes:
            c.execute(
                f"CREATE INDEX {q(f'idx_{table.name}_{extra}')} ON {q(table.name)} ({q(extra)})"
            )
        self._contents(
            table.name, "features" if table.geometry_type else "attributes", table.description
        )
        if table.geometry_type:
            c.execute(
                "INSERT INTO gpkg_geometry_columns VALUES (?, ?, ?, ?, 0, 0)",
                (table.name, GEOMETRY_COLUMN, table.geometry_type, SRID),
            )
            c.execute(
                f"CREATE VIRTUAL TABLE {q(f'rtree_{table.name}_{GEOMETRY_COLUMN}')} "
                "USING rtree(id, minx, maxx, miny, maxy)"
            )
            c.execute(
                "INSERT INTO gpkg_extensions VALUES (?, ?, 'gpkg_rtree_index', "
                "'http://www.geopackage.org/spec120/#extension_rtree', 'write-only')",
                (table.name, GEOMETRY_COLUMN),
            )
            for trig in _rtree_triggers(table.name, GEOMETRY_COLUMN):
                c.execute(trig)
        c.executemany(
            f"INSERT INTO {q(COLUMNS_TABLE)} VALUES (?, ?, ?, ?, ?)",
            [(table.name, col.name, col.kind, col.dtype, i) for i, col in enumerate(table.columns)],
        )

    # -- primitives ---------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._in_tx:
            raise StoreError("a write is already in progress on this store object")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise StoreError(f"{self.path}: cannot start a write: {err}") from err
        self._in_tx = True
        self._wrote = False
        self._columns_cache.clear()
        try:
            yield
        except sqlite3.Error as err:
            self.conn.execute("ROLLBACK")
            raise StoreError(f"{self.path}: {err}; nothing was written") from err
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            if self._wrote:  # a transaction that only looked leaves the file as it was
                self._touch_contents()
            self.conn.execute("COMMIT")
        finally:
            self._in_tx = False
            self._columns_cache.clear()

    def _touch_contents(self) -> None:
        """Keep gpkg_contents' extents and last_change true after a write."""
        for table in TABLES.values():
            if not table.geometry_type:
                continue
            r = q(f"rtree_{table.name}_{GEOMETRY_COLUMN}")
            ext = self.conn.execute(
                f"SELECT min(minx), min(miny), max(maxx), max(maxy) FROM {r}"
            ).fetchone()
            self.conn.execute(
                "UPDATE gpkg_contents SET min_x=?, min_y=?, max_x=?, max_y=?, "
                "last_change=strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE table_name=?",
                (*ext, table.name),
            )

    def _read_ledger(self) -> list[LedgerEntry]:
        names = [n for n, _ in LEDGER_COLUMNS]
        rows = self.conn.execute(
            f"SELECT {', '.join(q(n) for n in names)} FROM {q(LEDGER_TABLE)} ORDER BY seq"
        ).fetchall()
        return [LedgerEntry.from_row(dict(zip(names, r, strict=True))) for r in rows]

    def _append_ledger(self, entry: LedgerEntry) -> None:
        self._wrote = True
        row = entry.as_row()
        kinds = dict(LEDGER_COLUMNS)
        vals = []
        for n, _ in LEDGER_COLUMNS:
            v = row[n]
            if kinds[n] == "datetime" and v is not None:
                # The ledger keeps milliseconds, the precision of a GeoPackage DATETIME.
                v = gpkg_datetimes(pd.Series([pd.Timestamp(v).floor("ms")]))[0]
            elif kinds[n] == "bool":
                v = int(bool(v))
            vals.append(v)
        self.conn.execute(
            f"INSERT INTO {q(LEDGER_TABLE)} ({', '.join(q(n) for n, _ in LEDGER_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(vals))})",
            vals,
        )

    def _delete_all(self, table: str) -> int:
        self._wrote = True
        return self.conn.execute(f"DELETE FROM {q(table)}").rowcount

    def _delete_keys(self, table: str, column: str, keys: Iterable[Any]) -> int:
        keys = list(keys)
        if not keys:
            return 0
        self._wrote = True
        c = self.conn
        c.execute("CREATE TEMP TABLE IF NOT EXISTS _vggeo_keys (k PRIMARY KEY) WITHOUT ROWID")
        c.execute("DELETE FROM _vggeo_keys")
        c.executemany("INSERT OR IGNORE INTO _vggeo_keys VALUES (?)", [(k,) for k in keys])
        n = c.execute(
            f"DELETE FROM {q(table)} WHERE {q(column)} IN (SELECT k FROM _vggeo_keys)"
        ).rowcount
        c.execute("DELETE FROM _vggeo_keys")
        return n

    def _delete_unreferenced(self, table: str, column: str, ref_table: str, ref_column: str) -> int:
        self._wrote = True
        return self.conn.execute(
            f"DELETE FROM {q(table)} WHERE {q(column)} NOT IN (SELECT {q(ref_column)} FROM "
            f"{q(ref_table)} WHERE {q(ref_column)} IS NOT NULL)"
        ).rowcount

    def _delete_true(self, table: str, column: str) -> int:
        self._wrote = True
        return self.conn.execute(f"DELETE FROM {q(table)} WHERE {q(column)} = 1").rowcount

    def _mark_written(self) -> None:
        self._wrote = True

    def _write_rows(
        self, table: Table, columns: list[Column], frame: pd.DataFrame, geoms: np.ndarray | None
    ) -> int:
        self._wrote = True
        n = len(frame)
        values = [
            gpkg_datetimes(frame[c.name])
            if c.kind == "datetime"
            else python_values(frame[c.name], c.kind)
            for c in columns
        ]
        names = [q(c.name) for c in columns]
        if not table.geometry_type:
            self._executemany(table, names, values)
            return n

        geoms = np.asarray(geoms if geoms is not None else [None] * n, dtype=object)
        # Bulk path: the R-tree insert trigger costs half the load time, row by row through SQL
        # functions. Within this transaction, rows get explicit fids, the trigger is set aside,
        # the R-tree rows are inserted from vectorised bounds, and the trigger is put back — all
        # or nothing with the rest of the delivery (SQLite DDL is transactional).
        start = self._next_fid(table.name)
        fids = list(range(start, start + n))
        values += [to_gpkg_blobs(geoms), fids]
        names += [q(GEOMETRY_COLUMN), "fid"]
        rtree = q(f"rtree_{table.name}_{GEOMETRY_COLUMN}")
        trigger = _rtree_triggers(table.name, GEOMETRY_COLUMN)[0]
        self.conn.execute(f"DROP TRIGGER {q(f'rtree_{table.name}_{GEOMETRY_COLUMN}_insert')}")
        self._executemany(table, names, values)
        has = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
        b = shapely.bounds(geoms[has])
        self.conn.executemany(
            f"INSERT INTO {rtree} VALUES (?, ?, ?, ?, ?)",
            zip(
                (start + has).tolist(),
                b[:, 0].tolist(),
                b[:, 2].tolist(),
                b[:, 1].tolist(),
                b[:, 3].tolist(),
                strict=True,
            ),
        )
        self.conn.execute(trigger)
        return n

    def _next_fid(self, table: str) -> int:
        """The next AUTOINCREMENT fid: never reuses one, as SQLite itself would not."""
        seq = self.conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
        ).fetchone()
        top = self.conn.execute(f"SELECT max(fid) FROM {q(table)}").fetchone()[0]
        return max(seq[0] if seq else 0, top or 0) + 1

    def _executemany(self, table: Table, names: list[str], values: list[list]) -> None:
        sql = (
            f"INSERT INTO {q(table.name)} ({', '.join(names)}) "
            f"VALUES ({', '.join('?' * len(names))})"
        )
        done = self.conn.total_changes
        try:
            self.conn.executemany(sql, zip(*values, strict=True))
        except sqlite3.IntegrityError as err:
            # The rows before the refused one were inserted (one change each, no triggers on
            # the way: see _write_rows): the refused row's position names its identity.
            at = self.conn.total_changes - done
            keys = values[names.index(q(table.key))] if q(table.key) in names else []
            what = (
                f"identity {keys[at]} is in the store already" if 0 <= at < len(keys) else str(err)
            )
            raise StoreError(f"table {table.name}: {what} ({err})") from err

    def _get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self.conn.execute(
                f"SELECT value FROM {q(META_TABLE)} WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str) -> None:
        self._wrote = True
        self.conn.execute(f"INSERT OR REPLACE INTO {q(META_TABLE)} VALUES (?, ?)", (key, value))

    def _select(
        self, table: Table, columns: list[Column], *, bbox: BBox | None, where: str | None
    ) -> tuple[dict, Any]:
        sql, params = _select_sql(table, columns, bbox=bbox, where=where)
        try:
            with self._lock:
                rows = self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise StoreError(f"cannot read {table.name}: {err}") from err
        return _raw_columns(table, columns, rows)

    def iter_table(
        self,
        name: str,
        *,
        batch_size: int = 50_000,
        bbox: tuple[float, float, float, float] | None = None,
        columns: list[str] | None = None,
        where: str | None = None,
    ) -> Iterator[pd.DataFrame]:
        """As :meth:`Store.iter_table`; whole tables and filtered ones are read by GDAL.

        ``where`` is then GDAL's attribute filter, which the GeoPackage driver hands to SQLite.
        """
        if bbox is not None:
            yield from super().iter_table(
                name, batch_size=batch_size, bbox=bbox, columns=columns, where=where
            )
            return
        if batch_size < 1:
            raise StoreError(f"batch_size must be at least 1 (got {batch_size})")
        table, registered = self._read_plan(name, columns, bbox)
        # GDAL sets aside room for a whole batch: never ask for more rows than the table can hold.
        with self._lock:
            low, high = self.conn.execute(
                f"SELECT min(fid), max(fid) FROM {q(table.name)}"
            ).fetchone()
        span = 1 if low is None else high - low + 1
        yield from _gdal_batches(self.path, table, registered, where, min(batch_size, span))

    def _select_batches(
        self,
        table: Table,
        columns: list[Column],
        *,
        bbox: BBox | None,
        where: str | None,
        batch_size: int,
    ) -> Iterator[tuple[dict, Any]]:
        sql, params = _select_sql(table, columns, bbox=bbox, where=where)
        # A read-only connection of its own: the statement stays open between batches (holding
        # SQLite's shared lock, as one long read would), while this store's connection stays
        # free for other threads.
        try:
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=60,
                check_same_thread=False,
            )
        except sqlite3.Error as err:
            raise StoreError(f"cannot read {table.name}: {err}") from err
        try:
            cursor = conn.execute(sql, params)
            while rows := cursor.fetchmany(batch_size):
                yield _raw_columns(table, columns, rows)
        except sqlite3.Error as err:
            raise StoreError(f"cannot read {table.name}: {err}") from err
        finally:
            conn.close()

    def counts(self) -> dict[str, int]:
        out = {}
        for name in [*TABLES, LEDGER_TABLE]:
            out[name] = self.conn.execute(f"SELECT count(*) FROM {q(name)}").fetchone()[0]
        return out

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:  # pragma: no cover
            pass

    def _remove_created(self) -> bool:
        try:
            with self._transaction():  # the write lock: no other writer is half-way through
                if self.conn.execute(f"SELECT count(*) FROM {q(LEDGER_TABLE)}").fetchone()[0]:
                    return False
                _unlink_database(self.path)
        except (StoreError, sqlite3.Error):
            return False
        finally:
            self.close()
        return True


def _select_sql(
    table: Table, columns: list[Column], *, bbox: BBox | None, where: str | None
) -> tuple[str, list]:
    names = [q(c.name) for c in columns]
    if table.geometry_type:
        names.append(q(GEOMETRY_COLUMN))
    sql = f"SELECT {', '.join(names) or 'fid'} FROM {q(table.name)}"
    cond, params = [], []
    if bbox is not None:
        minx, miny, maxx, maxy = map(float, bbox)
        cond.append(
            f"fid IN (SELECT id FROM {q(f'rtree_{table.name}_{GEOMETRY_COLUMN}')} "
            "WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)"
        )
        params += [maxx, minx, maxy, miny]
    if where:
        cond.append(f"({where})")
    if cond:
        sql += " WHERE " + " AND ".join(cond)
    return sql + " ORDER BY fid", params


def _raw_columns(table: Table, columns: list[Column], rows: list[tuple]) -> tuple[dict, Any]:
    """Rows as ``{column: values}`` and the geometries (last field) as a shapely array."""
    n = len(columns) + (1 if table.geometry_type else 0)
    cols = list(zip(*rows, strict=True)) if rows else [()] * max(n, 1)
    raw = {c.name: list(cols[i]) for i, c in enumerate(columns)}
    geoms = from_gpkg_blobs(cols[-1]) if table.geometry_type else None
    return raw, geoms


def _unlink_database(path: Path) -> None:
    """Remove an SQLite file and the journal files beside it."""
    for p in (path, *(path.with_name(path.name + s) for s in ("-journal", "-wal", "-shm"))):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


# --- streaming reads through GDAL ----------------------------------------------------------------


def _gdal_batches(
    path: Path, table: Table, columns: list[Column], where: str | None, batch_size: int
) -> Iterator[pd.DataFrame]:
    """A table's rows in batches read by GDAL's Arrow interface, restored to their dtypes.

    Why GDAL and not :mod:`sqlite3` here: stepping a statement through :mod:`sqlite3` makes a
    Python object of every value (about 7 s per 50 000 rows of the registry's 52 columns); GDAL
    hands over Arrow columns, which become the same pandas columns with vectorised casts. Values
    whose kinds have no cast here (JSON lists and dicts) go through :func:`restore`, as
    :meth:`read_table` does.
    """
    kwargs = {
        "columns": [c.name for c in columns],
        "read_geometry": bool(table.geometry_type),
        "where": where,
        "batch_size": batch_size,
        "return_fids": True,
        "use_pyarrow": True,
    }
    last = -1
    try:
        with pyogrio.open_arrow(path, layer=table.name, **kwargs) as (meta, reader):
            for rb in reader:
                fids = rb.column(meta["fid_column"]).to_numpy()
                # Insertion order, as read_table gives it (a filter on an indexed column could
                # have SQLite walk the index instead; the export's filters never do).
                if len(fids) and (fids[0] <= last or (np.diff(fids) <= 0).any()):
                    raise StoreError(
                        f"cannot stream {table.name} in insertion order with the filter {where!r}"
                    )
                last = int(fids[-1]) if len(fids) else last
                frame = pd.DataFrame(
                    {c.name: _restore_arrow_column(rb.column(c.name), c) for c in columns}
                )
                if not columns:
                    frame = pd.DataFrame(index=pd.RangeIndex(rb.num_rows))
                if table.geometry_type:
                    wkb = rb.column(meta["geometry_name"] or "wkb_geometry")
                    geoms = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))
                    frame = gpd.GeoDataFrame(
                        frame, geometry=gpd.GeoSeries(geoms, crs=SRID, index=frame.index), crs=SRID
                    )
                yield frame
    except pyogrio.errors.DataSourceError as err:
        raise StoreError(f"cannot read {table.name}: {err}") from err


def _restore_arrow_column(arr: pa.Array, column: Column) -> pd.Series:
    """An Arrow column GDAL read from the store as the pandas column :func:`restore` gives."""
    dt, kind = column.dtype, column.kind
    if dt.startswith("arrow:"):
        return _arrow_dtype_from_json(arr, column)
    if dt.startswith("category"):
        plain = Column(
            column.name,
            kind,
            {"int": "Int64", "float": "float64", "bool": "boolean"}.get(kind, "str"),
        )
        cat = parse_category(dt)
        return _restore_arrow_column(arr, plain).astype(cat if cat is not None else "category")
    if kind == "text" and pa.types.is_string(arr.type) | pa.types.is_large_string(arr.type):
        return arr.to_pandas().astype(dt if dt in ("str", "string", "object") else "str")
    if kind == "int" and pa.types.is_integer(arr.type):
        values = pd.Series(pd.Int64Dtype().__from_arrow__(arr.cast(pa.int64())))
        try:
            return values.astype(dt)
        except (ValueError, TypeError):
            return values
    if kind == "float" and pa.types.is_floating(arr.type):
        return arr.to_pandas().astype(dt)
    if kind == "bool" and pa.types.is_boolean(arr.type):
        values = pd.Series(pd.BooleanDtype().__from_arrow__(arr))
        return values.astype("boolean" if dt == "boolean" or values.isna().any() else "bool")
    if kind == "datetime" and pa.types.is_timestamp(arr.type):
        values = pd.Series(arr.to_pandas())
        if values.dt.tz is not None:  # the store's text ends in Z: UTC
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        if ", " in dt:  # tz-aware: stored as UTC
            unit, tz = dt[len("datetime64[") : -1].split(", ")
            return values.astype(f"datetime64[{unit}]").dt.tz_localize("UTC").dt.tz_convert(tz)
        return values.astype(dt)
    return restore(pd.Series(arr.to_pylist(), dtype=object), column)


def _arrow_dtype_from_json(arr: pa.Array, column: Column) -> pd.Series:
    """A JSON text column stored for an Arrow dtype (the registry's ``number``), parsed by
    Arrow's JSON reader against that type instead of value by value."""
    schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(column.dtype[len("arrow:") :])))
    texts = arr.to_pylist()
    lines = "\n".join('{"v":' + ("null" if t is None else t) + "}" for t in texts)
    try:
        table = pj.read_json(
            io.BytesIO(lines.encode("utf-8")), parse_options=pj.ParseOptions(explicit_schema=schema)
        )
        values = table.column("v").combine_chunks() if len(texts) else pa.array([], schema[0].type)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return restore(pd.Series(texts, dtype=object), column)
    return pd.Series(pd.array(values, dtype=pd.ArrowDtype(values.type)))
