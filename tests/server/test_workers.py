"""``vggeo serve --workers N`` with the in-memory backend: N workers share one loaded index,
serve the same tiles, pick up a store change together and stop cleanly."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import httpx
import pytest
from test_service import serve

from vggeo.store import open_store
from vggeo.tiles.sample import generate

pytestmark = pytest.mark.slow


def _tree_pss_mb(pid: int) -> float:
    """PSS of a process and its descendants: shared pages are split between the sharers, so the
    sum is what the whole service costs."""

    def kids(p: int) -> list[int]:
        try:
            direct = [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            return []
        return direct + [g for c in direct for g in kids(c)]

    total = 0.0
    for p in [pid, *kids(pid)]:
        text = Path(f"/proc/{p}/smaps_rollup").read_text()
        total += int(re.search(r"^Pss:\s+(\d+) kB", text, re.M).group(1)) / 1024
    return total


@pytest.fixture(scope="module")
def vg_gpkg(tmp_path_factory):
    path = tmp_path_factory.mktemp("workers") / "store.gpkg"
    homes, _ = generate(150_000, seed=6, n_towns=40)
    with open_store(path, create=True) as s:
        s.load_residences(homes)
    return path, homes


def _load(base: str, n: int = 60) -> None:
    with httpx.Client(timeout=30) as c:
        for i in range(n):  # a fresh connection each: the kernel spreads them over the workers
            r = httpx.get(f"{base}/tiles/residences/{3 + i % 6}/{i % 3}/{i % 2}.mvt")
            assert r.status_code in (200, 204)
            c.get(f"{base}/healthz")


def test_two_workers_share_the_index(vg_gpkg):
    path, _ = vg_gpkg
    with serve(path, workers=1) as (proc, base, _):
        _load(base)
        one = _tree_pss_mb(proc.pid)
    with serve(path, workers=2) as (proc, base, _):
        _load(base)
        two = _tree_pss_mb(proc.pid)
    # Two private copies would cost about twice one (plus a supervisor); sharing costs a worker
    # its cache and request objects only.
    assert two < 1.5 * one, (one, two)


def test_workers_reload_together_after_an_ingest(vg_gpkg, tmp_path):
    src, homes = vg_gpkg
    path = tmp_path / "store.gpkg"
    path.write_bytes(src.read_bytes())
    with serve(path, workers=2, env={"VGGEO_RELOAD_INTERVAL": "0.5"}) as (proc, base, out):
        before = httpx.get(f"{base}/healthz").json()["data_version"]
        with open_store(path) as s:
            s.load_residences(homes.head(1000))
            after = s.data_version
        assert after != before
        deadline = time.monotonic() + 30
        seen: set[str] = set()
        while time.monotonic() < deadline:
            # every answer, from whichever worker, is the new version once the switch is done
            seen = {httpx.get(f"{base}/healthz").json()["data_version"] for _ in range(8)}
            if seen == {after}:
                break
            time.sleep(0.2)
        assert seen == {after}, out.read_text()[-2000:]
        r = httpx.get(f"{base}/tiles/residences/0/0/0.mvt")
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def test_no_request_is_dropped_while_generations_switch(vg_gpkg, tmp_path):
    """Clients on fresh connections all through several reloads: every request gets an answer.

    A connection the kernel handed to an old worker just before it was told to stop used to be
    closed unanswered (uvicorn closes connections with no request yet when it shuts down)."""
    import threading

    src, homes = vg_gpkg
    path = tmp_path / "store.gpkg"
    path.write_bytes(src.read_bytes())
    errors: list[str] = []
    answered = 0
    stop = threading.Event()

    def client() -> None:
        nonlocal answered
        while not stop.is_set():
            try:  # a fresh connection each time: any worker may accept it
                r = httpx.get(f"{base}/healthz", timeout=30)
                if r.status_code != 200:
                    errors.append(f"status {r.status_code}")
                answered += 1
            except httpx.TransportError as err:
                errors.append(repr(err))

    with serve(path, workers=2, env={"VGGEO_RELOAD_INTERVAL": "0.2"}) as (proc, base, out):
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for i in range(3):
                with open_store(path) as s:
                    s.load_residences(homes.iloc[i * 100 : i * 100 + 100])
                    version = s.data_version
                deadline = time.monotonic() + 60
                while httpx.get(f"{base}/healthz").json()["data_version"] != version:
                    assert time.monotonic() < deadline, out.read_text()[-2000:]
                    time.sleep(0.1)
                time.sleep(1.0)  # the old generation drains and exits under load
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert answered > 100
    assert not errors, (len(errors), errors[:3])
