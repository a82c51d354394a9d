"""Tiles per zoom band: vggeo's backends against tipg and raw ST_AsMVT (run on demand).

    flock /tmp/vggeo-bench.lock nice .venv/bin/python benchmarks/tiles.py [--n 5600000]
        [--seed 20261121] [--tiles FILE] [--only inprocess http cached export] [--repeat 3]

Every figure is printed per zoom band — z0–z10, z11–z13, z14–z16 — never only as a blend.

Tile list: drawn from the data's density with ``--seed``: a random home (or, for a share of the
list, a random provision) and a random zoom of the band, then the tile that holds it, so dense
places are requested as often as a map user requests them. ``--tiles FILE`` replays any list
instead (one ``z/x/y`` per line; ``#`` comments and blank lines ignored); its tiles are split into
the same bands. The list is written to ``benchmarks/out/tiles-<n>-<seed>.txt`` for replay.

Stages (``--only`` picks some; default ``inprocess http``):

``inprocess``  uncached, in one Python process: raw ``ST_AsMVT`` (psycopg, prepared, sequential:
               every home of the tile, no clustering — the floor a hand-written tile query
               reaches) against the embedded backend's ``source.tile()`` (the same
               uncompressed MVT bytes); z11–z16 (at z0–z10 the raw query ships every home of a
               region — millions — and is not a product to compare with).
``http``       uncached, over HTTP, one server process each, on the same PostGIS tables: tipg
               (defaults), vggeo's PostGIS backend and vggeo's embedded backend (cache off, its
               default access log and metrics on). A keep-alive Python client passes once
               through the band's list, each request timed (the sequential p50; at z14–z16
               its passes alternate with raw ``ST_AsMVT`` passes over the same list, and the
               server's overhead is read from the two p50s); wrk cycles through it
               for ``--seconds``, with 1 client and with 8: req/s, p50, p99. An
               untimed pass first checks every response (status, size on the wire, homes in
               the tile: features plus clusters' ``point_count``) and warms the servers.
``cached``     one vggeo worker serving cached tiles (wrk, 16 connections, 20 s);
``export``     ``vggeo tiles export`` z0–z14 versus tippecanoe on the same points.

Each timed measurement runs ``--repeat`` times (default 3) and the median of each figure is
reported. Data: ``N`` generated residences and the generated regulations
(:func:`vggeo.tiles.sample.generate`), cached in ``benchmarks/out/``. Needs the ``bench`` extra
(tipg, tippecanoe), Debian PostgreSQL + PostGIS (a throwaway cluster is started as in the tests)
and Debian ``wrk``. Raw results: ``benchmarks/out/tiles-<n>[-<label>].json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
sys.path.insert(0, str(ROOT / "tests"))
SEED = 20261121
BANDS = {"z0-z10": range(0, 11), "z11-z13": range(11, 14), "z14-z16": range(14, 17)}
#: Tiles per band drawn from the density (low zooms are few and slow for tipg).
PER_BAND = {"z0-z10": 40, "z11-z13": 200, "z14-z16": 600}
#: The band where the server's overhead over raw ``ST_AsMVT`` is measured (issue 16's target).
OVERHEAD_BAND = "z14-z16"
PROVISION_SHARE = 0.1
RESULTS: dict = {}
CODE = ROOT  # the checkout whose vggeo is measured (see --code)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def band_of(z: int) -> str:
    for name, zooms in BANDS.items():
        if z in zooms:
            return name
    raise ValueError(f"zoom {z} is outside every band (0–16)")


def median_of(runs: list[dict]) -> dict:
    """Per-figure median of repeated runs (plus the spread of req/s)."""
    out = {
        k: float(np.median([r[k] for r in runs]))
        for k in runs[0]
        if isinstance(runs[0][k], int | float)
    }
    if "per_s" in out:
        out["per_s_runs"] = [r["per_s"] for r in runs]
    return out


def stats(times: list[float]) -> dict:
    t = np.asarray(times)
    return {
        "n": len(t),
        "per_s": round(len(t) / t.sum(), 1),
        "p50_ms": round(np.median(t) * 1e3, 3),
        "p99_ms": round(np.percentile(t, 99) * 1e3, 3),
        "max_ms": round(t.max() * 1e3, 1),
    }


# --- data ----------------------------------------------------------------------------------------


def build_data(n: int) -> Path:
    from vggeo.tiles.sample import generate, write_store

    OUT.mkdir(parents=True, exist_ok=True)
    gpkg = OUT / f"bench-{n}.gpkg"
    if gpkg.exists():
        log(f"using cached store {gpkg}")
        return gpkg
    log(f"generating {n} residences")
    t = time.perf_counter()
    res, prov = generate(n, seed=SEED, n_towns=500, provisions_per_town=40)
    log(f"generated in {time.perf_counter() - t:.1f}s; writing {gpkg}")
    write_store(gpkg, res, prov)
    return gpkg


def read_frames(gpkg: Path):
    import pyogrio

    return (
        pyogrio.read_dataframe(gpkg, layer="residences", use_arrow=True),
        pyogrio.read_dataframe(gpkg, layer="provisions", use_arrow=True),
    )


def density_tiles(frames, seed: int) -> list[tuple[int, int, int]]:
    """Seeded tiles weighted by what they hold: per band, a random home (or, for
    ``PROVISION_SHARE`` of the list, a random provision's interior point) and a random zoom of
    the band, then the Web Mercator tile holding it. Computed with pyproj, not vggeo."""
    import shapely
    from pyproj import Transformer

    res, prov = frames
    to_merc = Transformer.from_crs(3006, 3857, always_xy=True)
    hx, hy = shapely.get_x(res.geometry.values), shapely.get_y(res.geometry.values)
    pp = shapely.point_on_surface(prov.geometry.values)
    px, py = shapely.get_x(pp), shapely.get_y(pp)
    rng = np.random.default_rng(seed)
    half = 20037508.342789244
    out = []
    for band, zooms in BANDS.items():
        k = PER_BAND[band]
        kp = int(round(k * PROVISION_SHARE)) if len(px) else 0
        hi = rng.integers(0, len(hx), k - kp)
        pi = rng.integers(0, len(px), kp) if kp else np.empty(0, int)
        ex, ny = np.r_[hx[hi], px[pi]], np.r_[hy[hi], py[pi]]
        mx, my = to_merc.transform(ex, ny)
        zs = rng.integers(zooms.start, zooms.stop, len(mx))
        size = 2 * half / (1 << zs)
        cols = np.floor((mx + half) / size).astype(int)
        rows = np.floor((half - my) / size).astype(int)
        out += list(zip(zs.tolist(), cols.tolist(), rows.tolist(), strict=True))
    return out


def read_tile_list(path: Path) -> list[tuple[int, int, int]]:
    """``z/x/y`` lines (``#`` comments and blank lines ignored); anything else is refused."""
    out = []
    for no, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        m = re.fullmatch(r"(\d{1,2})/(\d{1,9})/(\d{1,9})", text)
        if not m:
            sys.exit(f"{path}:{no}: expected z/x/y, found {text[:60]!r}")
        z, x, y = (int(v) for v in m.groups())
        if z > 16 or x >= 1 << z or y >= 1 << z:
            sys.exit(f"{path}:{no}: {text} is not a tile of z0–z16")
        out.append((z, x, y))
    if not out:
        sys.exit(f"{path}: no tiles")
    return out


def by_band(tiles: list[tuple[int, int, int]]) -> dict[str, list[tuple[int, int, int]]]:
    out: dict[str, list] = {b: [] for b in BANDS}
    for t in tiles:
        out[band_of(t[0])].append(t)
    return {b: ts for b, ts in out.items() if ts}


# --- in process ----------------------------------------------------------------------------------

RAW_SQL = """SELECT ST_AsMVT(q, 'residences', 4096, 'geom', 'id') FROM (
  SELECT id, home_type, ownership_type, construction_year, municipality_code,
         ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 0, true) AS geom
  FROM residences WHERE geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 3006)) q"""


def time_raw(conn, tiles) -> tuple[dict, list[int]]:
    times, sizes = [], []
    for z, x, y in tiles:
        t = time.perf_counter()
        body = conn.execute(RAW_SQL, {"z": z, "x": x, "y": y}, prepare=True).fetchone()[0]
        times.append(time.perf_counter() - t)
        sizes.append(len(body or b""))
    return stats(times), sizes


def time_embedded(source, tiles) -> tuple[dict, list[int]]:
    times, sizes = [], []
    for z, x, y in tiles:
        t = time.perf_counter()
        body = source.tile("residences", z, x, y)
        times.append(time.perf_counter() - t)
        sizes.append(len(body))
    return stats(times), sizes


def stage_inprocess(source, url: str, bands: dict, repeat: int) -> None:
    import psycopg

    out = {}
    with psycopg.connect(url) as conn:
        for band, tiles in bands.items():
            if band == "z0-z10":
                continue
            time_raw(conn, tiles[:50])  # plans prepared, pages cached
            raw_runs, emb_runs = [], []
            for _ in range(repeat):  # interleaved: both see the same machine load
                s, raw_sizes = time_raw(conn, tiles)
                raw_runs.append(s)
                s, emb_sizes = time_embedded(source, tiles)
                emb_runs.append(s)
            raw, emb = median_of(raw_runs), median_of(emb_runs)
            raw["max_kb"] = round(max(raw_sizes) / 1024, 1)
            emb["max_kb"] = round(max(emb_sizes) / 1024, 1)
            out[band] = {
                "tiles": len(tiles),
                "raw_st_asmvt": raw,
                "embedded": emb,
                "ratio_embedded_vs_raw": round(emb["per_s"] / raw["per_s"], 2),
            }
            log(
                f"in process {band}: raw {raw['per_s']}/s p50 {raw['p50_ms']} ms; embedded "
                f"{emb['per_s']}/s p50 {emb['p50_ms']} ms; ratio {out[band]['ratio_embedded_vs_raw']}"
            )
    RESULTS["inprocess"] = out


# --- over HTTP -----------------------------------------------------------------------------------


@contextmanager
def process(cmd: list[str], url_ok: str, env: dict | None = None, timeout: float = 1800):
    import httpx

    logf = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        cmd,
        stdout=logf,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=CODE,
    )
    try:
        t0 = time.monotonic()
        while True:
            if proc.poll() is not None:
                logf.seek(0)
                raise RuntimeError(f"{cmd[:4]} exited:\n{logf.read()[-3000:]}")
            try:
                if httpx.get(url_ok, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"{cmd[:4]} did not start")
            time.sleep(0.5)
        log(f"started {' '.join(cmd[:5])} in {time.monotonic() - t0:.1f}s")
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format('GET', paths[i], {['Accept-Encoding'] = 'gzip'})
end
done = function(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, ' ..
    '"p99_us": %%d, "max_us": %%d, "mean_us": %%d, "socket_errors": %%d, "non2xx": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, latency.mean,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.errors.status))
end
"""


def wrk_run(base: str, paths: list[str], clients: int, seconds: float) -> dict:
    """``clients`` connections (wrk, one thread) cycling through ``paths`` for ``seconds``.

    wrk cannot stop after one pass, so a run is timed: a slow server answers a prefix of the
    list — a random sample of it, since the list is drawn at random.
    """
    script = OUT / f"wrk-{os.getpid()}.lua"
    script.write_text(WRK_SCRIPT % ",".join(json.dumps(p) for p in paths))
    r = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{clients}",
            f"-d{int(seconds)}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
    )
    line = next((x for x in r.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {r.stdout[-2000:]} {r.stderr[-2000:]}")
    d = json.loads(line[8:])
    return {
        "per_s": round(d["requests"] / (d["duration_us"] / 1e6), 1),
        "p50_ms": d["p50_us"] / 1e3,
        "p99_ms": d["p99_us"] / 1e3,
        "max_ms": d["max_us"] / 1e3,
        "mean_ms": d["mean_us"] / 1e3,
        # the most the mean latency can be: the run's time per request per connection
        "mean_bound_ms": round(d["duration_us"] / 1e3 / max(1, d["requests"]) * clients, 3),
        "requests": d["requests"],
        "errors": d["socket_errors"] + d["non2xx"],
    }


def sequential_run(base: str, paths: list[str]) -> dict:
    """One pass over ``paths`` by one keep-alive client, each request timed on its own (body read,
    not decompressed): the c=1 p50 the server overhead is read from.

    The client does the least per request, so that its time is not counted as the server's:
    fixed request bytes on a socket, the response read to its ``Content-Length``.
    ``http.client`` spends 0.07–0.08 ms more per response on parsing headers (a cached z14–z16
    tile's p50: 0.30 against 0.21 ms on the same server, paired per tile).

    wrk 4.1.0 is kept for throughput and for 8 clients, but its latency figures at one connection
    do not add up on this list: in one run it reported a mean of 12.7 ms where 1 376 sequential
    requests took 10.02 s in all (a mean of at most 7.3 ms), and a p50 about 2 ms above the
    server's own median time per request (benchmarks/tiles.md, fourth pass).
    """
    from urllib.parse import urlsplit

    u = urlsplit(base)
    client = LeanClient(u.hostname or "127.0.0.1", u.port or 80)
    times, bad = [], 0
    t0 = time.perf_counter()
    for p in paths:
        t = time.perf_counter()
        status = client.get(p)
        times.append(time.perf_counter() - t)
        bad += status not in (200, 204)
    wall = time.perf_counter() - t0
    client.close()
    return {**stats(times), "per_s": round(len(paths) / wall, 1), "errors": bad}


class LeanClient:
    """A keep-alive HTTP/1.1 GET with ``Accept-Encoding: gzip`` and as little client work as a
    response allows (no header parsing beyond status and ``Content-Length``; the servers here
    send no chunked bodies). Written here because Python's clients (http.client, httpx) parse
    every header, which is what this measurement must leave out."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.head = f"HTTP/1.1\r\nHost: {host}:{port}\r\nAccept-Encoding: gzip\r\n\r\n".encode()
        self.buf = b""

    def get(self, path: str) -> int:
        self.sock.sendall(b"GET " + path.encode() + b" " + self.head)
        buf = self.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += self._recv()
        head = buf[:end].lower()
        length = 0
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else len(head)])
        body_end = end + 4 + length
        while len(buf) < body_end:
            buf += self._recv()
        self.buf = buf[body_end:]
        return int(head[9:12])

    def _recv(self) -> bytes:
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("the server closed the connection")
        return data

    def close(self) -> None:
        self.sock.close()


def check_pass(base: str, paths: list[str], layer: str) -> dict:
    """Untimed pass: statuses, sizes on the wire, homes the tiles represent."""
    import httpx
    import mapbox_vector_tile

    homes, sizes, bad = [], [], 0
    with httpx.Client(base_url=base, timeout=300, headers={"Accept-Encoding": "gzip"}) as c:
        for p in paths:
            with c.stream("GET", p) as r:
                wire = b"".join(r.iter_raw())
            bad += r.status_code not in (200, 204)
            sizes.append(len(wire))
            n = 0
            if r.status_code == 200:
                gz = r.headers.get("content-encoding") == "gzip"
                d = mapbox_vector_tile.decode(gzip.decompress(wire) if gz else wire)
                n = sum(
                    f["properties"].get("point_count", 1)
                    for f in d.get(layer, {"features": []})["features"]
                )
            homes.append(n)
    return {
        "homes": homes,
        "max_kb": round(max(sizes) / 1024, 1),
        "mean_kb": round(float(np.mean(sizes)) / 1024, 1),
        "errors": bad,
    }


def stage_http(
    source, url: str, gpkg: Path, bands: dict, repeat: int, seconds: float, vggeo_env: dict
) -> None:
    import psycopg
    from system import _free_port

    idx = source.data.points("WebMercatorQuad")
    servers = [
        (
            "tipg",
            [sys.executable, "-m", "uvicorn", "tipg.main:app", "--no-access-log", "--port"],
            "/collections/public.residences/tiles/WebMercatorQuad/{z}/{x}/{y}",
            "default",
            {"DATABASE_URL": url, "TIPG_DB_SCHEMAS": '["public"]'},
            "/collections",
        ),
        (
            "vggeo-postgis",
            [sys.executable, "-m", "vggeo", "serve", "--store", url, "--port"],
            "/tiles/residences/{z}/{x}/{y}.mvt",
            "residences",
            {"VGGEO_CACHE_BYTES": "0", **vggeo_env},
            "/readyz",
        ),
        (
            "vggeo-embedded",
            [sys.executable, "-m", "vggeo", "serve", "--store", str(gpkg), "--port"],
            "/tiles/residences/{z}/{x}/{y}.mvt",
            "residences",
            {"VGGEO_CACHE_BYTES": "0", **vggeo_env},
            "/readyz",
        ),
    ]
    out: dict = {b: {} for b in bands}
    for name, cmd, pattern, layer, env, ok in servers:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        with process([*cmd, str(port)], base + ok, env=env):
            for band, tiles in bands.items():
                paths = [pattern.format(z=z, x=x, y=y) for z, x, y in tiles]
                check = check_pass(base, paths, layer)
                truth = [int(np.subtract(*idx.tile_range(*t)[::-1])) for t in tiles]
                lost = int(
                    sum(max(0, t - h) for t, h in zip(truth, check.pop("homes"), strict=True))
                )
                res = {"check": {**check, "homes_lost": lost, "homes_on_list": int(sum(truth))}}
                # At z14–z16 (the band of the overhead target) the sequential passes alternate
                # with passes of raw ST_AsMVT over the same list: read against the in-process
                # stage, minutes earlier, the server's overhead moved by up to 1 ms with the
                # machine (benchmarks/tiles.md, fifth pass). Below z14 raw ST_AsMVT ships every
                # home of the tile — millions at z0–z10, minutes a pass — and is no reference.
                seq, raw = [], []
                alternate = band == OVERHEAD_BAND
                with psycopg.connect(url) as conn:
                    if alternate:
                        time_raw(conn, tiles[:50])  # plans prepared, pages cached
                    for _ in range(repeat):
                        if alternate:
                            raw.append(time_raw(conn, tiles)[0])
                        seq.append(sequential_run(base, paths))
                res["seq"] = median_of(seq)
                if raw:
                    res["seq_raw"] = median_of(raw)
                for clients in (1, 8):
                    runs = [wrk_run(base, paths, clients, seconds) for _ in range(repeat)]
                    res[f"c{clients}"] = median_of(runs)
                out[band][name] = res
                log(
                    f"{name} {band}: sequential p50 {res['seq']['p50_ms']} ms; "
                    f"c1 {res['c1']['per_s']}/s p50 {res['c1']['p50_ms']} ms; c8 "
                    f"{res['c8']['per_s']}/s p99 {res['c8']['p99_ms']} ms; {res['check']}"
                )
    RESULTS["http"] = out


def stage_cached(gpkg: Path, bands: dict) -> None:
    from system import _free_port

    tiles = [t for ts in bands.values() for t in ts]
    paths = [f"/tiles/residences/{z}/{x}/{y}.mvt" for z, x, y in tiles]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with process(
        [sys.executable, "-m", "vggeo", "serve", "--store", str(gpkg), "--port", str(port)],
        f"{base}/readyz",
    ):
        check_pass(base, paths, "residences")  # fills the cache
        script = OUT / "paths.lua"
        script.write_text(
            "local paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n"
            "local i = 0\nrequest = function()\n  i = i % #paths + 1\n"
            "  return wrk.format('GET', paths[i], {['Accept-Encoding']='gzip'})\nend\n"
        )
        r = subprocess.run(
            ["wrk", "-t1", "-c16", "-d20s", "--latency", "-s", str(script), base],
            capture_output=True,
            text=True,
        )
        text = r.stdout
        rps = float(text.split("Requests/sec:")[1].split()[0])
        lat = {
            line.split()[0]: line.split()[1]
            for line in text.splitlines()
            if line.strip().startswith(("50%", "75%", "90%", "99%"))
        }
        RESULTS["cached_one_worker"] = {
            "tool": "wrk -t1 -c16 -d20s",
            "req_per_s": rps,
            "latency": lat,
            "errors": "Non-2xx" in text or "Socket errors" in text,
        }
    log(f"cached: {RESULTS['cached_one_worker']}")


def stage_export(source, gpkg: Path, n: int, maxzoom: int = 14) -> None:
    out = {}
    pm = OUT / f"vggeo-{n}.pmtiles"
    pm.unlink(missing_ok=True)
    t = time.perf_counter()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vggeo",
            "tiles",
            "export",
            "--store",
            str(gpkg),
            "-o",
            str(pm),
            "--layer",
            "residences",
            "--maxzoom",
            str(maxzoom),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=CODE,
    )
    out["vggeo_s"] = round(time.perf_counter() - t, 1)
    out["vggeo"] = r.stdout.strip() or r.stderr[-500:]
    tip = shutil.which("tippecanoe") or str(Path(sys.executable).parent / "tippecanoe")
    if Path(tip).exists():
        geojson = OUT / f"points-{n}.geojsonl"  # written once, not timed
        if not geojson.exists():
            from vggeo.crs import en_to_lonlat

            r_ = source.data.residences
            lon, lat = en_to_lonlat(r_["east"].to_numpy(), r_["north"].to_numpy())
            ids, ht = r_["id"].to_numpy(), r_["home_type"].astype(str).to_numpy()
            with open(geojson, "w") as f:
                for i in range(len(r_)):
                    f.write(
                        f'{{"type":"Feature","id":{ids[i]},"properties":{{"home_type":'
                        f'"{ht[i]}"}},"geometry":{{"type":"Point","coordinates":'
                        f"[{lon[i]:.6f},{lat[i]:.6f}]}}}}\n"
                    )
        tp = OUT / f"tippecanoe-{n}.pmtiles"
        cmd = [
            tip,
            "-o",
            str(tp),
            "-Z0",
            f"-z{maxzoom}",
            "-l",
            "residences",
            "-r1",
            "--cluster-distance=16",
            "--cluster-densest-as-needed",
            "--accumulate-attribute=point_count:sum",
            "-P",
            "--force",
            "--quiet",
            str(geojson),
        ]
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        out["tippecanoe_s"] = round(time.perf_counter() - t, 1)
        out["ratio_vggeo_over_tippecanoe"] = round(out["vggeo_s"] / out["tippecanoe_s"], 2)
    RESULTS["export"] = out
    log(f"export: {out}")


# --- report --------------------------------------------------------------------------------------


def print_tables() -> None:
    inp, http = RESULTS.get("inprocess", {}), RESULTS.get("http", {})
    for band in BANDS:
        if band in inp:
            d = inp[band]
            print(f"\n{band}, in process, uncached ({d['tiles']} tiles)")
            print("| | tiles/s | p50 ms | p99 ms | largest KB |\n|---|---:|---:|---:|---:|")
            for k in ("raw_st_asmvt", "embedded"):
                s = d[k]
                print(
                    f"| {k} | {s['per_s']:.1f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
                    f"{s['max_kb']} |"
                )
            print(f"embedded / raw: {d['ratio_embedded_vs_raw']}x")
        if band in http:
            d = http[band]
            print(f"\n{band}, over HTTP, uncached")
            print(
                "| server | sequential p50 ms | c=1 req/s | c=1 p50 ms | c=1 p99 ms | c=8 req/s | "
                "c=8 p50 ms | c=8 p99 ms | largest KB | homes lost | errors |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for name, s in d.items():
                c1, c8, ch = s["c1"], s["c8"], s["check"]
                seq = s.get("seq", {}).get("p50_ms", float("nan"))
                print(
                    f"| {name} | {seq:.2f} | {c1['per_s']:.1f} | {c1['p50_ms']:.2f} | "
                    f"{c1['p99_ms']:.2f} | "
                    f"{c8['per_s']:.1f} | {c8['p50_ms']:.2f} | {c8['p99_ms']:.2f} | "
                    f"{ch['max_kb']} | {ch['homes_lost']} of {ch['homes_on_list']} | "
                    f"{int(c1['errors'] + c8['errors'] + ch['errors'])} |"
                )
            if "tipg" in d:
                for name in (n for n in d if n != "tipg"):
                    r1 = d[name]["c1"]["per_s"] / d["tipg"]["c1"]["per_s"]
                    r8 = d[name]["c8"]["per_s"] / d["tipg"]["c8"]["per_s"]
                    print(f"{name} / tipg: {r1:.2f}x (c=1), {r8:.2f}x (c=8)")
            for name in (n for n in d if n.startswith("vggeo")):
                seq = d[name].get("seq", {}).get("p50_ms", float("nan"))
                if "seq_raw" in d[name]:  # raw ST_AsMVT passes alternating with the server's
                    raw = d[name]["seq_raw"]["p50_ms"]
                    print(
                        f"{name} p50 − raw ST_AsMVT p50, alternating passes: {seq:.2f} − "
                        f"{raw:.2f} = {seq - raw:+.2f} ms (sequential client)"
                    )
                if band in inp:
                    raw = inp[band]["raw_st_asmvt"]["p50_ms"]
                    print(
                        f"{name} p50 − raw ST_AsMVT p50 (in-process stage): {seq - raw:+.2f} ms "
                        f"(sequential client), {d[name]['c1']['p50_ms'] - raw:+.2f} ms (wrk, c=1)"
                    )
            for name, s in d.items():
                c1 = s["c1"]
                if c1.get("mean_ms", 0) > c1.get("mean_bound_ms", float("inf")) * 1.05:
                    print(
                        f"{name}: wrk's c=1 mean latency {c1['mean_ms']:.2f} ms exceeds the run's "
                        f"time per request {c1['mean_bound_ms']:.2f} ms: its latencies are off"
                    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5_600_000, help="generated homes")
    ap.add_argument("--seed", type=int, default=SEED, help="seed of the density-drawn tile list")
    ap.add_argument("--tiles", type=Path, help="replay this list of z/x/y lines instead")
    ap.add_argument(
        "--only",
        nargs="*",
        default=["inprocess", "http"],
        choices=["inprocess", "http", "cached", "export"],
    )
    ap.add_argument("--bands", nargs="*", default=list(BANDS), choices=list(BANDS))
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (median kept)")
    ap.add_argument("--seconds", type=int, default=8, help="length of one wrk run")
    ap.add_argument("--label", default="", help="suffix of the results file")
    ap.add_argument(
        "--render-threads",
        type=int,
        help="VGGEO_RENDER_THREADS of the vggeo servers (default: theirs, the number of cores)",
    )
    ap.add_argument(
        "--pg",
        help="postgresql:// URL of a database already holding the store's "
        "tables (as written by vggeo.tiles.backends.postgis.write_tables); default: a "
        "throwaway cluster, loaded here",
    )
    ap.add_argument(
        "--code",
        type=Path,
        help="run vggeo and its server from this checkout "
        "instead (a before/after comparison in one session, same data and list)",
    )
    args = ap.parse_args()
    if args.code:
        global CODE
        CODE = args.code.resolve()
        # both packages of the checkout: vggeo and the server (else the server would come from
        # wherever the environment installed it)
        sys.path[:0] = [str(CODE), str(CODE / "server")]
        os.environ["PYTHONPATH"] = os.pathsep.join([str(CODE), str(CODE / "server")])
    if not shutil.which("wrk") and {"http", "cached"} & set(args.only):
        sys.exit("wrk is needed for the HTTP stages (Debian: apt-get install wrk)")
    import vggeo

    RESULTS["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "vggeo": vggeo.__version__,
        "code": str(CODE.name),
    }
    RESULTS["n"] = args.n
    gpkg = build_data(args.n)
    # The frames are needed only to draw a list or to load a throwaway PostGIS.
    frames = None if args.tiles and args.pg else read_frames(gpkg)
    if args.tiles:
        tiles = read_tile_list(args.tiles)
        RESULTS["tile_list"] = str(args.tiles)
    else:
        tiles = density_tiles(frames, args.seed)
        listing = OUT / f"tiles-{args.n}-{args.seed}.txt"
        listing.write_text("".join(f"{z}/{x}/{y}\n" for z, x, y in tiles))
        RESULTS["tile_list"] = f"density-drawn, seed {args.seed} ({listing.name})"
    bands = {b: ts for b, ts in by_band(tiles).items() if b in args.bands}
    RESULTS["tiles_per_band"] = {b: len(ts) for b, ts in bands.items()}
    log(f"tiles per band: {RESULTS['tiles_per_band']}")
    from vggeo.tiles import open_source

    t = time.perf_counter()
    source = open_source(gpkg)
    source.warm()
    log(f"embedded: loaded and indexed in {time.perf_counter() - t:.1f}s")
    if {"inprocess", "http"} & set(args.only):
        from system import postgis_cluster

        from vggeo.tiles.backends.postgis import write_tables

        with nullcontext(args.pg) if args.pg else postgis_cluster() as url:
            if not args.pg:
                t = time.perf_counter()
                write_tables(url, *frames)
                RESULTS["postgis_load_s"] = round(time.perf_counter() - t, 1)
                log(f"PostGIS loaded in {RESULTS['postgis_load_s']}s")
            if "inprocess" in args.only:
                stage_inprocess(source, url, bands, args.repeat)
            if "http" in args.only:
                env = (
                    {"VGGEO_RENDER_THREADS": str(args.render_threads)}
                    if args.render_threads
                    else {}
                )
                stage_http(source, url, gpkg, bands, args.repeat, args.seconds, env)
    frames = None
    if "cached" in args.only:
        stage_cached(gpkg, bands)
    if "export" in args.only:
        stage_export(source, gpkg, args.n)
    path = OUT / f"tiles-{args.n}{'-' + args.label if args.label else ''}.json"
    path.write_text(json.dumps(RESULTS, indent=2, default=str))
    print_tables()
    log(f"results in {path}")


if __name__ == "__main__":
    main()
