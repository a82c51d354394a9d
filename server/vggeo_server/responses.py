"""Responses with HTTP done properly: tiles per content coding, JSON documents with ETags.

Both answer ``If-None-Match`` (``*``, lists, weak comparison) with 304 and send a strong ETag per
representation (see :mod:`vggeo_server.http`).
"""

from __future__ import annotations

import hashlib
import json

from fastapi import Request, Response

from vggeo.tiles.cache import CachedTile
from vggeo_server.errors import NotAcceptable
from vggeo_server.http import MVT_MEDIA_TYPE, Encoding, choose_encoding, none_match, tile_answer

__all__ = ["GEOJSON_MEDIA_TYPE", "MVT_MEDIA_TYPE", "encoding_of", "json_response", "tile_response"]

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
    """200 (gzip or identity body), 204 (empty tile) or 304 for a finished tile
    (:func:`vggeo_server.http.tile_answer`, as the fast path sends it)."""
    status, headers, body = tile_answer(
        tile,
        encoding_of(request),
        cache_control.encode("latin-1"),
        request.headers.get("if-none-match"),
    )
    response = Response(body, status_code=status)
    response.raw_headers = headers  # complete: Content-Length and Content-Type included
    return response


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
