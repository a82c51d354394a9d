"""Benchmark: ``vggeo export gpkg`` of the national registry vs ``pyogrio.write_dataframe``.

Not a test. Run on demand, under the shared lock (the peer needs several GB)::

    flock /tmp/vggeo-bench.lock .venv/bin/python benchmarks/export.py --n 5600000 \\
        --workdir /tmp/vgbench-export

Input: a GeoPackage store holding ``--n`` homes from the project's own generator, made once with
the CLI a user would run (``vggeo sample registry`` then ``vggeo registry load --store``) and
reused from ``--workdir`` afterwards (or any existing store given with ``--store``).

Contenders, each in its own child process, so that peak memory (max RSS from ``os.wait4``) is its
own:

* **vggeo**: ``vggeo export gpkg --store STORE -o out.gpkg`` — the whole command (for a
  GeoPackage store in EPSG:3006, the SQL copy of vggeo.exports.gpkg_copy): reading the store,
  the CRS step, labels, the R-tree, field docs, styles, the embedded QGIS project and the
  atomic rename.
* **vggeo, frame route** (``--skip frames`` leaves it out): the same export with the SQL copy
  switched off, every layer read from the store as frames and written by GDAL from Arrow — the
  route other stores (PostGIS) and other CRSs take, and the only one before the copy existed.
* **pyogrio**: ``pyogrio.read_dataframe`` of the store's ``residences`` (Arrow), then
  ``pyogrio.write_dataframe`` of that frame to a new GeoPackage (Arrow, R-tree). Its write alone
  is the aim's yardstick; its read is timed apart.

All outputs must hold the same number of homes; the script refuses to print ratios otherwise.

The store's pages in the OS cache change the figures by a third (reading 2.5 GB from disk), so
``--cache`` fixes them before each contender: ``warm`` (default) reads the store file once, as
the peer's timed write has its rows in memory already; ``cold`` empties the page cache
(``/proc/sys/vm/drop_caches``, root only), so each contender reads the store from disk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def _run(argv: list[str], *, env: dict | None = None) -> dict:
    """Run a child; return its wall time, peak RSS (GB) and the JSON line it printed, if any."""
    import tempfile

    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=fo, stderr=fe, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(argv[:4])} … failed ({code}):\n{err[-3000:]}")
    result = {"wall_s": wall, "peak_gb": usage.ru_maxrss / 2**20}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result.update(json.loads(line.removeprefix("RESULT ")))
    return result


def prepare(workdir: Path, n: int, seed: int) -> Path:
    """A GeoPackage store of ``n`` generated homes (made once, through the CLI)."""
    workdir.mkdir(parents=True, exist_ok=True)
    store = workdir / f"store_{n}_{seed}.gpkg"
    if store.exists():
        return store
    vggeo = [sys.executable, "-m", "vggeo"]
    reg = workdir / f"registry_{n}_{seed}.parquet"
    t = time.perf_counter()
    subprocess.run(
        [
            *vggeo,
            "sample",
            "registry",
            "--n",
            str(n),
            "--seed",
            str(seed),
            "-o",
            str(reg),
            "--overwrite",
        ],
        check=True,
    )
    tmp = store.with_name(store.name + ".loading.gpkg")
    tmp.unlink(missing_ok=True)
    subprocess.run(
        [*vggeo, "registry", "load", str(reg), "--store", str(tmp), "--no-progress"], check=True
    )
    tmp.rename(store)
    reg.unlink()
    print(f"store of {n:,} homes made in {time.perf_counter() - t:.0f} s", flush=True)
    return store


def peer(store: str, out: str) -> None:
    """Child: pyogrio reads the store's residences, then writes them to a new GeoPackage."""
    import pyogrio

    t = time.perf_counter()
    frame = pyogrio.read_dataframe(store, layer="residences", use_arrow=True)
    read = time.perf_counter() - t
    t = time.perf_counter()
    pyogrio.write_dataframe(frame, out, layer="residences", driver="GPKG", use_arrow=True)
    write = time.perf_counter() - t
    print(
        "RESULT "
        + json.dumps(
            {"read_s": read, "write_s": write, "rows": len(frame), "columns": frame.shape[1]}
        ),
        flush=True,
    )


def frames(store: str, out: str) -> None:
    """Child: ``vggeo export gpkg`` with the SQL copy switched off (the frame route)."""
    from vggeo.exports import export_store_gpkg
    from vggeo.exports import gpkg as gpkg_mod

    gpkg_mod._copy_layer = lambda *a, **k: None
    export_store_gpkg(store, out)


def _cache(store: Path, mode: str) -> None:
    """Put the store's pages in the OS cache (``warm``) or take every page out (``cold``)."""
    if mode == "warm":
        with open(store, "rb", buffering=0) as f:
            while f.read(16 << 20):
                pass
    elif mode == "cold":
        os.sync()
        try:
            Path("/proc/sys/vm/drop_caches").write_text("1\n")
        except OSError as err:
            raise SystemExit(f"--cache cold needs root (drop_caches): {err}") from err


def _features(path: Path) -> int:
    import pyogrio

    return int(pyogrio.read_info(path, layer="residences")["features"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=5_600_000, help="homes in the generated store")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/vgbench-export"))
    ap.add_argument("--store", type=Path, default=None, help="use this GeoPackage store instead")
    ap.add_argument("--skip", default="", help="comma-separated: vggeo, frames, pyogrio")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument(
        "--cache",
        choices=["warm", "cold"],
        default="warm",
        help="the store's pages before each contender: in the OS cache, or none (root)",
    )
    args = ap.parse_args()

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        flush=True,
    )
    store = args.store or prepare(args.workdir, args.n, args.seed)
    args.workdir.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    results: dict[str, dict] = {
        "input": {
            "kind": "GeoPackage store",
            "path": str(store),
            "size_gb": store.stat().st_size / 2**30,
            "cache": args.cache,
        }
    }
    outputs = {}
    if "vggeo" not in skip:
        out = args.workdir / "vggeo_export.gpkg"
        out.unlink(missing_ok=True)
        _cache(store, args.cache)
        r = _run(
            [
                sys.executable,
                "-m",
                "vggeo",
                "export",
                "gpkg",
                "--store",
                str(store),
                "-o",
                str(out),
                "--no-progress",
            ]
        )
        r.update(rows=_features(out), size_gb=out.stat().st_size / 2**30)
        results["vggeo"], outputs["vggeo"] = r, out
        print(f"vggeo export gpkg: {json.dumps(r)}", flush=True)
    if "frames" not in skip:
        out = args.workdir / "vggeo_frames.gpkg"
        out.unlink(missing_ok=True)
        _cache(store, args.cache)
        r = _run([sys.executable, __file__, "--frames", str(store), str(out)])
        r.update(rows=_features(out), size_gb=out.stat().st_size / 2**30)
        results["frames"], outputs["frames"] = r, out
        print(f"vggeo export gpkg, frame route: {json.dumps(r)}", flush=True)
    if "pyogrio" not in skip:
        out = args.workdir / "pyogrio_write.gpkg"
        out.unlink(missing_ok=True)
        _cache(store, args.cache)
        r = _run([sys.executable, __file__, "--peer", str(store), str(out)])
        r.update(size_gb=out.stat().st_size / 2**30)
        results["pyogrio"], outputs["pyogrio"] = r, out
        print(f"pyogrio read + write_dataframe: {json.dumps(r)}", flush=True)
    for out in outputs.values():
        out.unlink()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    v, p, fr = results.get("vggeo"), results.get("pyogrio"), results.get("frames")
    if not (v and p):
        return
    if v["rows"] != p["rows"] or (fr and fr["rows"] != v["rows"]):
        raise SystemExit(
            f"the outputs disagree: vggeo wrote {v['rows']} homes, pyogrio {p['rows']}"
            + (f", the frame route {fr['rows']}" if fr else "")
        )
    print(
        f"\n{v['rows']:,} homes from a {results['input']['size_gb']:.2f} GB GeoPackage store "
        f"({args.cache} page cache before each contender)\n"
    )
    print("| | wall | peak RSS | file |")
    print("|---|---:|---:|---:|")
    print(
        f"| vggeo export gpkg (read + write) | {v['wall_s']:.1f} s | {v['peak_gb']:.2f} GB | "
        f"{v['size_gb']:.2f} GB |"
    )
    if fr:
        print(
            f"| vggeo export gpkg, frame route | {fr['wall_s']:.1f} s | {fr['peak_gb']:.2f} GB | "
            f"{fr['size_gb']:.2f} GB |"
        )
    print(
        f"| pyogrio write_dataframe (write only) | {p['write_s']:.1f} s | "
        f"{p['peak_gb']:.2f} GB (with its read) | {p['size_gb']:.2f} GB |"
    )
    print(
        f"| pyogrio read_dataframe + write_dataframe | {p['read_s'] + p['write_s']:.1f} s | "
        f"{p['peak_gb']:.2f} GB | |"
    )
    print(
        f"\nvggeo / pyogrio write alone: time ×{v['wall_s'] / p['write_s']:.2f}, "
        f"peak memory ×{v['peak_gb'] / p['peak_gb']:.2f}"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        peer(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--frames":
        frames(sys.argv[2], sys.argv[3])
    else:
        main()
