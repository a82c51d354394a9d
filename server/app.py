"""The FastAPI application, built by :func:`create_app` (used by uvicorn ``--factory``, the CLI
and the tests alike).

Resources live in the lifespan: the tile backend (embedded index, PostGIS pool or archive) and
the tile cache are opened on start-up, stored on ``app.state.service``, checked for store
changes every ``reload_interval`` seconds and closed on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from server.errors import add_exception_handlers
from server.fastpath import CachedTileFastPath
from server.routes import TilesFactory
from server.settings import Settings
from vggeo import __version__
from vggeo.tiles.cluster import ClusterOptions
from vggeo.tiles.service import TileService

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def open_backend(settings: Settings):
    """Open the backend the settings name (the bundled sample store by default)."""
    from vggeo.tiles import open_source
    from vggeo.tiles.sample import default_store

    spec = settings.store or str(default_store())
    options = {}
    if not spec.lower().endswith((".pmtiles", ".mbtiles")):
        options["options"] = ClusterOptions(cluster_maxzoom=settings.cluster_maxzoom)
    if spec.startswith(("postgresql://", "postgres://")):
        options["pool_size"] = settings.pool_size
    source = open_source(spec, **options)
    if settings.warm:
        source.warm()
    return source


async def _watch(service: TileService, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(service.refresh)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the tile server.

    Parameters
    ----------
    settings
        Configuration; default: read from ``VGGEO_*`` environment variables.
    """
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await asyncio.to_thread(
            TileService, partial(open_backend, settings), cache_bytes=settings.cache_bytes)
        app.state.service = service
        watcher = None
        if settings.reload_interval > 0:
            watcher = asyncio.create_task(_watch(service, settings.reload_interval))
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            service.close()

    app = FastAPI(
        title="vggeo tile server",
        version=__version__,
        description="Vector tiles of Swedish residences and land-regulating provisions: XYZ "
        "(Web Mercator) and OGC API – Tiles paths (WebMercatorQuad, and SWEREF99TM matching "
        "Lantmäteriet's matrix set \"3006\"), TileJSON 3.0.0, a MapLibre style and a map page. "
        "Empty tiles are answered with 204 No Content.",
        lifespan=lifespan,
        openapi_tags=[
            {"name": "Tiles", "description": "Vector tiles and TileJSON."},
            {"name": "OGC API - Tiles", "description": "OGC API – Tiles paths and matrix sets."},
            {"name": "Metadata", "description": "Layers, style, health."},
            {"name": "Map", "description": "The map page."},
        ],
    )  # fmt: skip
    add_exception_handlers(app)
    # Added first, so it runs inside CORS (Starlette: the last added middleware is outermost).
    app.add_middleware(CachedTileFastPath, cache_control=settings.cache_control)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "HEAD", "OPTIONS"], allow_headers=["*"],
                           expose_headers=["ETag", "Content-Encoding"])  # fmt: skip
    factory = TilesFactory(cache_control=settings.cache_control, minzoom=settings.minzoom,
                           maxzoom=settings.maxzoom)  # fmt: skip
    app.include_router(factory.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", operation_id="getMapPage", tags=["Map"], summary="The map page",
             response_class=FileResponse)  # fmt: skip
    def map_page() -> FileResponse:
        """An HTML page with a MapLibre GL map of residences and regulations, a legend,
        popups and filter controls (MapLibre is served locally from /static)."""
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return app
