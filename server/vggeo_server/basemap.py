"""The offline basemap: its tiles (``/basemap/{z}/{x}/{y}.mvt``), TileJSON (``/basemap.json``)
and the MapLibre layers that draw it beneath the data.

The tiles come from a PMTiles archive — the one shipped in the package
(:func:`vggeo.tiles.basemap.shipped_basemap`) or one built with ``vggeo tiles basemap`` and named
by ``VGGEO_BASEMAP_ARCHIVE`` — read by the same archive reader as exported tile archives. With
``VGGEO_BASEMAP`` set to a style URL the map page draws that style instead (Lantmäteriet's or
an OpenStreetMap style), and with ``none`` no basemap at all.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as PathParam

from vggeo.errors import TileError
from vggeo.tiles.basemap import shipped_basemap
from vggeo.tiles.cache import CachedTile, compress, etag
from vggeo.tiles.grids import get_grid
from vggeo.tiles.pmtiles import open_archive_file, overzoom
from vggeo_server.dependencies import base_url
from vggeo_server.errors import NotFound, error_response
from vggeo_server.responses import MVT_MEDIA_TYPE, json_response, tile_response

#: The basemap changes only with a new archive (a new version of vggeo): cache it for a day.
CACHE_CONTROL = "public, max-age=86400"
BUILTIN = "builtin"
NONE = "none"

#: Colours of the basemap: quiet, so that the data drawn on top stays the subject.
WATER = "#c9dceb"
LAND = "#f4f1ea"
BORDER = "#8f7fa3"
PLACE_TEXT = "#3a3a3a"


class BasemapTiles:
    """Tiles of a basemap archive, gzip as stored, overzoomed past its deepest zoom."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.archive = open_archive_file(self.path)
        self.metadata = self.archive.metadata
        self.minzoom, self.maxzoom = self.archive.minzoom, self.archive.maxzoom

    def tile(self, z: int, x: int, y: int) -> CachedTile:
        """The gzip tile (``body == b""`` where the archive has none)."""
        get_grid("WebMercatorQuad").check(z, x, y)
        if z > self.maxzoom:
            levels = z - self.maxzoom
            body = self.archive.get(self.maxzoom, x >> levels, y >> levels)
            if not body:
                return compress(b"")
            raw = gzip.decompress(body) if self.archive.gzip else bytes(body)
            mask = (1 << levels) - 1
            return compress(overzoom(raw, levels, x & mask, y & mask))
        body = self.archive.get(z, x, y)
        if not body:
            return compress(b"")
        if not self.archive.gzip:
            return compress(bytes(body))
        return CachedTile(bytes(body), etag(body))

    def tilejson(self, url: str) -> dict:
        bounds = self.archive.bounds or (-180.0, -85.0, 180.0, 85.0)
        return {
            "tilejson": "3.0.0",
            "name": "basemap",
            "scheme": "xyz",
            "tiles": [url],
            "description": self.metadata.get("description", "Offline basemap."),
            "attribution": self.metadata.get("attribution", ""),
            "minzoom": self.minzoom,
            "maxzoom": self.maxzoom,
            "fillzoom": self.maxzoom,
            "bounds": [round(b, 6) for b in bounds],
            "center": [
                round((bounds[0] + bounds[2]) / 2, 5),
                round((bounds[1] + bounds[3]) / 2, 5),
                min(self.maxzoom, 4),
            ],
            "vector_layers": [
                {k: vl[k] for k in ("id", "description", "minzoom", "maxzoom", "fields") if k in vl}
                for vl in self.metadata.get("vector_layers", [])
            ],
        }


@functools.cache
def _open(path: str) -> BasemapTiles:
    return BasemapTiles(path)


def archive_path(archive: str | None) -> Path:
    """The basemap archive to serve: the configured one or the shipped one."""
    return Path(archive) if archive else shipped_basemap()


def style_layers(source: str = "basemap") -> list[dict]:
    """MapLibre layers of the built-in basemap (drawn beneath the data)."""
    return [
        {
            "id": "basemap-water-background",
            "type": "background",
            "paint": {"background-color": WATER},
        },
        {
            "id": "basemap-land",
            "type": "fill",
            "source": source,
            "source-layer": "land",
            "paint": {"fill-color": LAND, "fill-outline-color": "#b9c8d3"},
        },
        {
            "id": "basemap-water",
            "type": "fill",
            "source": source,
            "source-layer": "water",
            "paint": {"fill-color": WATER, "fill-outline-color": "#a9c2d6"},
        },
        {
            "id": "basemap-boundary",
            "type": "line",
            "source": source,
            "source-layer": "boundary",
            "paint": {
                "line-color": BORDER,
                "line-dasharray": [3, 2],
                "line-width": ["interpolate", ["linear"], ["zoom"], 3, 0.6, 10, 1.6],
            },
        },
    ]


_PLACE_TEXT = {
    "text-field": ["get", "name"],
    "text-font": ["Noto Sans Regular"],
    "text-size": [
        "interpolate",
        ["linear"],
        ["zoom"],
        4,
        ["match", ["get", "rank"], 1, 14, 2, 12, 11],
        11,
        ["match", ["get", "rank"], 1, 20, 2, 18, 3, 16, 4, 14, 13],
    ],
    "symbol-sort-key": ["get", "rank"],
    "text-max-width": 8,
}
_PLACE_PAINT = {
    "text-color": PLACE_TEXT,
    "text-halo-color": "rgba(255,255,255,0.9)",
    "text-halo-width": 1.4,
}


def label_layers(source: str = "basemap") -> list[dict]:
    """Place names below the largest: drawn above the data where the clusters' counts leave
    room (beside the place when a count sits on it)."""
    return [
        {
            "id": "basemap-places",
            "type": "symbol",
            "source": source,
            "source-layer": "place",
            "filter": [">", ["get", "rank"], 2],
            "layout": {
                **_PLACE_TEXT,
                "text-variable-anchor": ["top", "bottom", "left", "right"],
                "text-radial-offset": 0.9,
                "text-padding": 4,
            },
            "paint": _PLACE_PAINT,
        },
    ]


def major_label_layers(source: str = "basemap") -> list[dict]:
    """The capitals and cities over 250 000 (rank 1–2), on top of everything: as the top layer
    they are placed first, so the clusters' counts never hide them (they only give way to each
    other, as Espoo and Vantaa must)."""
    return [
        {
            "id": "basemap-places-major",
            "type": "symbol",
            "source": source,
            "source-layer": "place",
            "filter": ["<=", ["get", "rank"], 2],
            "layout": {**_PLACE_TEXT, "text-anchor": "bottom", "text-offset": [0, -0.8]},
            "paint": _PLACE_PAINT,
        },
    ]


def basemap_router(archive: str | None) -> APIRouter:
    """Routes serving the basemap archive (the shipped one when ``archive`` is None)."""
    router = APIRouter()
    path = str(archive_path(archive))

    def tiles() -> BasemapTiles:
        try:
            return _open(path)
        except Exception as err:  # a missing or broken archive: the map works without it
            raise NotFound(f"no basemap: {err}") from err

    @router.get(
        "/basemap.json",
        operation_id="getBasemapTileJSON",
        tags=["Tiles"],
        summary="TileJSON of the offline basemap",
        response_class=Response,
        responses={
            200: {"content": {"application/json": {"schema": {"type": "object"}}}},
            304: {"description": "Not modified."},
            404: error_response(404, "No basemap archive."),
        },
    )
    def basemap_tilejson(request: Request, base: Annotated[str, Depends(base_url)]) -> Response:
        """Land, lakes, national borders and place names around Sweden, served from an archive
        built from GSHHG (LGPL-3.0) and GeoNames (CC BY 4.0) data; works without a network."""
        return json_response(request, tiles().tilejson(f"{base}/basemap/{{z}}/{{x}}/{{y}}.mvt"))

    @router.get(
        "/basemap/{z}/{x}/{y}.{fmt}",
        operation_id="getBasemapTile",
        tags=["Tiles"],
        summary="A tile of the offline basemap",
        response_class=Response,
        responses={
            200: {"content": {MVT_MEDIA_TYPE: {}}, "description": "A tile."},
            204: {"description": "No basemap feature here."},
            304: {"description": "Not modified."},
            400: error_response(400, "Malformed or out-of-range tile address."),
            404: error_response(404, "No basemap archive."),
            406: error_response(406),
        },
    )
    def basemap_tile(
        request: Request,
        z: Annotated[str, PathParam(description="Zoom level.")],
        x: Annotated[str, PathParam(description="Column, from the west.")],
        y: Annotated[str, PathParam(description="Row, from the north.")],
        fmt: Annotated[str, PathParam(description="`mvt` or `pbf`.")],
    ) -> Response:
        """A Mapbox Vector Tile of the basemap (layers `land`, `water`, `boundary`, `place`)."""
        if fmt not in ("mvt", "pbf"):
            raise TileError("unknown tile format; use one of mvt, pbf", field="format", value=fmt)
        zxy = []
        for name, text in (("z", z), ("x", x), ("y", y)):
            if not (text.isascii() and text.isdigit()) or len(text) > 9:
                raise TileError(f"{name} must be a non-negative integer", field=name, value=text)
            zxy.append(int(text))
        return tile_response(request, tiles().tile(*zxy), cache_control=CACHE_CONTROL)

    return router
