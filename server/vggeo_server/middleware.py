"""ASGI middleware of the HTTP layer: HEAD answered wherever GET is; trailing-slash redirects
that do not trust the Host header.

FastAPI routes declared with ``@router.get`` answer HEAD with 405. RFC 9110 §9.3.2 makes HEAD
"identical to GET except that the server MUST NOT send content", so rather than declaring every
route twice, a HEAD request runs as the GET it mirrors and its body is dropped here; status and
headers (Content-Length, ETag, 304 on a matching ``If-None-Match`` …) are exactly the GET's.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """Run HEAD requests as GET and send no body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


class RelativeSlashRedirect:
    """Starlette's trailing-slash redirect (``/collections/`` → ``/collections``), with a relative
    ``Location``.

    Starlette builds the absolute URL of that redirect from the request's ``Host`` header, which
    any client sets at will (and a cache would keep the answer); the server never builds a URL
    from it (:func:`vggeo_server.dependencies.base_url`). The router's own redirect is turned off
    and this answers the same 307 with the path alone (RFC 9110 allows a relative reference).
    """

    def __init__(self, app: ASGIApp, *, router: Router) -> None:
        self.app = app
        self.router = router
        router.redirect_slashes = False

    def _routed(self, scope: Scope, path: str) -> bool:
        """Whether a route takes ``path`` (the full path, as ``scope["path"]``), as Starlette's
        router decides for its redirect (a method mismatch counts)."""
        probe = {**scope, "path": path}
        return any(r.matches(probe)[0] is not Match.NONE for r in self.router.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]  # the full path: the root path, if any, then the route's
            root = scope.get("root_path", "")
            if (
                path.rstrip("/") != root.rstrip("/")
                and path.endswith("/")
                and not self._routed(scope, path)
                and self._routed(scope, path.rstrip("/"))
            ):
                query = scope.get("query_string", b"").decode("latin-1")
                target = path.rstrip("/") + (f"?{query}" if query else "")
                await RedirectResponse(target, status_code=307)(scope, receive, send)
                return
        await self.app(scope, receive, send)
