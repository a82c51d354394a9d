"""Operations in process: request ids, the JSON access log, Prometheus metrics (read back with
prometheus_client's own parser), liveness and readiness."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
from prometheus_client.parser import text_string_to_metric_families


def metrics(client) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) → value, parsed by prometheus_client's parser."""
    out = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def access_lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "vggeo.access"]


@pytest.fixture()
def fresh(store):
    """A client of a fresh app (its own metrics and cache)."""
    from fastapi.testclient import TestClient

    from vggeo_server import Settings, create_app

    with TestClient(
        create_app(Settings(_env_file=None, store=str(store[0]), reload_interval=0))
    ) as c:
        yield c


def test_request_ids_are_echoed_or_made(client):
    r = client.get("/healthz", headers={"X-Request-ID": "lb-1234.abc"})
    assert r.headers["x-request-id"] == "lb-1234.abc"
    made = client.get("/healthz").headers["x-request-id"]
    assert len(made) == 32 and made != client.get("/healthz").headers["x-request-id"]
    # anything that could forge a log line is replaced
    for bad in ("a b", "x" * 200, 'a"b', "å"):
        got = client.get("/healthz", headers={"X-Request-ID": bad.encode("utf-8")}).headers
        assert got["x-request-id"] != bad and len(got["x-request-id"]) == 32


def test_one_json_line_per_request(fresh, source, caplog):
    caplog.set_level(logging.INFO, logger="vggeo.access")
    url = "/tiles/residences/4/8/4.mvt"
    gz = {"Accept-Encoding": "gzip", "X-Request-ID": "req-1"}
    first = fresh.get(url, headers=gz)
    second = fresh.get(url, headers=gz | {"X-Request-ID": "req-2"})
    fresh.get("/tiles/residences/2/9/9.mvt")  # out of range: 400
    fresh.head("/collections")
    lines = access_lines(caplog)
    assert [line["request_id"] for line in lines[:2]] == ["req-1", "req-2"]
    a, b, bad, head = lines
    assert a["method"] == "GET" and a["path"] == url and a["query"] == ""
    assert a["route"] == b["route"] == "/tiles/{layer}/{z}/{x}/{y}.{fmt}"
    assert (a["status"], a["cache"], b["cache"]) == (first.status_code, "miss", "hit")
    sent = [int(r.headers["content-length"]) for r in (first, second)]  # gzip bytes on the wire
    assert [a["bytes"], b["bytes"]] == sent
    assert a["duration_ms"] > 0 and a["time"].endswith("Z") and a["client"] == "testclient"
    assert bad["status"] == 400 and head["method"] == "HEAD" and head["bytes"] == 0
    assert head["route"] == "/collections"


def test_metrics_count_requests_by_route_template_latency_cache_and_tile_bytes(fresh):
    gz = {"Accept-Encoding": "gzip"}
    sizes = []
    for _ in range(3):
        r = fresh.get("/tiles/residences/4/8/4.mvt", headers=gz)
        sizes.append(int(r.headers["content-length"]))  # gzip bytes on the wire
    fresh.get("/tiles/residences/2/9/9.mvt")
    for i in range(5):  # raw paths never become labels
        fresh.get(f"/no/such/path/{i}")
    m = metrics(fresh)
    tile = "/tiles/{layer}/{z}/{x}/{y}.{fmt}"
    assert (
        m[("vggeo_http_requests_total", (("method", "GET"), ("route", tile), ("status", "200")))]
        == 3
    )
    assert (
        m[("vggeo_http_requests_total", (("method", "GET"), ("route", tile), ("status", "400")))]
        == 1
    )
    assert (
        m[
            (
                "vggeo_http_requests_total",
                (("method", "GET"), ("route", "(unmatched)"), ("status", "404")),
            )
        ]
        == 5
    )
    assert not [k for k in m if "/no/such" in str(k)]
    assert m[("vggeo_http_request_duration_seconds_count", (("route", tile),))] == 4
    assert m[("vggeo_tile_cache_requests_total", (("result", "miss"),))] == 1
    assert m[("vggeo_tile_cache_requests_total", (("result", "hit"),))] == 2
    assert m[("vggeo_tile_bytes_total", ())] == sum(sizes)


def test_healthz_is_cheap_and_readyz_checks_the_store(tmp_path, store):
    from fastapi.testclient import TestClient

    from vggeo_server import Settings, create_app
    from vggeo_server.ops import OpsSettings

    path = tmp_path / "store.gpkg"
    shutil.copy(store[0], path)
    settings = Settings(
        _env_file=None,
        store=str(path),
        reload_interval=0,
        ops=OpsSettings(_env_file=None, stale_grace=0),
    )
    with TestClient(create_app(settings)) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.headers["cache-control"] == "no-store"
        assert ready.json()["status"] == "ready" and ready.json()["checks"]["store"] == "ok"
        # the store changes and this process does not reload (reload_interval 0): not ready
        with open(path, "ab") as f:
            f.write(b"\0" * 4096)
        first = c.get("/readyz")  # the change is seen now; the grace (0 s) starts
        stale = c.get("/readyz")
        assert stale.status_code == 503, (first.json(), stale.json())
        body = stale.json()
        assert body["status"] == "not ready" and "data version" in body["reason"]
        assert body["checks"]["store"] == body["reason"]
        assert c.get("/healthz").status_code == 200  # alive all the same


def test_head_answers_on_the_probes(client):
    for path in ("/healthz", "/readyz"):
        r = client.head(path)
        assert r.status_code == 200 and r.content == b""


def test_metrics_can_be_switched_off(store):
    from fastapi.testclient import TestClient

    from vggeo_server import Settings, create_app
    from vggeo_server.ops import OpsSettings

    settings = Settings(
        _env_file=None,
        store=str(store[0]),
        reload_interval=0,
        ops=OpsSettings(_env_file=None, metrics=False, access_log=False),
    )
    with TestClient(create_app(settings)) as c:
        assert c.get("/metrics").status_code == 404
        assert "/metrics" not in c.get("/openapi.json").json()["paths"]
