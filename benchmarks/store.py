"""Benchmark: a base extract of 200 000 provisions and a change of 5 000 into it, on both backends.

Run on demand, never in the test suite, one heavy benchmark at a time::

    flock /tmp/vggeo-bench.lock .venv/bin/python benchmarks/store.py [--n 200000] [--change 5000]

What is timed is the store's own work — :meth:`Store.apply` of an already parsed delivery (the XML
readers have their own benchmark) — in a fresh process per phase, so that the peak memory
(``ru_maxrss``) belongs to that phase alone. Input: provisions with ~80-vertex polygons (a real
delivery averages about that), 1.5 affected properties and 1 decision per provision.

Peers, in the same run, on the same frames:

* GeoPackage base — ``pyogrio.write_dataframe`` of the three tables (GDAL's GPKG driver, R-tree
  built at the end; no single transaction, no ledger).
* GeoPackage change — the naive path a user would write without vggeo: read the three layers
  with pyogrio, drop the changed/deleted identities, append the change, write everything back.
* PostGIS base — ``ogr2ogr -f PostgreSQL`` (GDAL's COPY-based PG driver) from the peer GeoPackage.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SET = "markreglerandebestammelse"


# --- input -----------------------------------------------------------------------------------


def make_input(workdir: Path, n: int, n_change: int, seed: int = 0) -> None:
    """Write base and change frames as GeoParquet (the phases read them back)."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    rng = np.random.default_rng(seed)

    def provisions(ids, version):
        m = len(ids)
        centres = shapely.points(rng.uniform(300_000, 900_000, m), rng.uniform(6.2e6, 7.6e6, m))
        geoms = shapely.buffer(centres, rng.uniform(20, 400, m), quad_segs=20)  # 81 vertices
        geoms = shapely.multipolygons(geoms, indices=np.arange(m))
        munis = pd.Series(rng.integers(114, 2584, m)).astype(str).str.zfill(4)
        types = [
            "plan",
            "naturvardsbestammelse",
            "ovrig_bestammelse",
            "mineralrattighet",
            "utredning",
            "fornlamning",
        ]
        prov = gpd.GeoDataFrame(
            {
                "provision_id": pd.array(ids, dtype="str"),
                "provision_type": pd.Categorical.from_codes(
                    rng.integers(0, 6, m), categories=types
                ),
                "object_version": pd.array(np.full(m, version), dtype="Int64"),
                "municipality": munis.astype("str").array,
                "designation": (munis + "-P" + pd.Series(rng.integers(1, 9999, m)).astype(str))
                .astype("str")
                .array,
                "name": pd.array(np.where(rng.random(m) < 0.7, "SOLHEM", None), dtype="str"),
                "status": pd.array(
                    np.where(rng.random(m) < 0.8, "gällande", "avregistrerad"), dtype="str"
                ),
                "plan_type": pd.array(
                    np.where(rng.random(m) < 0.5, "detaljplan", None), dtype="str"
                ),
                "last_changed": (
                    pd.Timestamp("1960-01-01") + pd.to_timedelta(rng.integers(0, 23000, m), "D")
                ).astype("datetime64[ms]"),
            },
            geometry=np.asarray(geoms, dtype=object),
            crs=3006,
        )
        k = rng.integers(0, 4, m)
        aff = pd.DataFrame(
            {
                "provision_id": pd.array(np.repeat(ids, k), dtype="str"),
                "register_unit_id": pd.array(
                    [f"{x:032x}" for x in rng.integers(0, 2**62, int(k.sum()))], dtype="str"
                ),
            }
        )
        dec = pd.DataFrame(
            {
                "provision_id": pd.array(ids, dtype="str"),
                "kind": pd.array(np.full(m, "bildandebeslut", dtype=object), dtype="str"),
                "object_version": pd.array(np.full(m, version), dtype="Int64"),
                "valid_from": (
                    pd.Timestamp("2019-04-24") + pd.to_timedelta(rng.integers(0, 900, m), "D")
                ).astype("datetime64[ms]"),
                "decision_date": (
                    pd.Timestamp("1940-12-31") + pd.to_timedelta(rng.integers(0, 20000, m), "D")
                ).astype("datetime64[ms]"),
                "decision_id": pd.array(
                    [f"{x:032x}" for x in rng.integers(0, 2**62, m)], dtype="str"
                ),
            }
        )
        return prov, aff, dec

    ids = np.array([f"{i:08x}-11ca-6f58-e040-ed8f65434c76" for i in range(n)], dtype=object)
    for name, frame in zip(
        ("provisions", "affected", "decisions"), provisions(ids, 1), strict=True
    ):
        frame.to_parquet(workdir / f"base_{name}.parquet")
    # the change: 80 % edits of existing provisions, 20 % new ones, plus 1 000 deletions
    edits = rng.choice(n, int(n_change * 0.8), replace=False)
    new = np.array(
        [f"{i:08x}-11ca-6f58-e040-ed8f65434c76" for i in range(n, n + n_change - len(edits))],
        dtype=object,
    )
    changed = np.concatenate([ids[edits], new])
    for name, frame in zip(
        ("provisions", "affected", "decisions"), provisions(changed, 2), strict=True
    ):
        frame.to_parquet(workdir / f"change_{name}.parquet")
    removed = sorted(set(ids[rng.choice(n, 1000, replace=False)]) - set(changed))
    (workdir / "change_removed.json").write_text(json.dumps(removed))


def load_delivery(workdir: Path, kind: str):
    import geopandas as gpd
    import pandas as pd

    from vggeo.store import MemoryDelivery

    tables = {
        "provisions": gpd.read_parquet(workdir / f"{kind}_provisions.parquet"),
        "affected": pd.read_parquet(workdir / f"{kind}_affected.parquet"),
        "decisions": pd.read_parquet(workdir / f"{kind}_decisions.parquet"),
    }
    for f in tables.values():  # parquet hands back the pandas default string dtype anyway
        for c in f.columns:
            if f[c].dtype == object and c != "geometry":
                f[c] = f[c].astype("str")
    if kind == "base":
        return MemoryDelivery(
            "bestammelse",
            "bench-base",
            "base",
            datetime(2026, 1, 5, 3, 30),
            {SET: tables},
            checksum="bench-base",
        )
    removed = set(json.loads((workdir / "change_removed.json").read_text()))
    return MemoryDelivery(
        "bestammelse",
        "bench-change",
        "change",
        datetime(2026, 1, 12, 3, 30),
        {SET: tables},
        removed={SET: removed},
        previous_extract_id="bench-base",
        checksum="bench-change",
    )


# --- phases (each in its own process) --------------------------------------------------------


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mb() -> float:
    """Resident memory now; and from here on, the peak counts only what follows.

    Writing 5 to /proc/self/clear_refs resets the kernel's peak (VmHWM), so the peak reported
    for a phase is that of the store's work, not of decoding the input Parquet files.
    """
    import gc

    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status_mb("VmRSS")


def _peak_mb() -> float:
    peak = _status_mb("VmHWM")
    return peak if peak == peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase(name: str, workdir: Path, location: str) -> dict:
    t0 = time.perf_counter()
    if name in ("vggeo-base", "vggeo-change"):
        from vggeo.store import open_store

        d = load_delivery(workdir, name.split("-")[1])
        rss_input = _rss_mb()
        t1 = time.perf_counter()
        with open_store(location, create=True) as store:
            result = store.apply(d)
            counts = store.counts()
        wall = time.perf_counter() - t1
        assert result.applied
        return {
            "wall_s": wall,
            "input_s": t1 - t0,
            "peak_mb": _peak_mb(),
            "input_mb": rss_input,
            "rows": {k: v for k, v in counts.items() if v},
            "counts": result.counts[SET],
        }
    if name == "peer-gpkg-base":
        import pyogrio

        d = load_delivery(workdir, "base")
        rss_input = _rss_mb()
        t1 = time.perf_counter()
        for t, f in d.tables[SET].items():
            pyogrio.write_dataframe(f, location, layer=t, driver="GPKG")
        return {
            "wall_s": time.perf_counter() - t1,
            "input_s": t1 - t0,
            "peak_mb": _peak_mb(),
            "input_mb": rss_input,
        }
    if name == "peer-gpkg-change":
        import pandas as pd
        import pyogrio

        d = load_delivery(workdir, "change")
        rss_input = _rss_mb()
        t1 = time.perf_counter()
        gone = set(d.removed[SET]) | set(d.tables[SET]["provisions"].provision_id)
        for t, f in d.tables[SET].items():
            old = pyogrio.read_dataframe(location, layer=t, use_arrow=True)
            keep = old[~old.provision_id.isin(gone)]
            pyogrio.write_dataframe(
                pd.concat([keep, f], ignore_index=True), location, layer=t, driver="GPKG"
            )
        return {
            "wall_s": time.perf_counter() - t1,
            "input_s": t1 - t0,
            "peak_mb": _peak_mb(),
            "input_mb": rss_input,
        }
    raise SystemExit(f"unknown phase {name}")


def run_phase(name: str, workdir: Path, location: str) -> dict:
    t0 = time.perf_counter()
    r = subprocess.run(
        [
            sys.executable,
            __file__,
            "--phase",
            name,
            "--workdir",
            str(workdir),
            "--location",
            location,
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{r.stderr}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["process_s"] = time.perf_counter() - t0
    return out


def run_ogr2ogr(src: Path, url: str) -> dict:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    dsn = f"PG:host={u.hostname} port={u.port} user={u.username} dbname={u.path[1:]}"
    t0 = time.perf_counter()
    r = subprocess.run(
        [
            "/usr/bin/time",
            "-f",
            "%M",
            "ogr2ogr",
            "-f",
            "PostgreSQL",
            dsn,
            str(src),
            "-lco",
            "SPATIAL_INDEX=GIST",
            "--config",
            "PG_USE_COPY",
            "YES",
        ],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"ogr2ogr failed:\n{r.stderr}")
    return {"wall_s": wall, "peak_mb": int(r.stderr.strip().splitlines()[-1]) / 1024}


def run_real(workdir: Path, n: int) -> dict:
    """``vggeo ingest`` of generated XML deliveries into a GeoPackage: reader and store together."""
    from vggeo.sample.delivery import generate_deliveries

    out = workdir / "xml"
    shutil.rmtree(out, ignore_errors=True)
    paths = generate_deliveries(out, product="bestammelse", n=n, changes=1, seed=3)
    store = workdir / "ingest.gpkg"
    store.unlink(missing_ok=True)
    vggeo = Path(sys.executable).parent / "vggeo"
    results = {}
    for label, path in zip(("base", "change"), paths, strict=True):
        t0 = time.perf_counter()
        r = subprocess.run(
            [
                "/usr/bin/time",
                "-f",
                "%M",
                str(vggeo),
                "ingest",
                str(path),
                "--store",
                str(store),
                "--no-progress",
            ],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise SystemExit(f"vggeo ingest failed:\n{r.stderr}")
        results[f"gpkg ingest XML {label} ({n})"] = {
            "wall_s": time.perf_counter() - t0,
            "peak_mb": int(r.stderr.strip().splitlines()[-1]) / 1024,
            "summary": r.stdout,
        }
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--change", type=int, default=5_000)
    ap.add_argument("--backends", default="gpkg,postgis")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument(
        "--real",
        type=int,
        default=0,
        metavar="N",
        help="Also ingest a generated XML delivery of N provisions (+ a change) "
        "end to end with `vggeo ingest` (reader + store).",
    )
    ap.add_argument("--phase")
    ap.add_argument("--location")
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args.workdir, args.location)))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vggeo-bench-store-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    make_input(workdir, args.n, args.change)
    print(
        f"input: {args.n} provisions + change of {args.change} written in "
        f"{time.perf_counter() - t0:.1f} s ({workdir})",
        file=sys.stderr,
    )
    results: dict[str, dict] = {}
    backends = args.backends.split(",")
    # A reused --workdir holds the stores of the last run: start from none, or the base phases
    # would find their base already applied.
    for name in ("vggeo.gpkg", "peer.gpkg", "peer-before-change.gpkg", "ingest.gpkg"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            (workdir / f"{name}{suffix}").unlink(missing_ok=True)
    if "gpkg" in backends:
        store = workdir / "vggeo.gpkg"
        results["gpkg base"] = run_phase("vggeo-base", workdir, str(store))
        results["gpkg change"] = run_phase("vggeo-change", workdir, str(store))
        peer = workdir / "peer.gpkg"
        results["gpkg base, peer pyogrio"] = run_phase("peer-gpkg-base", workdir, str(peer))
        shutil.copy(peer, workdir / "peer-before-change.gpkg")
        results["gpkg change, peer naive rewrite"] = run_phase(
            "peer-gpkg-change", workdir, str(peer)
        )
    if "postgis" in backends:
        sys.path.insert(0, str(REPO / "tests"))
        from system import postgis_cluster

        with postgis_cluster() as url:
            results["postgis base"] = run_phase("vggeo-base", workdir, url)
            results["postgis change"] = run_phase("vggeo-change", workdir, url)
            src = workdir / ("peer-before-change.gpkg" if "gpkg" in backends else "peer.gpkg")
            if not src.exists():
                run_phase("peer-gpkg-base", workdir, str(src))
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE peer")
            peer_url = url.rsplit("/", 1)[0] + "/peer"
            with psycopg.connect(peer_url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION postgis")
            results["postgis base, peer ogr2ogr"] = run_ogr2ogr(src, peer_url)

    if args.real:
        results.update(run_real(workdir, args.real))

    print(
        f"\nmachine: {os.cpu_count()} cores, python {sys.version.split()[0]}; "
        f"{args.n} provisions base, change of {args.change}\n"
    )
    print(
        f"{'phase':<36} {'wall s':>8} {'peak MB':>9} {'input MB':>9}   (peak: during the work; "
        "input: resident before it, the parsed delivery included)"
    )
    for k, v in results.items():
        print(
            f"{k:<36} {v['wall_s']:>8.2f} {v['peak_mb']:>9.0f} {v.get('input_mb', float('nan')):>9.0f}"
        )
    ratios = [
        ("gpkg base", "gpkg base, peer pyogrio"),
        ("gpkg change", "gpkg change, peer naive rewrite"),
        ("postgis base", "postgis base, peer ogr2ogr"),
    ]
    print()
    for a, b in ratios:
        if a in results and b in results:
            print(
                f"{a}: {results[b]['wall_s'] / results[a]['wall_s']:.2f}× the speed of {b.split(', ')[1]}"
            )
    if "gpkg base" in results:
        print(
            f"aims: gpkg base {results['gpkg base']['wall_s']:.1f} s (≤ 60), "
            f"gpkg change {results['gpkg change']['wall_s']:.1f} s (≤ 10)"
        )
    (workdir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults: {workdir / 'results.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
