"""Responses with HTTP done properly: tiles per content coding, JSON documents with ETags.

Both answer ``If-None-Match`` (``*``, lists, weak comparison) with 304 and send a strong ETag per
representation (see :mod:`vggeo_server.http`).
"""

from __future__ import annotations

import gzip
import hashlib
import json

from fastapi import Request, Response

from vggeo.tiles.cache import CachedTile
from vggeo_server.errors import NotAcceptable
from vggeo_server.http import Encoding, choose_encoding, etag_for, none_match

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
GEOJSON_MEDIA_TYPE = "application/geo+json"


def encoding_of(request: Request) -> Encoding:
    """The content coding to answer ``request`` with; 406 when it accepts none we have."""
    encoding = choose_encoding(request.headers.get("accept-encoding"))
    if encoding is None:
        raise NotAcceptable(
            "neither gzip nor identity is acceptable (Accept-Encoding)", field="Accept-Encoding"
        )
    return encoding


def tile_response(request: Request, tile: CachedTile, *, cache_control: str) -> Response:
    """200 (gzip or identity body), 204 (empty tile) or 304 for a finished tile."""
    encoding = encoding_of(request)
    etag = etag_for(tile.etag, encoding)
    headers = {"Cache-Control": cache_control, "ETag": etag, "Vary": "Accept-Encoding"}
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if tile.empty:
        return Response(status_code=204, headers=headers)
    if encoding == "gzip":
        headers["Content-Encoding"] = "gzip"
        return Response(tile.body, media_type=MVT_MEDIA_TYPE, headers=headers)
    return Response(gzip.decompress(tile.body), media_type=MVT_MEDIA_TYPE, headers=headers)


def json_response(
    request: Request,
    doc: object,
    *,
    media_type: str = "application/json",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Response:
    """A JSON document with a strong ETag of its bytes; 304 when ``If-None-Match`` matches."""
    if body is None:
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    out = {"ETag": etag, **(headers or {})}
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=out)
    return Response(body, media_type=media_type, headers=out)
