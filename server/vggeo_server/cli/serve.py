"""``vggeo serve``: the tile server from the command line (see the table in :mod:`vggeo.cli`)."""

from __future__ import annotations

import logging.config
import os
import signal
import tempfile
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

import click

from vggeo.errors import SettingsError

if TYPE_CHECKING:
    from vggeo_server.settings import Settings


@click.command()
@click.option(
    "--store",
    "store",
    envvar="VGGEO_STORE",
    default=None,
    metavar="STORE",
    help="GeoPackage/GeoParquet path, postgresql:// URL or .pmtiles/.mbtiles archive. "
    "Default: the bundled sample data. Env: VGGEO_STORE.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port."
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes. With a GeoPackage/GeoParquet store they share one "
    "in-memory index (loaded once, then forked); each keeps its own tile cache.",
)
@click.option(
    "--base-url",
    "base_url",
    envvar="VGGEO_BASE_URL",
    default=None,
    metavar="URL",
    help="Public URL of the service, used in every link it writes (TileJSON, OGC API). "
    "Default: http://HOST:PORT. Env: VGGEO_BASE_URL.",
)
@click.option(
    "--schema",
    envvar="VGGEO_STORE_SCHEMA",
    default="public",
    show_default=True,
    help="PostGIS only: the database schema of the store. Env: VGGEO_STORE_SCHEMA.",
)
def serve(
    store: str | None, host: str, port: int, workers: int, base_url: str | None, schema: str
) -> None:
    """Serve the OGC API (Tiles and Features), XYZ tiles, TileJSON and the map page (/).

    Every other setting comes from VGGEO_* environment variables (access control: VGGEO_AUTH_*;
    see the README's "Running it as a service"). One JSON line per request goes to stdout; on
    SIGTERM or SIGINT the server stops accepting connections, finishes the requests in flight
    (at most VGGEO_SHUTDOWN_TIMEOUT seconds) and exits 0.
    """  # noqa: D401
    # lazy: uvicorn is in the server extra
    import uvicorn

    # lazy: keeps vggeo --help fast
    from vggeo.store import backend_of, is_postgres_url
    from vggeo_server.settings import bind_url

    if store is None:
        # lazy: keeps vggeo --help fast
        from vggeo.tiles.sample import default_store

        store = str(default_store())
    elif not is_postgres_url(store) and not Path(store).exists():
        raise FileNotFoundError(2, "No such file or directory", store)
    settings = _checked_settings(store, base_url or None, host, port, schema)
    # lazy: FastAPI is in the server extra
    from vggeo_server.app import create_app, open_service

    # uvicorn's logging (and the server's own messages: tables built while opening) from here on
    logging.config.dictConfig(_log_config())
    # The store is opened here, not in the application's start-up: one that cannot be (damaged,
    # not a store, its database unreachable) is then one line and exit 2 from the command's
    # guard, where in the start-up Starlette would print a traceback and uvicorn exit 3.
    # Forked workers share the store their parent opens (serve_preforked); uvicorn's spawned
    # workers open their own, after this check.
    forked = workers > 1 and backend_of(store) in ("gpkg", "parquet")  # the memory backend
    service = None
    if workers == 1:
        service = open_service(settings)
    elif not forked:
        open_service(settings).close()
    click.echo(
        f"vggeo: serving {_display(store)} on http://{host}:{port}/ (public URL "
        f"{settings.base_url}/){' with access control' if settings.auth.enabled else ''}",
        err=True,
    )
    options: dict[str, Any] = dict(
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        log_config=_log_config(),
        timeout_graceful_shutdown=settings.ops.shutdown_timeout,
    )
    _exit_cleanly_on_signals()
    # The settings go to the app as an object; only uvicorn's own workers (below) need them
    # through the environment.
    if forked:
        # lazy: FastAPI and uvicorn are in the server extra
        from vggeo_server.prefork import serve_preforked

        with _metrics_dir(settings.ops.metrics):
            serve_preforked(
                settings,
                host=host,
                port=port,
                workers=workers,
                options={k: v for k, v in options.items() if k not in ("host", "port")},
            )
    elif workers > 1:
        # uvicorn starts each worker as a new interpreter (spawn) that imports the factory by
        # name and calls it without arguments: no object can be handed over, so the settings
        # the command line made travel as VGGEO_* variables, read back by Settings() in each
        # worker (the other settings are there already: they came from the environment).
        os.environ["VGGEO_STORE"] = store
        os.environ["VGGEO_BASE_URL"] = settings.base_url or bind_url(host, port)
        os.environ["VGGEO_STORE_SCHEMA"] = settings.store_schema
        with _metrics_dir(settings.ops.metrics):
            uvicorn.run("vggeo_server.app:create_app", factory=True, workers=workers, **options)
    else:
        uvicorn.run(create_app(settings, service=service), **options)


def _display(store: str) -> str:
    """The store for a message: a database URL without its password."""
    parts = urlsplit(store)
    if parts.password:
        return store.replace(f":{parts.password}@", ":***@", 1)
    return store


def _checked_settings(
    store: str, base_url: str | None, host: str, port: int, schema: str = "public"
) -> Settings:
    """The server settings from the options and VGGEO_* variables, checked before anything
    starts: a bad setting, keys file or JWKS setting is one line and exit 2."""
    # lazy: keeps vggeo --help fast
    from pydantic import ValidationError

    # lazy: the settings' modules load FastAPI (server extra)
    from vggeo_server.settings import Settings, bind_url, settings_error

    try:
        settings = Settings(
            store=store, base_url=base_url or bind_url(host, port), store_schema=schema
        )
        if settings.auth.enabled:
            # lazy: vggeo_server.auth loads FastAPI and PyJWT (server extra)
            from vggeo_server.auth import Authenticator

            Authenticator(settings.auth)  # reads the keys file: refuse a bad one now
    except ValidationError as err:
        raise SettingsError(f"settings: {settings_error(err)}") from None
    return settings


def _log_config() -> dict:
    """uvicorn's logging plus the JSON access log on stdout (uvicorn's own access log is off:
    it would write query strings, keys included)."""
    # lazy: uvicorn is in the server extra
    from uvicorn.config import LOGGING_CONFIG

    config = {
        **LOGGING_CONFIG,
        "handlers": dict(LOGGING_CONFIG["handlers"]),
        "formatters": dict(LOGGING_CONFIG["formatters"]),
        "loggers": dict(LOGGING_CONFIG["loggers"]),
    }
    config["formatters"]["vggeo_json"] = {"format": "%(message)s"}
    config["handlers"]["vggeo_access"] = {
        "formatter": "vggeo_json",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["vggeo.access"] = {
        "handlers": ["vggeo_access"],
        "level": "INFO",
        "propagate": False,
    }
    # what the server does on its own (derived tables built, reloads after an ingest) is part
    # of operating it: on stderr beside uvicorn's own messages
    for name in ("vggeo", "vggeo_server"):
        config["loggers"][name] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _exit_cleanly_on_signals() -> None:
    """Make SIGTERM/SIGINT end the process with 0 once uvicorn has shut down gracefully.

    uvicorn handles the signal (stop accepting, finish in-flight requests, run the shutdown of
    the app), then raises it again for the handler that was there before it — by default that
    kills the process (exit -15) or raises KeyboardInterrupt. A stop that went as planned is a
    success, so the handler it finds is this one.
    """

    def done(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, done)


class _metrics_dir:
    """A fresh PROMETHEUS_MULTIPROC_DIR for the workers (unless one is set), removed after, so
    /metrics sums the counts of every worker."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Self:
        if self.enabled and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self.tmp = tempfile.TemporaryDirectory(prefix="vggeo-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.tmp.name
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tmp is not None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            self.tmp.cleanup()
