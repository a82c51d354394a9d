"""Routers, built from configurable objects (a layer registry, a set of grids).

:class:`TilesFactory` turns its fields into an :class:`APIRouter` (``factory.router``), which
can be mounted on a bare ``FastAPI()`` in a test. Route bodies only call the tile service and
shape the response; tiles come from the same :mod:`vggeo.tiles` calls a Python user makes.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from server import tilejson
from server.dependencies import (
    TileParams,
    filters_param,
    get_service,
    grid_param,
    layer_param,
    ogc_tile,
    xyz_tile,
)
from server.errors import NotFound
from vggeo.tiles.grids import Grid, grid_ids, tile_matrix_set
from vggeo.tiles.layers import Composite, Filters, Layer, layer_ids
from vggeo.tiles.service import TileService

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"

TILE_RESPONSES = {
    200: {"content": {MVT_MEDIA_TYPE: {}}, "description": "A Mapbox Vector Tile (gzip when the "
          "client accepts it: `Content-Encoding: gzip`)."},
    204: {"description": "The tile holds no feature (empty area or everything filtered out)."},
    304: {"description": "Not modified (the `If-None-Match` ETag still matches)."},
    400: {"description": "Malformed or out-of-range tile address, or an invalid filter."},
    404: {"description": "Unknown layer or tile matrix set."},
}  # fmt: skip


def _query(request: Request) -> str:
    q = urlencode([(k, v) for k, v in request.query_params.multi_items()])
    return f"?{q}" if q else ""


@dataclass
class TilesFactory:
    """Builds the tile routes.

    Attributes
    ----------
    layers
        Layer and composite ids served.
    grids
        Tile matrix set ids served through the OGC paths.
    cache_control
        Cache-Control of tile responses.
    """

    layers: list[str] = field(default_factory=layer_ids)
    grids: list[str] = field(default_factory=grid_ids)
    cache_control: str = "public, max-age=300"
    minzoom: int = 0
    maxzoom: int = 16
    router: APIRouter = field(default_factory=APIRouter)

    def __post_init__(self) -> None:
        self.register_routes()

    # --- helpers -------------------------------------------------------------------------------

    async def _tile_response(self, request: Request, service: TileService,
                             layer: Layer | Composite, t: TileParams,
                             filters: Filters) -> Response:  # fmt: skip
        if layer.id not in self.layers:
            raise NotFound(f"layer {layer.id!r} is not served here")
        # A cache hit is answered on the event loop; rendering (CPU-bound) goes to the pool.
        tile = service.cached(layer.id, t.z, t.x, t.y, grid=t.grid, filters=filters)
        if tile is None:
            tile = await run_in_threadpool(service.get, layer.id, t.z, t.x, t.y, grid=t.grid,
                                           filters=filters)  # fmt: skip
        headers = {"Cache-Control": self.cache_control, "ETag": tile.etag,
                   "Vary": "Accept-Encoding"}  # fmt: skip
        if request.headers.get("if-none-match") in (tile.etag, f"W/{tile.etag}"):
            return Response(status_code=304, headers=headers)
        if tile.empty:
            return Response(status_code=204, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(tile.body, media_type=MVT_MEDIA_TYPE, headers=headers)
        return Response(gzip.decompress(tile.body), media_type=MVT_MEDIA_TYPE, headers=headers)

    # --- routes --------------------------------------------------------------------------------

    def register_routes(self) -> None:
        r = self.router

        @r.get("/tiles/{layer}/{z}/{x}/{y}.{fmt}", operation_id="getTile", tags=["Tiles"],
               summary="A vector tile (XYZ, Web Mercator)", responses=TILE_RESPONSES,
               response_class=Response)  # fmt: skip
        async def get_tile(
            request: Request,
            service: Annotated[TileService, Depends(get_service)],
            layer: Annotated[Layer | Composite, Depends(layer_param)],
            t: Annotated[TileParams, Depends(xyz_tile)],
            filters: Annotated[Filters, Depends(filters_param)],
        ) -> Response:
            """Mapbox Vector Tile of a layer or the composite at z/x/y (extent 4096). Residences
            are clustered below the cluster zoom with exact `point_count` and `count_<home
            type>`; every feature carries its id as the `id` property (for `promoteId`). An
            empty tile is answered with **204 No Content**."""
            return await self._tile_response(request, service, layer, t, filters)

        @r.get("/tiles/{layer}.json", operation_id="getTileJSON", tags=["Tiles"],
               summary="TileJSON 3.0.0 of a layer")  # fmt: skip
        def get_tilejson(
            request: Request,
            service: Annotated[TileService, Depends(get_service)],
            layer: Annotated[Layer | Composite, Depends(layer_param)],
            filters: Annotated[Filters, Depends(filters_param)],
        ) -> dict:
            """TileJSON with `vector_layers` (fields), bounds, center and zoom range; filter
            parameters given here are carried into the `tiles` URL."""
            base = str(request.base_url).rstrip("/")
            url = f"{base}/tiles/{layer.id}/{{z}}/{{x}}/{{y}}.mvt{_query(request)}"
            return tilejson.tilejson(layer, service.source, url, minzoom=self.minzoom,
                                     maxzoom=self.maxzoom)  # fmt: skip

        @r.get("/layers", operation_id="getLayers", tags=["Metadata"],
               summary="Layers, their attributes and filters")  # fmt: skip
        def get_layers(service: Annotated[TileService, Depends(get_service)]) -> dict:
            """Every layer and composite with its attributes, accepted filters and the values
            each set filter accepts in the loaded data."""
            return tilejson.layers_doc(self.layers, service.source)

        @r.get("/style.json", operation_id="getStyle", tags=["Metadata"],
               summary="MapLibre style of residences and regulations")  # fmt: skip
        def get_style(request: Request, service: Annotated[TileService, Depends(get_service)]):
            """A MapLibre GL style (v8) drawing regulations by provision type and residences by
            home type, with clusters sized by `point_count`."""
            base = str(request.base_url).rstrip("/")
            return tilejson.style(base, service.source)

        @r.get("/tileMatrixSets", operation_id="getTileMatrixSets", tags=["OGC API - Tiles"],
               summary="Tile matrix sets served")  # fmt: skip
        def get_tms_list(request: Request) -> dict:
            base = str(request.base_url).rstrip("/")
            return {"tileMatrixSets": [
                {"id": g, "title": tile_matrix_set(g).title,
                 "links": [{"href": f"{base}/tileMatrixSets/{g}", "rel": "self",
                            "type": "application/json"}]}
                for g in self.grids]}  # fmt: skip

        @r.get("/tileMatrixSets/{tms}", operation_id="getTileMatrixSet",
               tags=["OGC API - Tiles"], summary="A tile matrix set (OGC TMS 2.0)")  # fmt: skip
        def get_tms(grid: Annotated[Grid, Depends(grid_param)]) -> Response:
            """The definition in OGC Two Dimensional Tile Matrix Set 2.0 JSON. For `SWEREF99TM`
            the `pointOfOrigin` is in EPSG:3006 axis order: northing, easting."""
            body = tile_matrix_set(grid.id).model_dump_json(exclude_none=True)
            return Response(body, media_type="application/json")

        @r.get("/collections", operation_id="getCollections", tags=["OGC API - Tiles"],
               summary="Collections (one per layer)")  # fmt: skip
        def get_collections(request: Request,
                            service: Annotated[TileService, Depends(get_service)]) -> dict:
            base = str(request.base_url).rstrip("/")
            return {"collections": [tilejson.collection(lid, base, self.grids, service.source)
                                    for lid in self.layers]}  # fmt: skip

        @r.get("/collections/{layer}", operation_id="getCollection", tags=["OGC API - Tiles"],
               summary="A collection")  # fmt: skip
        def get_collection(request: Request,
                           service: Annotated[TileService, Depends(get_service)],
                           layer: Annotated[Layer | Composite, Depends(layer_param)]) -> dict:
            base = str(request.base_url).rstrip("/")
            return tilejson.collection(layer.id, base, self.grids, service.source)

        @r.get("/collections/{layer}/tiles", operation_id="getCollectionTilesets",
               tags=["OGC API - Tiles"], summary="Tilesets of a collection")  # fmt: skip
        def get_tilesets(request: Request,
                         layer: Annotated[Layer | Composite, Depends(layer_param)]) -> dict:
            base = str(request.base_url).rstrip("/")
            return {"tilesets": [tilejson.tileset(layer.id, g, base) for g in self.grids]}

        @r.get("/collections/{layer}/tiles/{tms}", operation_id="getCollectionTileset",
               tags=["OGC API - Tiles"], summary="A tileset of a collection")  # fmt: skip
        def get_tileset(request: Request,
                        layer: Annotated[Layer | Composite, Depends(layer_param)],
                        grid: Annotated[Grid, Depends(grid_param)]) -> dict:
            base = str(request.base_url).rstrip("/")
            return tilejson.tileset(layer.id, grid.id, base)

        @r.get("/collections/{layer}/tiles/{tms}/{tileMatrix}/{tileRow}/{tileCol}",
               operation_id="getCollectionTile", tags=["OGC API - Tiles"],
               summary="A vector tile (OGC API – Tiles)", responses=TILE_RESPONSES,
               response_class=Response)  # fmt: skip
        async def get_ogc_tile(
            request: Request,
            service: Annotated[TileService, Depends(get_service)],
            layer: Annotated[Layer | Composite, Depends(layer_param)],
            t: Annotated[TileParams, Depends(ogc_tile)],
            filters: Annotated[Filters, Depends(filters_param)],
        ) -> Response:
            """The same tiles on any served matrix set; `SWEREF99TM` (alias `3006`) matches
            Lantmäteriet's WMTS matrix set "3006" (row from the top, column from the left)."""
            return await self._tile_response(request, service, layer, t, filters)

        @r.get("/healthz", operation_id="getHealth", tags=["Metadata"], summary="Health check")
        def healthz(service: Annotated[TileService, Depends(get_service)]) -> JSONResponse:
            """`ok`, the backend kind, its data version and cache statistics."""
            return JSONResponse({"status": "ok", "backend": service.source.kind,
                                 "data_version": service.version,
                                 "cache": service.cache.stats()},
                                headers={"Cache-Control": "no-store"})  # fmt: skip

