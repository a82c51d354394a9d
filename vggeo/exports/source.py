"""Reading the tables of a store: the single seam between exports/joins and ``vggeo.store``.

When :mod:`vggeo.store` is available (``open_store(...).read_table``), it is used. Until then, and
for a plain GeoPackage holding the contract tables as layers, the tables are read with pyogrio.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from vggeo.errors import StoreError

log = logging.getLogger(__name__)

__all__ = ["read_store_tables", "store_table_names"]


def _open(store: str | Path):
    try:
        from vggeo.store import open_store  # type: ignore[attr-defined]
    except ImportError:
        return None
    try:
        return open_store(str(store))  # never create: an export must not make an empty store
    except TypeError:  # pragma: no cover - signature without defaults
        return open_store(str(store), create=False)


def _gpkg_path(store: str | Path) -> Path:
    path = Path(store)
    if str(store).startswith(("postgresql://", "postgres://")):
        raise StoreError(f"{store}: PostGIS stores need vggeo.store, which is not installed")
    if not path.exists():
        raise StoreError(f"no store at {path}")
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a GeoPackage store")
    return path


def store_table_names(store: str | Path) -> list[str]:
    """Names of the tables in a store."""
    s = _open(store)
    if s is not None:
        return sorted(s.counts())
    import pyogrio

    path = _gpkg_path(store)
    try:
        return sorted(str(name) for name, _ in pyogrio.list_layers(path))
    except Exception as err:  # pyogrio raises DataSourceError and others for non-GeoPackages
        raise StoreError(f"{path} is not a readable GeoPackage store: {err}") from err


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
        Tables wanted; those absent from the store are left out of the result.
    required
        Tables that must be present; their absence raises :class:`StoreError` naming them.
    columns
        Optional column subset per table (geometry is always included for spatial tables).

    Returns
    -------
    dict of table name → (Geo)DataFrame, spatial tables in the store's CRS (EPSG:3006).
    """
    names = list(dict.fromkeys(names))
    present = set(store_table_names(store))
    missing = [n for n in required if n not in present]
    if missing:
        raise StoreError(
            f"store {store} lacks table(s) {', '.join(missing)} "
            f"(it has: {', '.join(sorted(present)) or 'none'})"
        )
    columns = dict(columns or {})
    s = _open(store)
    out: dict[str, pd.DataFrame] = {}
    for name in names:
        if name not in present:
            continue
        cols = columns.get(name)
        if s is not None:
            out[name] = s.read_table(name, columns=cols)
        else:
            out[name] = _read_gpkg_layer(_gpkg_path(store), name, cols)
    return out


def _read_gpkg_layer(path: Path, name: str, cols: list[str] | None) -> pd.DataFrame:
    import pyogrio

    df = pyogrio.read_dataframe(path, layer=name, columns=cols, use_arrow=True)
    if "geometry" in df.columns and getattr(df, "crs", None) is None:
        # Attribute tables come back as a GeoDataFrame with an empty geometry column.
        df = pd.DataFrame(df.drop(columns="geometry"))
    return df
