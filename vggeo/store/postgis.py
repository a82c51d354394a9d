"""The PostGIS backend: the same tables in a PostgreSQL schema, for teams and servers.

Rows are loaded with ``COPY … FROM STDIN`` in PostgreSQL's text format, built column by column
(geometry as hex EWKB with SRID 3006, the form PostGIS parses directly), as geopandas' ``to_postgis``
does. Every geometry column has a GiST index. A write holds ``SHARE ROW EXCLUSIVE`` on the ledger
for its whole transaction: writers queue behind each other, readers (the tile server) carry on and
see the old content until the commit.

If the writing process dies (SIGKILL, lost connection), the server rolls the open transaction
back; nothing of it was ever visible.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import shapely

from vggeo.errors import StoreError
from vggeo.store.base import (
    OWNER_SECRET_META,
    BBox,
    Store,
    python_values,
    quote_ident,
    quote_literal,
)
from vggeo.store.ledger import LEDGER_COLUMNS, LedgerEntry
from vggeo.store.pool import redact
from vggeo.store.schema import (
    COLUMNS_TABLE,
    GEOMETRY_COLUMN,
    LEDGER_TABLE,
    META_TABLE,
    SRID,
    TABLES,
    Column,
    Table,
)
from vggeo.store.secret import new_owner_secret

__all__ = ["PostGISStore", "NOTIFY_CHANNEL"]

SQL_TYPES = {
    "text": "text",
    "int": "bigint",
    "float": "double precision",
    "bool": "boolean",
    "datetime": "timestamp",
    "json": "jsonb",
}
_PG_GEOMETRY = {"MULTIPOLYGON": "MultiPolygon", "POINT": "Point"}
SCHEMA_VERSION = "1"
_COPY_CHUNK = 8 << 20
#: Every write NOTIFYs this channel with ``"<schema> <new data version>"``. It is sent inside the
#: write transaction, so PostgreSQL delivers it at the commit and never for a rollback: tile
#: servers LISTENing on it drop their caches as soon as the new data is visible.
NOTIFY_CHANNEL = "vggeo_data_version"


q = quote_ident


_SPECIAL = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(values: list, *, text: bool) -> list[str]:
    """One column in PostgreSQL's COPY text format: ``\\N`` for NULL, backslash escapes.

    Only text can hold a tab, newline or backslash; numbers, dates and hex never do, so they skip
    the escaping (most of the cost).
    """
    if not text:
        return ["\\N" if v is None else str(v) for v in values]
    present = [v for v in values if v is not None]
    joined = "".join(present)
    if not any(ch in joined for ch in "\\\t\n\r"):  # the usual case: nothing to escape
        return ["\\N" if v is None else v for v in values]
    return ["\\N" if v is None else v.translate(_SPECIAL) for v in values]


class PostGISStore(Store):
    """A store in a PostGIS database.

    Parameters
    ----------
    url
        ``postgresql://user@host:port/database``.
    create
        Create the PostGIS extension (if allowed), the schema and the tables when absent.
    schema
        The PostgreSQL schema holding the tables.
    """

    backend = "postgis"
    #: Always set: "public" unless another schema was asked for.
    schema: str
    _param = "%s"
    _sql_types = SQL_TYPES

    def __init__(self, url: str, *, create: bool = False, schema: str = "public") -> None:
        # lazy: psycopg is in the postgis extra
        import psycopg

        self.url = url
        self.schema = schema
        self.location = redact(url) + ("" if schema == "public" else f" (schema {schema})")
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as err:
            raise StoreError(f"cannot connect to {redact(url)}: {err}".strip()) from err
        self._columns_cache: dict[str, list[Column]] = {}
        self._in_tx = False
        try:
            self._prepare(create)
        except BaseException:
            self.conn.close()
            raise

    def _prepare(self, create: bool) -> None:
        # lazy: psycopg is in the postgis extra
        import psycopg

        c = self.conn
        has_schema = c.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
        ).fetchone()
        exists = (
            has_schema
            and c.execute("SELECT to_regclass(%s)", (f"{q(self.schema)}.{META_TABLE}",)).fetchone()[
                0
            ]
        )
        if not exists and not create:
            raise StoreError(
                f"{self.location} is not a vggeo store (no {META_TABLE} table); "
                "open it with create=True to create the tables"
            )
        if not exists:
            with c.transaction():
                c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"vggeo:{self.schema}",))
                had_extension = (
                    c.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone()
                    is not None
                )
                try:
                    c.execute("CREATE EXTENSION IF NOT EXISTS postgis")
                except psycopg.Error as err:
                    raise StoreError(
                        f"{self.location}: PostGIS is not available and cannot be "
                        f"created here: {err}".strip()
                    ) from err
                c.execute(f"CREATE SCHEMA IF NOT EXISTS {q(self.schema)}")
                self._set_search_path()
                if not c.execute(
                    "SELECT to_regclass(%s)", (f"{q(self.schema)}.{META_TABLE}",)
                ).fetchone()[0]:
                    self._create()
                    # What remove_if_unused may drop again: only what this object made.
                    self.created = True
                    self._made = (not had_extension, not has_schema)
        self._set_search_path()
        if not c.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone():
            raise StoreError(f"{self.location}: the PostGIS extension is not installed")

    def _set_search_path(self) -> None:
        ext_schema = self.conn.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'postgis'"
        ).fetchone()
        path = [self.schema] + (
            [ext_schema[0]] if ext_schema and ext_schema[0] != self.schema else []
        )
        self.conn.execute(f"SET search_path TO {', '.join(q(p) for p in path)}")

    def _create(self) -> None:
        c = self.conn
        c.execute(f"CREATE TABLE {q(META_TABLE)} (key text PRIMARY KEY, value text)")
        c.execute(
            f"CREATE TABLE {q(COLUMNS_TABLE)} (table_name text NOT NULL, "
            "column_name text NOT NULL, kind text NOT NULL, dtype text NOT NULL, "
            "position integer NOT NULL, PRIMARY KEY (table_name, column_name))"
        )
        cols = ", ".join(f"{q(n)} {SQL_TYPES[k]}" for n, k in LEDGER_COLUMNS if n != "seq")
        c.execute(
            f"CREATE TABLE {q(LEDGER_TABLE)} (fid bigint GENERATED ALWAYS AS IDENTITY "
            f"PRIMARY KEY, seq bigint NOT NULL UNIQUE, {cols})"
        )
        for table in TABLES.values():
            self._create_table(table)
        now = datetime.now(UTC).isoformat()
        with c.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {q(META_TABLE)} VALUES (%s, %s)",
                [
                    ("schema_version", SCHEMA_VERSION),
                    ("created_at", now),
                    ("data_version", "0"),
                    (OWNER_SECRET_META, new_owner_secret()),
                ],
            )

    def _create_table(self, table: Table) -> None:
        c = self.conn
        parts = ["fid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"]
        if table.geometry_type:
            parts.append(
                f"{q(GEOMETRY_COLUMN)} geometry({_PG_GEOMETRY[table.geometry_type]}, {SRID})"
            )
        for col in table.columns:
            null = " NOT NULL" if col.name == table.key else ""
            parts.append(f"{q(col.name)} {SQL_TYPES[col.kind]}{null}")
        c.execute(f"CREATE TABLE {q(table.name)} ({', '.join(parts)})")
        c.execute(f"COMMENT ON TABLE {q(table.name)} IS {quote_literal(table.description)}")
        c.execute(
            f"CREATE {'UNIQUE ' if table.unique else ''}INDEX ON {q(table.name)} ({q(table.key)})"
        )
        for extra in table.indexes:
            c.execute(f"CREATE INDEX ON {q(table.name)} ({q(extra)})")
        if table.geometry_type:
            c.execute(f"CREATE INDEX ON {q(table.name)} USING gist ({q(GEOMETRY_COLUMN)})")
        with c.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {q(COLUMNS_TABLE)} VALUES (%s, %s, %s, %s, %s)",
                [
                    (table.name, col.name, col.kind, col.dtype, i)
                    for i, col in enumerate(table.columns)
                ],
            )

    def _add_missing_tables(self) -> list[str]:
        have = {
            r[0]
            for r in self.conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", [self.schema]
            )
        }
        missing = [t for t in TABLES.values() if t.name not in have]
        for table in missing:
            self._create_table(table)
        return [t.name for t in missing]

    # -- primitives ---------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._in_tx:
            raise StoreError("a write is already in progress on this store object")
        self._in_tx = True
        self._columns_cache.clear()
        # lazy: psycopg is in the postgis extra
        import psycopg

        try:
            with self.conn.transaction():
                # writers queue here; readers are not blocked
                self.conn.execute(f"LOCK TABLE {q(LEDGER_TABLE)} IN SHARE ROW EXCLUSIVE MODE")
                yield
        except psycopg.Error as err:
            raise StoreError(f"{self.location}: {err}; nothing was written".strip()) from err
        finally:
            self._in_tx = False
            self._columns_cache.clear()

    def _read_ledger(self) -> list[LedgerEntry]:
        names = [n for n, _ in LEDGER_COLUMNS]
        rows = self.conn.execute(
            f"SELECT {', '.join(q(n) for n in names)} FROM {q(LEDGER_TABLE)} ORDER BY seq"
        ).fetchall()
        out = []
        for r in rows:
            row = dict(zip(names, r, strict=True))
            if row["counts"] is not None and not isinstance(row["counts"], str):
                row["counts"] = json.dumps(row["counts"])
            out.append(LedgerEntry.from_row(row))
        return out

    def _append_ledger(self, entry: LedgerEntry) -> None:
        row = entry.as_row()
        vals = []
        for n, k in LEDGER_COLUMNS:
            v = row[n]
            if k == "datetime" and v is not None:
                v = v.astimezone(UTC).replace(tzinfo=None)
            vals.append(v)
        names = ", ".join(q(n) for n, _ in LEDGER_COLUMNS)
        self.conn.execute(
            f"INSERT INTO {q(LEDGER_TABLE)} ({names}) VALUES ({', '.join(['%s'] * len(vals))})",
            vals,
        )

    def _delete_all(self, table: str) -> int:
        return self.conn.execute(f"DELETE FROM {q(table)}").rowcount

    def _delete_keys(self, table: str, column: str, keys: Iterable[Any]) -> int:
        keys = list(keys)
        if not keys:
            return 0
        kind = {c.name: c.kind for c in self._registered_columns(table)}.get(column, "text")
        cast = "bigint[]" if kind == "int" else "text[]"
        keys = [int(k) for k in keys] if kind == "int" else [str(k) for k in keys]
        return self.conn.execute(
            f"DELETE FROM {q(table)} WHERE {q(column)} = ANY(%s::{cast})", (keys,)
        ).rowcount

    def _delete_unreferenced(self, table: str, column: str, ref_table: str, ref_column: str) -> int:
        return self.conn.execute(
            f"DELETE FROM {q(table)} t WHERE NOT EXISTS (SELECT 1 FROM {q(ref_table)} r "
            f"WHERE r.{q(ref_column)} = t.{q(column)})"
        ).rowcount

    def _delete_true(self, table: str, column: str) -> int:
        return self.conn.execute(f"DELETE FROM {q(table)} WHERE {q(column)}").rowcount

    def _write_rows(
        self, table: Table, columns: list[Column], frame: pd.DataFrame, geoms: np.ndarray | None
    ) -> int:
        # lazy: psycopg is in the postgis extra
        import psycopg

        n = len(frame)
        cols = []
        for c in columns:
            vals = python_values(frame[c.name], c.kind)
            if c.kind == "bool":
                vals = [None if v is None else ("t" if v else "f") for v in vals]
            elif c.kind == "float":
                vals = [None if v is None else repr(v) for v in vals]
            cols.append(_copy_field(vals, text=c.kind in ("text", "json")))
        names = [q(c.name) for c in columns]
        if table.geometry_type:
            g = np.asarray(geoms if geoms is not None else [None] * n, dtype=object)
            # binary EWKB, hexed by Python: GEOS' own hex writer is several times slower
            ewkb = shapely.to_wkb(shapely.set_srid(g, SRID), include_srid=True)
            cols.append(["\\N" if v is None else v.hex() for v in ewkb.tolist()])
            names.append(q(GEOMETRY_COLUMN))
        try:
            with self.conn.cursor() as cur:
                with cur.copy(f"COPY {q(table.name)} ({', '.join(names)}) FROM STDIN") as cp:
                    buf: list[str] = []
                    size = 0
                    for row in zip(*cols, strict=True):
                        line = "\t".join(row) + "\n"
                        buf.append(line)
                        size += len(line)
                        if size > _COPY_CHUNK:
                            cp.write("".join(buf))
                            buf, size = [], 0
                    if buf:
                        cp.write("".join(buf))
        except psycopg.errors.UniqueViolation as err:
            raise StoreError(
                f"table {table.name}: {err.diag.message_detail or err} (an identity occurs twice?)"
            ) from err
        except psycopg.Error as err:
            raise StoreError(f"table {table.name}: cannot write rows: {err}") from err
        return n

    def _new_version(self) -> str:
        version = super()._new_version()
        self.conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, f"{self.schema} {version}"))
        return version

    def _get_meta(self, key: str) -> str | None:
        row = self.conn.execute(
            f"SELECT value FROM {q(META_TABLE)} WHERE key = %s", (key,)
        ).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            f"INSERT INTO {q(META_TABLE)} VALUES (%s, %s) ON CONFLICT (key) "
            "DO UPDATE SET value = EXCLUDED.value",
            (key, value),
        )

    def _select(
        self, table: Table, columns: list[Column], *, bbox: BBox | None, where: str | None
    ) -> tuple[dict, Any]:
        # lazy: psycopg is in the postgis extra
        import psycopg

        sql, params = _select_sql(table, columns, bbox=bbox, where=where)
        try:
            rows = self.conn.execute(sql, params).fetchall()
        except psycopg.Error as err:
            raise StoreError(f"cannot read {table.name}: {err}") from err
        return _raw_columns(table, columns, rows)

    def _select_batches(
        self,
        table: Table,
        columns: list[Column],
        *,
        bbox: BBox | None,
        where: str | None,
        batch_size: int,
    ) -> Iterator[tuple[dict, Any]]:
        # lazy: psycopg is in the postgis extra
        import psycopg

        sql, params = _select_sql(table, columns, bbox=bbox, where=where)
        # A server-side cursor in a read-only transaction: PostgreSQL keeps the result and sends
        # it batch by batch, and the transaction's snapshot makes the batches one reading.
        try:
            with self.conn.transaction(), self.conn.cursor(name=f"vggeo_{uuid.uuid4().hex}") as cur:
                self.conn.execute("SET TRANSACTION READ ONLY")
                cur.execute(sql, params)
                while rows := cur.fetchmany(batch_size):
                    yield _raw_columns(table, columns, rows)
        except psycopg.Error as err:
            raise StoreError(f"cannot read {table.name}: {err}") from err

    def counts(self) -> dict[str, int]:
        return {
            name: self.conn.execute(f"SELECT count(*) FROM {q(name)}").fetchone()[0]
            for name in [*TABLES, LEDGER_TABLE]
        }

    def close(self) -> None:
        self.conn.close()

    def _remove_created(self) -> bool:
        # lazy: psycopg is in the postgis extra
        import psycopg

        made_extension, made_schema = getattr(self, "_made", (False, False))
        c = self.conn
        try:
            with c.transaction():
                c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"vggeo:{self.schema}",))
                # Writers hold SHARE ROW EXCLUSIVE on the ledger: wait for any, then look.
                c.execute(f"LOCK TABLE {q(LEDGER_TABLE)} IN ACCESS EXCLUSIVE MODE")
                if c.execute(f"SELECT count(*) FROM {q(LEDGER_TABLE)}").fetchone()[0]:
                    return False
                names = [META_TABLE, COLUMNS_TABLE, LEDGER_TABLE, *TABLES]
                c.execute(f"DROP TABLE {', '.join(q(n) for n in names)}")
                for made, sql in (
                    (made_schema, f"DROP SCHEMA {q(self.schema)}"),
                    (made_extension, "DROP EXTENSION postgis"),
                ):
                    if made:
                        try:
                            with c.transaction():  # a savepoint: kept if something else uses it
                                c.execute(sql)
                        except psycopg.Error:
                            pass
        except psycopg.Error:
            return False
        finally:
            self.close()
        return True


def _select_sql(
    table: Table, columns: list[Column], *, bbox: BBox | None, where: str | None
) -> tuple[str, list]:
    names = [q(c.name) for c in columns]
    if table.geometry_type:
        names.append(f"ST_AsBinary({q(GEOMETRY_COLUMN)})")
    sql = f"SELECT {', '.join(names) or 'fid'} FROM {q(table.name)}"
    cond, params = [], []
    if bbox is not None:
        cond.append(f"{q(GEOMETRY_COLUMN)} && ST_MakeEnvelope(%s, %s, %s, %s, {SRID})")
        params += [float(v) for v in bbox]
    if where:
        cond.append(f"({where})")
    if cond:
        sql += " WHERE " + " AND ".join(cond)
    return sql + " ORDER BY fid", params


def _raw_columns(table: Table, columns: list[Column], rows: list[tuple]) -> tuple[dict, Any]:
    """Rows as ``{column: values}`` and the geometries (last field, WKB) as a shapely array."""
    n = len(columns) + (1 if table.geometry_type else 0)
    cols = list(zip(*rows, strict=True)) if rows else [()] * max(n, 1)
    raw = {c.name: list(cols[i]) for i, c in enumerate(columns)}
    geoms = None
    if table.geometry_type:
        wkb = np.asarray([None if b is None else bytes(b) for b in cols[-1]], dtype=object)
        geoms = np.asarray(shapely.from_wkb(wkb), dtype=object)
    return raw, geoms
