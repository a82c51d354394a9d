"""OGC API – Features Part 1 and Part 2: a collection's items and single features.

The reading is :class:`vggeo.features.FeatureReader`'s (through the store); a route parses the
parameters, calls it in the thread pool and writes the GeoJSON with its links. Attribute filters
are the tiles' (:func:`vggeo_server.dependencies.filters_param`), so the same query string selects the
same residences or regulations on both.
"""

# No ``from __future__ import annotations``: the route parameters' annotations use the
# configuration (page sizes) of the enclosing function, which FastAPI must see evaluated.

import json
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from vggeo.crs import CRS84, crs_uri
from vggeo.errors import InputError
from vggeo.features import FeaturePage, FeatureReader, feature_types
from vggeo.tiles.layers import Composite, Filters, Layer
from vggeo_server.auth.middleware import get_access
from vggeo_server.auth.policy import Access
from vggeo_server.auth.views import feature_properties
from vggeo_server.dependencies import (
    FeaturesDep,
    base_url,
    filters_param,
    known_parameters,
    layer_param,
)
from vggeo_server.errors import NotFound, error_response
from vggeo_server.ogcapi import docs
from vggeo_server.ogcapi.config import OGCConfig
from vggeo_server.responses import GEOJSON_MEDIA_TYPE, json_response

_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?", re.ASCII)
_GEOJSON_OK = {
    "content": {GEOJSON_MEDIA_TYPE: {"schema": {"type": "object"}}},
    "headers": {
        "Content-Crs": {
            "description": "The CRS of the coordinates, as `<URI>`.",
            "schema": {"type": "string"},
        }
    },
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {**_GEOJSON_OK, "description": "GeoJSON."},
    304: {"description": "Not modified (`If-None-Match` matches the ETag)."},
    400: error_response(400),
    404: error_response(404, "No such collection (or it has no features), or no such feature."),
}

CrsParam = Annotated[
    str | None,
    Query(
        description="CRS of the returned coordinates (OGC API – Features Part 2), as a URI or "
        "`EPSG:n`; one of the collection's `crs` list. Default CRS84 (longitude, latitude). "
        "Coordinates are in the CRS's own axis order: `EPSG:3006` is northing, easting."
    ),
]


#: RFC 3339 date or date-time (``datetime``'s instants; OGC API – Features, 7.15.4).
_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2}))?", re.ASCII
)


def parse_datetime(text: str | None) -> None:
    """Validate ``datetime`` (an instant, or an interval ``start/end`` with ``..`` or nothing for
    an open end) and refuse it: no collection served here has a temporal property, so a time
    filter cannot be applied, and answering every feature would pass it over without a word."""
    if text is None:
        return
    parts = text.split("/")
    if len(parts) > 2 or not all(
        _INSTANT.fullmatch(p) or (len(parts) == 2 and p in ("", "..")) for p in parts
    ):
        raise InputError(
            f"datetime {text[:80]!r} is not an RFC 3339 instant or interval "
            "(2018-02-12T23:20:50Z, or start/end with '..' for an open end)"
        )
    raise InputError(
        "datetime cannot be applied: this collection's features have no temporal property"
    )


def parse_bbox(text: str | None) -> list[float] | None:
    """``bbox`` text → 4 (or 6) finite numbers; 400 naming the parameter otherwise."""
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) not in (4, 6) or not all(_NUMBER.fullmatch(p.strip()) for p in parts):
        raise InputError(
            "bbox must be 4 (or 6) comma-separated numbers", field="bbox", value=text[:100]
        )
    return [float(p) for p in parts]


def parse_properties(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [p.strip() for p in text.split(",") if p.strip()]


def _link_query(request: Request, **changes: object) -> str:
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    items += [(k, str(v)) for k, v in changes.items() if v is not None]
    return urlencode(items)


def _feature_collection(page: FeaturePage, links: list[dict]) -> bytes:
    head = {
        "type": "FeatureCollection",
        "numberMatched": page.number_matched,
        "numberReturned": page.number_returned,
        "links": links,
    }
    text = json.dumps(head, ensure_ascii=False)[:-1]
    return (text + ',"features":[' + ",".join(page.features_json()) + "]}").encode()


def visible_properties(
    access: Access, layer: Layer, reader: FeatureReader, requested: list[str] | None
) -> list[str] | None:
    """The properties to read: those requested, or every one the caller may see."""
    if not access.enforced:
        return requested
    columns = reader.columns(feature_types()[layer.id])
    return feature_properties(access, layer.table, requested, columns)


def register(r: APIRouter, config: OGCConfig) -> None:
    """Add ``/collections/{id}/items`` and ``/collections/{id}/items/{featureId}``."""

    def reader_for(
        layer: Layer | Composite, features: FeatureReader | None
    ) -> tuple[Layer, FeatureReader]:
        """The plain layer and the reader of a collection with features; 404 otherwise."""
        if layer.id not in config.layers:
            raise NotFound(f"collection {layer.id!r} is not served here")
        if features is None:
            raise NotFound(
                "this store serves tiles only (features need a vggeo GeoPackage or PostGIS store)"
            )
        if layer.id not in feature_types() or not isinstance(layer, Layer):
            raise NotFound(
                f"collection {layer.id!r} has tiles only; its features are in "
                f"the collections of its layers"
            )
        return layer, features

    @r.get(
        "/collections/{layer}/items",
        operation_id="getFeatures",
        tags=["OGC API - Features"],
        summary="Features of a collection (GeoJSON)",
        responses=RESPONSES,
        response_class=Response,
        dependencies=[Depends(known_parameters)],
    )
    async def items(
        request: Request,
        layer: Annotated[Layer | Composite, Depends(layer_param)],
        filters: Annotated[Filters, Depends(filters_param)],
        base: Annotated[str, Depends(base_url)],
        features: FeaturesDep,
        access: Annotated[Access, Depends(get_access)],
        bbox: Annotated[
            str | None,
            Query(
                description="`minx,miny,maxx,maxy` in `bbox-crs`'s axis order (default CRS84: "
                "lon,lat); features whose geometry intersects it."
            ),
        ] = None,
        bbox_crs: Annotated[
            str | None,
            Query(alias="bbox-crs", description="CRS of `bbox` (Part 2); default CRS84."),
        ] = None,
        crs: CrsParam = None,
        limit: Annotated[
            int | None,
            Query(
                description=f"Features per page, 1 or more (default {config.default_limit}; more "
                f"than {config.max_limit} is reduced to {config.max_limit}).",
                ge=1,
                json_schema_extra={"maximum": config.max_limit, "default": config.default_limit},
            ),
        ] = None,
        offset: Annotated[int, Query(description="Features to skip (paging).", ge=0)] = 0,
        datetime: Annotated[
            str | None,
            Query(
                description="An RFC 3339 instant or interval. The features served here have no "
                "temporal property, so a valid value is refused (400) rather than ignored."
            ),
        ] = None,
        properties: Annotated[
            str | None,
            Query(description="Comma-separated property names to return (default: all)."),
        ] = None,
        f: Annotated[
            Literal["json", "geojson"] | None, Query(description="Response format: GeoJSON.")
        ] = None,
    ) -> Response:
        """GeoJSON features in insertion order, `limit` at a time, with `numberMatched`,
        `numberReturned` and `next`/`prev` links. The attribute filters are the tiles'. Only
        the properties the caller may see."""
        plain, reader = reader_for(layer, features)
        parse_datetime(datetime)
        props = visible_properties(access, plain, reader, parse_properties(properties))
        size = min(limit or config.default_limit, config.max_limit)
        out_crs = crs_uri(crs) if crs else CRS84
        in_crs = crs_uri(bbox_crs) if bbox_crs else CRS84
        page = await run_in_threadpool(
            reader.page,
            layer.id,
            bbox=parse_bbox(bbox),
            bbox_crs=in_crs,
            filters=filters,
            limit=size,
            offset=offset,
            properties=props,
            crs=out_crs,
        )
        url = f"{base}/collections/{layer.id}/items"
        links = [
            docs.link(
                f"{url}?{_link_query(request)}".rstrip("?"), "self", GEOJSON_MEDIA_TYPE, "This page"
            ),
            docs.link(f"{base}/collections/{layer.id}", "collection", docs.JSON, layer.title),
        ]
        if offset + size < page.number_matched:
            links.append(
                docs.link(
                    f"{url}?{_link_query(request, offset=offset + size, limit=size)}",
                    "next",
                    GEOJSON_MEDIA_TYPE,
                    "Next page",
                )
            )
        if offset > 0:
            prev = max(0, offset - size)
            links.append(
                docs.link(
                    f"{url}?{_link_query(request, offset=prev, limit=size)}",
                    "prev",
                    GEOJSON_MEDIA_TYPE,
                    "Previous page",
                )
            )
        body = _feature_collection(page, links)
        return json_response(
            request,
            None,
            body=body,
            media_type=GEOJSON_MEDIA_TYPE,
            headers={"Content-Crs": f"<{page.crs}>"},
        )

    @r.get(
        "/collections/{layer}/items/{featureId}",
        operation_id="getFeature",
        tags=["OGC API - Features"],
        summary="One feature (GeoJSON)",
        responses=RESPONSES,
        response_class=Response,
        dependencies=[Depends(known_parameters)],
    )
    async def item(
        request: Request,
        layer: Annotated[Layer | Composite, Depends(layer_param)],
        featureId: Annotated[
            str,
            Path(
                description="The feature's id: a residence id, or a "  # noqa: N803
                "provision's `provision_id`."
            ),
        ],
        base: Annotated[str, Depends(base_url)],
        features: FeaturesDep,
        access: Annotated[Access, Depends(get_access)],
        crs: CrsParam = None,
        properties: Annotated[
            str | None,
            Query(description="Comma-separated property names to return (default: all)."),
        ] = None,
        f: Annotated[
            Literal["json", "geojson"] | None, Query(description="Response format: GeoJSON.")
        ] = None,
    ) -> Response:
        """One feature by id, with `self` and `collection` links (only the properties the
        caller may see)."""
        plain, reader = reader_for(layer, features)
        props = visible_properties(access, plain, reader, parse_properties(properties))
        out_crs = crs_uri(crs) if crs else CRS84
        page = await run_in_threadpool(
            reader.feature, layer.id, featureId, crs=out_crs, properties=props
        )
        if page is None:
            raise NotFound(f"no feature {featureId[:100]!r} in collection {layer.id!r}")
        url = f"{base}/collections/{layer.id}/items/{featureId}"
        links = [
            docs.link(url, "self", GEOJSON_MEDIA_TYPE, "This feature"),
            docs.link(f"{base}/collections/{layer.id}", "collection", docs.JSON, layer.title),
        ]
        text = page.features_json()[0]
        body = (text[:-1] + ',"links":' + json.dumps(links, ensure_ascii=False) + "}").encode()
        return json_response(
            request,
            None,
            body=body,
            media_type=GEOJSON_MEDIA_TYPE,
            headers={"Content-Crs": f"<{page.crs}>"},
        )
