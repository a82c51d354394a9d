"""Routers of the XYZ tile API, built from configurable objects (a layer registry, a set of grids).

:class:`TilesFactory` turns its fields into an :class:`APIRouter` (``factory.router``), which
can be mounted on a bare ``FastAPI()`` in a test. Route bodies only call the tile service and
shape the response; tiles come from the same :mod:`vggeo.tiles` calls a Python user makes. The
OGC API routes (landing page, collections, tilesets, features) live in :mod:`vggeo_server.ogcapi`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response

from vggeo.tiles.layers import Composite, Filters, Layer, layer_ids
from vggeo.tiles.service import TileService
from vggeo_server import tilejson
from vggeo_server.auth.middleware import get_access
from vggeo_server.auth.policy import Access
from vggeo_server.auth.views import (
    cached_view_tile,
    layer_view,
    restrict_layers_doc,
    view_tile,
    visible_style_layers,
)
from vggeo_server.dependencies import (
    TileParams,
    base_url,
    filters_param,
    get_service,
    layer_param,
    xyz_tile,
)
from vggeo_server.errors import NotFound, error_response
from vggeo_server.http import CacheControlPolicy
from vggeo_server.render import render_queue
from vggeo_server.responses import MVT_MEDIA_TYPE, json_response, tile_response

TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {MVT_MEDIA_TYPE: {}},
        "description": "A Mapbox Vector Tile (gzip when the "
        "client's `Accept-Encoding` prefers it: `Content-Encoding: gzip`; the gzip and the "
        "identity body have different ETags).",
    },
    204: {"description": "The tile holds no feature (empty area or everything filtered out)."},
    304: {"description": "Not modified (`If-None-Match` matches the ETag, or is `*`)."},
    400: error_response(400, "Malformed or out-of-range tile address, or an invalid filter."),
    404: error_response(404, "Unknown layer or tile matrix set."),
    406: error_response(406),
}
JSON_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": {"type": "object"}}}},
    304: {"description": "Not modified (`If-None-Match` matches the ETag)."},
}


def query_string(request: Request) -> str:
    """The request's query string, re-encoded (``?…``, or ``""``)."""
    q = urlencode([(k, v) for k, v in request.query_params.multi_items()])
    return f"?{q}" if q else ""


async def render_tile(
    request: Request,
    service: TileService,
    layer: Layer | Composite,
    t: TileParams,
    filters: Filters,
    *,
    cache_control: str | CacheControlPolicy,
    access: Access,
) -> Response:
    """The tile response as the caller may see it (see :mod:`vggeo_server.auth.views`): a cache hit
    on the event loop, rendering (CPU-bound) in the pool."""
    view = layer_view(access, layer)
    tile = cached_view_tile(service, layer, t.z, t.x, t.y, grid=t.grid, filters=filters, view=view)
    request.state.cache = "miss" if tile is None else "hit"
    if tile is None:
        tile = await render_queue(request.app.state).run(
            view_tile, service, layer, t.z, t.x, t.y, grid=t.grid, filters=filters, view=view
        )
    if isinstance(cache_control, CacheControlPolicy):
        cache_control = cache_control.for_zoom(t.z)
    return tile_response(request, tile, cache_control=cache_control)


@dataclass
class TilesFactory:
    """Builds the XYZ tile routes.

    Attributes
    ----------
    layers
        Layer and composite ids served.
    cache_control
        Cache-Control of tile responses.
    minzoom, maxzoom
        Zoom range advertised in TileJSON.
    """

    layers: list[str] = field(default_factory=layer_ids)
    cache_control: str | CacheControlPolicy = "public, max-age=300"
    minzoom: int = 0
    maxzoom: int = 16
    basemap: str = "builtin"
    router: APIRouter = field(default_factory=APIRouter)

    def __post_init__(self) -> None:
        self.register_routes()

    def _served(self, layer: Layer | Composite, service: TileService) -> Layer | Composite:
        # A tile archive serves only what it holds (see tilejson.served_layer_ids).
        if layer.id not in tilejson.served_layer_ids(self.layers, service.source):
            raise NotFound(f"layer {layer.id!r} is not served here")
        return layer

    def register_routes(self) -> None:
        r = self.router

        @r.get(
            "/tiles/{layer}/{z}/{x}/{y}.{fmt}",
            operation_id="getTile",
            tags=["Tiles"],
            summary="A vector tile (XYZ, Web Mercator)",
            responses=TILE_RESPONSES,
            response_class=Response,
        )
        async def get_tile(
            request: Request,
            service: Annotated[TileService, Depends(get_service)],
            layer: Annotated[Layer | Composite, Depends(layer_param)],
            t: Annotated[TileParams, Depends(xyz_tile)],
            filters: Annotated[Filters, Depends(filters_param)],
            access: Annotated[Access, Depends(get_access)],
        ) -> Response:
            """Mapbox Vector Tile of a layer or the composite at z/x/y (extent 4096). Residences
            are clustered below the cluster zoom with exact `point_count` and `count_<home
            type>`; every feature carries its id as the `id` property (for `promoteId`). An
            empty tile is answered with **204 No Content**."""
            return await render_tile(
                request,
                service,
                self._served(layer, service),
                t,
                filters,
                cache_control=self.cache_control,
                access=access,
            )

        @r.get(
            "/tiles/{layer}.json",
            operation_id="getTileJSON",
            tags=["Tiles"],
            summary="TileJSON 3.0.0 of a layer",
            responses={**JSON_RESPONSES, 404: error_response(404)},
            response_class=Response,
        )
        def get_tilejson(
            request: Request,
            service: Annotated[TileService, Depends(get_service)],
            layer: Annotated[Layer | Composite, Depends(layer_param)],
            filters: Annotated[Filters, Depends(filters_param)],
            base: Annotated[str, Depends(base_url)],
            access: Annotated[Access, Depends(get_access)],
        ) -> Response:
            """TileJSON with `vector_layers` (fields), bounds, center and zoom range; filter
            parameters given here are carried into the `tiles` URL, which is built from the
            configured public base URL. For a tile archive: the archive's own zoom range and
            layers (clients overzoom past its deepest zoom). Lists only the layers and fields the
            caller may see."""
            self._served(layer, service)
            view = layer_view(access, layer)
            url = f"{base}/tiles/{layer.id}/{{z}}/{{x}}/{{y}}.mvt{query_string(request)}"
            doc = tilejson.tilejson(
                layer, service.source, url, minzoom=self.minzoom, maxzoom=self.maxzoom
            )
            doc["vector_layers"] = view.vector_layers(doc["vector_layers"])
            return json_response(request, doc)

        @r.get(
            "/layers",
            operation_id="getLayers",
            tags=["Metadata"],
            summary="Layers, their attributes and filters",
            responses=JSON_RESPONSES,
            response_class=Response,
        )
        def get_layers(
            request: Request,
            service: Annotated[TileService, Depends(get_service)],
            access: Annotated[Access, Depends(get_access)],
        ) -> Response:
            """Every layer and composite the caller may see, with its attributes, accepted
            filters and the values each set filter accepts in the loaded data."""
            doc = tilejson.layers_doc(self.layers, service.source)
            doc = restrict_layers_doc(doc, access, service.source.home_types())
            return json_response(request, doc)

        @r.get(
            "/style.json",
            operation_id="getStyle",
            tags=["Metadata"],
            summary="MapLibre style of residences and regulations",
            responses=JSON_RESPONSES,
            response_class=Response,
        )
        def get_style(
            request: Request,
            service: Annotated[TileService, Depends(get_service)],
            base: Annotated[str, Depends(base_url)],
            access: Annotated[Access, Depends(get_access)],
        ) -> Response:
            """A MapLibre GL style (v8) drawing regulations by provision type and residences by
            home type, with clusters sized and labelled by `point_count`, over the offline
            basemap (or naming an external basemap style in `metadata`); only the layers the
            caller may see."""
            doc = tilejson.style(base, service.source, basemap=self.basemap)
            doc["layers"] = visible_style_layers(doc["layers"], access)
            return json_response(request, doc)
