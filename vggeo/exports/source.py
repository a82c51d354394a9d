"""Reading the tables of a store: the single seam between exports/joins and :mod:`vggeo.store`.

Exports and joins never touch a database directly: they ask for tables by name here, and get
the contract's (Geo)DataFrames back from ``open_store(...).read_table``. Tables without rows
count as absent, so "a store without the needed tables" is one clear error whatever the backend.
The store is opened read-only in intent: never with ``create=True``, so a mistyped path cannot
leave an empty store behind.

National tables (5.6 M homes) do not fit a laptop's memory as one frame, so exports read them as
:class:`TableSource` objects instead: a table cut into batches of a bounded number of rows, either
streamed from the store (:class:`StoreSource`, :func:`open_store_sources`) or sliced from a frame
already in memory (:class:`FrameSource`). A writer holds one batch at a time.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from vggeo.errors import StoreError
from vggeo.store import open_store
from vggeo.store.base import quote_ident, quote_literal

if TYPE_CHECKING:
    from vggeo.store.base import Store

__all__ = [
    "read_store_tables",
    "store_table_names",
    "TableSource",
    "FrameSource",
    "StoreSource",
    "open_store_sources",
    "as_source",
    "BATCH_ROWS",
]

#: Rows per batch of a streamed export: large enough that per-batch costs vanish (GDAL's and
#: Arrow's per-call work), small enough that a batch of the registry's 52 columns stays well
#: under 100 MB in pandas.
BATCH_ROWS = 50_000


def _open(store: str | os.PathLike[str]) -> Store:
    return open_store(str(store))


def store_table_names(store: str | os.PathLike[str]) -> list[str]:
    """Names of the store's content tables that hold at least one row."""
    with _open(store) as s:
        return sorted(name for name, n in s.counts().items() if n > 0)


def _missing_error(
    store: str | os.PathLike[str], missing: list[str], present: set[str]
) -> StoreError:
    return StoreError(
        f"store {store} lacks table(s) {', '.join(missing)} (tables with rows: "
        f"{', '.join(sorted(present - {'vggeo_ledger'})) or 'none'})"
    )


def read_store_tables(
    store: str | os.PathLike[str],
    names: Iterable[str],
    *,
    required: Iterable[str] = (),
    columns: Mapping[str, list[str]] | None = None,
) -> dict[str, pd.DataFrame]:
    """Read tables from a store (GeoPackage path or ``postgresql://`` URL).

    Parameters
    ----------
    names
        Tables wanted; those absent or empty in the store are left out of the result.
    required
        Tables that must hold rows; otherwise :class:`~vggeo.errors.StoreError` names them.
    columns
        Optional attribute-column subset per table (geometry always comes with spatial tables).

    Returns
    -------
    dict of table name → (Geo)DataFrame, spatial tables in EPSG:3006.
    """
    names = list(dict.fromkeys(names))
    columns = dict(columns or {})
    with _open(store) as s:
        present = {name for name, n in s.counts().items() if n > 0}
        missing = [n for n in required if n not in present]
        if missing:
            raise _missing_error(store, missing, present)
        return {
            name: s.read_table(name, columns=columns.get(name)) for name in names if name in present
        }


# --- tables in batches ---------------------------------------------------------------------------


@runtime_checkable
class TableSource(Protocol):
    """A table that can be read more than once, in batches of at most ``batch_size`` rows.

    ``equals=(column, value)`` keeps the rows whose column's text is ``value`` (the per-type
    provision layers); ``columns`` reads only some attribute columns (geometry comes with spatial
    tables). Every batch has the same columns and dtypes.
    """

    batch_size: int

    def __len__(self) -> int: ...

    def batches(
        self, *, columns: list[str] | None = None, equals: tuple[str, str] | None = None
    ) -> Iterator[pd.DataFrame]: ...

    def empty(self) -> pd.DataFrame:
        """A frame with no rows and the table's columns and dtypes."""
        ...

    def check_unchanged(self) -> None:
        """Raise :class:`~vggeo.errors.StoreError` if the table changed since the source was
        made (the batches of several readings would not be one state of it)."""
        ...


def value_counts(source: TableSource, column: str) -> Counter:
    """How often each non-missing value of ``column`` occurs (as text), reading that column only."""
    counts: Counter = Counter()
    for batch in source.batches(columns=[column]):
        counts.update(batch[column].dropna().astype(str).value_counts().to_dict())
    return counts


class FrameSource:
    """A frame already in memory, handed out in slices (views, not copies)."""

    def __init__(self, frame: pd.DataFrame, batch_size: int = BATCH_ROWS) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
        self.frame = frame
        self.batch_size = batch_size

    def __len__(self) -> int:
        return len(self.frame)

    def batches(
        self, *, columns: list[str] | None = None, equals: tuple[str, str] | None = None
    ) -> Iterator[pd.DataFrame]:
        frame = self.frame
        if columns is not None:
            geometry = getattr(frame, "_geometry_column_name", None)
            keep = [c for c in frame.columns if c in columns or c == geometry]
            frame = frame[keep]
        if equals is not None:
            col, value = equals
            mask = (frame[col].astype("string") == value).fillna(False).to_numpy(bool)
            frame = frame.iloc[np.flatnonzero(mask)]
        for start in range(0, len(frame), self.batch_size):
            yield frame.iloc[start : start + self.batch_size]

    def empty(self) -> pd.DataFrame:
        return self.frame.iloc[:0]

    def check_unchanged(self) -> None:
        """A frame in memory is its own snapshot."""


class StoreSource:
    """One table of an open store, streamed by :meth:`vggeo.store.base.Store.iter_table`."""

    def __init__(self, store: Store, name: str, rows: int, batch_size: int = BATCH_ROWS) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
        self.store = store
        self.name = name
        self.rows = rows
        self.batch_size = batch_size
        self.version = store.data_version

    def __len__(self) -> int:
        return self.rows

    def batches(
        self, *, columns: list[str] | None = None, equals: tuple[str, str] | None = None
    ) -> Iterator[pd.DataFrame]:
        yield from self.store.iter_table(
            self.name, batch_size=self.batch_size, columns=columns, where=self.where(equals)
        )

    def where(self, equals: tuple[str, str] | None) -> str | None:
        """The SQL condition (SQLite and PostgreSQL alike) selecting the rows whose column
        ``equals[0]`` holds ``equals[1]``; None for every row."""
        if equals is None:
            return None
        col, value = equals
        if col not in self.store.columns(self.name):
            raise StoreError(f"table {self.name} has no column {col}")
        return f"{quote_ident(col)} = {quote_literal(value)}"

    def empty(self) -> pd.DataFrame:
        return self.store.read_table(self.name, where="1 = 0")

    def check_unchanged(self) -> None:
        # The store's data version changes with every delivery or load it takes.
        if self.store.data_version != self.version:
            raise StoreError(
                f"store {self.store.location} changed while {self.name} was being "
                "exported (a delivery or load was applied); nothing was written: "
                "run the export again"
            )


def as_source(table: pd.DataFrame | TableSource, batch_size: int = BATCH_ROWS) -> TableSource:
    """A frame as a :class:`FrameSource`; a source as it is."""
    if isinstance(table, pd.DataFrame):
        return FrameSource(table, batch_size)
    return table


@contextmanager
def open_store_sources(
    store: str | os.PathLike[str],
    names: Iterable[str],
    *,
    required: Iterable[str] = (),
    batch_size: int = BATCH_ROWS,
) -> Iterator[dict[str, StoreSource]]:
    """The store's tables as sources to stream, while the store stays open.

    Like :func:`read_store_tables`, tables without rows are left out and ``required`` ones must
    hold rows; nothing is read until a source's batches are iterated.
    """
    names = list(dict.fromkeys(names))
    with _open(store) as s:
        counts = s.counts()
        present = {name for name, n in counts.items() if n > 0}
        missing = [n for n in required if n not in present]
        if missing:
            raise _missing_error(store, missing, present)
        yield {
            name: StoreSource(s, name, counts[name], batch_size)
            for name in names
            if name in present
        }
