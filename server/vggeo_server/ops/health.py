"""Probes and metrics: ``/healthz`` (the process is up), ``/readyz`` (it can serve current data)
and ``/metrics`` (Prometheus).

``/healthz`` does no I/O: a load balancer may call it every second. ``/readyz`` runs the
readiness checks in a worker thread, at most one run at a time (probes arriving meanwhile share
its answer, so a hanging store cannot pile up threads), bounded by ``ready_timeout``; it answers
200 when every check passes and **503** with a JSON reason otherwise:

* the store answers and its data version can be read (``store``);
* the data being served is the store's current version, or became stale less than
  ``stale_grace`` seconds ago — a reload in progress is not a failure, a reload that keeps
  failing is (``data``);
* the derived tables the backend serves from (the PostGIS cluster cells) are tagged with the
  store's current data version, or became stale less than ``stale_grace`` seconds ago
  (``derived``);
* the feature store answers (``features``), when features are served;
* tokens can be verified: the JWKS is loaded (``auth``), when tokens are accepted.

Reasons name what failed and the error class; details (which may name hosts) go to the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from vggeo_server.auth.middleware import get_access
from vggeo_server.auth.policy import METRICS, Access
from vggeo_server.ops.settings import OpsSettings
from vggeo_server.ops.telemetry import Telemetry

__all__ = ["Readiness", "ops_router", "store_checks"]

log = logging.getLogger(__name__)

#: A readiness check: ``None`` when fine, else a short reason.
Check = Callable[[], str | None]


class Readiness:
    """Named checks, run together off the event loop, one run at a time."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.checks: dict[str, Check] = {}
        self._running: asyncio.Future | None = None

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def _run_all(self) -> dict[str, str | None]:
        out = {}
        for name, check in self.checks.items():
            try:
                out[name] = check()
            except Exception as err:  # noqa: BLE001 - a failing check is a reason, not a 500
                log.warning("readiness check %s failed: %s", name, err)
                out[name] = f"{name} check failed ({type(err).__name__})"
        return out

    async def run(self) -> dict[str, str | None]:
        running = self._running
        if (
            running is None
            or running.done()
            or running.get_loop() is not asyncio.get_running_loop()
        ):
            running = self._running = asyncio.ensure_future(asyncio.to_thread(self._run_all))
        try:
            return await asyncio.wait_for(asyncio.shield(running), self.timeout)
        except TimeoutError:
            return {name: f"no answer within {self.timeout:g} s" for name in self.checks}


def store_checks(app: FastAPI, *, stale_grace: float) -> dict[str, Check]:
    """The checks of the tile store, the data version served and the feature store."""
    first_stale: dict[str, float] = {}  # data version → when it was first seen unserved
    cells_stale: dict[str, float] = {}  # "since" → when the cell table was first seen stale

    def store() -> str | None:
        service = app.state.service
        try:
            current = service.source.current_version()
        except Exception as err:  # noqa: BLE001
            log.warning("store unreachable: %s", err)
            return f"store unreachable ({type(err).__name__})"
        if not current:
            return "store data version unreadable"
        loaded = service.version
        if current == loaded:
            first_stale.clear()
            return None
        since = first_stale.setdefault(current, time.monotonic())
        age = time.monotonic() - since
        if age > stale_grace:
            return (
                f"serving data version {loaded} while the store has been at {current} "
                f"for {age:.0f} s (reloading fails?)"
            )
        return None

    def derived() -> str | None:
        service = app.state.service
        current = getattr(service.source, "cells_current", None)
        if current is None:  # backends without derived tables (embedded, archive)
            return None
        try:
            fresh = current()
        except Exception as err:  # noqa: BLE001
            log.warning("derived tables unreadable: %s", err)
            return f"derived tables unreadable ({type(err).__name__})"
        if fresh:
            cells_stale.clear()
            return None
        age = time.monotonic() - cells_stale.setdefault("since", time.monotonic())
        if age > stale_grace:
            return (
                f"the cluster cell table is not tagged with the store's data version "
                f"for {age:.0f} s (rebuild fails?)"
            )
        return None

    def features() -> str | None:
        reader = getattr(app.state, "features", None)
        if reader is None:
            return None
        try:
            reader.store.data_version  # noqa: B018 - reading it is the check
        except Exception as err:  # noqa: BLE001
            log.warning("feature store unreachable: %s", err)
            return f"feature store unreachable ({type(err).__name__})"
        return None

    return {"store": store, "derived": derived, "features": features}


_JSON = {"application/json": {"schema": {"type": "object"}}}


def ops_router(
    settings: OpsSettings, *, readiness: Readiness, telemetry: Telemetry | None
) -> APIRouter:
    """``/healthz``, ``/readyz`` and (with a telemetry) ``/metrics``."""
    r = APIRouter()

    @r.get(
        "/healthz",
        operation_id="getHealth",
        tags=["Operations"],
        summary="Liveness",
        responses={200: {"content": _JSON, "description": "The process is up."}},
    )
    def healthz(request: Request) -> JSONResponse:
        """`ok` when the process answers (no I/O: cheap enough to call every second), with the
        backend kind, the data version served and the tile cache's statistics."""
        service = getattr(request.app.state, "service", None)
        doc = {"status": "ok"}
        if service is not None:
            doc |= {
                "backend": service.source.kind,
                "data_version": service.version,
                "cache": service.cache.stats(),
            }
        return JSONResponse(doc, headers={"Cache-Control": "no-store"})

    @r.get(
        "/readyz",
        operation_id="getReadiness",
        tags=["Operations"],
        summary="Readiness",
        responses={
            200: {"content": _JSON, "description": "Ready to serve current data."},
            503: {"content": _JSON, "description": "Not ready: `reason` says why."},
        },
    )
    async def readyz(request: Request) -> JSONResponse:
        """Whether this process can serve current data: the store answers, its data version is
        readable and is the one served (or a reload is under way), the JWKS is loaded. 503 with
        `reason` otherwise."""
        results = await readiness.run()
        failed = [reason for reason in results.values() if reason]
        service = getattr(request.app.state, "service", None)
        doc: dict = {
            "status": "not ready" if failed else "ready",
            "checks": {k: v or "ok" for k, v in results.items()},
        }
        if service is not None:
            doc["data_version"] = service.version
        if failed:
            doc["reason"] = "; ".join(failed)
        return JSONResponse(doc, 503 if failed else 200, headers={"Cache-Control": "no-store"})

    if telemetry is not None:

        @r.get(
            "/metrics",
            operation_id="getMetrics",
            tags=["Operations"],
            summary="Prometheus metrics",
            responses={
                200: {
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                    "description": "The Prometheus text format.",
                }
            },
        )
        def metrics(access: Annotated[Access, Depends(get_access)]) -> Response:
            """Requests by route template and status, a latency histogram, tile cache hits and
            misses, tile bytes sent. With access control on, needs the `metrics` scope."""
            access.require(METRICS, "/metrics")
            body, content_type = telemetry.exposition()
            return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})

    return r
