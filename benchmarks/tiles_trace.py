"""The server's side of one uncached tile, timed inside the running server (run on demand).

    flock /tmp/vggeo-bench.lock nice .venv/bin/python benchmarks/tiles_trace.py \\
        --store postgresql://… [--tile 15/17825/10172] [--seconds 5] [--profile FILE]

Starts ``vggeo serve``'s application (its logging, one worker, tile cache off) in this process
with timestamps around the parts of a request, sends one tile with wrk and one connection for
``--seconds``, and prints wrk's p50 beside the medians of:

``app``           the whole ASGI application (every middleware, the fast path, the render);
``pre``           from the application's start to handing the render to the render queue
                  (request id, HEAD, CORS, the fast path's cache lookup and checks);
``hop in/out``    the render queue's thread hand-off: from submitting to the call starting in a
                  worker thread, and from its end to the event loop resuming;
``tile``, ``gzip`` the backend's ``source.tile()`` and the compression;
``post``          from resuming to the application's end (headers, body, access log, metrics).

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
sys.path.insert(0, str(ROOT / "tests"))

from system import _free_port  # noqa: E402

import vggeo.tiles.service as service_mod  # noqa: E402
import vggeo_server.render as render  # noqa: E402
from vggeo_server.app import create_app  # noqa: E402
from vggeo_server.cli.serve import _log_config  # noqa: E402
from vggeo_server.settings import Settings  # noqa: E402

PARTS = ("app", "pre", "hop in", "work", "hop out", "tile", "gzip", "post")
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
        _now.clear()
        _now["in"] = t0 = pc()
        await app(scope, receive, send)
        t1 = pc()
        T["app"].append(t1 - t0)
        if "resume" in _now:
            T["post"].append(t1 - _now["resume"])

    return outer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="postgresql:// URL or the GeoPackage")
    ap.add_argument("--tile", default="15/17825/10172")
    ap.add_argument("--seconds", type=int, default=5)
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
    url = f"http://127.0.0.1:{port}/tiles/residences/{args.tile}.mvt"

    def drive() -> None:
        while not server.started:
            time.sleep(0.2)
        wrk = ["wrk", "-t1", "-c1", "--latency", "-H", "Accept-Encoding: gzip"]
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
        server.should_exit = True

    threading.Thread(target=drive, daemon=True).start()
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        atexit.register(lambda: (prof.disable(), prof.dump_stats(args.profile)))
    server.run()


if __name__ == "__main__":
    main()
