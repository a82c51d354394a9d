"""Benchmark: residences × provisions join (vggeo vs plain geopandas.sjoin vs PostGIS) and the
GeoPackage export of the full registry. Run on demand, never in the test suite::

    flock /tmp/vggeo-bench.lock .venv/bin/python benchmarks/join.py            # 5.6 M × 100 000
    flock /tmp/vggeo-bench.lock .venv/bin/python benchmarks/join.py --homes 500000 --provisions 10000 \
        --types "all;plan;naturvardsbestammelse" --predicates within,dwithin --distance 50

Data come from the project's own generators, so homes and plans meet around the same real towns:
``vggeo.sample.registry.generate_registry`` (residences) and ``vggeo.sample.delivery``
(a base delivery of markreglerande bestämmelser, read back with ``vggeo.lm``). They are generated
once and cached as GeoParquet under ``--cache``.

Each contender runs in its own process, so peak memory (sampled from ``/proc/self/status`` while
the join runs) belongs to it alone; a contender passing ``--mem-cap-gb`` is stopped and reported
as such. All contenders must return the same pairs (count and order-independent sums, computed in
SQL on the PostGIS side); the script refuses to print ratios otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # tests/system.py: the throwaway PostGIS cluster


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class PeakSampler:
    """Highest resident memory of this process while the block runs (sampled every 20 ms)."""

    def __enter__(self):
        self.peak = _rss_mb()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_mb())


# --- data ----------------------------------------------------------------------------------------


def prepare(cache: Path, homes: int, provisions: int, seed: int) -> tuple[Path, Path, Path]:
    """Generate (once) the registry and the provisions; cache them as GeoParquet."""
    import geopandas as gpd

    cache.mkdir(parents=True, exist_ok=True)
    full = cache / f"registry_{homes}_{seed}.parquet"
    slim = cache / f"residences_{homes}_{seed}.parquet"
    prov = cache / f"provisions_{provisions}_{seed}.parquet"
    if not full.exists() or not slim.exists():
        from vggeo.sample.registry import generate_registry

        t = time.perf_counter()
        reg = generate_registry(homes, seed=seed)
        print(f"generated {homes:,} residences in {time.perf_counter() - t:.1f} s", flush=True)
        from vggeo.exports import write_parquet

        write_parquet(reg, full, overwrite=True)
        reg[["id", "home_type", "geometry"]].to_parquet(slim)
        del reg
    if not prov.exists():
        import tempfile

        from vggeo.lm import open_delivery
        from vggeo.sample.delivery import generate_deliveries

        t = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            [path] = generate_deliveries(tmp, product="bestammelse", n=provisions, seed=seed)
            d = open_delivery(path)
            data = d.read(d.sets[0])
        p = data["provisions"][
            ["provision_id", "provision_type", "status", "designation", "geometry"]
        ]
        gpd.GeoDataFrame(p).to_parquet(prov)
        print(
            f"generated and read {provisions:,} provisions in {time.perf_counter() - t:.1f} s",
            flush=True,
        )
    return full, slim, prov


# --- contenders (each in its own process) ------------------------------------------------------


def _load(slim: Path, prov: Path, types: str):
    """Residences and provisions; ``pno`` numbers the provisions (for cheap checksums)."""
    import geopandas as gpd

    res = gpd.read_parquet(slim)
    pro = gpd.read_parquet(prov)
    if types != "all":
        pro = pro[pro["provision_type"].astype(str).isin(types.split(","))]
    pro = pro.reset_index(drop=True)
    return res, pro


def _checksum(ids, pnos) -> list[int]:
    """Order-independent fingerprint of a set of (residence id, provision number) pairs, which
    PostGIS computes the same way in SQL (no need to ship tens of millions of rows)."""
    import numpy as np

    ids = np.asarray(ids, dtype=np.int64)
    pnos = np.asarray(pnos, dtype=np.int64)
    return [int(len(ids)), int(ids.sum()), int(pnos.sum()), int(((ids % 100003) * pnos).sum())]


def run_vggeo(slim: Path, prov: Path, predicate: str, distance: float | None, types: str) -> dict:
    import pandas as pd

    from vggeo.join import residences_in

    res, pro = _load(slim, prov, types)
    base = _rss_mb()
    t = time.perf_counter()
    with PeakSampler() as s:
        out = residences_in(res, pro, predicate=predicate, distance=distance)
    wall = time.perf_counter() - t
    pairs = out.pairs
    cats = pairs["provision_id"].cat
    pno = pd.Index(pro["provision_id"]).get_indexer(cats.categories)[cats.codes.to_numpy()]
    return {
        "wall_s": wall,
        "peak_mb": s.peak,
        "baseline_mb": base,
        "pairs": len(pairs),
        "checksum": _checksum(pairs["residence_id"], pno),
    }


def run_geopandas(
    slim: Path, prov: Path, predicate: str, distance: float | None, types: str
) -> dict:
    import geopandas as gpd

    res, pro = _load(slim, prov, types)
    base = _rss_mb()
    t = time.perf_counter()
    with PeakSampler() as s:
        kw = {"distance": distance} if predicate == "dwithin" else {}
        out = gpd.sjoin(res, pro, predicate=predicate, how="inner", **kw)
    wall = time.perf_counter() - t
    return {
        "wall_s": wall,
        "peak_mb": s.peak,
        "baseline_mb": base,
        "pairs": len(out),
        "checksum": _checksum(out["id"], out["index_right"]),
    }


def run_postgis(slim: Path, prov: Path, predicate: str, distance: float | None, types: str) -> dict:
    import psycopg
    import shapely
    from system import postgis_cluster

    res, pro = _load(slim, prov, types)
    cond = {
        "within": "ST_Within(r.geom, p.geom)",
        "intersects": "ST_Intersects(r.geom, p.geom)",
        "dwithin": f"ST_DWithin(r.geom, p.geom, {distance})",
    }[predicate]
    with postgis_cluster() as url, psycopg.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute("CREATE UNLOGGED TABLE r (id bigint, geom geometry(Point, 3006))")
        conn.execute("CREATE UNLOGGED TABLE p (pno integer, geom geometry(MultiPolygon, 3006))")
        with conn.cursor() as cur:
            with cur.copy("COPY r (id, geom) FROM STDIN") as cp:
                wkb = shapely.to_wkb(
                    shapely.set_srid(res.geometry.array, 3006), hex=True, include_srid=True
                )
                for row in zip(res["id"].tolist(), wkb.tolist(), strict=True):
                    cp.write_row(row)
            with cur.copy("COPY p (pno, geom) FROM STDIN") as cp:
                wkb = shapely.to_wkb(
                    shapely.set_srid(pro.geometry.array, 3006), hex=True, include_srid=True
                )
                for row in zip(range(len(pro)), wkb.tolist(), strict=True):
                    cp.write_row(row)
        conn.execute("CREATE INDEX ON r USING gist (geom)")
        conn.execute("CREATE INDEX ON p USING gist (geom)")
        conn.execute("ANALYZE r")
        conn.execute("ANALYZE p")
        load = time.perf_counter() - t0
        conn.execute("SET max_parallel_workers_per_gather = 0")  # one core, like the others
        conn.execute("SET work_mem = '256MB'")
        t = time.perf_counter()
        # The pairs are materialised in the server (as a client would for further SQL), and only
        # their fingerprint travels.
        conn.execute(f"CREATE UNLOGGED TABLE j AS SELECT r.id, p.pno FROM r JOIN p ON {cond}")
        wall = time.perf_counter() - t
        row = conn.execute(
            "SELECT count(*), coalesce(sum(id), 0), coalesce(sum(pno), 0), "
            "coalesce(sum((id % 100003) * pno), 0) FROM j"
        ).fetchone()
    return {
        "wall_s": wall,
        "load_index_s": load,
        "pairs": int(row[0]),
        "checksum": [int(x) for x in row],
    }


def run_vggeo_postgis(
    slim: Path, prov: Path, predicate: str, distance: float | None, types: str
) -> dict:
    """``vggeo join --store postgresql://…``: the data in a real vggeo PostGIS store (loaded by
    the store library, not timed), the join run in the database by ``residences_in_postgis``,
    the pairs returned to Python. Peak memory is this client's; the server's is not counted."""
    from datetime import UTC, datetime

    import pandas as pd
    from system import postgis_cluster

    from vggeo.join.postgis import residences_in_postgis
    from vggeo.store import MemoryDelivery, open_store

    res, pro = _load(slim, prov, "all")
    chosen = _load(slim, prov, types)[1] if types != "all" else pro
    with postgis_cluster() as url:
        t0 = time.perf_counter()
        with open_store(url, create=True) as store:
            store.load_residences(res)
            store.apply(
                MemoryDelivery(
                    "bestammelse",
                    "bench",
                    "base",
                    datetime.now(UTC),
                    {"bestammelse": {"provisions": pro}},
                )
            )
            store.conn.execute("ANALYZE")
        load = time.perf_counter() - t0
        del res
        base = _rss_mb()
        t = time.perf_counter()
        with PeakSampler() as s:
            out = residences_in_postgis(
                url,
                predicate=predicate,
                distance=distance,
                types=None if types == "all" else types.split(","),
            )
        wall = time.perf_counter() - t
    pairs = out.pairs
    cats = pairs["provision_id"].cat
    pno = pd.Index(chosen["provision_id"]).get_indexer(cats.categories)[cats.codes.to_numpy()]
    return {
        "wall_s": wall,
        "peak_mb": s.peak,
        "baseline_mb": base,
        "load_store_s": load,
        "pairs": len(pairs),
        "checksum": _checksum(pairs["residence_id"], pno),
    }


def run_gpkg_export(full: Path, out: Path) -> dict:
    import geopandas as gpd

    from vggeo.exports import write_gpkg

    reg = gpd.read_parquet(full)
    base = _rss_mb()
    t = time.perf_counter()
    with PeakSampler() as s:
        counts = write_gpkg({"residences": reg}, out, overwrite=True)
    wall = time.perf_counter() - t
    size = out.stat().st_size
    out.unlink()
    return {
        "wall_s": wall,
        "peak_mb": s.peak,
        "baseline_mb": base,
        "rows": counts["residences"],
        "columns": reg.shape[1],
        "size_mb": size / 2**20,
    }


CONTENDERS = {
    "vggeo": run_vggeo,
    "vggeo-postgis": run_vggeo_postgis,
    "geopandas": run_geopandas,
    "postgis": run_postgis,
}


def child(argv: list[str]) -> None:
    what = argv[0]
    if what == "gpkg":
        result = run_gpkg_export(Path(argv[1]), Path(argv[2]))
    else:
        distance = float(argv[4]) if argv[4] != "-" else None
        result = CONTENDERS[what](Path(argv[1]), Path(argv[2]), argv[3], distance, argv[5])
    print("RESULT " + json.dumps(result), flush=True)


def spawn(*args: str, mem_cap_mb: float) -> dict:
    """Run one contender in a child process; stop it if its memory passes ``mem_cap_mb`` (the
    machine is shared: an out-of-memory contender must not take the others down)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", *args], stdout=out, stderr=err, text=True
        )
        peak = 0.0
        while proc.poll() is None:
            time.sleep(0.2)
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    rss = next(int(x.split()[1]) / 1024 for x in f if x.startswith("VmRSS:"))
            except (OSError, StopIteration):
                continue
            peak = max(peak, rss)
            if rss > mem_cap_mb:
                proc.kill()
                proc.wait()
                return {
                    "aborted": f"resident memory passed {mem_cap_mb:.0f} MB after "
                    f"{time.perf_counter() - t:.0f} s (process incl. loading)",
                    "peak_mb": peak,
                }
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{stderr[-4000:]}")
    line = [x for x in stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line.removeprefix("RESULT "))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--homes", type=int, default=5_600_000)
    ap.add_argument("--provisions", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/vggeo-bench-cache"))
    ap.add_argument(
        "--types",
        default="all;plan",
        help="scenarios: provision types joined, ';'-separated; 'all' = every type",
    )
    ap.add_argument(
        "--mem-cap-gb",
        type=float,
        default=12.0,
        help="stop a contender whose resident memory passes this",
    )
    ap.add_argument(
        "--predicates", default="within", help="comma-separated; 'dwithin' uses --distance"
    )
    ap.add_argument("--distance", type=float, default=100.0)
    ap.add_argument("--skip", default="", help="comma-separated contenders to skip")
    ap.add_argument("--no-gpkg", action="store_true", help="skip the GeoPackage export timing")
    args = ap.parse_args()

    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        flush=True,
    )
    full, slim, prov = prepare(args.cache, args.homes, args.provisions, args.seed)
    skip = set(filter(None, args.skip.split(",")))
    report: dict = {"homes": args.homes, "provisions": args.provisions, "joins": {}}
    cap = args.mem_cap_gb * 1024
    for types in args.types.split(";"):
        for predicate in args.predicates.split(","):
            dist = str(args.distance) if predicate == "dwithin" else "-"
            label = f"{predicate} [{types}]"
            results = {}
            for name in CONTENDERS:
                if name in skip:
                    continue
                results[name] = spawn(
                    name, str(slim), str(prov), predicate, dist, types, mem_cap_mb=cap
                )
                print(f"{label:>22} {name:>9}: {json.dumps(results[name])}", flush=True)
            done = {k: r for k, r in results.items() if "aborted" not in r}
            sums = {json.dumps(r["checksum"]) for r in done.values()}
            if len(sums) > 1:
                raise SystemExit(f"contenders disagree on the pairs for {label}: {results}")
            v = done.get("vggeo")
            for name, r in done.items():
                if v and name != "vggeo":
                    mem = (
                        f", peak memory ×{v['peak_mb'] / r['peak_mb']:.2f}"
                        if "peak_mb" in r
                        else ""
                    )
                    print(
                        f"{label:>22} vggeo / {name}: wall ×{v['wall_s'] / r['wall_s']:.2f}{mem}",
                        flush=True,
                    )
            report["joins"][label] = results
    if not args.no_gpkg:
        out = args.cache / "registry_export.gpkg"
        report["gpkg_export"] = spawn("gpkg", str(full), str(out), mem_cap_mb=cap)
        print(f"gpkg export: {json.dumps(report['gpkg_export'])}", flush=True)
    path = args.cache / f"join_report_{args.homes}_{args.provisions}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"report: {path}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
