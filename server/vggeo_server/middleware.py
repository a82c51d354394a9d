"""ASGI middleware of the HTTP layer: HEAD answered wherever GET is.

FastAPI routes declared with ``@router.get`` answer HEAD with 405. RFC 9110 §9.3.2 makes HEAD
"identical to GET except that the server MUST NOT send content", so rather than declaring every
route twice, a HEAD request runs as the GET it mirrors and its body is dropped here; status and
headers (Content-Length, ETag, 304 on a matching ``If-None-Match`` …) are exactly the GET's.
"""

from __future__ import annotations

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
