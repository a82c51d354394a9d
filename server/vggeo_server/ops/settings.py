"""Operations settings (pydantic-settings, prefix ``VGGEO_``): logs, metrics, probes, shutdown."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OpsSettings(BaseSettings):
    """Settings of the access log, ``/metrics``, ``/readyz`` and graceful shutdown."""

    model_config = SettingsConfigDict(env_prefix="VGGEO_", extra="ignore")

    access_log: bool = Field(
        True,
        description="Write one JSON line per request to the `vggeo.access` logger (stdout "
        "under `vggeo serve`): time, request id, method, path, query (keys redacted), route, "
        "status, bytes, duration in ms, tile cache hit/miss, principal, client address.",
    )
    metrics: bool = Field(
        True,
        description="Serve Prometheus metrics at /metrics (with access control on, only "
        "to callers with the `metrics` scope). With several worker processes the counts of all "
        "workers are summed (prometheus_client's multiprocess mode: `vggeo serve --workers N` "
        "sets PROMETHEUS_MULTIPROC_DIR to a fresh directory unless it is set).",
    )
    shutdown_timeout: float = Field(
        30.0,
        ge=0,
        description="Seconds a stopping server (SIGTERM, SIGINT) waits for requests "
        "in flight to finish before it cancels them.",
    )
    ready_timeout: float = Field(
        3.0,
        gt=0,
        le=60,
        description="Seconds /readyz waits for the store to answer before it "
        "reports it unreachable.",
    )
    stale_grace: float = Field(
        30.0,
        ge=0,
        description="Seconds the server may keep serving an older data version after "
        "the store changed before /readyz reports it not ready (should exceed "
        "`reload_interval`).",
    )
