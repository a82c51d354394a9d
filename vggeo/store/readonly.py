"""Read-only data sources that :func:`vggeo.store.open` returns beside the two stores.

A vggeo store (:class:`~vggeo.store.gpkg.GeoPackageStore`, :class:`~vggeo.store.postgis.PostGISStore`)
keeps a ledger and with it a ``data_version``. Tiles and the server also read data vggeo did not
write: a GeoPackage written by other tools, a GeoParquet file of residences, tables loaded into
PostGIS by other tools, and tile archives (PMTiles, MBTiles) written by ``vggeo tiles export``.
These classes give them the read side of :class:`~vggeo.store.Store` — ``location``,
``backend``, ``data_version``, ``read_table``, ``close`` — and nothing to write with
(``read_only`` is True). Without a ledger their data version is a signature of what every writer
changes: the file's size and modification time, or PostgreSQL's change counters.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import geopandas
import pandas as pd
import pyarrow.parquet as pq
import pyogrio

from vggeo.errors import StoreError
from vggeo.store.pool import new_async_pool, open_pool, redact

__all__ = [
    "ReadOnlySource",
    "FileTables",
    "TileArchive",
    "PostGISTables",
    "file_signature",
    "PARQUET_SUFFIXES",
    "ARCHIVE_SUFFIXES",
]

PARQUET_SUFFIXES = (".parquet", ".geoparquet")
ARCHIVE_SUFFIXES = (".pmtiles", ".mbtiles")


def file_signature(path: Path) -> str:
    """A version of a file not written by a vggeo store: size and modification time of the file
    and its ``-wal``, which every writer changes."""
    parts = []
    for f in (path, Path(str(path) + "-wal")):
        if f.exists():
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


class ReadOnlySource:
    """The read side of a store, for data without a vggeo ledger."""

    backend = ""
    read_only = True
    schema: str | None = None

    def __init__(self, location: str) -> None:
        self.location = location

    @property
    def data_version(self) -> str:
        """An opaque token that changes whenever the content changes (tile cache key)."""
        raise NotImplementedError

    def read_table(
        self,
        name: str,
        *,
        bbox: tuple[float, float, float, float] | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """The table ``name`` as a (Geo)DataFrame; see :meth:`vggeo.store.Store.read_table`."""
        raise StoreError(f"{self.location} holds no tables (a {self.backend} source)")

    def tables(self) -> list[str]:
        """The names of the tables this source holds."""
        return []

    def columns(self, name: str) -> list[str]:
        """Column names of table ``name``."""
        raise StoreError(f"{self.location} has no table {name!r}")

    def close(self) -> None:
        """Release what the source holds open."""

    def __enter__(self) -> ReadOnlySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location}>"


class FileTables(ReadOnlySource):
    """A GeoPackage not written by vggeo (tables ``residences``, ``provisions`` as other tools
    wrote them), or a GeoParquet file (one table: ``residences``). Read with pyogrio / geopandas
    through Arrow.

    Raises
    ------
    StoreError
        The file does not exist or cannot be opened.
    """

    backend = "file"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        super().__init__(str(self.path))
        if not self.path.exists():
            raise StoreError("store not found", file=self.path)
        self.parquet = self.path.suffix.lower() in PARQUET_SUFFIXES
        if self.parquet:
            self._layers = {"residences"}
            return

        try:
            self._layers = {name for name, _ in pyogrio.list_layers(self.path)}
        except Exception as err:  # pyogrio raises DataSourceError and friends
            raise StoreError(f"cannot open store: {err}", file=self.path) from err

    @property
    def data_version(self) -> str:
        return file_signature(self.path)

    def tables(self) -> list[str]:
        return sorted(self._layers)

    def columns(self, name: str) -> list[str]:
        if name not in self._layers:
            raise StoreError(f"{self.location} has no table {name!r}")
        if self.parquet:
            return list(pq.read_schema(self.path).names)

        info = pyogrio.read_info(self.path, layer=name)
        fid = info.get("fid_column") or ""
        return [*([fid] if fid else []), *info["fields"], "geometry"]

    def read_table(
        self,
        name: str,
        *,
        bbox: tuple[float, float, float, float] | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """The table as a GeoDataFrame; ``columns`` not in the table are left out (files written
        by other tools carry what they carry). A GeoPackage's integer primary key is returned as
        a column when asked for by name (a table may use ``id`` as its FID)."""
        if name not in self._layers:
            raise StoreError(f"{self.location} has no table {name!r}")
        if self.parquet:
            frame = geopandas.read_parquet(self.path, bbox=bbox)
            if columns is not None:
                frame = frame[[c for c in (*columns, frame.geometry.name) if c in frame.columns]]
            return frame

        info = pyogrio.read_info(self.path, layer=name)
        wanted = list(info["fields"]) if columns is None else columns
        present = [c for c in wanted if c in set(info["fields"])]
        fid = info.get("fid_column") or ""
        kwargs: dict[str, Any] = {"columns": present, "use_arrow": True, "bbox": bbox}
        if fid and fid in wanted and fid not in present:
            frame = pyogrio.read_dataframe(self.path, layer=name, fid_as_index=True, **kwargs)
            return frame.rename_axis(fid).reset_index()
        return pyogrio.read_dataframe(self.path, layer=name, **kwargs)


class TileArchive(ReadOnlySource):
    """A PMTiles or MBTiles archive: tiles only, no tables (served by the archive tile backend).

    Its data version is the file's size and modification time: ``vggeo tiles export --refresh``
    replaces the file as a whole.
    """

    backend = "archive"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        super().__init__(str(self.path))
        if not self.path.exists():
            raise StoreError("archive not found", file=self.path)

    @property
    def data_version(self) -> str:
        st = self.path.stat()
        return f"{st.st_size}:{st.st_mtime_ns}"


class PostGISTables(ReadOnlySource):
    """Tables ``residences`` and ``provisions`` loaded into PostGIS by other tools (no vggeo
    meta table): served as tiles, versioned by PostgreSQL's change counters.

    Parameters
    ----------
    url
        ``postgresql://`` URL.
    schema
        The database schema holding the tables.
    """

    backend = "postgis"

    def __init__(self, url: str, *, schema: str = "public") -> None:
        super().__init__(redact(url) + ("" if schema == "public" else f" (schema {schema})"))
        self.url = url
        self.schema = schema
        self._conn: Any = None

    @property
    def data_version(self) -> str:
        # lazy: psycopg is in the postgis extra
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            rows = self._conn.execute(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, "
                "pg_relation_filenode(relid::regclass) FROM pg_stat_user_tables "
                "WHERE schemaname = %s AND relname IN ('residences', 'provisions') "
                "ORDER BY relname",
                [self.schema],
            ).fetchall()
        except psycopg.Error as err:
            self.close()  # opened again on the next call
            raise StoreError(f"cannot connect to {self.location}: {err}".strip()) from err
        return hashlib.blake2b(repr(rows).encode(), digest_size=8).hexdigest()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def pool(self, max_size: int = 8, *, settings: str = "") -> Any:
        """A new ``psycopg_pool.ConnectionPool`` (autocommit) of at most ``max_size``
        connections to the database; the caller closes it."""
        return open_pool(self.url, max_size, settings=settings)

    def async_pool(self, max_size: int = 8, *, settings: str = "") -> Any:
        """A new, unopened asyncio pool (see :func:`vggeo.store.pool.new_async_pool`)."""
        return new_async_pool(self.url, max_size, settings=settings)
