"""The FastAPI application, built by :func:`create_app` (used by uvicorn ``--factory``, the CLI
and the tests alike).

Resources live in the lifespan: the store named by the settings (:func:`vggeo.store.open`), its
tile backend (:func:`vggeo.tiles.source_for`: memory index, PostGIS pool or archive) and the tile
cache are opened on start-up, stored on ``app.state.service``, checked for a new data version of
the store every ``reload_interval`` seconds and closed on shutdown; the feature reader (over the
same store, opened again for it, when it is a vggeo GeoPackage or PostGIS store) on
``app.state.features``.

Middleware, outermost first: request id, access log and metrics (:mod:`vggeo_server.ops`), HEAD as
GET (:mod:`vggeo_server.middleware`), CORS, authentication (:mod:`vggeo_server.auth`, when configured), the
cached-tile fast path (:mod:`vggeo_server.fastpath`), the trailing-slash redirect (relative, not
built from the Host header: :mod:`vggeo_server.middleware`). Access control sits inside CORS so that
preflights and refusals carry CORS headers, and outside the fast path so that a cached tile is
only ever answered to a caller allowed to see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

import vggeo.store
from vggeo import __version__
from vggeo.errors import StoreError
from vggeo.features import FeatureReader
from vggeo.store import DataSource, Store
from vggeo.tiles import TileSource, source_for
from vggeo.tiles.cluster import ClusterOptions
from vggeo.tiles.sample import default_store
from vggeo.tiles.service import TileService
from vggeo_server.auth.middleware import (
    Authenticator,
    AuthMiddleware,
    document_security,
    install_handlers,
)
from vggeo_server.basemap import basemap_router
from vggeo_server.errors import add_exception_handlers, document_errors
from vggeo_server.fastpath import CachedTileFastPath
from vggeo_server.http import CacheControlPolicy
from vggeo_server.middleware import HeadAsGet, RelativeSlashRedirect
from vggeo_server.ogcapi import OGCConfig, ogc_router
from vggeo_server.ops import (
    Readiness,
    Telemetry,
    TelemetryMiddleware,
    note_route,
    ops_router,
    store_checks,
)
from vggeo_server.render import RenderQueue
from vggeo_server.routes import TilesFactory
from vggeo_server.settings import Settings

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def open_data(settings: Settings) -> DataSource:
    """The store the settings name (the bundled sample store by default)."""
    return vggeo.store.open(settings.store or str(default_store()), schema=settings.store_schema)


def open_backend(settings: Settings, store: DataSource) -> TileSource:
    """The tile backend of ``store`` with the settings' clustering and pool size, warmed if the
    settings ask for it."""
    source = source_for(
        store,
        ClusterOptions(cluster_maxzoom=settings.cluster_maxzoom),
        pool_size=settings.pool_size,
    )
    if settings.warm:
        source.warm()
    return source


def open_service(settings: Settings) -> TileService:
    """The store, its tile backend and the tile cache, as the settings say; closing the service
    closes the store."""
    store = open_data(settings)
    try:
        return TileService(
            partial(open_backend, settings, store), cache_bytes=settings.cache_bytes, store=store
        )
    except BaseException:
        store.close()
        raise


def open_features(settings: Settings) -> FeatureReader | None:
    """A :class:`~vggeo.features.FeatureReader` over the store, or ``None`` when the store is
    not a vggeo store (a tile archive, a GeoParquet file, a plain GeoPackage) or features are
    switched off."""
    if not settings.features or vggeo.store.backend_of(settings.store or "") in (
        "archive",
        "parquet",
    ):
        return None
    try:
        store = open_data(settings)
    except StoreError as err:
        log.info("serving tiles only: %s", err)
        return None
    if not isinstance(store, Store):
        log.info("serving tiles only: %s is not a vggeo store", store.location)
        store.close()
        return None
    return FeatureReader(store)


async def _watch(service: TileService, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(service.refresh)


def _start_listener(service: TileService) -> threading.Event | None:
    """Reload as soon as an ingest by any process commits (PostGIS NOTIFY), in a daemon thread.

    The version poll (``reload_interval``) stays on as the fallback for a lost notification
    (e.g. while the listening connection was being re-opened).
    """
    source = service.source
    if not hasattr(source, "listen"):
        return None
    stop = threading.Event()

    def on_ingest(version: str) -> None:
        log.info("ingest committed (data version %s): reloading", version)
        service.refresh()

    threading.Thread(
        target=source.listen, args=(on_ingest, stop), name="vggeo-listen", daemon=True
    ).start()
    return stop


def create_app(settings: Settings | None = None, *, service: TileService | None = None) -> FastAPI:
    """Build the tile server.

    Parameters
    ----------
    settings
        Configuration; default: read from ``VGGEO_*`` environment variables.
    service
        A tile service loaded already (by the parent of forked workers, which share its index:
        :mod:`vggeo_server.prefork`); default: opened from the settings at start-up.
    """
    settings = settings or Settings()
    prebuilt = service
    authenticator = Authenticator(settings.auth) if settings.auth.enabled else None
    telemetry = Telemetry() if settings.ops.metrics else None
    readiness = Readiness(settings.ops.ready_timeout)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if prebuilt is not None:
            service = prebuilt
        else:
            service = await asyncio.to_thread(open_service, settings)
        app.state.service = service
        app.state.render.fit(service.source)
        app.state.features = await asyncio.to_thread(open_features, settings)
        if authenticator is not None:
            await asyncio.to_thread(authenticator.start)
        watcher = None
        if settings.reload_interval > 0:
            watcher = asyncio.create_task(_watch(service, settings.reload_interval))
        listener = _start_listener(service) if settings.listen else None
        try:
            yield
        finally:
            if listener is not None:
                listener.set()
            if watcher is not None:
                watcher.cancel()
            # in a thread: a backend closes its asyncio pool on this loop (tile_async)
            await asyncio.to_thread(service.close)
            if app.state.features is not None:
                app.state.features.store.close()

    app = FastAPI(
        title="vggeo tile server",
        version=__version__,
        description="Swedish residences and land-regulating provisions as an OGC API: Tiles "
        '(WebMercatorQuad, and SWEREF99TM matching Lantmäteriet\'s matrix set "3006") and '
        "Features (GeoJSON in CRS84 or, by `crs`, EPSG:3006 and the other Swedish systems); "
        "XYZ tiles with TileJSON 3.0.0, a MapLibre style and a map page. Empty tiles are "
        "answered with 204 No Content. Every GET path also answers HEAD. Invalid parameters "
        "are answered with 400 and a JSON body naming the parameter.",
        lifespan=lifespan,
        openapi_tags=[
            {"name": "OGC API", "description": "Landing page, conformance, collections."},
            {"name": "OGC API - Tiles", "description": "Tilesets, tiles and matrix sets."},
            {"name": "OGC API - Features", "description": "Features as GeoJSON."},
            {"name": "Tiles", "description": "XYZ vector tiles and TileJSON."},
            {"name": "Metadata", "description": "Layers and style."},
            {"name": "Operations", "description": "Liveness, readiness, metrics."},
        ],
        dependencies=[Depends(note_route)],
    )
    app.state.base_url = settings.base_url
    app.state.render = RenderQueue(settings.render_threads)
    add_exception_handlers(app)
    install_handlers(app, settings.auth.realm)
    # Starlette: the last added middleware is the outermost (see the module docstring).
    cache_control = CacheControlPolicy(settings.cache_control, settings.cache_control_zooms)
    app.add_middleware(RelativeSlashRedirect, router=app.router)
    app.add_middleware(CachedTileFastPath, cache_control=cache_control)
    if authenticator is not None:
        app.add_middleware(AuthMiddleware, authenticator=authenticator)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=[
                "ETag",
                "Content-Encoding",
                "Content-Crs",
                "X-Request-ID",
                "WWW-Authenticate",
            ],
        )
    app.add_middleware(HeadAsGet)
    app.add_middleware(
        TelemetryMiddleware, telemetry=telemetry, log_requests=settings.ops.access_log
    )
    for name, check in store_checks(app, stale_grace=settings.ops.stale_grace).items():
        readiness.add(name, check)
    if authenticator is not None:
        readiness.add("auth", authenticator.readiness)
    app.include_router(ops_router(settings.ops, readiness=readiness, telemetry=telemetry))
    factory = TilesFactory(
        cache_control=cache_control,
        minzoom=settings.minzoom,
        maxzoom=settings.maxzoom,
        basemap=settings.basemap,
    )
    app.include_router(factory.router)
    app.include_router(
        ogc_router(
            OGCConfig(
                title="vggeo",
                cache_control=cache_control,
                minzoom=settings.minzoom,
                maxzoom=settings.maxzoom,
                default_limit=settings.features_default_limit,
                max_limit=settings.features_max_limit,
            )
        )
    )
    if settings.basemap == "builtin":
        app.include_router(basemap_router(settings.basemap_archive))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def openapi() -> dict:
        if app.openapi_schema is None:
            spec = document_errors(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                )
            )
            if authenticator is not None:
                spec = document_security(spec, settings.auth)
            app.openapi_schema = spec
        return app.openapi_schema

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon")

    # FastAPI's documented way to replace the schema generator is assigning the method
    app.openapi = openapi  # type: ignore[method-assign]
    return app
