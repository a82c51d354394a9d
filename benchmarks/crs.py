"""vggeo.crs.transform versus bare pyproj on the same 5.6 million points, in one run.

    python benchmarks/crs.py [--n 5600000] [--repeat 5]

Prints best-of-N wall times and vggeo's overhead ratio (aim: ≤ 1.10). vggeo's extra work is the
magnitude check for swapped/foreign axes and the explicit axis-order handling; the projection
itself is PROJ in both cases (same operation: the direct route for RT 90).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pyproj

from vggeo import crs as vc


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=5_600_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    # Homes cluster around real towns, as in the registry (a rectangle would reach the Baltic).
    from vggeo.sample.towns import swedish_towns

    towns = swedish_towns(1000)
    rng = np.random.default_rng(42)
    pick = rng.choice(len(towns), size=args.n, p=towns.population / towns.population.sum())
    lat = towns.lat.to_numpy()[pick] + rng.normal(0, 0.03, args.n)
    lon = towns.lon.to_numpy()[pick] + rng.normal(0, 0.06, args.n)
    bare_wgs = pyproj.Transformer.from_crs(4326, 3006, always_xy=True)
    rt_e, rt_n = pyproj.Transformer.from_crs(4326, 3847, always_xy=True).transform(lon, lat)
    # The same operation vggeo uses for RT 90 (direct route: 3021 relabelled as 3847).
    bare_rt90 = pyproj.Transformer.from_crs(3847, 3006, always_xy=True)

    cases = {
        "4326->3006": (
            lambda: bare_wgs.transform(lon, lat),
            lambda: vc.transform(lat, lon, src=4326, dst=3006),
        ),
        "3021->3006": (
            lambda: bare_rt90.transform(rt_e, rt_n),
            lambda: vc.transform(rt_n, rt_e, src=3021, dst=3006),
        ),
    }
    # Same answers first: the comparison is only fair if both do the same thing.
    e_ref, n_ref = bare_rt90.transform(rt_e, rt_n)
    n_vg, e_vg = vc.transform(rt_n, rt_e, src=3021, dst=3006)
    assert np.array_equal(n_ref, n_vg) and np.array_equal(e_ref, e_vg)

    print(
        f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}, "
        f"pyproj {pyproj.__version__}, PROJ {pyproj.proj_version_str}, n={args.n:,}"
    )
    print(f"{'case':<12} {'pyproj s':>9} {'vggeo s':>9} {'ratio':>7}")
    for name, (bare, ours) in cases.items():
        ours()  # warm caches (transformer construction happens once, like pyproj's)
        t_bare = best_of(bare, args.repeat)
        t_ours = best_of(ours, args.repeat)
        print(f"{name:<12} {t_bare:>9.3f} {t_ours:>9.3f} {t_ours / t_bare:>7.3f}")


if __name__ == "__main__":
    main()
