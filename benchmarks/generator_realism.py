"""How generated homes and generated provisions overlap (issue 5: joins on generated data).

Generates ``--homes`` residences (:func:`vggeo.sample.registry.generate_registry`) and a base
delivery of ``--provisions`` provisions (:func:`vggeo.sample.delivery.generate_deliveries`)
around the same towns, reads the delivery back with :func:`vggeo.lm.read_bestammelser`, joins
with :func:`vggeo.join.residences_in` and prints: share of homes in at least one plan, in a nature
reserve, in mineral rights + utredning, mean provisions per home, and per type the share of homes
inside and the mean area.

    python benchmarks/generator_realism.py --homes 200000 --provisions 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time


def overlap(homes, provisions) -> dict:
    """Overlap figures of homes × provisions (both GeoDataFrames in EPSG:3006)."""
    from vggeo.join import residences_in

    pairs, summary = residences_in(homes, provisions)
    n = len(homes)
    out = {"homes": n, "provisions": len(provisions), "mean_per_home": len(pairs) / n}
    for t, grp in pairs.groupby("provision_type", observed=True):
        out[f"in_{t}"] = grp["residence_id"].nunique() / n
    mr = pairs[pairs["provision_type"].isin(["mineralrattighet", "utredning"])]
    out["in_mineral_or_utredning"] = mr["residence_id"].nunique() / n
    plans = summary[summary["provision_type"] == "plan"]
    out["plans_share"] = len(plans) / len(provisions)
    out["plans_without_homes"] = float((plans["homes"] == 0).mean()) if len(plans) else 0.0
    area = provisions.geometry.area.groupby(provisions["provision_type"].astype(str)).mean() / 1e6
    for t, a in area.items():
        out[f"km2_{t}"] = float(a)
    return out


def main() -> None:
    from vggeo.lm import read_bestammelser
    from vggeo.sample.delivery import generate_deliveries
    from vggeo.sample.registry import generate_registry

    ap = argparse.ArgumentParser()
    ap.add_argument("--homes", type=int, default=200_000)
    ap.add_argument("--provisions", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t0 = time.perf_counter()
    homes = generate_registry(a.homes, seed=a.seed)[["id", "home_type", "geometry"]]
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        paths = generate_deliveries(tmp, product="bestammelse", n=a.provisions, seed=a.seed)
        t2 = time.perf_counter()
        prov = read_bestammelser(paths[0]).provisions
    t3 = time.perf_counter()
    res = overlap(homes, prov)
    t4 = time.perf_counter()
    for k, v in res.items():
        print(f"{k:28s} {v:.4f}" if isinstance(v, float) else f"{k:28s} {v}")
    print(
        f"# registry {t1 - t0:.1f} s, deliveries {t2 - t1:.1f} s, read {t3 - t2:.1f} s, "
        f"join {t4 - t3:.1f} s"
    )


if __name__ == "__main__":
    main()
