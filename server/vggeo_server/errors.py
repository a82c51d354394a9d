"""One table from exception class to HTTP status, the handlers that apply it, and the OpenAPI
description of those answers.

Every error response is JSON: ``{"detail": "<message>", "type": "<ErrorClass>"}``. Only real
5xx errors are logged with a traceback.

Invalid requests — a malformed tile address, an unknown filter value, a parameter FastAPI's own
validation refuses — are all **400 Bad Request** (what OGC API clients expect, and what GDAL and
QGIS report). FastAPI documents such answers as 422 by default; :func:`document_errors` rewrites
the OpenAPI document so that it says 400 with this module's schema, so the schema and the server
agree.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from vggeo.errors import CRSError, InputError, StoreError, TileError, VggeoError

log = logging.getLogger(__name__)


class NotFound(LookupError):
    """A layer, collection or tile matrix set that does not exist."""


class NotAcceptable(VggeoError):
    """The client accepts no representation we have (e.g. ``Accept-Encoding: *;q=0``)."""


#: Most specific class first.
STATUS_CODES: dict[type[Exception], int] = {
    NotFound: 404,
    LookupError: 404,  # a layer the backend does not hold (e.g. not in a tile archive)
    NotAcceptable: 406,
    TileError: 400,
    InputError: 400,
    CRSError: 400,
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


#: The JSON Schema of every error body (``components/schemas/Error`` in the OpenAPI document).
ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["detail", "type"],
    "properties": {
        "detail": {"type": "string", "description": "What is wrong, naming the parameter."},
        "type": {"type": "string", "description": "The error class, e.g. `TileError`."},
    },
}
_REF = {"$ref": "#/components/schemas/Error"}
_DESCRIPTIONS = {
    400: "Invalid request: a malformed or out-of-range parameter (named in `detail`).",
    404: "No such layer, collection, feature or tile matrix set.",
    406: "None of the content codings the client accepts can be served.",
    503: "The store cannot be read right now.",
}


def error_response(status: int, description: str | None = None) -> dict:
    """An OpenAPI ``responses`` entry for an error status."""
    return {
        "description": description or _DESCRIPTIONS[status],
        "content": {"application/json": {"schema": _REF}},
    }


def document_errors(spec: dict) -> dict:
    """Make the OpenAPI document say what the server does: 400 (not 422) for invalid requests,
    503 where a store is read, and the :data:`ERROR_SCHEMA` for every error."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["Error"] = ERROR_SCHEMA
    for path in spec.get("paths", {}).values():
        for method, op in list(path.items()):
            if method != "get":
                continue
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            if op.get("parameters"):
                responses.setdefault("400", error_response(400))
            for code, entry in list(responses.items()):
                if code.isdigit() and int(code) >= 400:
                    responses[code] = {**entry, "content": {"application/json": {"schema": _REF}}}
            responses.setdefault("503", error_response(503))
    return spec
