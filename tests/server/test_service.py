"""``vggeo serve`` as a service, as real processes: a graceful stop that finishes the request in
flight (held up by a real lock in a real PostGIS), access control and the JSON access log from
the environment, secrets nowhere in the process's output, metrics summed over workers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pyproj
import pytest
from system import _free_port

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def serve(store, *, env: dict | None = None, workers: int = 1, wait: bool = True):
    """A ``vggeo serve`` process; yields (process, base URL, path of its combined output)."""
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "vggeo",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--store",
        str(store),
    ]
    out = Path(tempfile.mkdtemp(prefix="vggeo-serve-")) / "output.log"
    with open(out, "w") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "VGGEO_RELOAD_INTERVAL": "0", **(env or {})},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while wait:
            if proc.poll() is not None:
                raise AssertionError(f"vggeo serve exited {proc.returncode}:\n{out.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "vggeo serve did not come up in 90 s"
            time.sleep(0.2)
        yield proc, base, out
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def point_tile(frame, z: int) -> tuple[int, int, int]:
    """A Web Mercator tile at zoom ``z`` holding the residence nearest the median."""
    import morecantile

    x, y = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
    i = int(np.argmin((x - np.median(x)) ** 2 + (y - np.median(y)) ** 2))
    lon, lat = pyproj.Transformer.from_crs(3006, 4326, always_xy=True).transform(x[i], y[i])
    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, z)
    return z, t.x, t.y


@pytest.fixture(scope="module")
def pg_store(postgis_url, store):
    """A PostGIS database of its own with the tile tables of the 4 000-home store."""
    import psycopg

    from vggeo.tiles.backends.postgis import write_tables

    with psycopg.connect(postgis_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS vggeo_service")
        conn.execute("CREATE DATABASE vggeo_service")
    url = postgis_url.rsplit("/", 1)[0] + "/vggeo_service"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgis")
    write_tables(url, store[1], store[2])
    return url


@pytest.mark.postgis
def test_sigterm_finishes_the_request_in_flight_and_exits_0(pg_store, store):
    import psycopg

    z, x, y = point_tile(store[1], 15)
    url = f"/tiles/residences/{z}/{x}/{y}.mvt"
    with serve(pg_store) as (proc, base, out):
        result: dict = {}
        with psycopg.connect(pg_store) as lock:
            # the residences and the copy a high-zoom tile is read from (built at start-up)
            lock.execute(
                "LOCK TABLE residences, vggeo_tile_points_webmercatorquad IN ACCESS EXCLUSIVE MODE"
            )

            def slow_request() -> None:
                try:
                    r = httpx.get(base + url, headers={"X-Request-ID": "in-flight"}, timeout=60)
                    result["status"], result["body"] = r.status_code, r.content
                except httpx.HTTPError as err:
                    result["error"] = err

            t = threading.Thread(target=slow_request)
            t.start()
            _wait_for_lock_waiter(pg_store)  # the request is in flight, held up by the lock
            proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert proc.poll() is None, "the server stopped with a request in flight"
            with pytest.raises(httpx.TransportError):  # no new connections while draining
                httpx.get(f"{base}/healthz", timeout=2)
            lock.rollback()  # the store answers again
        t.join(30)
        assert proc.wait(timeout=30) == 0, out.read_text()
    assert result.get("status") == 200, result
    import mapbox_vector_tile

    assert mapbox_vector_tile.decode(result["body"])["residences"]["features"]
    lines = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
    done = [line for line in lines if line["request_id"] == "in-flight"]
    assert len(done) == 1 and done[0]["status"] == 200 and done[0]["duration_ms"] > 1000


def _wait_for_lock_waiter(url: str) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            n = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            ).fetchone()[0]
            if n:
                return
            time.sleep(0.05)
    raise AssertionError("the request never reached the store")


@pytest.mark.postgis
def test_readyz_reports_an_unreachable_store_and_recovers(pg_store):
    import psycopg

    with serve(pg_store, env={"VGGEO_READY_TIMEOUT": "2"}) as (_proc, base, _out):
        assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
        admin = pg_store.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("ALTER DATABASE vggeo_service ALLOW_CONNECTIONS false")
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = 'vggeo_service'"
            )
            try:
                r = httpx.get(f"{base}/readyz", timeout=10)
                assert r.status_code == 503 and r.json()["status"] == "not ready"
                assert "store" in r.json()["reason"] or "no answer" in r.json()["reason"]
                assert httpx.get(f"{base}/healthz").status_code == 200
            finally:
                conn.execute("ALTER DATABASE vggeo_service ALLOW_CONNECTIONS true")
        deadline = time.monotonic() + 40
        while httpx.get(f"{base}/readyz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "never ready again"
            time.sleep(0.5)


@pytest.mark.postgis
def test_readyz_reports_cluster_cells_not_of_the_current_data_version(pg_store):
    import psycopg
    from psycopg import sql

    with serve(pg_store, env={"VGGEO_STALE_GRACE": "0"}) as (_proc, base, _out):
        ready = httpx.get(f"{base}/readyz", timeout=10).json()
        assert ready["status"] == "ready" and ready["checks"]["derived"] == "ok", ready
        with psycopg.connect(pg_store, autocommit=True) as conn:
            table = "vggeo_tile_cells_webmercatorquad"
            tag = conn.execute(
                "SELECT obj_description(to_regclass(%s), 'pg_class')", [table]
            ).fetchone()[0]
            assert tag, "the cell table was built and tagged at start-up"
            conn.execute(f"COMMENT ON TABLE {table} IS 'some older data version'")
            try:
                httpx.get(f"{base}/readyz", timeout=10)  # first sight starts the grace (0 s)
                r = httpx.get(f"{base}/readyz", timeout=10)
                assert r.status_code == 503 and "cluster cell" in r.json()["reason"], r.json()
                assert httpx.get(f"{base}/healthz").status_code == 200
            finally:
                conn.execute(
                    sql.SQL("COMMENT ON TABLE {} IS {}").format(
                        sql.Identifier(table), sql.Literal(tag)
                    )
                )
        assert httpx.get(f"{base}/readyz", timeout=10).json()["checks"]["derived"] == "ok"


def test_access_control_from_the_environment_and_no_secret_in_the_output(store, tmp_path):
    from vggeo_server.auth.keys import create_key

    keys = tmp_path / "keys.json"
    full, _ = create_key(
        keys,
        name="full",
        scopes=["residences", "residences:attributes", "metrics"],
        pepper=b"pepper!",
    )
    env = {
        "VGGEO_AUTH_KEYS_FILE": str(keys),
        "VGGEO_AUTH_KEY_PEPPER": "pepper!",
        "VGGEO_AUTH_QUERY_KEY": "true",
        "VGGEO_CORS_ORIGINS": '["https://maps.example"]',
    }
    z, x, y = point_tile(store[1], 15)
    tile = f"/tiles/residences/{z}/{x}/{y}.mvt"
    with serve(store[0], env=env) as (proc, base, out):
        assert httpx.get(base + tile).status_code == 401
        assert httpx.get(base + tile, headers={"X-API-Key": full}).status_code == 200
        assert httpx.get(f"{base}{tile}?api_key={full}").status_code == 200
        assert httpx.get(f"{base}{tile}?api_key={full[:-2]}xx").status_code == 401
        assert (
            httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {full}"}).status_code
            == 200
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    text = out.read_text()
    assert full not in text and full[4:24] not in text and "pepper!" not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert len(lines) >= 5
    assert {line["status"] for line in lines} >= {200, 401}
    assert any(line["query"] == "api_key=REDACTED" for line in lines)
    assert "with access control" in text


@pytest.mark.parametrize(
    "env, match",
    [
        ({"VGGEO_AUTH_KEYS_FILE": "{keys}"}, "CORS origin '*' is refused"),
        ({"VGGEO_AUTH_KEYS_FILE": "{missing}", "VGGEO_CORS_ORIGINS": "[]"}, "no such keys file"),
        ({"VGGEO_AUTH_JWKS": "https://idp.example/jwks", "VGGEO_CORS_ORIGINS": "[]"}, "issuer"),
    ],
)
def test_serve_refuses_to_start_with_unsafe_settings(store, tmp_path, env, match):
    from vggeo_server.auth.keys import create_key

    keys = tmp_path / "keys.json"
    create_key(keys, name="a", scopes=["residences"])
    env = {k: v.format(keys=keys, missing=tmp_path / "nope.json") for k, v in env.items()}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vggeo",
            "serve",
            "--store",
            str(store[0]),
            "--port",
            str(_free_port()),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and match in errors[0] and "Traceback" not in r.stderr, r.stderr


def test_metrics_are_summed_over_workers(store, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    mdir = tmp_path / "metrics"
    mdir.mkdir()
    with serve(store[0], workers=2, env={"PROMETHEUS_MULTIPROC_DIR": str(mdir)}) as (proc, base, _):
        n = 40
        for i in range(n):  # a connection each: the kernel spreads them over the workers
            httpx.get(f"{base}/tiles/residences/3/{4 + i % 2}/2.mvt")
        families = text_string_to_metric_families(httpx.get(f"{base}/metrics").text)
        total = sum(
            s.value
            for f in families
            if f.name == "vggeo_http_requests"
            for s in f.samples
            if s.name == "vggeo_http_requests_total"
            and s.labels["route"] == "/tiles/{layer}/{z}/{x}/{y}.{fmt}"
        )
        pids = {p.name.split("_")[-1] for p in mdir.glob("counter_*.db")}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert total == n
    assert len(pids) == 2, pids  # both workers counted into the shared directory
