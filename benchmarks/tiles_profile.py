"""Where the time of one uncached z14–z16 tile goes, end to end (run on demand).

    flock /tmp/vggeo-bench.lock nice .venv/bin/python benchmarks/tiles_profile.py \\
        --store benchmarks/out/bench-5600000.gpkg --pg postgresql://… [--tile z/x/y]

Takes the tile of the z14–z16 band of ``benchmarks/out/tiles-<n>-<seed>.txt`` (written by
``benchmarks/tiles.py``) that holds the median number of homes, unless ``--tile`` names one, and
times, each as the median of ``--repeat`` calls:

* PostGIS backend in process: every SQL statement of the tile as the client sees it, the
  same statements' execution inside PostgreSQL (``EXPLAIN (ANALYZE, TIMING OFF)``), the whole
  ``source.tile()`` (the rest is Python work), and gzip of the result;
* embedded backend in process: ``source.tile()`` and gzip;
* over HTTP (one vggeo worker, cache off, wrk with one connection on that one tile): the
  defaults, and with the JSON access log and the metrics switched off — the difference from the
  in-process time is the framework's and the middleware's share; and the same tile with the
  cache on (every request a hit): what HTTP, uvicorn and the middleware cost without rendering.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import tiles as bench  # noqa: E402


def med(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


class Recorder:
    """Wraps a psycopg connection pool's connections to record each statement's time."""

    def __init__(self, source) -> None:
        self.source = source
        self.calls: list[tuple[str, dict, float]] = []
        self._orig = source.pool.connection

    def __enter__(self):
        import contextlib

        rec = self

        @contextlib.contextmanager
        def connection(*a, **k):
            with rec._orig(*a, **k) as conn:
                orig_execute = conn.execute

                def execute(sql, params=None, **kw):
                    t = time.perf_counter()
                    rows = orig_execute(sql, params, **kw).fetchall()
                    rec.calls.append((sql, params, time.perf_counter() - t))

                    class Done:
                        def fetchone(self_inner):
                            return rows[0] if rows else None

                        def fetchall(self_inner):
                            return rows

                    return Done()

                conn.execute = execute
                try:
                    yield conn
                finally:
                    conn.execute = orig_execute

        self.source.pool.connection = connection
        return self

    def __exit__(self, *exc) -> None:
        self.source.pool.connection = self._orig


def postgis_parts(url: str, tile, repeat: int) -> dict:
    from vggeo.tiles import open_source
    from vggeo.tiles.service import compress_rendered as compress  # as the server gzips

    source = open_source(url)
    source.warm()
    z, x, y = tile
    mvt = source.tile("residences", z, x, y)
    out = {
        "mvt_bytes": len(mvt),
        "tile_ms": med(lambda: source.tile("residences", z, x, y), repeat),
        "gzip_ms": med(lambda: compress(mvt), repeat),
        "gzip_bytes": len(compress(mvt).body),
    }
    with Recorder(source) as rec:
        source.tile("residences", z, x, y)
    statements = []
    with source.pool.connection() as conn:
        for sql, params, _ in rec.calls:
            client = med(
                lambda s=sql, p=params: conn.execute(s, p, prepare=True).fetchall(), repeat
            )
            server = []
            for _ in range(repeat):
                plan = conn.execute(
                    "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + sql, params
                ).fetchone()[0][0]
                server.append(plan["Execution Time"] + plan["Planning Time"])
            statements.append(
                {
                    "sql": re.sub(r"\s+", " ", sql)[:160],
                    "client_ms": client,
                    "server_ms": statistics.median(server),
                }
            )
    out["statements"] = statements
    out["sql_client_ms"] = sum(s["client_ms"] for s in statements)
    out["python_ms"] = out["tile_ms"] - out["sql_client_ms"]
    source.close()
    return out


def raw_parts(url: str, tile, repeat: int) -> dict:
    import psycopg

    z, x, y = tile
    with psycopg.connect(url) as conn:
        p = {"z": z, "x": x, "y": y}
        client = med(lambda: conn.execute(bench.RAW_SQL, p, prepare=True).fetchone(), repeat)
        body = conn.execute(bench.RAW_SQL, p).fetchone()[0] or b""
        server = statistics.median(
            [
                (lambda pl: pl["Execution Time"] + pl["Planning Time"])(
                    conn.execute(
                        "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + bench.RAW_SQL, p
                    ).fetchone()[0][0]
                )
                for _ in range(repeat)
            ]
        )
    return {
        "client_ms": client,
        "server_ms": server,
        "mvt_bytes": len(body),
        "gzip_ms": med(lambda: gzip.compress(body, 6, mtime=0), repeat),
    }


def embedded_parts(store: Path, tile, repeat: int) -> dict:
    from vggeo.tiles import open_source
    from vggeo.tiles.service import compress_rendered as compress  # as the server gzips

    source = open_source(store)
    source.warm()
    z, x, y = tile
    mvt = source.tile("residences", z, x, y)
    return {
        "tile_ms": med(lambda: source.tile("residences", z, x, y), repeat),
        "gzip_ms": med(lambda: compress(mvt), repeat),
        "mvt_bytes": len(mvt),
    }


def http_parts(store: str, tile, seconds: int) -> dict:
    from system import _free_port

    z, x, y = tile
    out = {}
    for label, env in (
        ("defaults", {}),
        ("no access log, no metrics", {"VGGEO_ACCESS_LOG": "false", "VGGEO_METRICS": "false"}),
        # The same tile from the cache: HTTP, uvicorn, the middleware and wrk without rendering
        # — the floor the server's own path costs; uncached minus this is render + gzip + hop.
        ("cached (HTTP floor)", {"VGGEO_CACHE_BYTES": str(64 * 2**20)}),
    ):
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "vggeo", "serve", "--store", store, "--port", str(port)]
        with bench.process(cmd, base + "/readyz", env={"VGGEO_CACHE_BYTES": "0", **env}):
            bench.wrk_run(base, [f"/tiles/residences/{z}/{x}/{y}.mvt"], 1, 2)
            runs = [
                bench.wrk_run(base, [f"/tiles/residences/{z}/{x}/{y}.mvt"], 1, seconds)
                for _ in range(3)
            ]
            out[label] = bench.median_of(runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, required=True, help="the benchmark's GeoPackage")
    ap.add_argument("--pg", required=True, help="postgresql:// URL holding the same tables")
    ap.add_argument("--tile", help="z/x/y (default: the median z14–z16 tile of the list)")
    ap.add_argument("--list", type=Path, help="tile list (default: the newest written one)")
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument(
        "--only",
        nargs="*",
        default=["postgis", "raw", "embedded", "http"],
        choices=["postgis", "raw", "embedded", "http", "http-postgis"],
    )
    ap.add_argument("--code", type=Path, help="measure vggeo from this checkout instead")
    args = ap.parse_args()
    if args.code:
        bench.CODE = args.code.resolve()
        sys.path[:0] = [str(bench.CODE), str(bench.CODE / "server")]
        import os

        os.environ["PYTHONPATH"] = os.pathsep.join([str(bench.CODE), str(bench.CODE / "server")])
    if args.tile:
        tile = tuple(int(v) for v in args.tile.split("/"))
    else:
        lst = args.list or max(bench.OUT.glob("tiles-*.txt"), key=lambda p: p.stat().st_mtime)
        high = [t for t in bench.read_tile_list(lst) if t[0] >= 14]
        from vggeo.tiles.backends.memory import load_store

        idx = load_store(args.store).points("WebMercatorQuad")
        counts = sorted((int(idx.tile_range(*t)[1] - idx.tile_range(*t)[0]), t) for t in high)
        n, tile = counts[len(counts) // 2]
        print(f"median tile of {lst.name}: {tile} with {n} homes", file=sys.stderr)
    res = {"tile": "/".join(map(str, tile))}
    if "postgis" in args.only:
        res["postgis"] = postgis_parts(args.pg, tile, args.repeat)
    if "raw" in args.only:
        res["raw_st_asmvt"] = raw_parts(args.pg, tile, args.repeat)
    if "embedded" in args.only:
        res["embedded"] = embedded_parts(args.store, tile, args.repeat)
    if {"http", "http-postgis"} & set(args.only):
        res["http_postgis"] = http_parts(args.pg, tile, args.seconds)
    if "http" in args.only:
        res["http_embedded"] = http_parts(str(args.store), tile, args.seconds)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
