"""Stores: GeoPackage and PostGIS behind one interface; deliveries applied atomically.

>>> store = open_store("vggeo.gpkg", create=True)            # doctest: +SKIP
>>> store.apply(open_delivery("delivery.zip"), progress=True)  # doctest: +SKIP
>>> source = vggeo.store.open("tiles.pmtiles")                  # doctest: +SKIP

:func:`open` is the one place that turns a string into a data source: a ``postgresql://`` (or
``postgres://``) URL opens PostGIS (in ``schema``), a ``.pmtiles``/``.mbtiles`` path a tile
archive, a ``.parquet``/``.geoparquet`` path a GeoParquet file, anything else a GeoPackage. A
vggeo store comes back as a :class:`Store`; data vggeo did not write (an archive, GeoParquet, a
GeoPackage or PostGIS tables written by other tools) as a read-only source of
:mod:`vggeo.store.readonly`. :func:`open_store` (``open(…, writable=True)``) accepts vggeo
stores only.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from vggeo.store.base import PRODUCTS, ApplyResult, DeliveryLike, MemoryDelivery, Store
from vggeo.store.gpkg import GeoPackageStore
from vggeo.store.ledger import LedgerEntry
from vggeo.store.postgis import PostGISStore
from vggeo.store.readonly import (
    ARCHIVE_SUFFIXES,
    PARQUET_SUFFIXES,
    FileTables,
    PostGISTables,
    ReadOnlySource,
    TileArchive,
)
from vggeo.store.schema import GEOMETRY_COLUMN, META_TABLE, SRID, TABLES

__all__ = [
    "open",
    "open_store",
    "backend_of",
    "is_postgres_url",
    "DataSource",
    "ReadOnlySource",
    "FileTables",
    "TileArchive",
    "PostGISTables",
    "Store",
    "ApplyResult",
    "DeliveryLike",
    "MemoryDelivery",
    "LedgerEntry",
    "PRODUCTS",
    "TABLES",
    "SRID",
    "GEOMETRY_COLUMN",
]


#: What :func:`open` returns: a vggeo store, or a read-only source of other data.
DataSource = Store | ReadOnlySource


def is_postgres_url(location: str | os.PathLike) -> bool:
    """True for a ``postgresql://`` / ``postgres://`` URL."""
    return str(location).startswith(("postgresql://", "postgres://"))


def backend_of(spec: str | os.PathLike) -> str:
    """The kind of source :func:`open` makes of ``spec``, from the string alone (nothing is
    opened): ``"postgis"``, ``"archive"``, ``"parquet"`` or ``"gpkg"``."""
    if is_postgres_url(spec):
        return "postgis"
    suffix = Path(spec).suffix.lower()
    if suffix in ARCHIVE_SUFFIXES:
        return "archive"
    return "parquet" if suffix in PARQUET_SUFFIXES else "gpkg"


def open(  # noqa: A001 - vggeo.store.open, as io.open: the module's entry point
    spec: str | os.PathLike,
    *,
    create: bool = False,
    schema: str = "public",
    writable: bool = False,
) -> DataSource:
    """Open the data source a string names.

    Parameters
    ----------
    spec
        A ``postgresql://`` URL, a ``.pmtiles``/``.mbtiles`` archive, a ``.parquet`` /
        ``.geoparquet`` file or a GeoPackage path.
    create
        Create the store (GeoPackage or PostGIS) when it does not exist; implies ``writable``.
    schema
        PostGIS only: the database schema holding the tables.
    writable
        Accept vggeo stores only (what ingests and loads write to): a GeoPackage or PostGIS
        database without vggeo's tables is refused instead of opened read-only.

    Raises
    ------
    StoreError
        The location cannot be opened (or, with ``writable``, is not a vggeo store).
    """
    kind = backend_of(spec)
    if kind == "postgis":
        url = str(spec)
        if create or writable or _postgis_is_store(url, schema):
            return PostGISStore(url, create=create, schema=schema)
        return PostGISTables(url, schema=schema)
    path = Path(spec)
    if create or writable:
        return GeoPackageStore(path, create=create)
    if kind == "archive":
        return TileArchive(path)
    if kind == "parquet" or not _gpkg_is_store(path):
        return FileTables(path)

    return GeoPackageStore(path)


def open_store(
    location: str | os.PathLike, *, create: bool = False, schema: str = "public"
) -> Store:
    """Open (or with ``create=True`` create) a vggeo store: :func:`open` with ``writable=True``.

    Parameters
    ----------
    location
        A GeoPackage path (the default backend) or a ``postgresql://`` URL (PostGIS).
    create
        Create the store — the file, or the tables in the database — when it does not exist.
    schema
        PostGIS only: the database schema holding the tables (created if absent with ``create``).

    Raises
    ------
    StoreError
        The location is not a store (and ``create`` is False), or cannot be opened.
    """
    store = open(location, create=create, schema=schema, writable=True)
    assert isinstance(store, Store)
    return store


def _gpkg_is_store(path: Path) -> bool:
    """Whether a file is a vggeo GeoPackage store (holds vggeo's meta table). Anything that is
    not (missing, not SQLite, no meta table) is left to the reader that says why."""
    if not path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return False
    try:
        return (
            conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (META_TABLE,)
            ).fetchone()
            is not None
        )
    except sqlite3.Error:  # not an SQLite file
        return False
    finally:
        conn.close()


def _postgis_is_store(url: str, schema: str) -> bool:
    """Whether ``schema`` holds vggeo's meta table (a connection error is left to the store,
    which reports it)."""
    # lazy: psycopg is in the postgis extra
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute("SELECT to_regclass(%s)", [f'"{schema}"."{META_TABLE}"']).fetchone()
            return row is not None and row[0] is not None
    except psycopg.Error:
        return True
