"""Connection pools to a PostGIS database, for readers that serve many requests at once (the
PostGIS tile backend). A store itself holds one connection; a server asks it for a pool."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from vggeo.errors import StoreError

__all__ = ["new_async_pool", "open_pool", "redact"]


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)


def open_pool(url: str, max_size: int = 8, *, timeout: float = 30, settings: str = "") -> Any:
    """An open ``psycopg_pool.ConnectionPool`` of autocommit connections (at least one made
    within ``timeout`` seconds, else :class:`~vggeo.errors.StoreError`); the caller closes it.
    ``settings``: as for :func:`new_async_pool`."""
    # lazy: psycopg_pool is in the postgis extra
    from psycopg_pool import ConnectionPool

    try:
        pool = ConnectionPool(
            url, min_size=1, max_size=max_size, open=True, kwargs=_connect_kwargs(url, settings)
        )
    except Exception as err:
        raise StoreError(f"cannot connect to PostGIS: {err}") from err
    try:
        pool.wait(timeout=timeout)
    except Exception as err:
        pool.close()
        raise StoreError(f"cannot connect to PostGIS: {err}") from err
    return pool


def new_async_pool(url: str, max_size: int = 8, *, settings: str = "") -> Any:
    """A new, unopened ``psycopg_pool.AsyncConnectionPool`` of autocommit connections.

    Its connections belong to one event loop: the caller opens it in that loop
    (``await pool.open(wait=True, timeout=…)``) and closes it there. ``settings``: server
    settings for its sessions, in libpq's ``options`` form (``-c name=value …``); those of the
    URL's ``options`` (or of ``PGOPTIONS``) come after them, so the user's win."""
    # lazy: psycopg_pool is in the postgis extra
    from psycopg_pool import AsyncConnectionPool

    return AsyncConnectionPool(
        url, min_size=1, max_size=max_size, open=False, kwargs=_connect_kwargs(url, settings)
    )


def _connect_kwargs(url: str, settings: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"autocommit": True}
    if settings:
        kwargs["options"] = " ".join(filter(None, [settings, _options(url)]))
    return kwargs


def _options(url: str) -> str:
    """The libpq ``options`` the URL would connect with (its own, else ``PGOPTIONS``)."""
    # lazy: psycopg is in the postgis extra
    from psycopg.conninfo import conninfo_to_dict

    try:
        theirs = conninfo_to_dict(url).get("options")
    except Exception:  # noqa: BLE001 - a malformed URL fails where the pool connects, with its message
        theirs = None
    return str(theirs) if theirs else os.environ.get("PGOPTIONS", "")
