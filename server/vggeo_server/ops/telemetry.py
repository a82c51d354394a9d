"""Request ids, the JSON access log and Prometheus metrics, in one ASGI middleware.

Every request gets an id: the client's ``X-Request-ID`` when it is a plain token (letters,
digits and ``._:/+=@-``, at most 128 characters — anything else could forge log lines), else
128 random bits in hex; the response echoes it in ``X-Request-ID``.

The access log is one JSON object per line on the ``vggeo.access`` logger. The path is logged
with its query string re-encoded and the values of ``api_key`` and ``access_token`` replaced by
``REDACTED``; headers are never logged.

Metrics (prometheus_client, one registry per app, labelled by *route template* — never by raw
path, which any client could make unbounded):

* ``vggeo_http_requests_total{method, route, status}``
* ``vggeo_http_request_duration_seconds{route}`` (histogram)
* ``vggeo_http_requests_in_flight``
* ``vggeo_tile_cache_requests_total{result="hit"|"miss"}``
* ``vggeo_tile_bytes_total`` (body bytes of tile responses)

With ``PROMETHEUS_MULTIPROC_DIR`` set (``vggeo serve --workers N`` sets it), the values live in
files there and ``/metrics`` sums every worker's (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram

__all__ = ["Telemetry", "TelemetryMiddleware", "note_route", "redact_query", "REQUEST_ID"]

access_log = logging.getLogger("vggeo.access")

REQUEST_ID = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$", re.ASCII)
SECRET_PARAMS = frozenset({"api_key", "access_token"})
TILE_ROUTES = frozenset(
    {
        "/tiles/{layer}/{z}/{x}/{y}.{fmt}",
        "/collections/{layer}/tiles/{tms}/{tileMatrix}/{tileRow}/{tileCol}",
    }
)
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def redact_query(raw: bytes) -> str:
    """A query string for the log: secret parameters' values replaced by ``REDACTED``."""
    if not raw:
        return ""
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    return urlencode([(k, "REDACTED" if k.lower() in SECRET_PARAMS else v) for k, v in pairs])


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


class Telemetry:
    """The metrics of one app (its own registry: several apps may live in one process)."""

    def __init__(self) -> None:
        # lazy: prometheus_client chooses its value store (one process or PROMETHEUS_MULTIPROC_DIR)
        # when first imported, which must come after `vggeo serve --workers` has set that folder
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "vggeo_http_requests",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "vggeo_http_request_duration_seconds",
            "Time to answer a request, by route template.",
            ["route"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "vggeo_http_requests_in_flight",
            "Requests being answered.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.cache = Counter(
            "vggeo_tile_cache_requests",
            "Tile requests by tile cache result.",
            ["result"],
            registry=r,
        )
        self.tile_bytes = Counter(
            "vggeo_tile_bytes", "Body bytes of tile responses sent.", registry=r
        )
        # Labelled children, looked up once: ``labels()`` validates and locks on every call,
        # which would be a good part of a cached tile's answer time.
        self._cache_children = {result: self.cache.labels(result) for result in ("hit", "miss")}
        self._request_children: dict[tuple[str, str, int], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}

    def observe(
        self,
        method: str,
        route: str,
        status: int,
        seconds: float,
        cache: str | None,
        tile_bytes: int | None,
    ) -> None:
        """Count one answered request."""
        key = (method, route, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(method, route, str(status))
        child.inc()
        latency = self._latency_children.get(route)
        if latency is None:
            latency = self._latency_children[route] = self.latency.labels(route)
        latency.observe(seconds)
        if cache is not None and cache in self._cache_children:
            self._cache_children[cache].inc()
        if tile_bytes is not None:
            self.tile_bytes.inc(tile_bytes)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in the Prometheus text format, and its content type."""
        # lazy: as in __init__
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if multiprocess_dir():
            from prometheus_client import multiprocess  # lazy: as in __init__

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


async def note_route(request: Request) -> None:
    """App-wide dependency: records the matched route template for the log and the metrics."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if path is not None:
        request.scope.setdefault("state", {})["route"] = path


def _route_of(scope: Scope, state: dict) -> str:
    route = state.get("route")
    if route:
        return route
    if scope["path"].startswith("/static/"):
        return "/static"
    return "(unmatched)"


class TelemetryMiddleware:
    """ASGI middleware: request id, JSON access log, metrics (see the module docstring).

    The route template and the cache result are left in the request's ``state`` by the inner
    layers (``state["route"]``, ``state["cache"]``), the caller by access control
    (``state["access"]``).
    """

    def __init__(self, app: ASGIApp, *, telemetry: Telemetry | None, log_requests: bool) -> None:
        self.app = app
        self.telemetry = telemetry
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = scope.setdefault("state", {})
        rid = self._request_id(scope)
        state["request_id"] = rid
        rid_header = rid.encode("latin-1")
        status, size = 500, 0

        async def tracked(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", rid_header))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        if self.telemetry is not None:
            self.telemetry.in_flight.inc()
        try:
            await self.app(scope, receive, tracked)
        finally:
            if self.telemetry is not None:
                self.telemetry.in_flight.dec()
            self._record(scope, state, rid, status, size, time.perf_counter() - start)

    @staticmethod
    def _request_id(scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                text = value.decode("latin-1").strip()
                if _REQUEST_ID.match(text):
                    return text
                break
        return os.urandom(16).hex()  # as random as a UUID 4, and a third of its cost

    def _record(
        self, scope: Scope, state: dict, rid: str, status: int, size: int, seconds: float
    ) -> None:
        route = _route_of(scope, state)
        cache = state.get("cache")
        if self.telemetry is not None:
            tile = route in TILE_ROUTES and status == 200 and scope["method"] == "GET"
            self.telemetry.observe(
                scope["method"], route, status, seconds, cache, size if tile else None
            )
        if self.log_requests and access_log.isEnabledFor(logging.INFO):
            access = state.get("access")
            client = scope.get("client")
            line = {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "request_id": rid,
                "method": scope["method"],
                "path": scope["path"],
                "query": redact_query(scope.get("query_string", b"")),
                "route": route,
                "status": status,
                "bytes": size,
                "duration_ms": round(seconds * 1000, 3),
                "cache": cache,
                "principal": getattr(access, "principal", None),
                "client": client[0] if client else None,
            }
            access_log.info(json.dumps(line, ensure_ascii=False))
