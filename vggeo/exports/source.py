"""Reading the tables of a store: the single seam between exports/joins and :mod:`vggeo.store`.

Exports and joins never touch a database directly: they ask for tables by name here, and get
the contract's (Geo)DataFrames back from ``open_store(...).read_table``. Tables without rows
count as absent, so "a store without the needed tables" is one clear error whatever the backend.
The store is opened read-only in intent: never with ``create=True``, so a mistyped path cannot
leave an empty store behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from vggeo.errors import StoreError

__all__ = ["read_store_tables", "store_table_names"]


def _open(store: str | Path):
    from vggeo.store import open_store

    return open_store(str(store))


def store_table_names(store: str | Path) -> list[str]:
    """Names of the store's content tables that hold at least one row."""
    with _open(store) as s:
        return sorted(name for name, n in s.counts().items() if n > 0)


def read_store_tables(
    store: str | Path,
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
            raise StoreError(
                f"store {store} lacks table(s) {', '.join(missing)} (tables with rows: "
                f"{', '.join(sorted(present - {'vggeo_ledger'})) or 'none'})"
            )
        return {
            name: s.read_table(name, columns=columns.get(name))
            for name in names
            if name in present
        }
