"""The store interface and the rules both backends share.

A :class:`Store` keeps the canonical tables (``docs/contracts.md``) in a GeoPackage
(:mod:`vggeo.store.gpkg`) or in PostGIS (:mod:`vggeo.store.postgis`). Everything that decides
*what* to write — the ledger checks, "delete, then add", subset replacement, the inskrivning
clean-up — lives here, once; the backends only know *how* to delete, insert and commit.

Applying a delivery (FORMATS.md §4)::

    ledger check (read-only)  → no-op if applied, LedgerError if it does not follow,
                                a warning if the interval since the last extract is long
    delivery.verify()         → IntegrityError before anything is written
    BEGIN (exclusive for writers)
      ledger check again, under the lock
      rebase (a base over a product the store holds, asked for): note every identity's
        content, then empty all of the product's tables
      per information set:
        base:   empty the set's tables
        change: delete the identities of the deletion file, from every table of the set,
                delete the identities present in the change file, per subset (below)
        insert the file's rows, per subset (below)
      inskrivning: remove persons who became protected, persons/organisations owning nothing
      rebase: compare with the noted content → added, removed, changed per table
      ledger row, new data_version
    COMMIT                    → or ROLLBACK on any error, Ctrl-C included

Per-subset change semantics
    Markreglerande bestämmelse (seed 004): "Förändringsfiler innehåller endast förändrade
    informationsdelmängder för respektive markreglerande bestämmelse" and "ta bort – lägg till"
    applies "när en informationsdelmängd har förändrats". So a change replaces, per provision, only
    the subsets its member carried (the reader's ``subsets`` frame; :data:`SUBSET_TABLES`):
    Basinformation → ``provisions`` and ``decisions`` (attributes, geometry, decisions),
    Berörkrets → ``affected_properties``. A Berörkrets-only member keeps the stored Basinformation
    and geometry; the identity-only ``provisions`` row the reader gives for it is not written. The
    same rule holds in a base extract (a member without Basinformation writes no ``provisions``
    row; its feature type, all such a row holds, is then not stored). A subset also counts as
    carried when the file holds its data (a child row, or a member row with any value beyond
    :data:`MEMBER_COLUMNS`), so nothing delivered is dropped. The deletion file removes the
    provision with all its information, every subset.

    Inskrivning (seed 003): each information set is its own file, and "ta bort objekten inklusive
    all tillhörande information för de objekt som finns i förändringsfilen; lägga till all
    information som finns i förändringsfilen". The subsets of Inskrivet ägande (Ägare – Aktuella
    or – Alla, Förvärv) are not delivered separately: a record is the whole exchange object
    (Inskrivningsfastighet) within its set. So the unit of replacement is the set: the reader
    names every exchange object a set's files held (``subsets``: ``object_id``, the set's name),
    and each is replaced in all of that set's tables — also one now without any rows (a property
    whose last mortgage was cancelled loses it). Other sets of the property are untouched.
    Persons and organisations are replaced by ``owner_key`` and otherwise follow the owner rules.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import uuid
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from tqdm.auto import tqdm

from vggeo.crs import transform_geoseries
from vggeo.errors import DeliveryError, IntegrityError, LedgerWarning, SchemaError, StoreError
from vggeo.lm.package import Delivery
from vggeo.store import ledger as _ledger
from vggeo.store.ledger import LedgerEntry
from vggeo.store.pool import new_async_pool, open_pool
from vggeo.store.schema import (
    COLUMNS_TABLE,
    DELIVERY_TABLES,
    GEOMETRY_COLUMN,
    LEDGER_TABLE,
    MEMBER_COLUMNS,
    PERSONAL_COLUMNS,
    SET_TABLES,
    SRID,
    SUBSET_TABLES,
    TABLE_ALIASES,
    TABLES,
    Column,
    Table,
    dtype_name,
    kind_of,
    merge_categories,
    parse_category,
)
from vggeo.store.secret import OWNER_SECRET_ENV, new_owner_secret

#: The vggeo_meta key of the secret owner keys are an HMAC under (vggeo.lm.inskrivning).
OWNER_SECRET_META = "owner_key_secret"

#: A rectangle (minx, miny, maxx, maxy) in the store's CRS.
BBox = tuple[float, float, float, float]

__all__ = ["Store", "ApplyResult", "DeliveryLike", "MemoryDelivery", "PRODUCTS"]

PRODUCTS = ("bestammelse", "inskrivning")
#: Rows converted and written per batch.
WRITE_CHUNK = 50_000


class DeliveryLike(Protocol):
    """What :meth:`Store.apply` needs of a delivery (``vggeo.lm.Delivery`` has it).

    Metadata a delivery may lack is optional here: :meth:`Store.apply` refuses a delivery
    without a product, extract id or extract type before anything is written.
    """

    @property
    def product(self) -> str | None: ...
    @property
    def extract_id(self) -> str | None: ...
    @property
    def previous_extract_id(self) -> str | None: ...
    @property
    def extract_type(self) -> str | None: ...
    @property
    def produced_at(self) -> datetime | None: ...
    @property
    def crs(self) -> int | None: ...
    @property
    def sets(self) -> list[str]: ...
    @property
    def checksum(self) -> str: ...

    def verify(self) -> Any: ...
    def deletions(self, set_name: str) -> set[str]: ...
    def read(self, set_name: str, *, personal_data: bool = False) -> Mapping[str, pd.DataFrame]: ...


class _OwnerKeyed:
    """A delivery whose inskrivning tables are keyed with the store's owner-key secret.

    The reader cannot know the store; the store hands its secret to the reader through this
    wrapper (only readers of LM deliveries take it: a :class:`MemoryDelivery` holds its keys
    already). Every other attribute is the delivery's own.
    """

    def __init__(self, delivery: Any, secret: Any) -> None:
        self._delivery = delivery
        self._secret = secret

    def __getattr__(self, name: str) -> Any:
        return getattr(self._delivery, name)

    def read(self, set_name: str, **options: Any) -> Mapping[str, pd.DataFrame]:
        if isinstance(self._delivery, Delivery):
            options.setdefault("owner_secret", self._secret())
        return self._delivery.read(set_name, **options)


@dataclass
class MemoryDelivery:
    """A delivery already parsed into tables: the form :meth:`Store.apply` works on.

    Useful on its own to apply programmatically built changes, and how the store's rules are
    tested independently of the XML readers.

    Parameters
    ----------
    tables
        ``{set_name: {table_name: DataFrame | GeoDataFrame}}`` in the contract's shapes.
    removed
        ``{set_name: identities}`` from the deletion files (change extracts).
    """

    product: str
    extract_id: str
    extract_type: str
    produced_at: datetime
    tables: dict[str, dict[str, pd.DataFrame]]
    removed: dict[str, set[str]] = field(default_factory=dict)
    previous_extract_id: str | None = None
    crs: int = SRID
    checksum: str = ""
    source: str | None = None

    def __post_init__(self) -> None:
        if not self.checksum:
            h = hashlib.sha256(f"{self.product}|{self.extract_id}|{self.extract_type}".encode())
            for s in sorted(self.tables):
                for t in sorted(self.tables[s]):
                    frame = self.tables[s][t]
                    h.update(f"{s}/{t}/{len(frame)}".encode())
                    h.update(
                        pd.util.hash_pandas_object(
                            pd.DataFrame(frame).drop(columns="geometry", errors="ignore"),
                            index=False,
                        )
                        .to_numpy()
                        .tobytes()
                    )
            for s in sorted(self.removed):
                h.update(f"{s}:{','.join(sorted(self.removed[s]))}".encode())
            self.checksum = h.hexdigest()

    @property
    def sets(self) -> list[str]:
        return list(dict.fromkeys([*self.tables, *self.removed]))

    def verify(self) -> None:
        """Nothing to check: the tables are already parsed."""

    def deletions(self, set_name: str) -> set[str]:
        return set(self.removed.get(set_name, set()))

    def read(self, set_name: str, *, personal_data: bool = False) -> dict[str, pd.DataFrame]:
        return dict(self.tables.get(set_name, {}))


@dataclass
class ApplyResult:
    """What :meth:`Store.apply` did.

    ``counts`` is ``{set: {table: {"deleted": n, "inserted": n}}}``; ``applied`` is False for a
    delivery that was applied before (then ``message`` says when). After a rebase, ``counts``
    has an entry ``"replaced"`` (the rows of the product's earlier data, all deleted) and
    ``rebase`` is ``{table: {"added": n, "removed": n, "changed": n}}`` counted by identity:
    identities only in the new base, only in the earlier data, and in both with other content.
    ``warnings`` are the lines the ledger check gave (also issued as :class:`LedgerWarning`).
    """

    extract_id: str
    product: str
    extract_type: str
    applied: bool
    message: str
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    data_version: str | None = None
    rebase: dict[str, dict[str, int]] | None = None
    warnings: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, tuple[int, int]]:
        """``{set: (deleted, inserted)}`` summed over the set's tables."""
        return {
            s: (sum(c["deleted"] for c in t.values()), sum(c["inserted"] for c in t.values()))
            for s, t in self.counts.items()
        }


# --- column conversion shared by the backends -----------------------------------------------


def coerce(series: pd.Series, column: Column, *, table: str) -> pd.Series:
    """Bring an incoming column to the kind the store already holds for it."""
    k = column.kind
    try:
        if k == "int":
            if kind_of(series) == "int":
                return series
            num = pd.to_numeric(series.astype("object").where(series.notna(), None))
            if (num.dropna() % 1 != 0).any():
                raise ValueError("non-integral values")
            return num.astype("Int64")
        if k == "float":
            return pd.to_numeric(series.astype("object").where(series.notna(), None)).astype(
                "float64"
            )
        if k == "bool":
            return series.astype("boolean")
        if k == "datetime":
            return series if kind_of(series) == "datetime" else pd.to_datetime(series)
        if k == "text":
            return series if kind_of(series) == "text" else series.astype("str")
    except (ValueError, TypeError) as err:
        raise SchemaError(
            f"cannot store values as {k}: {err}", file=table, field=series.name
        ) from err
    return series


def _categories(series: pd.Series, column: Column, *, table: str) -> pd.CategoricalDtype:
    """The distinct values of an incoming column that is not categorical, as categories of the
    registered categories' type (a value that is not of that type is refused)."""
    values = pd.Index(series.dropna().unique())
    registered = parse_category(column.dtype)
    if registered is not None and len(values):
        try:
            values = values.astype(registered.categories.dtype)
        except (ValueError, TypeError) as err:
            raise SchemaError(
                f"cannot store values among the categories of {column.name}: {err}",
                file=table,
                field=series.name,
            ) from err
    return pd.CategoricalDtype(values)


def restore(series: pd.Series, column: Column) -> pd.Series:
    """Give a column read from a database the pandas dtype it was written with."""
    dt = column.dtype
    if dt.startswith("arrow:"):
        return _restore_arrow(series, column)
    if column.kind == "json":
        return series.map(lambda v: json.loads(v) if isinstance(v, str) else v).astype(object)
    if column.kind == "datetime":
        if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
            s = series.astype(object).where(series.notna(), None)
            out = pd.to_datetime(s, format="ISO8601", utc=True)  # text ends in Z: UTC
        else:
            out = pd.to_datetime(series)
        if getattr(out.dtype, "tz", None) is not None:
            out = out.dt.tz_convert("UTC").dt.tz_localize(None)
        if ", " in dt:  # tz-aware: stored as UTC
            unit, tz = dt[len("datetime64[") : -1].split(", ")
            return out.astype(f"datetime64[{unit}]").dt.tz_localize("UTC").dt.tz_convert(tz)
        return out.astype(dt)
    if dt.startswith("category"):
        plain = Column(
            column.name,
            column.kind,
            {"int": "Int64", "float": "float64", "bool": "boolean"}.get(column.kind, "str"),
        )
        values = restore(series, plain)
        cat = parse_category(dt)
        return values.astype(cat if cat is not None else "category")
    if column.kind == "bool":
        s = series.astype(object).where(series.notna(), None)
        s = s.map(lambda v: None if v is None else bool(v))
        return s.astype("boolean" if dt == "boolean" or s.isna().any() else "bool")
    if column.kind == "int":
        s = pd.array(series.astype(object).where(series.notna(), None), dtype="Int64")
        try:
            return pd.Series(s, index=series.index, name=series.name).astype(dt)
        except (ValueError, TypeError):
            return pd.Series(s, index=series.index, name=series.name)
    if column.kind == "float":
        out = pd.to_numeric(series.astype(object).where(series.notna(), None))
        return out.astype(dt)
    try:
        return series.astype(dt if dt in ("str", "string", "object") else "str")
    except TypeError:
        return series.astype("str")


def _restore_arrow(series: pd.Series, column: Column) -> pd.Series:
    schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(column.dtype[len("arrow:") :])))
    values = series.tolist()
    if column.kind == "json":
        values = [json.loads(v) if isinstance(v, str) else v for v in values]
    values = [None if _is_missing(v) else v for v in values]
    arr = pa.array(values, type=schema.field("v").type)
    return pd.Series(pd.array(arr, dtype=pd.ArrowDtype(arr.type)), index=series.index)


def python_values(series: pd.Series, kind: str) -> list:
    """A column as a list of Python values for a DB-API driver (None for missing)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object).where(series.notna(), None)
        if kind == "int":
            series = pd.Series(pd.array(series, dtype="Int64"))
    mask = series.isna().to_numpy() if kind != "json" else series.map(_is_missing).to_numpy()
    if kind == "int":
        values = series.to_numpy(dtype="int64", na_value=0).tolist()
    elif kind == "float":
        values = series.to_numpy(dtype="float64", na_value=np.nan).tolist()
    elif kind == "bool":
        values = series.to_numpy(dtype="object", na_value=None).tolist()
        values = [None if v is None else bool(v) for v in values]
    elif kind == "datetime":
        values = iso_datetimes(series)
    elif kind == "json":
        values = [
            None if m else json.dumps(_jsonable(v)) for v, m in zip(series, mask, strict=True)
        ]
    else:
        values = series.astype(object).to_numpy().tolist()
        values = [v if isinstance(v, str) else str(v) for v in values]
    if mask.any():
        for i in np.flatnonzero(mask):
            values[i] = None
    return values


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and np.isnan(v):
        return True
    return v is pd.NA or v is pd.NaT


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if _is_missing(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


#: The precisions ISO text keeps as they are; any other becomes microseconds.
_ISO_UNITS: dict[str, Literal["s", "ms", "us"]] = {"s": "s", "ms": "ms", "us": "us"}


def iso_datetimes(series: pd.Series) -> list:
    """ISO 8601 text (UTC, ``Z``) at the column's own precision, vectorised."""
    s = series
    if getattr(s.dtype, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    arr = s.to_numpy(dtype="datetime64[us]")
    unit = _ISO_UNITS.get(np.datetime_data(s.dtype)[0] if s.dtype.kind == "M" else "us", "us")
    text = np.datetime_as_string(arr.astype(f"datetime64[{unit}]"), unit=unit)
    return [None if t == "NaT" else t + "Z" for t in text.tolist()]


# --- the store ------------------------------------------------------------------------------


class Store(ABC):
    """A GeoPackage or PostGIS store of the canonical tables. Open one with :func:`open_store`.

    All writes go through :meth:`apply` (deliveries) and :meth:`load_residences`; each is one
    transaction. A store is a context manager; closing it releases its connection.
    """

    #: "gpkg" or "postgis"
    backend: str = ""
    location: str = ""
    #: Whether opening this object created the store (see :meth:`remove_if_unused`).
    created: bool = False
    #: The open connection: ``sqlite3.Connection`` or ``psycopg.Connection`` (both ``execute``).
    conn: Any
    #: Whether a write transaction is open (the column registry is cached only inside one).
    _in_tx: bool
    #: table → its registered columns, valid inside the open write transaction.
    _columns_cache: dict[str, list[Column]]

    # -- backend primitives ---------------------------------------------------------------------
    @abstractmethod
    def _transaction(self) -> Any:
        """Context manager: one write transaction, exclusive among writers; rollback on error."""

    @abstractmethod
    def _read_ledger(self) -> list[LedgerEntry]: ...

    @abstractmethod
    def _append_ledger(self, entry: LedgerEntry) -> None: ...

    @abstractmethod
    def _delete_all(self, table: str) -> int: ...

    @abstractmethod
    def _delete_keys(self, table: str, column: str, keys: Iterable[Any]) -> int: ...

    @abstractmethod
    def _delete_unreferenced(self, table: str, column: str, ref_table: str, ref_column: str) -> int:
        """Delete rows of ``table`` whose ``column`` no row of ``ref_table.ref_column`` holds."""

    @abstractmethod
    def _delete_true(self, table: str, column: str) -> int: ...

    @abstractmethod
    def _write_rows(
        self, table: Table, columns: list[Column], frame: pd.DataFrame, geoms: np.ndarray | None
    ) -> int: ...

    @abstractmethod
    def _add_missing_tables(self) -> list[str]:
        """Create the contract's tables a store made by an older vggeo lacks (in the open write
        transaction); return their names."""

    @abstractmethod
    def _get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    def _set_meta(self, key: str, value: str) -> None: ...

    # --- the column registry (vggeo_columns), the same SQL on both backends -------------------
    #: The DB-API placeholder of the backend ("?" for sqlite3, "%s" for psycopg).
    _param: str = "?"
    #: Column kind → the backend's SQL type.
    _sql_types: dict[str, str] = {}

    def _mark_written(self) -> None:  # noqa: B027 - an optional hook, deliberately empty
        """Hook for a backend that tracks whether a transaction wrote anything (GeoPackage)."""

    def _add_column(self, table: str, column: Column) -> None:
        self._mark_written()
        pos = len(self._registered_columns(table))
        self.conn.execute(
            f"ALTER TABLE {quote_ident(table)} ADD COLUMN "
            f"{quote_ident(column.name)} {self._sql_types[column.kind]}"
        )
        self.conn.execute(
            f"INSERT INTO {quote_ident(COLUMNS_TABLE)} VALUES ({', '.join([self._param] * 5)})",
            (table, column.name, column.kind, column.dtype, pos),
        )
        self._columns_cache.pop(table, None)

    def _set_column_dtype(self, table: str, column: Column) -> None:
        p = self._param
        self.conn.execute(
            f"UPDATE {quote_ident(COLUMNS_TABLE)} SET dtype = {p} "
            f"WHERE table_name = {p} AND column_name = {p}",
            (column.dtype, table, column.name),
        )
        self._columns_cache.pop(table, None)

    def _registered_columns(self, table: str) -> list[Column]:
        # Outside a transaction another process may have added columns: always re-read then.
        if not self._in_tx or table not in self._columns_cache:
            rows = self.conn.execute(
                f"SELECT column_name, kind, dtype FROM {quote_ident(COLUMNS_TABLE)} "
                f"WHERE table_name = {self._param} ORDER BY position",
                (table,),
            ).fetchall()
            self._columns_cache[table] = [Column(*r) for r in rows]
        return list(self._columns_cache[table])

    @abstractmethod
    def _select(
        self, table: Table, columns: list[Column], *, bbox: BBox | None, where: str | None
    ) -> tuple[dict, Any]:
        """Raw column values ``{name: list|array}`` and the geometries (shapely array or None)."""

    @abstractmethod
    def close(self) -> None: ...

    def remove_if_unused(self) -> bool:
        """Undo the creation of a store this object created, if nothing was applied to it since.

        For a command that created a store for a first delivery and then refused that delivery:
        the user is left with no store rather than an empty one. Closes the store. Returns
        whether anything was removed; never removes a store that holds a ledger entry or that
        existed before this object opened it.
        """
        if not self.created:
            return False
        return self._remove_created()

    def _remove_created(self) -> bool:
        return False

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Row count of every content table and of the ledger."""

    # -- public API -----------------------------------------------------------------------------
    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location}>"

    @property
    def data_version(self) -> str:
        """An opaque token that changes whenever the content changes (tile cache key)."""
        return self._get_meta("data_version") or "0"

    # -- read side for tiles and the server (vggeo.store.open, vggeo.tiles.source_for) ------
    #: A store can be written to; the read-only sources of :mod:`vggeo.store.readonly` cannot.
    read_only = False
    #: PostGIS: the database schema of the tables; None for a GeoPackage.
    schema: str | None = None

    def pool(self, max_size: int = 8, *, settings: str = "") -> Any:
        """PostGIS only: a new connection pool to the store's database (``psycopg_pool``,
        autocommit), for readers serving many requests at once; the caller closes it."""
        return open_pool(self._database_url(), max_size, settings=settings)

    def async_pool(self, max_size: int = 8, *, settings: str = "") -> Any:
        """PostGIS only: a new, unopened asyncio pool to the store's database (see
        :func:`vggeo.store.pool.new_async_pool`); the caller opens and closes it in its loop."""
        return new_async_pool(self._database_url(), max_size, settings=settings)

    def _database_url(self) -> str:
        url: str | None = getattr(self, "url", None)
        if url is None:
            raise StoreError(f"{self.location} is not a database: it has no connection pool")
        return url

    def ledger(self) -> pd.DataFrame:
        """Every applied delivery and residences load, oldest first."""
        entries = self._read_ledger()
        rows = [e.as_row() for e in entries]
        cols = [c for c, _ in _ledger.LEDGER_COLUMNS]
        frame = pd.DataFrame(rows, columns=cols)
        # the counts per set and table; the unmapped paths accepted (kept in the same JSON) apart
        frame["counts"] = pd.Series([e.counts for e in entries], dtype=object)
        frame["accepted_unmapped"] = pd.Series([e.accepted_unmapped for e in entries], dtype=object)
        for c in ("produced_at", "applied_at"):
            frame[c] = pd.to_datetime(frame[c], utc=True)
        return frame.sort_values("seq", ignore_index=True)

    def last_extracts(self) -> dict[str, LedgerEntry]:
        """The last applied base/change extract per product."""
        entries = self._read_ledger()
        out = {}
        for product in sorted({e.product for e in entries}):
            last = _ledger.last_extract(entries, product)
            if last is not None:
                out[product] = last
        return out

    def columns(self, name: str) -> list[str]:
        """Column names of a content table as :meth:`read_table` returns them."""
        table = _table(name)
        cols = [c.name for c in self._registered_columns(table.name)]
        return cols + (["geometry"] if table.geometry_type else [])

    def column_kinds(self, name: str) -> dict[str, str]:
        """Attribute column name → its kind (``text``, ``int`` …, see :mod:`vggeo.store.schema`)."""
        return {c.name: c.kind for c in self._registered_columns(_table(name).name)}

    def read_table(
        self,
        name: str,
        *,
        bbox: BBox | None = None,
        columns: list[str] | None = None,
        where: str | None = None,
    ) -> pd.DataFrame:
        """Read a table as a (Geo)DataFrame with the dtypes it was written with.

        Parameters
        ----------
        name
            A table name from the contract (``provisions``, ``residences`` …, ``vggeo_ledger``).
        bbox
            ``(min_easting, min_northing, max_easting, max_northing)`` in EPSG:3006; rows whose
            geometry's bounding box intersects it (spatial index), geometry tables only.
        columns
            Attribute columns to return (geometry always comes with geometry tables).
        where
            An SQL boolean expression over the table's columns, passed to the database as is
            (trusted input: do not build it from user text).

        Returns
        -------
        GeoDataFrame (EPSG:3006, column ``geometry``) or DataFrame, ordered by insertion.
        """
        if name == LEDGER_TABLE:
            return self.ledger()
        table, registered = self._read_plan(name, columns, bbox)
        raw, geoms = self._select(table, registered, bbox=bbox, where=where)
        return _restored_frame(table, registered, raw, geoms)

    def iter_table(
        self,
        name: str,
        *,
        batch_size: int = 50_000,
        bbox: BBox | None = None,
        columns: list[str] | None = None,
        where: str | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Read a table in batches of at most ``batch_size`` rows, in insertion order.

        The same frames as :meth:`read_table` (same dtypes, categories included), cut into
        pieces: for exports of national tables that must not hold the whole table in memory.
        One query is streamed from the database (an SQLite statement stepped batch by batch, a
        PostgreSQL server-side cursor), so the batches together are one consistent reading.
        Parameters as :meth:`read_table`; the table is read up to its end or until the caller
        stops iterating.
        """
        if batch_size < 1:
            raise StoreError(f"batch_size must be at least 1 (got {batch_size})")
        table, registered = self._read_plan(name, columns, bbox)
        for raw, geoms in self._select_batches(
            table, registered, bbox=bbox, where=where, batch_size=batch_size
        ):
            yield _restored_frame(table, registered, raw, geoms)

    def _read_plan(
        self, name: str, columns: list[str] | None, bbox: tuple | None
    ) -> tuple[Table, list[Column]]:
        """The table and the registered columns a read returns; bad requests refused."""
        table = _table(name)
        registered = self._registered_columns(table.name)
        if columns is not None:
            known = {c.name: c for c in registered}
            unknown = [c for c in columns if c not in known and c != "geometry"]
            if unknown:
                raise StoreError(
                    f"table {name} has no column(s) {', '.join(unknown)}; it has {', '.join(known)}"
                )
            registered = [known[c] for c in columns if c != "geometry"]
        if bbox is not None and not table.geometry_type:
            raise StoreError(f"table {name} has no geometry; bbox cannot be used")
        return table, registered

    def _select_batches(
        self,
        table: Table,
        columns: list[Column],
        *,
        bbox: BBox | None,
        where: str | None,
        batch_size: int,
    ) -> Iterator[tuple[dict, Any]]:
        """Raw batches as :meth:`_select` returns them; backends stream, this default does not."""
        yield self._select(table, columns, bbox=bbox, where=where)

    def apply(
        self,
        delivery: DeliveryLike,
        *,
        progress: bool = False,
        personal_data: bool = False,
        rebase: bool = False,
        max_interval: timedelta | None = _ledger.DEFAULT_MAX_INTERVAL,
    ) -> ApplyResult:
        """Apply a base or change delivery in one transaction, and record it in the ledger.

        Parameters
        ----------
        delivery
            A ``vggeo.lm.Delivery`` (from ``open_delivery``) or a :class:`MemoryDelivery`.
        progress
            Show a progress bar on stderr.
        personal_data
            Keep personnummer, names and addresses (only if the delivery carries them). Without
            it the store never writes them.
        rebase
            Let a base extract replace the data of a product the store already holds: the way
            back from a missed change extract. Everything of that product (every one of its
            tables, also those of sets the new base lacks) is replaced in the one transaction,
            and the result reports what was added, removed and changed. Without it such a base
            is refused. No effect on change extracts or on a product the store does not hold.
        max_interval
            Warn (:class:`~vggeo.errors.LedgerWarning`, and in ``ApplyResult.warnings``) when a
            change extract was produced longer than this after the last applied extract of its
            product: one in between may be missing. None turns the warning off.

        Returns
        -------
        ApplyResult
            Counts per set and table; ``applied=False`` when the extract was applied before.

        Raises
        ------
        LedgerError
            A change without its base, an extract produced no later than the last applied one,
            a base over a product the store holds without ``rebase``, or a change whose metadata
            names another previous extract than the last applied. Nothing is written.
        IntegrityError, ParseError, UnsafeInputError
            A delivery that fails its own metadata or cannot be read. Nothing is written.
        """
        d = delivery
        for attr in ("product", "extract_id", "extract_type"):
            if getattr(d, attr, None) in (None, ""):
                raise DeliveryError(
                    f"the delivery's metadata gives no {attr.replace('_', ' ')}; "
                    "it cannot be recorded in the ledger",
                    file=getattr(d, "path", None),
                )
        product = str(d.product)
        if product not in PRODUCTS:
            raise StoreError(
                f"extract {d.extract_id}: unknown product {product!r}; "
                f"expected one of {', '.join(PRODUCTS)}"
            )
        entries = self._read_ledger()
        earlier = _ledger.check_order(entries, d, rebase=rebase)
        if earlier is not None:
            return self._already(d, earlier)
        notes = [w for w in [_ledger.interval_warning(entries, d, max_interval)] if w]
        for w in notes:
            warnings.warn(w, LedgerWarning, stacklevel=2)
        if product == "inskrivning":
            d = _OwnerKeyed(d, self._owner_secret)
        d.verify()  # before anything is written

        sets = list(d.sets)
        bar = tqdm(
            total=len(sets) + 1,
            desc=f"{d.extract_type} {d.extract_id}"[:40],
            unit="set",
            disable=not progress,
            file=sys.stderr,
            leave=False,
        )
        counts: dict[str, dict[str, dict[str, int]]] = {}
        report: dict[str, dict[str, int]] | None = None
        with bar, self._transaction():
            entries = self._read_ledger()
            earlier = _ledger.check_order(entries, d, rebase=rebase)  # again, under the lock
            if earlier is not None:
                return self._already(d, earlier)
            # A store made before a table was added to the contract (fang, overlatelse) gets it
            # here, in this delivery's transaction: undone with it if the delivery fails.
            self._add_missing_tables()
            replaces = _ledger.last_extract(entries, product) if d.extract_type == "base" else None
            if replaces is not None:  # a rebase (check_order let it through)
                own = _product_tables(product)
                before = {t: self._identity_digests(t) for t in own}
                counts["replaced"] = {
                    t: {"deleted": self._delete_all(t), "inserted": 0} for t in own
                }
            for set_name in sets:
                bar.set_postfix_str(set_name)
                counts[set_name] = self._apply_set(d, set_name, personal_data=personal_data)
                bar.update()
            if product == "inskrivning":
                counts["cleanup"] = self._cleanup_owners()
            recorded: dict[str, Any] = dict(counts)
            if replaces is not None:
                report = _compare_digests(before, {t: self._identity_digests(t) for t in own})
                recorded["rebase"] = {"replaces": replaces.extract_id, "tables": report}
            bar.update()
            version = self._new_version()
            entries = self._read_ledger()
            self._append_ledger(
                LedgerEntry(
                    seq=max((e.seq for e in entries), default=0) + 1,
                    extract_id=str(d.extract_id),
                    product=product,
                    extract_type=str(d.extract_type),
                    previous_extract_id=_str_or_none(getattr(d, "previous_extract_id", None)),
                    produced_at=_ledger.as_utc(d.produced_at),
                    applied_at=datetime.now(UTC),
                    checksum=_str_or_none(d.checksum),
                    counts=recorded,
                    source=_str_or_none(getattr(d, "source", None) or getattr(d, "path", None)),
                    personal_data=personal_data,
                    accepted_unmapped=dict(getattr(d, "accepted_unmapped", None) or {}),
                )
            )
        message = f"applied {d.extract_type} extract {d.extract_id} of {product}"
        if replaces is not None:
            message = (
                f"rebased {product} on base extract {d.extract_id}, replacing the data up "
                f"to {replaces.extract_type} extract {replaces.extract_id}"
            )
        return ApplyResult(
            str(d.extract_id),
            product,
            str(d.extract_type),
            True,
            message,
            counts,
            version,
            rebase=report,
            warnings=notes,
        )

    def load_residences(
        self, gdf: pd.DataFrame, *, mode: str = "replace", progress: bool = False
    ) -> ApplyResult:
        """Load the residential registry: ``replace`` everything, or ``upsert`` by ``id``.

        One transaction; recorded in the ledger as product ``residences``.
        """
        if mode not in ("replace", "upsert"):
            raise StoreError(f"unknown mode {mode!r}; expected 'replace' or 'upsert'")
        if "id" not in gdf.columns:
            raise SchemaError("residences need an 'id' column", field="id")
        ids = gdf["id"]
        if ids.isna().any():
            raise SchemaError(
                "residences with a missing id",
                field="id",
                row=int(np.flatnonzero(ids.isna().to_numpy())[0]) + 1,
            )
        if ids.duplicated().any():
            dup = ids[ids.duplicated()].iloc[0]
            raise SchemaError("residence id occurs more than once", field="id", value=dup)

        bar = tqdm(
            total=len(gdf),
            desc=f"residences ({mode})",
            unit="row",
            unit_scale=True,
            disable=not progress,
            file=sys.stderr,
            leave=False,
        )
        with bar, self._transaction():
            deleted = (
                self._delete_all("residences")
                if mode == "replace"
                else self._delete_keys("residences", "id", ids.tolist())
            )
            inserted = self._insert("residences", gdf, bar=bar)
            counts = {"residences": {"residences": {"deleted": deleted, "inserted": inserted}}}
            version = self._new_version()
            entries = self._read_ledger()
            now = datetime.now(UTC)
            self._append_ledger(
                LedgerEntry(
                    seq=max((e.seq for e in entries), default=0) + 1,
                    extract_id=f"residences-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
                    product="residences",
                    extract_type=mode,
                    previous_extract_id=None,
                    produced_at=None,
                    applied_at=now,
                    checksum=None,
                    counts=counts,
                )
            )
        return ApplyResult(
            "residences",
            "residences",
            mode,
            True,
            f"residences: {mode}, {deleted} deleted, {inserted} inserted",
            counts,
            version,
        )

    # -- shared rules ---------------------------------------------------------------------------
    def _already(self, d: DeliveryLike, earlier: LedgerEntry) -> ApplyResult:
        return ApplyResult(
            str(d.extract_id),
            str(d.product),
            str(d.extract_type),
            False,
            f"{d.extract_type} extract {d.extract_id} of {d.product} was already applied on "
            f"{earlier.applied_at.isoformat(timespec='seconds')}; nothing to do",
            {},
            self.data_version,
        )

    def _apply_set(
        self, d: DeliveryLike, set_name: str, *, personal_data: bool
    ) -> dict[str, dict[str, int]]:
        frames: dict[str, pd.DataFrame] = {}
        for name, frame in dict(d.read(set_name, personal_data=personal_data)).items():
            name = TABLE_ALIASES.get(name, name)
            if frame is None:
                continue
            if name != "subsets" and name not in TABLES:
                raise StoreError(
                    f"set {set_name}: the reader returned table {name!r}, which the "
                    f"store does not know"
                )
            frames[name] = frame
        subsets = frames.pop("subsets", None)
        tables = list(dict.fromkeys([*SET_TABLES.get(set_name, ()), *frames]))
        counts = {t: {"deleted": 0, "inserted": 0} for t in tables}
        _refuse_repeated(d, set_name, frames)
        covered = _covered_identities(tables, frames, subsets)
        if subsets is not None:
            # Rows are written only for identities whose carried subsets cover their table: the
            # identity-only row a Berörkrets-only member yields must not replace the Basinformation.
            frames = {t: _rows_of(f, TABLES[t].key, covered[t]) for t, f in frames.items()}
        if d.extract_type == "base":
            for t in tables:
                counts[t]["deleted"] += self._delete_all(t)
        else:
            # Deletion file: the object with all its information, every subset (seeds 003, 004).
            removed = {str(i) for i in d.deletions(set_name)}
            for t in tables:
                gone = removed | covered[t]
                if gone:
                    counts[t]["deleted"] += self._delete_keys(t, TABLES[t].key, sorted(gone))
        for t, frame in frames.items():
            if t in PERSONAL_COLUMNS and not personal_data:
                frame = frame.drop(columns=[c for c in frame.columns if c in PERSONAL_COLUMNS[t]])
            if t == "persons" and "protected" in frame.columns:
                # a protected person is never kept (FORMATS.md §4), and has no identity to key on
                frame = frame[~frame["protected"].astype("boolean").fillna(False).to_numpy()]
            counts[t]["inserted"] += self._insert(t, frame, crs=getattr(d, "crs", SRID))
        return counts

    def _identity_digests(self, name: str) -> pd.Series:
        """Per identity of table ``name``, one number for all of its rows' content.

        Read in this store's own transaction (a rebase compares the content before and after
        it). Each row's values — with its column names, missing values left out so that a
        column added later does not count as a change — are hashed and mixed into one 64-bit
        number; an identity's number is the sum of its rows' (the order of rows does not
        matter, their number and content do). pandas' vectorised hashing instead of a
        per-row Python digest: base extracts have millions of rows.
        """
        table = TABLES[name]
        registered = self._registered_columns(name)
        if not registered:
            return pd.Series([], dtype="uint64")
        raw, geoms = self._select(table, registered, bbox=None, where=None)
        keys = pd.Series(raw[table.key], dtype=object).astype(str)
        row = np.zeros(len(keys), dtype=np.uint64)
        cells = [(c.name, raw[c.name]) for c in registered]
        if geoms is not None:
            cells.append(
                (GEOMETRY_COLUMN, shapely.to_wkb(np.asarray(geoms, dtype=object), hex=True))
            )
        for col, values in cells:
            s = pd.Series(values, dtype=object)
            missing = s.isna().to_numpy()
            h = pd.util.hash_pandas_object(
                s.astype(str), index=False, hash_key=_hash_key(col)
            ).to_numpy()
            row += np.where(missing, np.uint64(0), h)  # wraps modulo 2**64, as intended
        row = _mix64(row)
        codes, identities = pd.factorize(keys)
        sums = np.zeros(len(identities), dtype=np.uint64)
        np.add.at(sums, codes, row)
        return pd.Series(sums, index=pd.Index(identities, dtype=object))

    def _owner_secret(self) -> str:
        """The store's owner-key secret (vggeo_meta ``owner_key_secret``), made on first use.

        Stores made by this version have it from creation; an older store gets one with its
        first inskrivning delivery (inside that transaction). Never exported.
        """
        have = self._get_meta(OWNER_SECRET_META)
        given = os.environ.get(OWNER_SECRET_ENV, "").strip()
        if have is None:
            have = new_owner_secret()
            self._set_meta(OWNER_SECRET_META, have)
        elif given and given != have:
            raise StoreError(
                f"{OWNER_SECRET_ENV} is set but this store keys its owners with "
                "another secret (kept since its creation); unset it to use the "
                "store's own"
            )
        return have

    def _cleanup_owners(self) -> dict[str, dict[str, int]]:
        """Inskrivning rules after a delivery: no protected persons, no owners owning nothing."""
        protected = self._delete_true("persons", "protected")
        persons = self._delete_unreferenced("persons", "owner_key", "agande", "owner_key")
        orgs = self._delete_unreferenced("organisations", "owner_key", "agande", "owner_key")
        return {
            "persons": {"deleted": protected + persons, "inserted": 0},
            "organisations": {"deleted": orgs, "inserted": 0},
        }

    def _new_version(self) -> str:
        version = uuid.uuid4().hex
        self._set_meta("data_version", version)
        return version

    def _insert(self, name: str, frame: pd.DataFrame, *, crs: Any = SRID, bar: Any = None) -> int:
        """Insert a frame's rows, adding columns the table does not have yet."""
        if frame is None or len(frame) == 0:
            return 0
        table = TABLES[name]
        frame = pd.DataFrame(frame) if not hasattr(frame, "geometry") else frame
        geoms = None
        if table.geometry_type:
            geoms = _canonical_geometries(frame, table, crs)
        attrs = frame.drop(columns=[c for c in frame.columns if _is_geometry_col(frame, c)])
        if table.key not in attrs.columns:
            raise SchemaError(
                f"table {name}: the identity column {table.key!r} is missing", field=table.key
            )
        if attrs[table.key].isna().any():
            row = int(np.flatnonzero(attrs[table.key].isna().to_numpy())[0]) + 1
            raise SchemaError(f"table {name}: a row without identity", field=table.key, row=row)
        if table.unique:
            repeated = attrs[table.key][attrs[table.key].duplicated()]
            if len(repeated):  # named here: the database would only say "UNIQUE constraint failed"
                raise IntegrityError(
                    f"table {name}: identity {repeated.iloc[0]} occurs more than "
                    f"once in the delivery ({repeated.nunique()} such identities)",
                    field=table.key,
                )
        registered = {c.name: c for c in self._registered_columns(name)}
        columns: list[Column] = []
        data = {}
        for col in attrs.columns:
            s = attrs[col]
            if not isinstance(col, str) or not col or col.lower() in ("fid", GEOMETRY_COLUMN):
                raise SchemaError(f"table {name}: column name {col!r} is reserved or invalid")
            if col in registered:
                c = registered[col]
                declared = s.dtype if isinstance(s.dtype, pd.CategoricalDtype) else None
                s = coerce(s, c, table=name)
                if c.dtype.startswith("category"):
                    # keep every category ever written, in order: also the values of a column
                    # that arrives as plain text or numbers (read back from an export, say),
                    # which would otherwise be stored and then read back as null
                    merged = merge_categories(c.dtype, declared or _categories(s, c, table=name))
                    if merged is not None:
                        c = Column(c.name, c.kind, merged)
                        self._set_column_dtype(name, c)
            else:
                c = Column(col, kind_of(s), dtype_name(s))
                self._add_column(name, c)
            columns.append(c)
            data[col] = s
        out = pd.DataFrame(data, index=attrs.index).reset_index(drop=True)
        # in chunks: Python values for one chunk at a time keep memory bounded (5.6 M residences)
        for start in range(0, len(out), WRITE_CHUNK):
            stop = min(start + WRITE_CHUNK, len(out))
            self._write_rows(
                table,
                columns,
                out.iloc[start:stop].reset_index(drop=True),
                None if geoms is None else geoms[start:stop],
            )
            if bar is not None:
                bar.update(stop - start)
        return len(out)


def _restored_frame(table: Table, registered: list[Column], raw: dict, geoms: Any) -> pd.DataFrame:
    """Raw column values and geometries as the (Geo)DataFrame :meth:`Store.read_table` returns."""
    frame = pd.DataFrame(
        {c.name: restore(pd.Series(raw[c.name], dtype=object), c) for c in registered}
    )
    if not registered:
        frame = pd.DataFrame(index=pd.RangeIndex(0 if geoms is None else len(geoms)))
    if table.geometry_type:
        return gpd.GeoDataFrame(
            frame, geometry=gpd.GeoSeries(geoms, crs=SRID, index=frame.index), crs=SRID
        )
    return frame


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (the same rule in SQLite and PostgreSQL)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: object) -> str:
    """An SQL string literal of ``str(value)``, quotes doubled: read the same way by SQLite and
    PostgreSQL (standard_conforming_strings)."""
    return "'" + str(value).replace("'", "''") + "'"


def _product_tables(product: str) -> list[str]:
    """Every table a product's deliveries write (a rebase replaces all of them)."""
    provisions = set(SET_TABLES["markreglerandebestammelse"])
    if product == "bestammelse":
        return [t for t in DELIVERY_TABLES if t in provisions]
    return [t for t in DELIVERY_TABLES if t not in provisions]


def _hash_key(column: str) -> str:
    """A 16-character hash key per column name: the same value in two columns hashes apart."""
    return hashlib.blake2b(column.encode(), digest_size=8).hexdigest()[:16]


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a row's summed column hashes become one well-mixed number, so
    that summing rows per identity cannot trade values between rows."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _compare_digests(
    before: dict[str, pd.Series], after: dict[str, pd.Series]
) -> dict[str, dict[str, int]]:
    """Per table, the identities added, removed and changed between two readings."""
    out = {}
    for t in before:
        b, a = before[t], after[t]
        common = a.index.intersection(b.index)
        out[t] = {
            "added": int(len(a.index.difference(b.index))),
            "removed": int(len(b.index.difference(a.index))),
            "changed": int((a.loc[common].to_numpy() != b.loc[common].to_numpy()).sum()),
        }
    return out


def _str_or_none(v: Any) -> str | None:
    return None if v is None else str(v)


def _table(name: str) -> Table:
    try:
        return TABLES[TABLE_ALIASES.get(name, name)]
    except KeyError:
        raise StoreError(
            f"no table {name!r} in the store; tables are {', '.join([*TABLES, LEDGER_TABLE])}"
        ) from None


def _is_geometry_col(frame: pd.DataFrame, col: Any) -> bool:
    if hasattr(frame, "geometry") and col == getattr(frame, "_geometry_column_name", None):
        return True
    return str(getattr(frame[col], "dtype", "")) == "geometry" or col == "geometry"


def _subset_tables(subset: str) -> tuple[str, ...]:
    """The tables a subset owns: a provision subset, or an inskrivning set named as its own subset."""
    return SUBSET_TABLES.get(subset) or SET_TABLES.get(subset, ())


def _subset_name(name: Any) -> str:
    """``Berörkrets``, ``berorkrets``, ``BERÖRKRETS`` → ``berorkrets``."""
    text = str(name).strip().lower()
    if text in SUBSET_TABLES or text in SET_TABLES:
        return text
    return text.translate(str.maketrans("åäö", "aao", " -"))


def _substantive(table: str, frame: pd.DataFrame) -> np.ndarray:
    """Which rows carry more than a member row without subsets has (:data:`MEMBER_COLUMNS`)."""
    member = MEMBER_COLUMNS.get(table)
    if member is None:
        return np.ones(len(frame), dtype=bool)
    has = np.zeros(len(frame), dtype=bool)
    for c in frame.columns:
        if c in member:
            continue
        s = frame[c]
        if _is_geometry_col(frame, c):
            g = np.asarray(s.values if hasattr(s, "values") else s, dtype=object)
            missing = pd.isna(g)
            present = g.copy()
            present[missing] = None
            has |= ~(missing | shapely.is_empty(present))
        else:
            has |= s.notna().to_numpy(dtype=bool)
    return has


def _covered_identities(
    tables: list[str], frames: dict[str, pd.DataFrame], subsets: pd.DataFrame | None
) -> dict[str, set[str]]:
    """Per table, the identities a change replaces in it ("present in the change file").

    Without a ``subsets`` frame an object present in any table of the set is replaced in all the
    set's tables that share its key (every object is delivered whole). With one, an identity is
    replaced in exactly the tables of the subsets it carried (:data:`SUBSET_TABLES`); a subset
    also counts as carried when the file has data of it for the identity (a child row, or a member
    row with a value beyond :data:`MEMBER_COLUMNS`), so that nothing delivered is dropped or
    duplicated. A table no subset owns is replaced for the identities it has rows for.
    """
    present: dict[str, pd.Series] = {}
    for t in tables:
        f = frames.get(t)
        present[t] = (
            pd.Series([], dtype=object) if f is None else f[TABLES[t].key].dropna().astype(str)
        )
    if subsets is None:
        by_key: dict[str, set[str]] = {}
        for t in tables:
            by_key.setdefault(TABLES[t].key, set()).update(present[t])
        return {t: by_key[TABLES[t].key] for t in tables}
    id_col = next((c for c in subsets.columns if c != "subset"), None)
    carried: dict[str, set[str]] = {}  # subset → identities
    if id_col is not None and len(subsets):
        names = subsets["subset"].map(_subset_name)
        ids = subsets[id_col].astype(str)
        for name, group in ids.groupby(names.to_numpy()):
            carried.setdefault(str(name), set()).update(group.dropna())
    owners: dict[str, list[str]] = {}  # table → the subsets that own it
    for name in [*SUBSET_TABLES, *carried]:
        for t in _subset_tables(name):
            owners.setdefault(t, []).append(name)
    out: dict[str, set[str]] = {t: set() for t in tables}
    for t in tables:
        f = frames.get(t)
        if f is None or not len(f):
            continue
        if t not in owners:
            out[t].update(present[t])
            continue
        keys = f[TABLES[t].key]
        implied = keys[_substantive(t, f) & keys.notna().to_numpy()].astype(str)
        if len(implied):
            carried.setdefault(owners[t][0], set()).update(implied)
    for name, ids_ in carried.items():
        for t in _subset_tables(name):
            if t in out:
                out[t].update(ids_)
    return out


def _rows_of(frame: pd.DataFrame, key: str, ids: set[str]) -> pd.DataFrame:
    """The rows of ``frame`` whose identity is in ``ids`` (rows without identity are kept: the
    insert refuses them by name)."""
    k = frame[key]
    keep = k.isna().to_numpy() | k.astype(str).isin(ids).to_numpy()
    return frame if keep.all() else frame[keep]


def _refuse_repeated(d: Any, set_name: str, frames: dict[str, pd.DataFrame]) -> None:
    """IntegrityError naming the data file(s) and the identity when a unique identity repeats."""
    for t, f in frames.items():
        table = TABLES[t]
        if not table.unique or f is None or len(f) < 2 or table.key not in f.columns:
            continue
        keys = f[table.key].dropna().astype(str)
        repeated = keys[keys.duplicated()]
        if not len(repeated):
            continue
        first = repeated.iloc[0]
        more = repeated.nunique() - 1
        raise IntegrityError(
            f"identity {first} occurs more than once ({int((keys == first).sum())} times) in "
            f"table {t} of set {set_name}"
            + (f", and {more} more identities occur more than once" if more else "")
            + "; an extract lists each object once",
            file=_data_file_names(d, set_name),
            field=table.key,
        )


def _data_file_names(d: Any, set_name: str) -> str:
    """How errors name the data files of a set: the delivery's labels, else the set's name."""
    try:
        files = d.data_files(set_name)
        labels = [str(getattr(f, "label", f)) for f in files]
    except Exception:  # noqa: BLE001 - a delivery without file names (MemoryDelivery …)
        labels = []
    if not labels:
        return str(getattr(d, "source", None) or getattr(d, "path", None) or set_name)
    return labels[0] if len(labels) == 1 else f"{labels[0]} (or {', '.join(labels[1:])})"


def _canonical_geometries(frame: pd.DataFrame, table: Table, crs: Any) -> np.ndarray:
    """Geometries in EPSG:3006, 2-D, promoted to the table's declared multi type."""
    if hasattr(frame, "geometry"):
        gs = frame.geometry
        if gs.crs is not None and gs.crs.to_epsg() != SRID:
            # through a one-column GeoDataFrame: transform_geoseries handles frames best
            gs = transform_geoseries(gpd.GeoDataFrame(geometry=gs), SRID).geometry
        geoms = np.asarray(gs.values, dtype=object)
    elif "geometry" in frame.columns:
        geoms = np.asarray(frame["geometry"], dtype=object)
    else:
        return np.full(len(frame), None, dtype=object)
    geoms = np.asarray(shapely.force_2d(geoms), dtype=object)
    if table.geometry_type == "MULTIPOLYGON":
        tid = shapely.get_type_id(geoms)
        single = np.flatnonzero(tid == 3)
        if len(single):
            geoms[single] = [shapely.MultiPolygon([g]) for g in geoms[single]]
        bad = np.flatnonzero((tid != 3) & (tid != 6) & (tid != -1))
        if len(bad):
            raise SchemaError(
                f"table {table.name}: geometry must be (Multi)Polygon",
                row=int(bad[0]) + 1,
                field="geometry",
                value=shapely.get_type_id(geoms[bad[0]]),
            )
    elif table.geometry_type == "POINT":
        tid = shapely.get_type_id(geoms)
        bad = np.flatnonzero((tid != 0) & (tid != -1))
        if len(bad):
            raise SchemaError(
                f"table {table.name}: geometry must be Point", row=int(bad[0]) + 1, field="geometry"
            )
    return geoms
