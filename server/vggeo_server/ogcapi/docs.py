"""The JSON documents of OGC API – Common, Tiles and Features, built from plain values.

Nothing here touches a request or a backend: each function takes the public base URL and what it
needs to know (a layer, a grid, the data bounds …), so the documents can be tested on their own
and the data layer behind them can move without changing them.

Standards followed: OGC API – Common Part 1 (landing page, conformance), Features Part 1 and
Part 2 (collections with ``itemType``, ``crs``, ``storageCrs``; items), Tiles Part 1 (tileset
lists, tileset metadata with ``tileMatrixSetLimits`` and ``layers``), TMS 2.0 (tile matrix sets).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vggeo.crs import CRS84, STORAGE_CRS, supported_crs
from vggeo.tiles.grids import TileBounds, get_grid, tile_matrix_set
from vggeo.tiles.layers import Composite, Layer, fields, members

OGC_REL = "http://www.opengis.net/def/rel/ogc/1.0/"
JSON = "application/json"
GEOJSON = "application/geo+json"
HTML = "text/html"
MVT = "application/vnd.mapbox-vector-tile"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"

CONFORMANCE_COMMON = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
]
CONFORMANCE_TILES = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixsetlimits",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixsetlimits",
]
CONFORMANCE_FEATURES = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
]


def link(
    href: str, rel: str, type_: str | None = None, title: str | None = None, **extra: object
) -> dict:
    """One OGC API link object."""
    out: dict = {"href": href, "rel": rel}
    if type_:
        out["type"] = type_
    if title:
        out["title"] = title
    out.update(extra)
    return out


@dataclass(frozen=True)
class TileMatrixLimits:
    """The levels of a grid a layer is served on and the data's extent in the grid's CRS."""

    minzoom: int
    maxzoom: int
    bounds: TileBounds | None  # grid CRS, easting/northing


def landing(base: str, *, title: str, description: str, features: bool) -> dict:
    """The landing page (``/``)."""
    links = [
        link(f"{base}/?f=json", "self", JSON, "This document"),
        link(f"{base}/?f=html", "alternate", HTML, "The map page"),
        link(f"{base}/openapi.json", "service-desc", OPENAPI, "The API definition (OpenAPI 3)"),
        link(f"{base}/docs", "service-doc", HTML, "The API documentation"),
        link(f"{base}/conformance", "conformance", JSON, "Conformance classes"),
        link(f"{base}/conformance", f"{OGC_REL}conformance", JSON, "Conformance classes"),
        link(f"{base}/collections", "data", JSON, "Collections"),
        link(f"{base}/collections", f"{OGC_REL}data", JSON, "Collections"),
        link(f"{base}/tileMatrixSets", f"{OGC_REL}tiling-schemes", JSON, "Tile matrix sets"),
    ]
    doc: dict[str, Any] = {"title": title, "description": description, "links": links}
    if features:
        doc["description"] += " Features of residences and regulations as GeoJSON (CRS84 or a "
        doc["description"] += "Swedish CRS)."
    return doc


def conformance(*, features: bool) -> dict:
    """The conformance declaration (``/conformance``)."""
    classes = CONFORMANCE_COMMON + CONFORMANCE_TILES + (CONFORMANCE_FEATURES if features else [])
    return {"conformsTo": classes}


def _extent(bounds_wgs84: Sequence[float] | None) -> dict:
    if not bounds_wgs84:
        return {}
    bbox = [round(float(v), 7) for v in bounds_wgs84]
    return {"extent": {"spatial": {"bbox": [bbox], "crs": CRS84}}}


def collection(
    base: str, layer: Layer | Composite, *, bounds_wgs84: Sequence[float] | None, features: bool
) -> dict:
    """A collection (``/collections/{id}``): tilesets always, items when ``features``."""
    url = f"{base}/collections/{layer.id}"
    links = [
        link(f"{url}?f=json", "self", JSON, "This collection"),
        link(f"{base}/collections", "collection", JSON, "All collections"),
        link(f"{url}/tiles", f"{OGC_REL}tilesets-vector", JSON, "Vector tilesets"),
    ]
    doc: dict = {"id": layer.id, "title": layer.title, "description": layer.description}
    doc.update(_extent(bounds_wgs84))
    if features:
        links.append(link(f"{url}/items?f=json", "items", GEOJSON, "Features (GeoJSON)"))
        doc.update({"itemType": "feature", "crs": list(supported_crs()), "storageCrs": STORAGE_CRS})
    doc["dataType"] = "vector"
    doc["links"] = links
    return doc


def collections(base: str, docs: list[dict], *, features: bool) -> dict:
    """The collections list (``/collections``)."""
    out: dict = {
        "links": [link(f"{base}/collections?f=json", "self", JSON, "Collections")],
        "collections": docs,
    }
    if features:
        out["crs"] = list(supported_crs())
    return out


def tile_matrix_sets(base: str, grids: Sequence[str]) -> dict:
    """The list of tile matrix sets (``/tileMatrixSets``)."""
    out = []
    for g in grids:
        tms = tile_matrix_set(g)
        entry = {
            "id": tms.id,
            "title": tms.title,
            "crs": tms.model_dump(mode="json")["crs"],
            "links": [link(f"{base}/tileMatrixSets/{tms.id}", "self", JSON, tms.title)],
        }
        if tms.uri:
            entry["uri"] = tms.uri
        out.append(entry)
    return {
        "tileMatrixSets": out,
        "links": [link(f"{base}/tileMatrixSets", "self", JSON, "Tile matrix sets")],
    }


def _tileset_links(base: str, layer_id: str, grid_id: str, query: str) -> list[dict]:
    url = f"{base}/collections/{layer_id}/tiles/{grid_id}"
    return [
        link(url + query, "self", JSON, f"{layer_id} tiles on {grid_id}"),
        link(f"{base}/tileMatrixSets/{grid_id}", f"{OGC_REL}tiling-scheme", JSON, grid_id),
        link(f"{base}/collections/{layer_id}", f"{OGC_REL}geodata", JSON, layer_id),
        link(
            url + "/{tileMatrix}/{tileRow}/{tileCol}" + query,
            "item",
            MVT,
            "Mapbox vector tile",
            templated=True,
        ),
    ]


def tileset_summary(base: str, layer_id: str, grid_id: str, query: str = "") -> dict:
    """One entry of a tileset list."""
    tms = tile_matrix_set(grid_id)
    out = {
        "title": f"{layer_id} on {grid_id}",
        "dataType": "vector",
        "crs": tms.model_dump(mode="json")["crs"],
        "links": _tileset_links(base, layer_id, grid_id, query),
    }
    if tms.uri:
        out["tileMatrixSetURI"] = tms.uri
    return out


def tilesets(base: str, layer_id: str, grids: Sequence[str], query: str = "") -> dict:
    """A collection's tileset list (``/collections/{id}/tiles``)."""
    return {
        "tilesets": [tileset_summary(base, layer_id, g, query) for g in grids],
        "links": [link(f"{base}/collections/{layer_id}/tiles{query}", "self", JSON)],
    }


def matrix_limits(grid_id: str, limits: TileMatrixLimits) -> list[dict]:
    """``tileMatrixSetLimits``: per level, the rows and columns that hold data."""
    grid = get_grid(grid_id)
    out = []
    for z in range(limits.minzoom, limits.maxzoom + 1):
        if limits.bounds is None:
            w, h = grid.matrix_size(z)
            cols, rows = range(0, w), range(0, h)
        else:
            cols, rows = grid.tiles_for_bounds(z, limits.bounds)
        if len(cols) == 0 or len(rows) == 0:
            continue
        out.append(
            {
                "tileMatrix": str(z),
                "minTileRow": rows.start,
                "maxTileRow": rows.stop - 1,
                "minTileCol": cols.start,
                "maxTileCol": cols.stop - 1,
            }
        )
    return out


_JSON_TYPES = {"Number": "number", "String": "string", "Boolean": "boolean"}


def layer_descriptions(
    layer: Layer | Composite, home_types: Sequence[str], *, minzoom: int, maxzoom: int
) -> list[dict]:
    """Tiles Part 1 ``layers``: every MVT layer with its fields, geometry and zoom range."""
    out = []
    for m in members(layer):
        typed = fields(m, home_types, types=True)
        described = fields(m, home_types)
        props = {k: {"type": _JSON_TYPES[t], "description": described[k]} for k, t in typed.items()}
        out.append(
            {
                "id": m.id,
                "title": m.title,
                "description": m.description,
                "dataType": "vector",
                "geometryDimension": 0 if m.geometry == "point" else 2,
                "featureType": m.table,
                "minTileMatrix": str(max(minzoom, m.minzoom)),
                "maxTileMatrix": str(maxzoom),
                "propertiesSchema": {"type": "object", "properties": props},
            }
        )
    return out


def tileset(
    base: str,
    layer: Layer | Composite,
    grid_id: str,
    *,
    limits: TileMatrixLimits,
    home_types: Sequence[str],
    bounds_wgs84: Sequence[float] | None,
    query: str = "",
) -> dict:
    """Tileset metadata (``/collections/{id}/tiles/{tileMatrixSetId}``)."""
    doc = tileset_summary(base, layer.id, grid_id, query)
    doc["title"] = f"{layer.title} ({grid_id})"
    doc["description"] = layer.description
    doc["tileMatrixSetLimits"] = matrix_limits(grid_id, limits)
    doc["layers"] = layer_descriptions(
        layer, home_types, minzoom=limits.minzoom, maxzoom=limits.maxzoom
    )
    if bounds_wgs84:
        w, s, e, n = (round(float(v), 7) for v in bounds_wgs84)
        doc["boundingBox"] = {"lowerLeft": [w, s], "upperRight": [e, n], "crs": CRS84}
    return doc


def tile_matrix_set_document(grid_id: str) -> dict:
    """A tile matrix set in OGC TMS 2.0 JSON (what morecantile and GDAL ≥ 3.7 read).

    GDAL before 3.7 reads only TMS 1.0, whose ``supportedCRS`` member morecantile refuses; a
    document cannot serve both, and 2.0 is what OGC API – Tiles requires.
    """
    return json.loads(tile_matrix_set(grid_id).model_dump_json(exclude_none=True))
