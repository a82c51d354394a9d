"""Plain tile requests answered before routing.

A cached tile is a dictionary lookup; FastAPI's routing, dependency resolution and response
classes cost ten times more — and on a miss they cost more than rendering a typical z15 tile
from PostGIS. This ASGI middleware recognises the plain tile URL
(``GET /tiles/{layer}/{z}/{x}/{y}.mvt|.pbf`` without query string, from a client whose
``Accept-Encoding`` makes gzip the coding to send), answers from the tile cache or, on a miss,
renders the tile — on the event loop where the backend can (:meth:`TileService.get_async`: the
PostGIS backend's asyncio pool, no thread hand-off), else in the application's render queue
(:mod:`vggeo_server.render`) with the very call the route makes
(:func:`vggeo_server.auth.views.view_tile`) — and sends exactly the headers the route would send (ETag
of the gzip representation, 304, 204, Cache-Control, Vary) using the same rules
(:mod:`vggeo_server.http`). Anything else — a filter, identity, a malformed address, a tile archive's
layers, a tile whose rendering fails — goes to the application unchanged, so validation and
errors stay in one place.

With access control on, it runs after authentication and answers only from the cache entry of
the caller's view of the layer (:mod:`vggeo_server.auth.views`); a caller who may not see the layer
goes to the application, which refuses.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from vggeo.errors import VggeoError
from vggeo.tiles.cache import CachedTile
from vggeo.tiles.layers import COMPOSITES, LAYERS, get_layer
from vggeo.tiles.service import TileService
from vggeo_server.auth.policy import FULL_ACCESS, AccessDenied
from vggeo_server.auth.views import cached_view_tile, layer_view, view_tile
from vggeo_server.http import CacheControlPolicy, choose_encoding, tile_answer
from vggeo_server.render import render_queue

_TILE = re.compile(r"^/tiles/([A-Za-z0-9_]+)/(\d{1,2})/(\d{1,9})/(\d{1,9})\.(?:mvt|pbf)$", re.ASCII)
#: The route template the fast path stands in for (for the access log and the metrics).
ROUTE = "/tiles/{layer}/{z}/{x}/{y}.{fmt}"


class CachedTileFastPath:
    """ASGI middleware serving cached tiles (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        cache_control: str | CacheControlPolicy,
        layers: set[str] | None = None,
    ) -> None:
        self.app = app
        self.cache_control = (
            cache_control
            if isinstance(cache_control, CacheControlPolicy)
            else CacheControlPolicy(cache_control)
        )
        self.layers = layers or {*LAYERS, *COMPOSITES}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("query_string"):
            m = _TILE.match(scope["path"])
            if m and m.group(1) in self.layers:
                service = getattr(scope["app"].state, "service", None)
                headers = dict(scope["headers"])
                accept = headers.get(b"accept-encoding")
                gzip_ok = accept is not None and choose_encoding(accept.decode("latin-1")) == "gzip"
                if service is not None and gzip_ok:
                    tile, cache = self._cached(service, scope, m), "hit"
                    if tile is None:
                        tile, cache = await self._render(service, scope, m), "miss"
                    if tile is not None:
                        state = scope.get("state")
                        if state is not None:
                            state["route"], state["cache"] = ROUTE, cache
                        await self._send(tile, headers, send, int(m.group(2)))
                        return
        await self.app(scope, receive, send)

    @staticmethod
    def _cached(service: TileService, scope: Scope, m: re.Match) -> CachedTile | None:
        access = scope.get("state", {}).get("access", FULL_ACCESS)
        z, x, y = int(m.group(2)), int(m.group(3)), int(m.group(4))
        try:
            if not access.enforced:
                return service.cached(m.group(1), z, x, y)
            layer = get_layer(m.group(1))
            view = layer_view(access, layer)
            return cached_view_tile(
                service, layer, z, x, y, grid="WebMercatorQuad", filters=None, view=view
            )
        except (VggeoError, AccessDenied):  # the route answers with the 400, 401 or 403
            return None

    @staticmethod
    async def _render(service: TileService, scope: Scope, m: re.Match) -> CachedTile | None:
        """The tile rendered as the route renders it, or ``None`` to let the application answer
        (an archive, an address outside the grid, a caller who may not see the layer, or any
        failure: the application's handlers turn those into the documented answers)."""
        if getattr(service.source, "served_layers", None) is not None:
            return None  # a tile archive: the route knows which layers it holds
        access = scope.get("state", {}).get("access", FULL_ACCESS)
        z, x, y = int(m.group(2)), int(m.group(3)), int(m.group(4))
        try:
            layer = get_layer(m.group(1))
            view = layer_view(access, layer)
            service.key(layer.id, z, x, y)  # checks the address against the grid
            queue = render_queue(scope["app"].state)
            if view.full and service.source.renders_on_loop:  # PostGIS: on this loop
                tile = await queue.run_on_loop(service.get_async, layer.id, z, x, y)
                if tile is not None:
                    return tile
            return await queue.run(
                view_tile, service, layer, z, x, y, grid="WebMercatorQuad", filters=None, view=view
            )
        except Exception:  # noqa: BLE001 - rendered again by the route, which answers properly
            return None

    async def _send(self, tile: CachedTile, headers: dict, send: Send, z: int) -> None:
        inm = headers.get(b"if-none-match")
        status, out, body = tile_answer(
            tile,
            "gzip",
            self.cache_control.encoded(z),
            None if inm is None else inm.decode("latin-1"),
        )
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})
