"""Benchmark: the server as a service — workers, replicas, memory, ingest-to-fresh-tiles.

Run on demand, never in the test suite::

    flock /tmp/vggeo-bench.lock .venv/bin/python benchmarks/replicas.py             # 200 000 homes
    flock /tmp/vggeo-bench.lock .venv/bin/python benchmarks/replicas.py --homes 1000000

Measures, on one machine over loopback:

* throughput and p99 latency (wrk, a Lua script cycling over tile URLs around the homes, z 3…16)
  for 1 and 2 workers, **cached** (every URL requested once before, the tile cache holds them)
  and **uncached** (``VGGEO_CACHE_BYTES=0``: every request renders), on the in-memory backend
  (a GeoPackage store) and on PostGIS (the same data in a vggeo PostGIS store);
* memory per worker: RSS and PSS (``/proc/PID/smaps_rollup``; PSS splits shared pages between the
  processes sharing them, so the PSS sum is what the service costs) of ``vggeo serve --workers
  N`` (workers forked from one loaded index) against uvicorn's own workers (``uvicorn --workers N
  --factory vggeo_server.app:create_app``: each worker loads its own copy), after the same load;
* time from an ingest's commit to fresh tiles on every replica: two ``vggeo serve`` over one
  PostGIS store, a change delivery applied by this process; per replica, the time until
  ``/healthz`` reports the new data version (NOTIFY path; the poll interval is set to 60 s so it
  cannot be the poll), five deliveries in a row;
* ``vggeo tiles export`` (z 0…14) of the sample store and of the generated one, and
  ``--refresh`` after a registry update (a whole rebuild) and once more with nothing changed.

wrk and the servers share the machine's cores: the figures are for comparing configurations on
the same machine, not absolute capacity.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # tests/system.py: the throwaway PostGIS cluster

from system import _free_port, postgis_cluster  # noqa: E402

WRK_SCRIPT = """
local urls = {}
for line in io.lines(os.getenv("VGGEO_URLS")) do urls[#urls + 1] = line end
local i = math.random(#urls)
request = function()
  i = i % #urls + 1
  return wrk.format("GET", urls[i], {["Accept-Encoding"] = "gzip"})
end
"""


# --- data ------------------------------------------------------------------------------------


def make_stores(cache: Path, homes: int, url: str | None):
    """A vggeo GeoPackage store of generated homes and provisions (cached), and the same data in
    a vggeo PostGIS store at ``url``; returns (gpkg path, residences frame)."""
    from vggeo.store import MemoryDelivery, open_store
    from vggeo.tiles.sample import generate

    residences, provisions = generate(homes, seed=7, n_towns=80, provisions_per_town=12)
    provisions = provisions.assign(provision_type=provisions["provision_type"].astype(str))
    base = MemoryDelivery(
        "bestammelse",
        "bench-base",
        "base",
        datetime(2026, 1, 1, tzinfo=UTC),
        {"bestammelse": {"provisions": provisions}},
    )
    gpkg = cache / f"replicas_{homes}.gpkg"
    if not gpkg.exists():
        tmp = gpkg.with_suffix(".tmp.gpkg")
        tmp.unlink(missing_ok=True)
        with open_store(tmp, create=True) as s:
            s.load_residences(residences)
            s.apply(base)
        tmp.rename(gpkg)
    if url is not None:
        with open_store(url, create=True) as s:
            s.load_residences(residences)
            s.apply(base)
            s.conn.execute("ANALYZE")
    return gpkg, residences, provisions


def tile_urls(residences, n: int = 4000) -> list[str]:
    """Tile paths over the homes (where people look), z 3…16, spread over the data."""
    import morecantile
    import numpy as np
    from pyproj import Transformer

    rng = np.random.default_rng(1)
    pick = rng.choice(len(residences), size=min(n, len(residences)), replace=False)
    x = residences.geometry.x.to_numpy()[pick]
    y = residences.geometry.y.to_numpy()[pick]
    lon, lat = Transformer.from_crs(3006, 4326, always_xy=True).transform(x, y)
    tms = morecantile.tms.get("WebMercatorQuad")
    zs = rng.integers(3, 17, size=len(pick))
    out = []
    for lo, la, z in zip(lon, lat, zs, strict=True):
        t = tms.tile(float(lo), float(la), int(z))
        layer = "composite" if z >= 10 else "residences"
        out.append(f"/tiles/{layer}/{t.z}/{t.x}/{t.y}.mvt")
    return sorted(set(out))


# --- servers ---------------------------------------------------------------------------------


@contextmanager
def server(store: str, *, workers: int, env: dict | None = None, uvicorn_workers: bool = False):
    """``vggeo serve`` (or plain uvicorn workers) on a free port; yields (base URL, pid)."""
    port = _free_port()
    if uvicorn_workers:
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "vggeo_server.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    else:
        cmd = [
            sys.executable,
            "-m",
            "vggeo",
            "serve",
            "--store",
            store,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
    log = tempfile.TemporaryFile("w+")
    environ = {
        **os.environ,
        "VGGEO_STORE": store,
        "VGGEO_ACCESS_LOG": "false",
        "VGGEO_RELOAD_INTERVAL": "60",
        **(env or {}),
    }
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=environ, cwd=HERE.parent)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise SystemExit(f"server exited {proc.returncode}:\n{log.read()[-3000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not come up in 600 s")
            time.sleep(0.3)
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _children(pid: int) -> list[int]:
    try:
        kids = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


def memory(pid: int) -> list[dict]:
    """RSS and PSS (MB) of a server process and all its descendants."""
    out = []
    for p in [pid, *_children(pid)]:
        try:
            text = Path(f"/proc/{p}/smaps_rollup").read_text()
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:60]
        except OSError:
            continue
        vals = {k: int(v) / 1024 for k, v in re.findall(r"^(Rss|Pss):\s+(\d+) kB", text, re.M)}
        out.append(
            {"pid": p, "rss_mb": round(vals["Rss"]), "pss_mb": round(vals["Pss"]), "cmd": cmd}
        )
    return out


def wrk(base: str, urls_file: Path, *, seconds: int, connections: int = 16) -> dict:
    """Requests per second and latency percentiles from wrk."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT)
        script = f.name
    try:
        r = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, base],
            capture_output=True,
            text=True,
            env={**os.environ, "VGGEO_URLS": str(urls_file)},
            check=True,
        )
    finally:
        os.unlink(script)
    text = r.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    lat = {q: _ms(v) for q, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)", text, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: (.*)", text)
    return {
        "rps": rps,
        "p50_ms": lat.get("50"),
        "p99_ms": lat.get("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sock.group(1) if sock else None,
    }


def _ms(v: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    x, unit = float(m.group(1)), m.group(2)
    return x / 1000 if unit == "us" else x * 1000 if unit == "s" else x


def warm(base: str, urls: list[str]) -> None:
    with httpx.Client(timeout=120) as c:
        for u in urls:
            c.get(base + u, headers={"Accept-Encoding": "gzip"})


# --- scenarios -------------------------------------------------------------------------------


def throughput(stores: dict[str, str], urls: list[str], urls_file: Path, seconds: int) -> dict:
    out = {}
    for backend, store in stores.items():
        for workers in (1, 2):
            for cached in (True, False):
                env = {} if cached else {"VGGEO_CACHE_BYTES": "0"}
                with server(store, workers=workers, env=env) as (base, pid):
                    if cached:
                        for _ in range(workers * 2):  # every worker's cache (connections spread)
                            warm(base, urls)
                    else:
                        warm(base, urls[:50])
                    r = wrk(base, urls_file, seconds=seconds)
                    mem = memory(pid)
                key = f"{backend}, {workers} worker(s), {'cached' if cached else 'uncached'}"
                out[key] = {**r, "pss_total_mb": sum(m["pss_mb"] for m in mem)}
                print(f"{key:>42}: {json.dumps(out[key])}", flush=True)
    return out


def memory_per_worker(gpkg: str, urls: list[str], urls_file: Path) -> dict:
    out = {}
    for label, kw in (
        ("vggeo serve (forked, shared index)", {}),
        ("uvicorn --workers (own index each)", {"uvicorn_workers": True}),
    ):
        for workers in (1, 2):
            if workers == 1 and kw:
                continue  # one uvicorn worker is the same process as vggeo serve's
            with server(gpkg, workers=workers, **kw) as (base, pid):
                wrk(base, urls_file, seconds=5)
                mem = memory(pid)
            key = f"{label}, {workers} worker(s)"
            out[key] = {"processes": mem, "pss_total_mb": sum(m["pss_mb"] for m in mem)}
            print(
                f"{key:>48}: PSS total {out[key]['pss_total_mb']} MB "
                f"{[(m['rss_mb'], m['pss_mb']) for m in mem]} (RSS, PSS per process)",
                flush=True,
            )
    return out


def ingest_to_fresh(url: str, cache: Path, rounds: int = 5) -> dict:
    """Two replicas over one PostGIS store; a change delivery committed here; seconds until
    each replica's /healthz shows the new version."""
    from vggeo.lm import open_delivery
    from vggeo.sample.delivery import generate_deliveries
    from vggeo.store import open_store

    d = cache / "replica_deliveries"
    d.mkdir(exist_ok=True)
    paths = generate_deliveries(
        d / str(time.time_ns()), product="bestammelse", n=2000, changes=rounds, seed=5
    )
    schema = "ingest_bench"
    with open_store(url, create=True, schema=schema) as s:
        s.apply(open_delivery(paths[0]))
    results = []
    env = {"VGGEO_STORE_SCHEMA": schema}
    with server(url, workers=1, env=env) as (a, _), server(url, workers=1, env=env) as (b, _):
        with open_store(url, schema=schema) as s:
            for path in paths[1:]:
                time.sleep(1)
                delivery = open_delivery(path)
                s.apply(delivery)
                committed = time.monotonic()
                version = s.data_version
                seen: dict[str, float] = {}
                with httpx.Client(timeout=10) as c:
                    while len(seen) < 2 and time.monotonic() - committed < 60:
                        for base in (a, b):
                            if (
                                base not in seen
                                and c.get(f"{base}/healthz").json()["data_version"] == version
                            ):
                                seen[base] = time.monotonic() - committed
                        time.sleep(0.01)
                results.append(sorted(round(v, 3) for v in seen.values()))
                print(f"ingest → fresh on both replicas: {results[-1]} s", flush=True)
    flat = [v for r in results for v in r]
    return {"rounds": results, "max_s": max(flat), "median_s": sorted(flat)[len(flat) // 2]}


def export_refresh(stores: dict[str, Path], cache: Path, maxzoom: int = 14) -> dict:
    """``vggeo tiles export`` of a store, then ``--refresh`` after a registry update (a whole
    rebuild) and ``--refresh`` again (nothing changed: a no-op). Wall seconds of each."""
    import shutil

    from vggeo.store import open_store

    out = {}
    for label, src in stores.items():
        work = cache / f"refresh_{src.stem}.gpkg"
        shutil.copyfile(src, work)
        archive = cache / f"refresh_{src.stem}.pmtiles"
        cmd = [
            sys.executable,
            "-m",
            "vggeo",
            "tiles",
            "export",
            "--store",
            str(work),
            "-o",
            str(archive),
            "--maxzoom",
            str(maxzoom),
            "--no-progress",
            "--overwrite",
        ]
        times = {}
        for step in ("first export", "refresh after an update", "refresh, unchanged"):
            if step == "refresh after an update":
                with open_store(work) as s:
                    homes = s.read_table("residences")
                    s.load_residences(homes.head(1000), mode="upsert")
            t = time.perf_counter()
            r = subprocess.run(
                [*cmd, *(["--refresh"] if "refresh" in step else [])],
                capture_output=True,
                text=True,
                check=True,
            )
            times[step] = round(time.perf_counter() - t, 1)
            times[step + " output"] = r.stdout.strip()
        out[label] = times
        print(f"export z0-{maxzoom} {label}: {json.dumps(times)}", flush=True)
        archive.unlink(missing_ok=True)
        work.unlink(missing_ok=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--homes", type=int, default=200_000)
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration per configuration")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/vggeo-bench-cache"))
    ap.add_argument("--skip", default="", help="comma-separated: memory,throughput,ingest,export")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    args.cache.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        flush=True,
    )
    report: dict = {"homes": args.homes}
    with postgis_cluster() as url:
        t = time.perf_counter()
        gpkg, residences, _ = make_stores(args.cache, args.homes, url)
        print(f"stores ready in {time.perf_counter() - t:.0f} s", flush=True)
        urls = tile_urls(residences)
        urls_file = args.cache / f"replicas_urls_{args.homes}.txt"
        urls_file.write_text("\n".join(urls) + "\n")
        if "memory" not in skip:
            report["memory"] = memory_per_worker(str(gpkg), urls, urls_file)
        if "throughput" not in skip:
            report["throughput"] = throughput(
                {"in-memory": str(gpkg), "PostGIS": url}, urls, urls_file, args.seconds
            )
        if "ingest" not in skip:
            report["ingest_to_fresh"] = ingest_to_fresh(url, args.cache)
        if "export" not in skip:
            from vggeo.tiles.sample import default_store

            report["export_refresh"] = export_refresh(
                {"sample store": Path(default_store()), f"{args.homes:,} homes": gpkg}, args.cache
            )
    path = args.cache / f"replicas_report_{args.homes}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"report: {path}")


if __name__ == "__main__":
    main()
