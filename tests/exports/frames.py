"""Small frames in the contract shape (docs/contracts.md), built from real town positions.

Shared by the join and export tests so they do not depend on the readers' branches: residences
(``id``, ``home_type`` … Point, EPSG:3006), provisions (``provision_id``, ``provision_type``,
``status``, ``designation`` … MultiPolygon, EPSG:3006) and affected properties.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon

from vggeo.sample.towns import swedish_towns

HOME_TYPES = (
    "lägenhet",
    "villa",
    "radhus",
    "kedjehus",
    "lantbruk",
    "småhus övriga",
    "lantbruk övriga",
    "okänd",
)
PROVISION_TYPES = (
    "plan",
    "naturvardsbestammelse",
    "ovrig_bestammelse",
    "mineralrattighet",
    "utredning",
    "fornlamning",
)
STATUSES = ("gällande", "avregistrerad", "upphävd")


def _towns(k: int) -> pd.DataFrame:
    return swedish_towns(15000).head(k)


def residences(n: int = 3000, *, seed: int = 1, towns: int = 8) -> gpd.GeoDataFrame:
    """Homes scattered around real towns; every 50th has no position (geometry None)."""
    rng = np.random.default_rng(seed)
    t = _towns(towns)
    i = rng.integers(0, len(t), n)
    # Round to whole metres: exact coordinates are what PostGIS and GEOS then see identically.
    x = np.round(t["easting"].to_numpy()[i] + rng.normal(0, 1500, n))
    y = np.round(t["northing"].to_numpy()[i] + rng.normal(0, 1500, n))
    geom = shapely.points(x, y)
    geom[::50] = None
    return gpd.GeoDataFrame(
        {
            "id": (np.arange(n, dtype=np.int64) * 7 + 100_001)[rng.permutation(n)],
            "home_type": pd.Categorical(rng.choice(HOME_TYPES, n), categories=HOME_TYPES),
            "municipality_code": t["municipality_code"].to_numpy()[i],
            "rooms": pd.array(rng.integers(1, 7, n), dtype="Int16"),
        },
        geometry=geom,
        crs="EPSG:3006",
    )


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def provisions(m: int = 120, *, seed: int = 2, towns: int = 8) -> gpd.GeoDataFrame:
    """Irregular polygons around the same towns: some with holes, some multi-part."""
    rng = np.random.default_rng(seed)
    t = _towns(towns)
    i = rng.integers(0, len(t), m)
    cx = np.round(t["easting"].to_numpy()[i] + rng.normal(0, 2000, m))
    cy = np.round(t["northing"].to_numpy()[i] + rng.normal(0, 2000, m))
    geoms = []
    for k in range(m):
        r = rng.uniform(150, 1200)
        n_v = int(rng.integers(5, 40))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n_v))
        rad = r * rng.uniform(0.5, 1.0, n_v)
        ring = np.column_stack([cx[k] + rad * np.cos(ang), cy[k] + rad * np.sin(ang)]).round()
        holes = []
        if k % 5 == 0:  # a hole: homes in it are outside the provision
            holes.append(
                [
                    (cx[k] - r / 8, cy[k] - r / 8),
                    (cx[k] + r / 8, cy[k] - r / 8),
                    (cx[k] + r / 8, cy[k] + r / 8),
                    (cx[k] - r / 8, cy[k] + r / 8),
                ]
            )
        poly = shapely.make_valid(Polygon(ring, holes))
        parts = [g for g in getattr(poly, "geoms", [poly]) if g.geom_type == "Polygon"]
        if k % 7 == 0:  # a second, detached part
            parts.append(shapely.box(cx[k] + 2 * r, cy[k], cx[k] + 2.5 * r, cy[k] + r / 2))
        geoms.append(MultiPolygon(parts))
    return gpd.GeoDataFrame(
        {
            "provision_id": [_uuid(rng) for _ in range(m)],
            "provision_type": pd.Categorical(
                rng.choice(PROVISION_TYPES, m), categories=PROVISION_TYPES
            ),
            "object_version": pd.array(rng.integers(1, 4, m), dtype="Int64"),
            "municipality": t["municipality_code"].to_numpy()[i],
            "designation": [
                f"{t['municipality_code'].iloc[j]}-P{k:04d}/1" for k, j in enumerate(i)
            ],
            "name": [f"Bestämmelse {k} vid {t['name'].iloc[j]}" for k, j in enumerate(i)],
            "status": rng.choice(STATUSES, m, p=[0.8, 0.15, 0.05]),
            "last_changed": pd.to_datetime("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 600, m), unit="D"),
        },
        geometry=geoms,
        crs="EPSG:3006",
    )


def affected(prov: gpd.GeoDataFrame, *, seed: int = 3) -> pd.DataFrame:
    """Two or three register units per provision (the berörkrets)."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 4, len(prov))
    ids = np.repeat(prov["provision_id"].to_numpy(), k)
    return pd.DataFrame(
        {"provision_id": ids, "register_unit_id": [_uuid(rng) for _ in range(len(ids))]}
    )


def decisions(prov: gpd.GeoDataFrame, *, seed: int = 4) -> pd.DataFrame:
    """One bildandebeslut per provision, an ändringsbeslut for some."""
    rng = np.random.default_rng(seed)
    k = 1 + (rng.random(len(prov)) < 0.3)
    ids = np.repeat(prov["provision_id"].to_numpy(), k)
    first = np.concatenate([[True], ids[1:] != ids[:-1]])
    day = pd.to_datetime("1990-01-01") + pd.to_timedelta(rng.integers(0, 12000, len(ids)), unit="D")
    return pd.DataFrame(
        {
            "provision_id": ids,
            "kind": np.where(first, "bildandebeslut", "andringsbeslut"),
            "object_version": pd.array(np.where(first, 1, 2), dtype="Int64"),
            "valid_from": (day + pd.Timedelta(days=21)).astype("datetime64[ms]"),
            "decision_date": day.astype("datetime64[ms]"),
            "decision_id": [f"{i:06d}" for i in range(len(ids))],
        }
    )


def edge_cases() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Points exactly on boundaries, vertices, in holes, in a second part, near an edge.

    Square A (500000…500100, 6500000…6500100) with a hole (500040…500060); a multipolygon B with
    two squares; a triangle C with a diagonal edge through exactly representable points.
    """
    x0, y0 = 500_000.0, 6_500_000.0
    a = Polygon(
        [(x0, y0), (x0 + 100, y0), (x0 + 100, y0 + 100), (x0, y0 + 100)],
        [[(x0 + 40, y0 + 40), (x0 + 60, y0 + 40), (x0 + 60, y0 + 60), (x0 + 40, y0 + 60)]],
    )
    b = MultiPolygon(
        [shapely.box(x0 + 200, y0, x0 + 250, y0 + 50), shapely.box(x0 + 300, y0, x0 + 350, y0 + 50)]
    )
    c = Polygon([(x0 + 400, y0), (x0 + 500, y0), (x0 + 400, y0 + 100)])
    pts = {
        1: (x0 + 10, y0 + 10),  # inside A
        2: (x0 + 100, y0 + 50),  # on A's outer edge
        3: (x0, y0),  # on A's vertex
        4: (x0 + 50, y0 + 50),  # in A's hole
        5: (x0 + 40, y0 + 50),  # on A's hole edge
        6: (x0 + 325, y0 + 25),  # inside B's second part
        7: (x0 + 275, y0 + 25),  # between B's parts (25 m from each)
        8: (x0 + 450, y0 + 50),  # on C's diagonal edge
        9: (x0 + 449, y0 + 50),  # just inside C
        10: (x0 + 103, y0 + 50),  # 3 m outside A
        11: (x0 + 100, y0 + 100),  # on A's corner and nothing else
        12: (x0 + 60, y0 + 60),  # on the hole's corner
    }
    res = gpd.GeoDataFrame(
        {
            "id": np.array(list(pts), dtype=np.int64),
            "home_type": pd.Categorical(["villa"] * 6 + ["lägenhet"] * 6),
        },
        geometry=[Point(p) for p in pts.values()],
        crs="EPSG:3006",
    )
    prov = gpd.GeoDataFrame(
        {
            "provision_id": ["a" * 8, "b" * 8, "c" * 8],
            "provision_type": pd.Categorical(["plan", "naturvardsbestammelse", "plan"]),
            "status": ["gällande", "gällande", "avregistrerad"],
            "designation": ["A-1", "B-1", "C-1"],
        },
        geometry=[MultiPolygon([a]), b, MultiPolygon([c])],
        crs="EPSG:3006",
    )
    return res, prov


def write_store(path: Path, tables: dict[str, pd.DataFrame]) -> Path:
    """A real store (``vggeo.store``) holding the contract tables.

    Residences go in with ``load_residences``; the other tables as one base extract of
    markreglerande bestämmelser (``MemoryDelivery``), as ``vggeo ingest`` would leave them.
    """
    from datetime import UTC, datetime

    from vggeo.store import MemoryDelivery, open_store

    with open_store(path, create=True) as store:
        if "residences" in tables:
            store.load_residences(tables["residences"])
        rest = {k: v for k, v in tables.items() if k != "residences"}
        if rest:
            store.apply(
                MemoryDelivery(
                    product="bestammelse",
                    extract_id=f"test-{uuid.uuid4().hex[:8]}",
                    extract_type="base",
                    produced_at=datetime(2025, 1, 6, tzinfo=UTC),
                    tables={"markreglerandebestammelse": rest},
                )
            )
    return path
