"""A bounded load test on loopback: concurrent clients, zero errors, memory stable."""

import threading
import time
from pathlib import Path

import httpx
import numpy as np
from tiles._live import live_server

from vggeo.tiles.index import DEPTH, demorton


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _tile_urls(source, rng):
    idx = source.data.points("WebMercatorQuad")
    urls = []
    for z in (4, 8, 11, 13, 14, 15, 16):
        tiles = np.unique(idx.codes >> np.uint64(2 * (DEPTH - z)))
        col, row = demorton(rng.choice(tiles, size=min(len(tiles), 30), replace=False))
        for x, y in zip(col.tolist(), row.tolist(), strict=True):
            urls.append(f"/tiles/composite/{z}/{x}/{y}.mvt")
            urls.append(f"/tiles/residences/{z}/{x}/{y}.mvt?home_type=villa")
    urls += ["/tiles/residences/10/0/0.mvt", "/tiles/nope/1/1/1.mvt", "/tiles/residences/2/9/9.mvt"]
    return urls


def test_concurrent_load_has_no_errors_and_flat_memory(store, source):
    rng = np.random.default_rng(42)
    urls = _tile_urls(source, rng)
    expected = {"/tiles/nope/1/1/1.mvt": 404, "/tiles/residences/2/9/9.mvt": 400}
    errors, done = [], [0]
    lock = threading.Lock()

    with live_server(store[0]) as (base, pid):

        def worker(seed: int, until: float) -> None:
            r = np.random.default_rng(seed)
            with httpx.Client(base_url=base, timeout=10) as c:
                while time.monotonic() < until:
                    url = urls[int(r.integers(len(urls)))]
                    try:
                        resp = c.get(url, headers={"Accept-Encoding": "gzip"})
                        ok = resp.status_code == expected.get(url, resp.status_code) and (
                            resp.status_code in (200, 204) or url in expected
                        )
                    except httpx.HTTPError as err:
                        ok, resp = False, err
                    with lock:
                        done[0] += 1
                        if not ok:
                            errors.append((url, getattr(resp, "status_code", resp)))

        def run(seconds: float) -> None:
            until = time.monotonic() + seconds
            threads = [threading.Thread(target=worker, args=(i, until)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        run(2.0)  # warm-up: fills the cache
        rss_before = _rss_kib(pid)
        n_before = done[0]
        run(4.0)
        rss_after = _rss_kib(pid)
    assert not errors, errors[:5]
    assert done[0] - n_before > 200
    assert rss_after - rss_before < 40 * 1024, (rss_before, rss_after)
