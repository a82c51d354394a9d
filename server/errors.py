"""One table from exception class to HTTP status, and the handlers that apply it.

Every error response is JSON: ``{"detail": "<message>", "type": "<ErrorClass>"}``. Only real
5xx errors are logged with a traceback.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from vggeo.errors import InputError, StoreError, TileError, VggeoError

log = logging.getLogger(__name__)


class NotFound(LookupError):
    """A layer, collection or tile matrix set that does not exist."""


#: Most specific class first.
STATUS_CODES: dict[type[BaseException], int] = {
    NotFound: 404,
    LookupError: 404,  # a layer the backend does not hold (e.g. not in a tile archive)
    TileError: 400,
    InputError: 400,
    RequestValidationError: 400,
    StoreError: 503,
    VggeoError: 500,
}


def _status(exc: BaseException) -> int:
    for cls, code in STATUS_CODES.items():
        if isinstance(exc, cls):
            return code
    return 500


def _message(exc: BaseException) -> str:
    if isinstance(exc, RequestValidationError):
        parts = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()) if p not in ("path", "query"))
            parts.append(f"{loc}: {e.get('msg')}")
        return "; ".join(parts) or "invalid request"
    return str(exc.args[0]) if isinstance(exc, NotFound) and exc.args else str(exc)


def add_exception_handlers(app: FastAPI) -> None:
    """Install one handler per class of :data:`STATUS_CODES`."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        code = _status(exc)
        if code >= 500:
            log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": _message(exc), "type": type(exc).__name__}, code)

    for cls in STATUS_CODES:
        app.add_exception_handler(cls, handler)
