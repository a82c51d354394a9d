"""Benchmark: reading one file of 50 000 provisions — vggeo versus GDAL's GML driver, same run.

Not a test. Run it alone, under the shared lock (it takes a few GB of disk and both cores)::

    flock /tmp/vggeo-bench.lock .venv/bin/python benchmarks/lm.py [--n 50000] [--workdir DIR]

What is compared
    *vggeo*: ``read_bestammelser(file)`` — every provision of every type with its typed
    attributes, affected properties, decisions and MultiPolygon geometry in EPSG:3006 (shapely).
    Run with the default worker count and with ``workers=1``.
    *GDAL* (the GML driver through pyogrio, bundled GDAL): every feature-type layer read
    completely with ``pyogrio.raw.read_arrow`` (one call per layer; geometry stays WKB — a
    ``read_dataframe`` would fail on the arcs, which GDAL returns as curves shapely cannot hold).
    GDAL first scans the file to guess its schema (no ``.gfs`` is left from earlier runs); that is
    part of reading a file GDAL has not seen, as a user would.

Each reader runs in a fresh subprocess, twice per repeat: once timed (wall clock from outside,
nothing else running) and once sampled for memory (peak of the summed proportional set size,
PSS, of the process and its children, read from /proc every 20 ms — shared pages counted once).
The two are kept apart because the sampler perturbs what it measures: reading smaps_rollup
walks the page tables under the process's memory-map lock, which stalls a multi-threaded,
allocation-heavy reader by ~0.6 s on this machine (and GDAL's single thread hardly at all).
Ratios are of the timed runs: the ratio of the medians over repeats, and the median of the
ratios per repeat (GDAL and vggeo back to back, so a drift of the machine's speed cancels); each
reader's CPU seconds are printed too (steadier than wall time when other work shares the
machine); a typing comparison follows.

``--gpkg`` adds ``vggeo read FILE -o OUT.gpkg`` (which writes provisions part by part); with
``--n 200000`` it shows how peak memory grows with the file. ``--writer foreign-…`` reads a file
of the test suite's independent second writer instead of the generator's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

VGGEO = r"""
import json, sys, time
t = time.perf_counter()
from vggeo.lm import read_bestammelser
t_read = time.perf_counter()
d = read_bestammelser(sys.argv[1], workers=None if sys.argv[2] == "auto" else int(sys.argv[2]))
t_read = time.perf_counter() - t_read
import shapely
out = {"seconds": time.perf_counter() - t, "read_seconds": t_read, "provisions": len(d.provisions),
       "affected": len(d.affected), "decisions": len(d.decisions),
       "vertices": int(shapely.get_num_coordinates(d.provisions.geometry.values).sum()),
       "dtypes": {c: str(t) for c, t in d.provisions.dtypes.items()},
       "decision_dtypes": {c: str(t) for c, t in d.decisions.dtypes.items()},
       "sample_municipality": d.provisions["municipality"].iloc[0]}
print(json.dumps(out))
"""

# `vggeo read FILE -o OUT.gpkg`: the command a user runs; provisions are written part by part.
VGGEO_GPKG = r"""
import json, sys, time
t = time.perf_counter()
from vggeo.cli import main
sys.argv = ["vggeo", "read", sys.argv[1], "-o", sys.argv[2], "--overwrite"]
try:
    main()
except SystemExit as e:
    if e.code:
        raise
print(json.dumps({"seconds": time.perf_counter() - t}))
"""

GDAL = r"""
import json, sys, time
t = time.perf_counter()
import pyogrio
from pyogrio.raw import read_arrow
f = sys.argv[1]
n = 0; dtypes = {}
for name, _ in pyogrio.list_layers(f):
    meta, table = read_arrow(f, layer=name)
    n += table.num_rows
    if name == "Plan":
        dtypes = {fld.name: str(fld.type) for fld in table.schema}
print(json.dumps({"seconds": time.perf_counter() - t, "provisions": n, "dtypes": dtypes,
                  "gdal": pyogrio.__gdal_version_string__}))
"""


def _pss_tree(pid: int) -> int:
    """Summed PSS (kB) of a process and all its descendants."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def _result(returncode: int, out: str, err: str, wall: float) -> dict:
    """A reader's JSON line (the last of its output), with the wall time added."""
    if returncode:
        raise SystemExit(f"benchmark subprocess failed:\n{err}")
    res = json.loads(out.strip().splitlines()[-1])
    res["wall"] = wall
    return res


def timed(code: str, *args: str) -> dict:
    """Run a reader alone; its output, wall time and CPU time (user + system, all threads).

    CPU time is the steadier figure on a shared machine: other work stretches a reader's wall
    time (a two-threaded reader more than a single-threaded one) but not its CPU time.
    """
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    res = _result(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return res


def run(code: str, *args: str) -> dict:
    """Run a reader with the PSS sampler; its output, (perturbed) wall time and peak memory."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _pss_tree(proc.pid))
            time.sleep(0.02)

    th = threading.Thread(target=sample, daemon=True)
    t = time.perf_counter()
    th.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    stop.set()
    th.join()
    res = _result(proc.returncode, out, err, wall)
    res["peak_mb"] = peak / 1024
    return res


def prepare_foreign(workdir: Path, n: int, seed: int, style: str) -> Path:
    """A file from the test suite's second, independent writer (tests/lm/foreign_writer.py):
    other prefixes, the grouping level, Lantmäteriet's labels, envelopes, srsDimension …"""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lm"))
    from foreign_writer import Style, make_truth, write_data

    styles = {
        "pretty": Style(),
        "single-line": Style(prefix=None, pretty=False, crlf=True, reverse_order=True),
    }
    xml = workdir / f"foreign_{style}_{n}_{seed}.xml"
    if not xml.exists():
        print(
            f"writing {n} provisions with the foreign writer ({style}) …",
            file=sys.stderr,
        )
        xml.write_bytes(write_data(make_truth(n, seed), styles[style]))
    return xml


def prepare(workdir: Path, n: int, seed: int) -> Path:
    from vggeo.sample.delivery import generate_deliveries

    xml = workdir / f"markreglerandebestammelse_{n}_{seed}.xml"
    if xml.exists():
        return xml
    print(f"generating {n} provisions (seed {seed}) …", file=sys.stderr)
    [path] = generate_deliveries(
        workdir / "delivery",
        product="bestammelse",
        n=n,
        changes=0,
        seed=seed,
        per_file=max(n, 1),
    )
    with zipfile.ZipFile(path) as outer:
        inner_name = next(
            i for i in outer.namelist() if i.endswith("markreglerandebestammelse.zip")
        )
        with outer.open(inner_name) as fh, tempfile.TemporaryFile() as tmp:
            tmp.write(fh.read())
            tmp.seek(0)
            with (
                zipfile.ZipFile(tmp) as inner,
                inner.open("markreglerandebestammelse_1.xml") as src,
            ):
                xml.write_bytes(src.read())
    return xml


def _walk_built() -> bool:
    try:
        import vggeo.lm._walk  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vggeo-bench-lm")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--writer",
        choices=["generator", "foreign-pretty", "foreign-single-line"],
        default="generator",
        help="who writes the file: the project's generator, or the test suite's independent "
        "second writer in one of its two styles",
    )
    ap.add_argument(
        "--gpkg",
        action="store_true",
        help="also run `vggeo read FILE -o OUT.gpkg` (time and peak memory of the command)",
    )
    ap.add_argument("--no-auto", action="store_true", help="skip the workers=None reader")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.writer == "generator":
        xml = prepare(args.workdir, args.n, args.seed)
    else:
        xml = prepare_foreign(args.workdir, args.n, args.seed, args.writer.removeprefix("foreign-"))
    size = xml.stat().st_size / 1e6
    print(
        f"file: {xml} ({size:.0f} MB); machine: {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}"
    )
    # Both readers start from byte-compiled modules, as an installed package does (pip compiles
    # at install): an editable install under PYTHONDONTWRITEBYTECODE=1 would otherwise compile
    # vggeo's sources on every start (~0.05 s), while pyogrio's were compiled by pip.
    import compileall

    import vggeo

    compileall.compile_dir(Path(vggeo.__file__).parent, quiet=1)
    print(f"vggeo compiled module (vggeo.lm._walk): {_walk_built()}")
    import statistics

    def fresh_gdal(fn, *a):
        for gfs in xml.parent.glob(xml.stem + ".gfs"):  # GDAL scans a file it has not seen
            gfs.unlink()
        return fn(GDAL, *a)

    readers = {
        "gdal": lambda fn: fresh_gdal(fn, str(xml)),
        "vggeo": lambda fn: fn(VGGEO, str(xml), "1"),
        "vggeo_auto": lambda fn: fn(VGGEO, str(xml), "auto"),
    }
    if args.no_auto:
        del readers["vggeo_auto"]
    if args.gpkg:
        out = args.workdir / "read.gpkg"
        readers["vggeo_gpkg"] = lambda fn: fn(VGGEO_GPKG, str(xml), str(out))
    walls: dict[str, list[float]] = {k: [] for k in readers}
    cpus: dict[str, list[float]] = {k: [] for k in readers}
    reads: dict[str, list[float]] = {k: [] for k in readers}
    peaks: dict[str, list[float]] = {k: [] for k in readers}
    sampled: dict[str, list[float]] = {k: [] for k in readers}
    last: dict[str, dict] = {}
    for rep in range(args.repeat):
        for name, go in readers.items():
            r = go(timed)
            walls[name].append(r["wall"])
            cpus[name].append(r["cpu"])
            reads[name].append(r.get("read_seconds", float("nan")))
            last[name] = r
        for name, go in readers.items():
            m = go(run)
            peaks[name].append(m["peak_mb"])
            sampled[name].append(m["wall"])
        g, v1 = last["gdal"], last["vggeo"]
        print(
            f"repeat {rep + 1}: GDAL {walls['gdal'][-1]:.2f} s | vggeo {walls['vggeo'][-1]:.2f} s "
            f"(read {reads['vggeo'][-1]:.2f} s after imports) | "
            + "".join(
                f"{k} {walls[k][-1]:.2f} s | " for k in ("vggeo_auto", "vggeo_gpkg") if k in walls
            )
            + f"peak PSS GDAL {peaks['gdal'][-1]:.0f} MB, vggeo {peaks['vggeo'][-1]:.0f} MB"
            + "".join(
                f", {k} {peaks[k][-1]:.0f} MB" for k in ("vggeo_auto", "vggeo_gpkg") if k in peaks
            )
            + f" | wall while sampled: GDAL {sampled['gdal'][-1]:.2f} s, vggeo "
            f"{sampled['vggeo'][-1]:.2f} s | CPU GDAL {cpus['gdal'][-1]:.2f} s, vggeo "
            f"{cpus['vggeo'][-1]:.2f} s | load {os.getloadavg()[0]:.1f}"
        )
    med = {k: statistics.median(v) for k, v in walls.items()}
    print(
        f"GDAL {g['gdal']} GML driver: median {med['gdal']:.2f} s, peak {max(peaks['gdal']):.0f} MB, "
        f"{g['provisions']} features"
    )
    print(
        f"vggeo (workers=1, default): median {med['vggeo']:.2f} s (read "
        f"{statistics.median(reads['vggeo']):.2f} s after imports), peak {max(peaks['vggeo']):.0f} MB, "
        f"{v1['provisions']} provisions, {v1['affected']} affected, {v1['decisions']} decisions, "
        f"{v1['vertices']} vertices"
    )
    if "vggeo_auto" in med:
        print(
            f"vggeo (workers=auto):       median {med['vggeo_auto']:.2f} s, peak "
            f"{max(peaks['vggeo_auto']):.0f} MB, ratio GDAL/vggeo "
            f"{med['gdal'] / med['vggeo_auto']:.2f}×"
        )
    if "vggeo_gpkg" in med:
        print(
            f"vggeo read -o OUT.gpkg:     median {med['vggeo_gpkg']:.2f} s, peak "
            f"{max(peaks['vggeo_gpkg']):.0f} MB"
        )
    print(f"ratio GDAL/vggeo (medians): {med['gdal'] / med['vggeo']:.2f}× (default)")
    # GDAL and vggeo run back to back in each repeat: their ratio per repeat cancels a drift of
    # the machine's speed over the run, which the ratio of medians (of different minutes) does not.
    paired = sorted(g / v for g, v in zip(walls["gdal"], walls["vggeo"], strict=True))
    print(
        f"ratio GDAL/vggeo per repeat: median {statistics.median(paired):.2f}×, "
        f"range {paired[0]:.2f}–{paired[-1]:.2f}×"
    )
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    print(
        f"CPU seconds (medians): GDAL {cpu['gdal']:.2f}, vggeo {cpu['vggeo']:.2f}; vggeo's wall "
        f"time if its CPU time were shared perfectly by {os.cpu_count()} cores: "
        f"{cpu['vggeo'] / min(2, os.cpu_count() or 1):.2f} s (GDAL's reader is single-threaded)"
    )
    va = v1
    print("typing (Plan layer in GDAL vs vggeo):")
    for ours, theirs in (
        ("municipality", "kommun"),
        ("last_changed", "senasteAndringAllmannaDelen"),
        ("object_version", "objektversion"),
    ):
        print(
            f"  {theirs}: GDAL {g['dtypes'].get(theirs)}  |  vggeo {ours}: {va['dtypes'].get(ours)}"
        )
    print(
        f"  beslutsdatum: GDAL {g['dtypes'].get('beslutsdatum')}  |  vggeo decision_date: "
        f"{va['decision_dtypes'].get('decision_date')}"
    )


if __name__ == "__main__":
    main()
