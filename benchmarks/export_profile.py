"""Where the time of ``vggeo export gpkg`` goes, stage by stage, on the first rows of a store.

Not a test. Run on demand, under the shared lock, on a store made by ``benchmarks/export.py``::

    flock /tmp/vggeo-bench.lock .venv/bin/python benchmarks/export_profile.py \\
        --store /tmp/vgbench-export/store_5600000_7.gpkg --n 1000000

Stages, each timed alone and in series (the export overlaps reading with GDAL's write in a
worker thread; here they are apart so each can be compared): the store's batches as
``iter_table`` gives them (GDAL's Arrow read + dtypes restored + geometries decoded), GDAL's Arrow
read alone, the export's per-batch preparation (CRS step, labels, categoricals as text) and its
Arrow conversion (WKB re-encoded), GDAL's write of the prepared batches with the export's options,
without the R-tree and with SQLite's synchronous writes off, and the peer
(``pyogrio.read_dataframe`` + ``write_dataframe`` of the same rows). Results: benchmarks/export.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    import pyarrow as pa
    import pyogrio

    from vggeo.exports import gpkg as g
    from vggeo.exports.source import BATCH_ROWS
    from vggeo.store import open_store

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--store", type=Path, default=Path("/tmp/vgbench-export/store_5600000_7.gpkg"))
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/vgbench-export-profile"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    t: dict[str, float] = {}
    batches = []
    out = g._Written("residences")
    out.geometry = "Point"
    n = 0
    with open_store(args.store) as s:
        it = s.iter_table("residences", batch_size=BATCH_ROWS)
        for key in ("store batches (iter_table)", "prepare", "to Arrow"):
            t[key] = 0.0
        while n < args.n:
            a = time.perf_counter()
            batch = next(it, None)
            t["store batches (iter_table)"] += time.perf_counter() - a
            if batch is None:
                break
            a = time.perf_counter()
            frame = g._prepare_batch("residences", batch, 3006)
            t["prepare"] += time.perf_counter() - a
            a = time.perf_counter()
            rb = g._arrow_batch(frame, out, "residences")
            batches.append(g._conform(rb, batches[0].schema, "residences") if batches else rb)
            t["to Arrow"] += time.perf_counter() - a
            n += len(batch)
    a = time.perf_counter()
    with pyogrio.open_arrow(
        args.store, layer="residences", batch_size=BATCH_ROWS, use_pyarrow=True
    ) as (
        _,
        reader,
    ):
        k = 0
        for rb in reader:
            k += rb.num_rows
            if k >= n:
                break
    t["GDAL Arrow read alone"] = time.perf_counter() - a

    def write(label: str, config: dict | None = None, **kw) -> None:
        path = args.workdir / "out.gpkg"
        path.unlink(missing_ok=True)
        if config:
            pyogrio.set_gdal_config_options(config)
        a = time.perf_counter()
        pyogrio.write_arrow(
            pa.RecordBatchReader.from_batches(batches[0].schema, iter(batches)),
            path,
            driver="GPKG",
            layer="residences",
            geometry_name="geometry",
            geometry_type="Point",
            crs="EPSG:3006",
            dataset_options={"VERSION": "1.3"},
            **kw,
        )
        t[label] = time.perf_counter() - a
        if config:
            pyogrio.set_gdal_config_options(dict.fromkeys(config))
        path.unlink()

    write("GDAL write (export's options)")
    write("GDAL write, no R-tree", layer_options={"SPATIAL_INDEX": "NO"})
    write(
        "GDAL write, synchronous off + cache",
        {"OGR_SQLITE_SYNCHRONOUS": "OFF", "OGR_SQLITE_CACHE": "512"},
    )
    a = time.perf_counter()
    df = pyogrio.read_dataframe(args.store, layer="residences", use_arrow=True, max_features=n)
    t["peer read_dataframe"] = time.perf_counter() - a
    path = args.workdir / "peer.gpkg"
    path.unlink(missing_ok=True)
    a = time.perf_counter()
    pyogrio.write_dataframe(df, path, layer="residences", driver="GPKG", use_arrow=True)
    t["peer write_dataframe"] = time.perf_counter() - a
    path.unlink()
    print(f"{n:,} rows, {batches[0].num_columns} columns written")
    for key, v in t.items():
        print(f"| {key} | {v:.2f} s |")


if __name__ == "__main__":
    main()
