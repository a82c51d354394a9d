"""A quick, deterministic generator of a tile-ready store: homes and provisions around real towns.

Used where no real store is given: ``vggeo serve`` without ``--store`` (until the bundled
``sample_data/sample.gpkg`` from the registry and delivery generators exists), the tests, and the
benchmarks (5.6 million homes). Homes cluster around the towns of
:func:`vggeo.sample.towns.swedish_towns` in proportion to population — apartments in buildings
near the centre (several homes share one coordinate, as in the registry), houses further out;
plans cover town centres so residences and regulations overlap. Columns follow
``docs/contracts.md`` (the subset tiles use plus a few more). Same arguments, same output.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from vggeo.atomic import atomic_path
from vggeo.frames import categoricals_as_text
from vggeo.sample.bundle import find_sample_data, sample_store
from vggeo.sample.towns import swedish_towns
from vggeo.tiles.layers import HOME_TYPES, OWNERSHIP_TYPES, PROVISION_TYPES

__all__ = ["generate", "write_store", "default_store"]

#: Bump when the generator's output changes (the cached default store is rebuilt).
GENERATOR_VERSION = 2
PLAN_NAMES = (
    "SOLHEM",
    "CENTRUM",
    "ÄNGEN",
    "BJÖRKEN",
    "HAMNEN",
    "KVARNEN",
    "STRANDEN",
    "LINDEN",
    "SKOLAN",
    "TALLEN",
    "ÖSTRA",
    "VÄSTRA",
)


def generate(
    n_residences: int = 20_000, *, seed: int = 7, n_towns: int = 80, provisions_per_town: int = 12
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Generate (residences, provisions) GeoDataFrames in EPSG:3006.

    Parameters
    ----------
    n_residences
        Number of homes.
    seed
        Random seed; the output is a function of the arguments only.
    n_towns
        How many of the largest towns get homes and provisions.
    provisions_per_town
        Provisions per town (plans near the centre, other types around).
    """
    rng = np.random.default_rng(seed)
    towns = swedish_towns(1000).head(n_towns).reset_index(drop=True)
    pop = towns["population"].to_numpy(float)
    town_of = np.sort(rng.choice(len(towns), size=n_residences, p=pop / pop.sum()))
    spread = 300 + 10 * np.sqrt(pop)  # metres: bigger towns spread further (Stockholm ~12 km)
    # Buildings: apartments come in buildings of 4…60 homes sharing a coordinate.
    r = np.abs(rng.normal(0, 1, n_residences)) * spread[town_of]
    apartment = rng.random(n_residences) < np.clip(1.2 - r / spread[town_of], 0.05, 0.9)
    angle = rng.uniform(0, 2 * np.pi, n_residences)
    east = towns["easting"].to_numpy()[town_of] + r * np.cos(angle)
    north = towns["northing"].to_numpy()[town_of] + r * np.sin(angle)
    bld = np.flatnonzero(apartment)
    if len(bld):
        group = np.cumsum(rng.random(len(bld)) < 1 / 20)  # mean 20 homes per building
        first = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
        lead = np.repeat(bld[first], np.diff(np.r_[first, len(bld)]))
        east[bld], north[bld] = east[lead], north[lead]
    house_types = np.array(["villa", "radhus", "kedjehus", "småhus övriga", "lantbruk", "okänd"])
    home_type = np.where(
        apartment,
        "lägenhet",
        house_types[rng.choice(6, n_residences, p=[0.62, 0.16, 0.1, 0.06, 0.04, 0.02])],
    )
    ownership = np.where(
        apartment,
        np.array(["bostadsrätt", "hyresrätt", "okänd"])[
            rng.choice(3, n_residences, p=[0.5, 0.4, 0.1])
        ],
        np.array(["äganderätt", "tomträtt"])[rng.choice(2, n_residences, p=[0.95, 0.05])],
    )
    year = rng.integers(1880, 2025, n_residences).astype("int64")
    ids = rng.permutation(n_residences).astype(np.int64) + 100_000
    residences = gpd.GeoDataFrame(
        {
            "id": ids,
            "home_type": pd.Categorical(home_type, categories=HOME_TYPES),
            "ownership_type": pd.Categorical(ownership, categories=OWNERSHIP_TYPES),
            "construction_year": pd.array(
                np.where(rng.random(n_residences) < 0.03, -1, year), dtype="Int16"
            ).astype("Int16"),
            "municipality_code": towns["municipality_code"].to_numpy()[town_of],
            "county_code": towns["county_code"].to_numpy()[town_of],
        },
        geometry=shapely.points(np.round(east), np.round(north)),
        crs="EPSG:3006",
    )
    residences.loc[residences["construction_year"] == -1, "construction_year"] = pd.NA

    # Provisions: rotated rectangles; plans near the centre, other types around the town.
    k = n_towns * provisions_per_town
    t = np.repeat(np.arange(n_towns), provisions_per_town)
    is_plan = rng.random(k) < 0.6
    ptype = np.where(
        is_plan, "plan", np.array(PROVISION_TYPES[1:])[rng.integers(0, len(PROVISION_TYPES) - 1, k)]
    )
    dist = np.where(is_plan, 0.6, 1.8) * spread[t] * np.sqrt(rng.random(k))
    ang = rng.uniform(0, 2 * np.pi, k)
    cx = towns["easting"].to_numpy()[t] + dist * np.cos(ang)
    cy = towns["northing"].to_numpy()[t] + dist * np.sin(ang)
    half_w = rng.uniform(80, 500, k) * np.where(ptype == "naturvardsbestammelse", 3, 1)
    half_h = half_w * rng.uniform(0.4, 1.0, k)
    rot = rng.uniform(0, np.pi, k)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], float)
    ux = corners[None, :, 0] * half_w[:, None]
    uy = corners[None, :, 1] * half_h[:, None]
    xs = cx[:, None] + ux * np.cos(rot)[:, None] - uy * np.sin(rot)[:, None]
    ys = cy[:, None] + ux * np.sin(rot)[:, None] + uy * np.cos(rot)[:, None]
    rings = np.stack([np.round(xs, 3), np.round(ys, 3)], axis=-1)
    polys: np.ndarray = np.asarray(shapely.polygons(rings))  # an array: one per ring
    geoms = shapely.multipolygons(polys.reshape(-1, 1))
    muni = towns["municipality_code"].to_numpy()[t]
    raw = rng.bytes(16 * k)
    pid = [str(uuid.UUID(bytes=raw[16 * i : 16 * i + 16], version=4)) for i in range(k)]
    status = np.where(rng.random(k) < 0.9, "gällande", "avregistrerad")
    provisions = gpd.GeoDataFrame(
        {
            "provision_id": pid,
            "provision_type": pd.Categorical(ptype, categories=PROVISION_TYPES),
            "object_version": pd.array(rng.integers(1, 4, k), dtype="Int64"),
            "municipality": muni,
            "designation": [f"{m}-P{i:04d}" for i, m in enumerate(muni)],
            "name": np.array(PLAN_NAMES)[rng.integers(0, len(PLAN_NAMES), k)],
            "status": status,
            # numpy takes None as an object scalar; its stubs know no such argument
            "plan_type": np.where(is_plan, "detaljplan", None),  # type: ignore[call-overload]
        },
        geometry=geoms,
        crs="EPSG:3006",
    )
    return residences, provisions


def write_store(
    path: str | os.PathLike, residences: gpd.GeoDataFrame, provisions: gpd.GeoDataFrame
) -> Path:
    """Write a GeoPackage store with tables ``residences`` and ``provisions`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        for name, frame in (("residences", residences), ("provisions", provisions)):
            pyogrio.write_dataframe(
                categoricals_as_text(frame), tmp, layer=name, driver="GPKG", append=tmp.exists()
            )
    return path


def default_store(n_residences: int = 20_000) -> Path:
    """The store ``vggeo serve`` uses without ``--store``.

    ``sample_data/sample.gpkg`` when present; else the store built from the bundled sample data
    through the real pipeline (:func:`vggeo.sample.bundle.sample_store`); only where no sample data
    is installed at all, a store from this module's quick generator, cached in
    ``$XDG_CACHE_HOME/vggeo`` (default ``~/.cache/vggeo``).
    """
    sample_dir = find_sample_data()
    if sample_dir is not None:
        bundled = sample_dir / "sample.gpkg"
        return bundled if bundled.exists() else sample_store(sample_dir)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vggeo"
    path = cache / f"tiles-sample-v{GENERATOR_VERSION}-{n_residences}.gpkg"
    if not path.exists():
        write_store(path, *generate(n_residences))
    return path
