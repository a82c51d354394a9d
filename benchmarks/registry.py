"""Benchmark: loading the national registry (5.6 M rows) — vggeo vs the naive pandas path.

Not a test. Run under the shared lock (it needs several GB)::

    flock /tmp/vggeo-bench.lock .venv/bin/python benchmarks/registry.py --n 5600000

Steps, each in its own child process so that peak memory (max RSS from ``os.wait4``) is that
step's own:

1. ``generate``: ``generate_registry(n)`` and write it as JSON lines (as the API delivers rows)
   and as CSV (all fields, ``number`` written like pandas writes a list).
2. For each input (JSON lines, CSV), two paths, each loading into a GeoDataFrame and writing a
   GeoPackage and a GeoParquet:

   * **vggeo**: ``read_registry`` (Arrow's typed readers, canonical dtypes, categoricals, every
     documented rule of the field list with its rejects, ``kommunkod``, the construction-year
     placeholder flag, geometry from ``sweref99x/y`` via ``vggeo.crs`` with the axis
     convention) →
     ``write_registry`` (.gpkg via pyogrio's Arrow path, .parquet).
   * **naive**: ``pd.read_json(lines=True)`` / ``pd.read_csv`` → ``gpd.points_from_xy`` →
     ``GeoDataFrame.to_file`` (.gpkg) and ``to_parquet``; ``number`` turned into text first
     because a GeoPackage cannot hold lists. No type checks, no code lists, no axis checks.

Prints a table with wall times, peak memory and vggeo/naive ratios; ``--json`` writes them too.
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

HERE = Path(__file__).resolve().parent


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _child(argv: list[str], *, cap_gb: float | None = None) -> dict:
    """Run one step in a child process; return its JSON result plus peak RSS (MB).

    With ``cap_gb`` the child is killed once its resident memory passes the cap (the machine is
    shared; the naive path cannot load the national registry from JSON lines in reasonable
    memory), and the result says so.
    """
    import threading

    t0 = time.perf_counter()
    p = subprocess.Popen(
        [sys.executable, __file__, "_step", *argv], stdout=subprocess.PIPE, text=True
    )
    killed = {}

    def watch() -> None:
        while p.poll() is None:
            rss = _rss_mb(p.pid)
            if cap_gb and rss > cap_gb * 1024:
                killed.update(at_s=time.perf_counter() - t0, rss_mb=rss)
                p.kill()
                return
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    if killed:
        return {"killed": True, "peak_mb": killed["rss_mb"], "at_s": killed["at_s"]}
    if status != 0:
        raise SystemExit(f"step {argv} failed with status {status}")
    res = json.loads(out.strip().splitlines()[-1])
    res["peak_mb"] = usage.ru_maxrss / 1024  # Linux: KiB
    return res


def _peak_so_far_mb() -> float:
    """This process's peak resident memory so far (the peak of a step is the first step whose
    figure reaches the process's peak)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _step(argv: list[str]) -> None:
    import warnings

    warnings.simplefilter("ignore")
    kind = argv[0]
    res: dict = {}
    if kind == "generate":
        n, out = int(argv[1]), Path(argv[2])
        from vggeo.registry.readers import write_registry
        from vggeo.sample.registry import generate_registry

        t = time.perf_counter()
        g = generate_registry(n, seed=2024)
        res["generate_s"] = time.perf_counter() - t
        t = time.perf_counter()
        write_registry(g, out / "registry.jsonl")
        res["write_jsonl_s"] = time.perf_counter() - t
        t = time.perf_counter()
        write_registry(g, out / "registry.csv")
        res["write_csv_s"] = time.perf_counter() - t
        res["rows"] = len(g)
    elif kind == "vggeo":
        src, out = Path(argv[1]), Path(argv[2])
        from vggeo.registry.readers import read_registry, write_registry

        t = time.perf_counter()
        g, rejects = read_registry(src, with_rejects=True)  # every documented rule checked
        res["load_s"] = time.perf_counter() - t
        res["load_peak_mb"] = _peak_so_far_mb()
        res["rows"] = len(g)
        res["rejects"] = len(rejects)
        t = time.perf_counter()
        write_registry(g, out / f"vggeo_{src.suffix[1:]}.parquet")
        res["parquet_s"] = time.perf_counter() - t
        res["parquet_peak_mb"] = _peak_so_far_mb()
        t = time.perf_counter()
        write_registry(g, out / f"vggeo_{src.suffix[1:]}.gpkg")
        res["gpkg_s"] = time.perf_counter() - t
    elif kind == "naive":
        src, out = Path(argv[1]), Path(argv[2])
        import geopandas as gpd
        import pandas as pd

        t = time.perf_counter()
        df = pd.read_json(src, lines=True) if src.suffix == ".jsonl" else pd.read_csv(src)
        gdf = gpd.GeoDataFrame(
            df, geometry=gpd.points_from_xy(df["sweref99y"], df["sweref99x"]), crs="EPSG:3006"
        )
        res["load_s"] = time.perf_counter() - t
        res["rows"] = len(gdf)
        gdf["number"] = gdf["number"].astype(str)  # a GeoPackage cannot hold lists
        t = time.perf_counter()
        gdf.to_parquet(out / f"naive_{src.suffix[1:]}.parquet")
        res["parquet_s"] = time.perf_counter() - t
        t = time.perf_counter()
        gdf.to_file(out / f"naive_{src.suffix[1:]}.gpkg", layer="residences", driver="GPKG")
        res["gpkg_s"] = time.perf_counter() - t
    print(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5_600_000)
    ap.add_argument("--workdir", type=Path, default=HERE / "out" / "registry")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="Reuse registry.jsonl/.csv already in --workdir (same --n).",
    )
    ap.add_argument(
        "--naive-cap-gb",
        type=float,
        default=10.0,
        help="Kill the naive path beyond this resident memory (shared machine).",
    )
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}",
        flush=True,
    )
    if args.reuse and (args.workdir / "registry.csv").exists():
        gen = json.loads((args.workdir / "generate.json").read_text())
    else:
        for f in args.workdir.glob("*"):
            f.unlink()
        gen = _child(["generate", str(args.n), str(args.workdir)])
        (args.workdir / "generate.json").write_text(json.dumps(gen))
    sizes = {p.suffix: p.stat().st_size / 1e6 for p in args.workdir.glob("registry.*")}
    print(
        f"generate {gen['rows']:,} rows: {gen['generate_s']:.1f} s (peak {gen['peak_mb']:.0f} MB); "
        f"wrote JSON lines {sizes['.jsonl']:.0f} MB in {gen['write_jsonl_s']:.1f} s, "
        f"CSV {sizes['.csv']:.0f} MB in {gen['write_csv_s']:.1f} s",
        flush=True,
    )
    results = {"n": gen["rows"], "generate": gen, "runs": {}}
    for fmt in ("jsonl", "csv"):
        src = args.workdir / f"registry.{fmt}"
        for path in ("vggeo", "naive"):
            if path == "naive" and args.skip_naive:
                continue
            r = _child(
                [path, str(src), str(args.workdir)],
                cap_gb=args.naive_cap_gb if path == "naive" else None,
            )
            results["runs"][f"{path}/{fmt}"] = r
            if r.get("killed"):
                print(
                    f"{path:5s} {fmt:5s}: killed at {r['peak_mb'] / 1024:.1f} GB resident after "
                    f"{r['at_s']:.0f} s (cap {args.naive_cap_gb:g} GB)",
                    flush=True,
                )
                continue
            print(
                f"{path:5s} {fmt:5s}: load {r['load_s']:6.1f} s, GeoParquet {r['parquet_s']:6.1f} s, "
                f"GeoPackage {r['gpkg_s']:6.1f} s, peak {r['peak_mb'] / 1024:5.2f} GB"
                + (
                    f" (after the load {r['load_peak_mb'] / 1024:.2f} GB, after GeoParquet "
                    f"{r['parquet_peak_mb'] / 1024:.2f} GB)"
                    if "load_peak_mb" in r
                    else ""
                )
                + (f", {r['rejects']} rejects" if "rejects" in r else ""),
                flush=True,
            )
    print()
    print("| input | path | load s | GeoParquet s | GeoPackage s | total s | peak GB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for key, r in results["runs"].items():
        path, fmt_ = key.split("/")
        if r.get("killed"):
            print(
                f"| {fmt_} | {path} | killed at the {r['peak_mb'] / 1024:.1f} GB cap after "
                f"{r['at_s']:.0f} s | | | | > {r['peak_mb'] / 1024:.1f} |"
            )
            continue
        total = r["load_s"] + r["parquet_s"] + r["gpkg_s"]
        r["total_s"] = total
        print(
            f"| {fmt_} | {path} | {r['load_s']:.1f} | {r['parquet_s']:.1f} | {r['gpkg_s']:.1f} "
            f"| {total:.1f} | {r['peak_mb'] / 1024:.2f} |"
        )
    if not args.skip_naive:
        print()
        for fmt in ("jsonl", "csv"):
            v, nv = results["runs"][f"vggeo/{fmt}"], results["runs"][f"naive/{fmt}"]
            if nv.get("killed"):
                print(
                    f"{fmt}: naive path did not finish within {args.naive_cap_gb:g} GB; vggeo "
                    f"loaded and wrote both files in {v['total_s']:.1f} s at "
                    f"{v['peak_mb'] / 1024:.2f} GB"
                )
                continue
            print(
                f"{fmt}: naive/vggeo load time ×{nv['load_s'] / v['load_s']:.2f}, "
                f"total ×{nv['total_s'] / v['total_s']:.2f}, "
                f"peak memory ×{nv['peak_mb'] / v['peak_mb']:.2f}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_step":
        _step(sys.argv[2:])
    else:
        main()
