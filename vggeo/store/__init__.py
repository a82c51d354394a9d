"""Stores: GeoPackage and PostGIS behind one interface; deliveries applied atomically.

>>> store = open_store("vggeo.gpkg", create=True)            # doctest: +SKIP
>>> store.apply(open_delivery("delivery.zip"), progress=True)  # doctest: +SKIP

:func:`open_store` chooses the backend from the location: a ``postgresql://`` (or
``postgres://``) URL opens PostGIS, anything else is a GeoPackage file path.
"""

from __future__ import annotations

from pathlib import Path

from vggeo.store.base import PRODUCTS, ApplyResult, DeliveryLike, MemoryDelivery, Store
from vggeo.store.ledger import LedgerEntry
from vggeo.store.schema import GEOMETRY_COLUMN, SRID, TABLES

__all__ = [
    "open_store",
    "is_postgres_url",
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


def is_postgres_url(location: str | Path) -> bool:
    """True for a ``postgresql://`` / ``postgres://`` URL."""
    return str(location).startswith(("postgresql://", "postgres://"))


def open_store(location: str | Path, *, create: bool = False, schema: str = "public") -> Store:
    """Open (or with ``create=True`` create) a store.

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
    if is_postgres_url(location):
        from vggeo.store.postgis import PostGISStore

        return PostGISStore(str(location), create=create, schema=schema)
    from vggeo.store.gpkg import GeoPackageStore

    return GeoPackageStore(location, create=create)
