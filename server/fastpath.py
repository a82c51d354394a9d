"""Cache hits answered before routing.

A cached tile is a dictionary lookup; FastAPI's routing, dependency resolution and response
classes cost ten times more. This ASGI middleware recognises the plain tile URL
(``GET /tiles/{layer}/{z}/{x}/{y}.mvt|.pbf`` without query string, from a client whose
``Accept-Encoding`` makes gzip the coding to send), and answers from the tile cache with exactly
the headers the route would send (ETag of the gzip representation, 304, 204, Cache-Control,
Vary) using the same rules (:mod:`server.http`). Anything else — a miss, a filter, identity, a
malformed address — goes to the application unchanged, so validation and errors stay in one place.
"""

from __future__ import annotations

import re

from server.http import choose_encoding, etag_for, none_match
from vggeo.errors import VggeoError
from vggeo.tiles.layers import COMPOSITES, LAYERS

_TILE = re.compile(r"^/tiles/([A-Za-z0-9_]+)/(\d{1,2})/(\d{1,9})/(\d{1,9})\.(?:mvt|pbf)$", re.ASCII)
_MVT = b"application/vnd.mapbox-vector-tile"


class CachedTileFastPath:
    """ASGI middleware serving cached tiles (see the module docstring)."""

    def __init__(self, app, *, cache_control: str, layers: set[str] | None = None) -> None:
        self.app = app
        self.cache_control = cache_control.encode("latin-1")
        self.layers = layers or {*LAYERS, *COMPOSITES}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("query_string"):
            m = _TILE.match(scope["path"])
            if m and m.group(1) in self.layers:
                service = getattr(scope["app"].state, "service", None)
                headers = dict(scope["headers"])
                accept = headers.get(b"accept-encoding")
                gzip_ok = accept is not None and choose_encoding(accept.decode("latin-1")) == "gzip"
                if service is not None and gzip_ok:
                    try:
                        tile = service.cached(m.group(1), int(m.group(2)), int(m.group(3)),
                                              int(m.group(4)))  # fmt: skip
                    except VggeoError:  # out of range: the route answers with the 400
                        tile = None
                    if tile is not None:
                        await self._send(tile, headers, send)
                        return
        await self.app(scope, receive, send)

    async def _send(self, tile, headers: dict, send) -> None:
        etag = etag_for(tile.etag, "gzip")
        out = [(b"cache-control", self.cache_control), (b"etag", etag.encode("latin-1")),
               (b"vary", b"Accept-Encoding")]  # fmt: skip
        inm = headers.get(b"if-none-match")
        if inm is not None and none_match(inm.decode("latin-1"), etag):
            status, body = 304, b""
        elif tile.empty:
            status, body = 204, b""
        else:
            status, body = 200, tile.body
            out += [(b"content-type", _MVT), (b"content-encoding", b"gzip"),
                    (b"content-length", str(len(body)).encode())]  # fmt: skip
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})
