"""Operations: liveness and readiness probes, Prometheus metrics, request ids and the JSON access
log (graceful shutdown is uvicorn's, configured by ``vggeo serve`` from :class:`OpsSettings`).

* :mod:`~vggeo_server.ops.settings` — :class:`OpsSettings`;
* :mod:`~vggeo_server.ops.telemetry` — the middleware: request id, access log, metrics;
* :mod:`~vggeo_server.ops.health` — ``/healthz``, ``/readyz``, ``/metrics``.
"""

from vggeo_server.ops.health import Readiness, ops_router, store_checks
from vggeo_server.ops.settings import OpsSettings
from vggeo_server.ops.telemetry import Telemetry, TelemetryMiddleware, note_route

__all__ = [
    "OpsSettings",
    "Readiness",
    "Telemetry",
    "TelemetryMiddleware",
    "note_route",
    "ops_router",
    "store_checks",
]
