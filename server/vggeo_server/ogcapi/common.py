"""OGC API – Common: the landing page, the conformance declaration and the collections."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse

from vggeo.features import FeatureReader
from vggeo.tiles.layers import Composite, Layer, get_layer
from vggeo.tiles.service import TileService
from vggeo_server.auth.middleware import get_access
from vggeo_server.auth.policy import Access, AccessDenied
from vggeo_server.auth.views import layer_view
from vggeo_server.dependencies import FeaturesDep, base_url, get_service, layer_param
from vggeo_server.errors import NotFound, error_response
from vggeo_server.ogcapi import catalog, docs
from vggeo_server.ogcapi.config import OGCConfig
from vggeo_server.responses import json_response

STATIC = Path(__file__).resolve().parent.parent / "static"
JSON_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/json": {"schema": {"type": "object"}}},
        "description": "The document.",
    },
    304: {"description": "Not modified (`If-None-Match` matches the ETag)."},
}
FormatParam = Annotated[
    Literal["json"] | None, Query(description="Response format: `json` (the default of this path).")
]


def wants_json(request: Request, f: str | None) -> bool:
    """Whether the landing page should be JSON: ``f=json``, or an ``Accept`` header that prefers
    JSON to HTML (GDAL, QGIS and other API clients send ``application/json``). Browsers, and
    ``*/*``, get the map page."""
    if f is not None:
        return f == "json"
    best_html = best_json = 0.0
    for item in request.headers.get("accept", "").split(","):
        kind, _, params = item.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        kind = kind.strip().lower()
        if kind in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, q)
        elif kind in ("application/json", "application/geo+json"):
            best_json = max(best_json, q)
    return best_json > best_html


def sees_layer(access: Access, layer: Layer | Composite) -> bool:
    try:
        layer_view(access, layer)
    except AccessDenied:
        return False
    return True


def has_features(features: FeatureReader | None, layer: Layer | Composite) -> bool:
    return features is not None and isinstance(layer, Layer)


def register(r: APIRouter, config: OGCConfig) -> None:
    """Add ``/``, ``/conformance``, ``/collections`` and ``/collections/{id}``."""

    def collection_doc(
        base: str, layer: Layer | Composite, service: TileService, features: FeatureReader | None
    ) -> dict:
        return docs.collection(
            base,
            layer,
            bounds_wgs84=catalog.data_bounds(service.source),
            features=has_features(features, layer),
        )

    @r.get(
        "/",
        operation_id="getLandingPage",
        tags=["OGC API"],
        summary="Landing page (JSON), or the map page for browsers",
        responses={
            200: {
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "text/html": {"schema": {"type": "string"}},
                },
                "description": "JSON for API clients, the map page for browsers.",
            },
            304: JSON_OK[304],
        },
        response_class=Response,
    )
    def landing(
        request: Request,
        base: Annotated[str, Depends(base_url)],
        features: FeaturesDep,
        f: Annotated[
            Literal["json", "html"] | None,
            Query(
                description="`json` or `html`; without it, the `Accept` header decides "
                "(`application/json` gets JSON, a browser the map page)."
            ),
        ] = None,
    ) -> Response:
        """The OGC API landing page: links to the API definition, the conformance declaration,
        the collections and the tile matrix sets. A browser (or `f=html`) gets the map page: a
        MapLibre GL map of residences and regulations, served locally from /static."""
        if not wants_json(request, f):
            return FileResponse(
                STATIC / "index.html", media_type="text/html", headers={"Vary": "Accept"}
            )
        doc = docs.landing(
            base, title=config.title, description=config.description, features=features is not None
        )
        return json_response(request, doc, headers={"Vary": "Accept"})

    @r.get(
        "/conformance",
        operation_id="getConformance",
        tags=["OGC API"],
        summary="Conformance classes",
        responses=JSON_OK,
        response_class=Response,
    )
    def conformance(request: Request, features: FeaturesDep, f: FormatParam = None) -> Response:
        """The OGC API conformance classes this service implements."""
        return json_response(request, docs.conformance(features=features is not None))

    @r.get(
        "/collections",
        operation_id="getCollections",
        tags=["OGC API"],
        summary="Collections (one per layer)",
        responses=JSON_OK,
        response_class=Response,
    )
    def collections(
        request: Request,
        service: Annotated[TileService, Depends(get_service)],
        base: Annotated[str, Depends(base_url)],
        features: FeaturesDep,
        access: Annotated[Access, Depends(get_access)],
        f: FormatParam = None,
    ) -> Response:
        """Every collection the caller may see: the tile layers (with tilesets) — the plain
        ones also with features (`items`) when the store is a vggeo store."""
        items = [
            collection_doc(base, get_layer(lid), service, features)
            for lid in catalog.served_layers(service.source, config.layers)
            if sees_layer(access, get_layer(lid))
        ]
        return json_response(request, docs.collections(base, items, features=features is not None))

    @r.get(
        "/collections/{layer}",
        operation_id="getCollection",
        tags=["OGC API"],
        summary="A collection",
        response_class=Response,
        responses={**JSON_OK, 404: error_response(404)},
    )
    def collection(
        request: Request,
        service: Annotated[TileService, Depends(get_service)],
        layer: Annotated[Layer | Composite, Depends(layer_param)],
        base: Annotated[str, Depends(base_url)],
        features: FeaturesDep,
        f: FormatParam = None,
    ) -> Response:
        """A collection: extent (CRS84), links to its tilesets and (plain layers) its items, the
        CRSs its features can be had in and the storage CRS (EPSG:3006)."""
        if layer.id not in catalog.served_layers(service.source, config.layers):
            raise NotFound(f"collection {layer.id!r} is not served here")
        return json_response(request, collection_doc(base, layer, service, features))
