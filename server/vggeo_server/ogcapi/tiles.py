"""OGC API – Tiles Part 1: tile matrix sets, a collection's tilesets, tileset metadata, tiles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from vggeo.tiles.grids import Grid
from vggeo.tiles.layers import Composite, Filters, Layer
from vggeo.tiles.service import TileService
from vggeo_server.auth.middleware import get_access
from vggeo_server.auth.policy import Access
from vggeo_server.auth.views import layer_view
from vggeo_server.dependencies import (
    TileParams,
    base_url,
    filters_param,
    get_service,
    grid_param,
    layer_param,
    ogc_tile,
)
from vggeo_server.errors import NotFound, error_response
from vggeo_server.ogcapi import catalog, docs
from vggeo_server.ogcapi.common import JSON_OK
from vggeo_server.ogcapi.config import OGCConfig
from vggeo_server.responses import json_response
from vggeo_server.routes import TILE_RESPONSES, query_string, render_tile

NOT_FOUND = {**JSON_OK, 404: error_response(404)}


def register(r: APIRouter, config: OGCConfig) -> None:
    """Add ``/tileMatrixSets…`` and ``/collections/{id}/tiles…``."""

    def served(layer: Layer | Composite, service: TileService, grid: Grid | None = None) -> None:
        if layer.id not in catalog.served_layers(service.source, config.layers):
            raise NotFound(f"collection {layer.id!r} is not served here")
        if grid is not None and grid.id not in catalog.served_grids(
            service.source, list(config.grids)
        ):
            raise NotFound(f"tile matrix set {grid.id!r} is not served for this store")

    def limits(service: TileService, grid_id: str) -> docs.TileMatrixLimits:
        lo, hi = catalog.zoom_range(service.source, grid_id, config.minzoom, config.maxzoom)
        bounds = catalog.grid_bounds(catalog.data_bounds(service.source), grid_id)
        return docs.TileMatrixLimits(lo, hi, bounds)

    @r.get(
        "/tileMatrixSets",
        operation_id="getTileMatrixSets",
        tags=["OGC API - Tiles"],
        summary="Tile matrix sets served",
        responses=JSON_OK,
        response_class=Response,
    )
    def tms_list(request: Request, base: Annotated[str, Depends(base_url)]) -> Response:
        """WebMercatorQuad and SWEREF99TM (Lantmäteriet's matrix set "3006"), with links."""
        return json_response(request, docs.tile_matrix_sets(base, config.grids))

    @r.get(
        "/tileMatrixSets/{tms}",
        operation_id="getTileMatrixSet",
        tags=["OGC API - Tiles"],
        summary="A tile matrix set (OGC TMS 2.0)",
        responses=NOT_FOUND,
        response_class=Response,
    )
    def tms(request: Request, grid: Annotated[Grid, Depends(grid_param)]) -> Response:
        """The definition in OGC Two Dimensional Tile Matrix Set 2.0 JSON. For `SWEREF99TM`
        the `pointOfOrigin` is in EPSG:3006 axis order: northing, easting."""
        return json_response(request, docs.tile_matrix_set_document(grid.id))

    @r.get(
        "/collections/{layer}/tiles",
        operation_id="getCollectionTilesets",
        tags=["OGC API - Tiles"],
        summary="Tilesets of a collection",
        responses=NOT_FOUND,
        response_class=Response,
    )
    def tilesets(
        request: Request,
        service: Annotated[TileService, Depends(get_service)],
        layer: Annotated[Layer | Composite, Depends(layer_param)],
        filters: Annotated[Filters, Depends(filters_param)],
        base: Annotated[str, Depends(base_url)],
    ) -> Response:
        """One vector tileset per tile matrix set, each linking to its metadata; filter
        parameters given here are carried into the links."""
        served(layer, service)
        grids = catalog.served_grids(service.source, list(config.grids))
        return json_response(request, docs.tilesets(base, layer.id, grids, query_string(request)))

    @r.get(
        "/collections/{layer}/tiles/{tms}",
        operation_id="getCollectionTileset",
        tags=["OGC API - Tiles"],
        summary="Tileset metadata of a collection",
        responses=NOT_FOUND,
        response_class=Response,
    )
    def tileset(
        request: Request,
        service: Annotated[TileService, Depends(get_service)],
        layer: Annotated[Layer | Composite, Depends(layer_param)],
        grid: Annotated[Grid, Depends(grid_param)],
        filters: Annotated[Filters, Depends(filters_param)],
        base: Annotated[str, Depends(base_url)],
        access: Annotated[Access, Depends(get_access)],
    ) -> Response:
        """The tileset: `tileMatrixSetLimits` (the rows and columns holding data per level),
        the MVT layers with their fields (those the caller may see), geometry type and zoom
        range, and the templated tile URL."""
        served(layer, service, grid)
        doc = docs.tileset(
            base,
            layer,
            grid.id,
            limits=limits(service, grid.id),
            home_types=catalog.home_types(service.source),
            bounds_wgs84=catalog.data_bounds(service.source),
            query=query_string(request),
        )
        doc["layers"] = layer_view(access, layer).vector_layers(doc["layers"])
        return json_response(request, doc)

    @r.get(
        "/collections/{layer}/tiles/{tms}/{tileMatrix}/{tileRow}/{tileCol}",
        operation_id="getCollectionTile",
        tags=["OGC API - Tiles"],
        summary="A vector tile (OGC API – Tiles)",
        responses=TILE_RESPONSES,
        response_class=Response,
    )
    async def tile(
        request: Request,
        service: Annotated[TileService, Depends(get_service)],
        layer: Annotated[Layer | Composite, Depends(layer_param)],
        t: Annotated[TileParams, Depends(ogc_tile)],
        filters: Annotated[Filters, Depends(filters_param)],
        access: Annotated[Access, Depends(get_access)],
    ) -> Response:
        """The same tiles on any served matrix set; `SWEREF99TM` (alias `3006`) matches
        Lantmäteriet's WMTS matrix set "3006" (row from the top, column from the left)."""
        served(layer, service)
        return await render_tile(
            request, service, layer, t, filters, cache_control=config.cache_control, access=access
        )
