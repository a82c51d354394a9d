"""The server's side of one uncached tile, timed inside the running server (run on demand).

    flock /tmp/vggeo-bench.lock nice .venv/bin/python benchmarks/tiles_trace.py \\
        --store postgresql://… [--tile 15/17825/10172 | --tiles FILE] [--seconds 5]
        [--profile FILE] [--verbose]

Starts ``vggeo serve``'s application (its logging, one worker, tile cache off) in this process
with timestamps around the parts of a request, sends one tile with wrk and one connection for
``--seconds``, and prints wrk's p50 beside the medians of:

``app``           the whole ASGI application (every middleware, the fast path, the render);
``pre``           from the application's start to handing the render to the render queue, or to
                  ``source.tile_async()`` (request id, HEAD, CORS, the fast path's cache lookup
                  and checks);
``hop in/out``    the render queue's thread hand-off: from submitting to the call starting in a
                  worker thread, and from its end to the event loop resuming (none when the
                  backend renders on the loop: PostGIS);
``tile``, ``gzip`` the backend's ``source.tile()`` or ``tile_async()``, and the compression;
``post``          from the render's end to the application's end (gzip, headers, body, access
                  log, metrics).
``recv``          from uvicorn receiving the request's bytes to the application's start;
``idle``          from the previous request's end to this one's bytes (wrk's turn-around).

wrk's p50 minus ``app`` is what uvicorn, the kernel and wrk add. ``--profile`` writes a cProfile
of the event loop's thread (the worker threads are not in it).
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]

from system import _free_port  # noqa: E402
from tiles import WRK_SCRIPT  # noqa: E402

import vggeo.tiles.service as service_mod  # noqa: E402
import vggeo_server.render as render  # noqa: E402
from vggeo_server.app import create_app  # noqa: E402
from vggeo_server.cli.serve import _log_config  # noqa: E402
from vggeo_server.settings import Settings  # noqa: E402

PARTS = ("idle", "recv", "app", "pre", "hop in", "work", "hop out", "tile", "gzip", "post")
T: dict[str, list[float]] = {k: [] for k in PARTS}
_now: dict[str, float] = {}  # the request in flight (wrk with one connection: one at a time)
pc = time.perf_counter


def instrument(app) -> object:
    """Wrap the render queue, the compression, the backend and the application with clocks."""
    run = render.RenderQueue.run

    async def timed_run(self, fn, /, *args, **kwargs):
        box: dict[str, float] = {}

        def call():
            box["s"] = pc()
            try:
                return fn(*args, **kwargs)
            finally:
                box["e"] = pc()

        t0 = pc()
        if "in" in _now:
            T["pre"].append(t0 - _now["in"])
        out = await run(self, call)
        _now["resume"] = t1 = pc()
        T["hop in"].append(box["s"] - t0)
        T["work"].append(box["e"] - box["s"])
        T["hop out"].append(t1 - box["e"])
        return out

    render.RenderQueue.run = timed_run  # type: ignore[method-assign]
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    received = HttpToolsProtocol.data_received

    def timed_received(self, data: bytes) -> None:
        _now["recv"] = pc()
        if "end" in _now:
            T["idle"].append(_now["recv"] - _now["end"])
        received(self, data)

    HttpToolsProtocol.data_received = timed_received  # type: ignore[method-assign]
    compress = service_mod.compress_rendered

    def timed_compress(mvt, **kw):
        t = pc()
        out = compress(mvt, **kw)
        T["gzip"].append(pc() - t)
        return out

    service_mod.compress_rendered = timed_compress
    wrapped = set()

    async def outer(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        source = getattr(getattr(app.state, "service", None), "source", None)
        if source is not None and id(source) not in wrapped:
            wrapped.add(id(source))
            tile = source.tile

            def timed_tile(*a, **k):
                t = pc()
                out = tile(*a, **k)
                T["tile"].append(pc() - t)
                return out

            source.tile = timed_tile
            tile_async = source.tile_async

            async def timed_tile_async(*a, **k):
                t = pc()
                if "in" in _now:
                    T["pre"].append(t - _now["in"])
                out = await tile_async(*a, **k)
                _now["resume"] = t1 = pc()
                if out is not None:
                    T["tile"].append(t1 - t)
                return out

            source.tile_async = timed_tile_async
        recv = _now.get("recv")
        _now.clear()  # (also "end": an idle gap is measured from the previous request's end)
        _now["in"] = t0 = pc()
        if recv is not None:
            T["recv"].append(t0 - recv)
        await app(scope, receive, send)
        t1 = pc()
        T["app"].append(t1 - t0)
        _now["end"] = t1
        if "resume" in _now:
            T["post"].append(t1 - _now["resume"])

    return outer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="postgresql:// URL or the GeoPackage")
    ap.add_argument("--tile", default="15/17825/10172")
    ap.add_argument(
        "--tiles", type=Path, help="cycle through this list of z/x/y lines instead of one tile"
    )
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument(
        "--verbose", action="store_true", help="also wrk's report and the spread of app and idle"
    )
    ap.add_argument("--profile", type=Path, help="cProfile of the event loop's thread")
    args = ap.parse_args()
    os.environ.update({"VGGEO_STORE": args.store, "VGGEO_CACHE_BYTES": "0"})
    port = _free_port()
    # The access log goes to a file, as in benchmarks/tiles.py (not to a terminal)
    sys.stdout = tempfile.TemporaryFile(mode="w")
    app = instrument(create_app(Settings()))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, access_log=False, log_config=_log_config()
    )
    server = uvicorn.Server(config)
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/tiles/residences/{args.tile}.mvt"
    script: list[str] = []
    if args.tiles:
        # the same list a benchmarks/tiles.py run replays, cycled by wrk's script
        paths = [f"/tiles/residences/{line.strip()}.mvt" for line in args.tiles.read_text().split()]
        lua = Path(tempfile.mkdtemp()) / "paths.lua"
        lua.write_text(WRK_SCRIPT % ",".join(json.dumps(p) for p in paths))
        script, url = ["-s", str(lua)], base

    def drive() -> None:
        while not server.started:
            time.sleep(0.2)
        wrk = ["wrk", "-t1", "-c1", "--latency", "-H", "Accept-Encoding: gzip", *script]
        subprocess.run([*wrk, "-d2s", url], capture_output=True, check=True)  # warm
        for v in T.values():
            v.clear()
        out = subprocess.run(
            [*wrk, f"-d{args.seconds}s", url], capture_output=True, text=True, check=True
        ).stdout
        p50 = next(line.split()[1] for line in out.splitlines() if line.strip().startswith("50%"))
        res = {"wrk_p50": p50, "requests": len(T["app"])}
        res |= {k: round(statistics.median(v) * 1e3, 3) for k, v in T.items() if v}
        print(json.dumps(res), file=sys.__stdout__, flush=True)
        if args.verbose:
            print(out, file=sys.__stdout__)
            for k in ("app", "idle"):
                v = sorted(T[k])
                print(
                    k,
                    "mean",
                    round(statistics.mean(v) * 1e3, 3),
                    "p25/50/75/90",
                    [round(v[int(len(v) * q)] * 1e3, 3) for q in (0.25, 0.5, 0.75, 0.9)],
                    file=sys.__stdout__,
                )
        server.should_exit = True

    threading.Thread(target=drive, daemon=True).start()
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        atexit.register(lambda: (prof.disable(), prof.dump_stats(args.profile)))
    server.run()


if __name__ == "__main__":
    main()
