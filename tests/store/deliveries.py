"""Small parsed deliveries for the store tests, and a plain model of the rules to compare against.

The model (:class:`Model`) is written independently of ``vggeo.store.base``: dictionaries of rows,
the rules of FORMATS.md §4 spelled out one by one. The property test drives the same random
deliveries through a real store and through the model and compares them after every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from vggeo.errors import IntegrityError, LedgerError, ParseError
from vggeo.store import MemoryDelivery

BEST_SET = "markreglerandebestammelse"
T0 = datetime(2025, 1, 6, 4, 0, 0)

PROVISION_TYPES = [
    "plan",
    "naturvardsbestammelse",
    "ovrig_bestammelse",
    "mineralrattighet",
    "utredning",
    "fornlamning",
]


def pid(i: int) -> str:
    return f"af065380-11ca-6f58-e040-{i:012x}"


def provision_rows(ids, rng: np.random.Generator, *, version: int = 1):
    """(provisions, affected, decisions) frames for provisions ``ids`` with random content."""
    ids = np.asarray(list(ids), dtype=object)
    n = len(ids)
    e = rng.uniform(300_000, 900_000, n).round(3)
    nn = rng.uniform(6_200_000, 7_600_000, n).round(3)
    w = rng.uniform(5, 500, n).round(3)
    boxes = shapely.box(e, nn, e + w, nn + w)
    geoms = shapely.multipolygons(boxes, indices=np.arange(n)) if n else boxes
    munis = rng.integers(114, 2584, n)
    prov = gpd.GeoDataFrame(
        {
            "provision_id": pd.array(ids, dtype="str"),
            "provision_type": pd.Categorical.from_codes(
                rng.integers(0, 6, n), categories=PROVISION_TYPES
            ),
            "object_version": pd.array(rng.integers(1, 5, n) + version, dtype="Int64"),
            "municipality": pd.Series(munis).astype(str).str.zfill(4).astype("str").array,
            "designation": (
                pd.Series(munis).astype(str) + "-P" + pd.Series(rng.integers(1, 999, n)).astype(str)
            )
            .astype("str")
            .array,
            "name": pd.array(
                np.array(["SOLHEM", "Kvarnen 1", None, "Åsen"], dtype=object)[
                    rng.integers(0, 4, n)
                ],
                dtype="str",
            ),
            "status": pd.array(
                np.array(["gällande", "avregistrerad"], dtype=object)[rng.integers(0, 2, n)],
                dtype="str",
            ),
            "last_changed": (
                pd.Timestamp("1988-06-07") + pd.to_timedelta(rng.integers(0, 12000, n), "D")
            ).astype("datetime64[ms]"),
        },
        geometry=np.asarray(geoms, dtype=object),
        crs=3006,
    )
    n_aff = rng.integers(0, 4, n)
    aff_p = np.repeat(ids, n_aff)
    aff_r = [
        f"909a6a{int(r):02d}-0000-90e0-e040-ed8f66440000" for r in rng.integers(0, 12, len(aff_p))
    ]
    affected = pd.DataFrame(
        {
            "provision_id": pd.array(aff_p, dtype="str"),
            "register_unit_id": pd.array(aff_r, dtype="str"),
        }
    )
    affected = affected.drop_duplicates(ignore_index=True)
    n_dec = rng.integers(0, 3, n)
    dec_p = np.repeat(ids, n_dec)
    kinds = np.array(["bildandebeslut", "andringsbeslut", "upphavandebeslut"], dtype=object)
    decisions = pd.DataFrame(
        {
            "provision_id": pd.array(dec_p, dtype="str"),
            "kind": pd.array(kinds[rng.integers(0, 3, len(dec_p))], dtype="str"),
            "object_version": pd.array(rng.integers(1, 4, len(dec_p)), dtype="Int64"),
            "valid_from": pd.Series(
                pd.Timestamp("2019-04-24") + pd.to_timedelta(rng.integers(0, 900, len(dec_p)), "D")
            ).astype("datetime64[ms]"),
            "decision_date": pd.Series(
                pd.Timestamp("1940-12-31")
                + pd.to_timedelta(rng.integers(0, 20000, len(dec_p)), "D")
            ).astype("datetime64[ms]"),
        }
    )
    return prov, affected, decisions


def bestammelse(
    extract_id: str,
    kind: str,
    produced_at: datetime,
    ids,
    rng,
    *,
    previous: str | None = None,
    removed=(),
    subsets: dict[str, set[str]] | None = None,
    version: int = 1,
) -> MemoryDelivery:
    """A provisions delivery. ``subsets[pid]`` ⊆ {basinformation, berorkrets} (default: both).

    Shaped as the reader returns it: every member has a ``provisions`` row, and a member without
    Basinformation has one of its identity and type only (every attribute null, geometry empty).
    """
    ids = list(ids)
    prov, aff, dec = provision_rows(ids, rng, version=version)
    subsets = subsets or {p: {"basinformation", "berorkrets"} for p in ids}
    base_ids = [p for p in ids if "basinformation" in subsets[p]]
    ber_ids = [p for p in ids if "berorkrets" in subsets[p]]
    sub = pd.DataFrame(
        [(p, s) for p in ids for s in sorted(subsets[p])], columns=["provision_id", "subset"]
    ).astype("str")
    bare = ~prov.provision_id.isin(base_ids).to_numpy()
    if bare.any():  # the identity-only row a Berörkrets-only member yields
        prov = prov.copy()
        for c in prov.columns:
            if c not in ("provision_id", "provision_type", "geometry"):
                prov.loc[bare, c] = None
        prov.loc[bare, "geometry"] = shapely.MultiPolygon()
    tables = {
        "provisions": prov.reset_index(drop=True),
        "affected": aff[aff.provision_id.isin(ber_ids)].reset_index(drop=True),
        "decisions": dec[dec.provision_id.isin(base_ids)].reset_index(drop=True),
        "subsets": sub,
    }
    return MemoryDelivery(
        "bestammelse",
        extract_id,
        kind,
        produced_at,
        {BEST_SET: tables},
        removed={BEST_SET: set(removed)} if kind == "change" else {},
        previous_extract_id=previous,
    )


def inskrivning(
    extract_id: str,
    kind: str,
    produced_at: datetime,
    objects,
    rng,
    *,
    previous: str | None = None,
    removed=(),
    orphan_persons: int = 0,
) -> MemoryDelivery:
    """An inskrivning delivery: per object one inskrivningsfastighet row and 0–2 owners."""
    objects = list(objects)
    fast = pd.DataFrame(
        {
            "object_id": pd.array(objects, dtype="str"),
            "property_id": pd.array([f"prop-{o}" for o in objects], dtype="str"),
            "registered": pd.array(rng.integers(0, 2, len(objects)).astype(bool)),
        }
    )
    ag_o, ag_k, share = [], [], []
    for o in objects:
        for k in rng.choice(6, rng.integers(0, 3), replace=False):
            ag_o.append(o)
            ag_k.append(f"k{int(k)}")
            share.append(f"1/{int(rng.integers(1, 4))}")
    agande = pd.DataFrame(
        {
            "object_id": pd.array(ag_o, dtype="str"),
            "property_id": pd.array([f"prop-{o}" for o in ag_o], dtype="str"),
            "owner_key": pd.array(ag_k, dtype="str"),
            "share": pd.array(share, dtype="str"),
        }
    )
    keys = sorted(set(ag_k)) + [f"k{6 + i}" for i in range(orphan_persons)]
    pkeys = [k for k in keys if int(k[1:]) % 2 == 0 or int(k[1:]) >= 6]
    okeys = [k for k in keys if k not in pkeys]
    persons = pd.DataFrame(
        {
            "owner_key": pd.array(pkeys, dtype="str"),
            "protected": rng.random(len(pkeys)) < 0.25,
            "personnummer": pd.array(
                [f"19{int(x):02d}0101-1234" for x in rng.integers(10, 99, len(pkeys))], dtype="str"
            ),
            "born": pd.array(rng.integers(1930, 2005, len(pkeys)), dtype="Int64"),
        }
    )
    orgs = pd.DataFrame(
        {
            "owner_key": pd.array(okeys, dtype="str"),
            "organisationsnamn": pd.array([f"AB {k}" for k in okeys], dtype="str"),
        }
    )
    tables = {
        "inskrivningsfastighet": {"inskrivningsfastighet": fast},
        "inskrivet_agande": {"agande": agande},
        "folkbokford_person_organisation": {"persons": persons, "organisations": orgs},
    }
    rem = (
        {"inskrivningsfastighet": set(removed), "inskrivet_agande": set(removed)}
        if kind == "change"
        else {}
    )
    return MemoryDelivery(
        "inskrivning",
        extract_id,
        kind,
        produced_at,
        tables,
        removed=rem,
        previous_extract_id=previous,
    )


@dataclass
class BrokenDelivery(MemoryDelivery):
    """A delivery that fails its integrity check, or breaks while being read (malformed XML)."""

    fail: str = "verify"  # or "read": the second set read raises

    def verify(self) -> None:
        if self.fail == "verify":
            raise IntegrityError(
                "file markreglerandebestammelse_2.xml listed in the metadata is "
                "missing from the delivery"
            )

    def read(self, set_name: str, *, personal_data: bool = False):
        if self.fail == "read" and set_name == self.sets[min(1, len(self.sets) - 1)]:
            raise ParseError("mismatched tag: line 1204, column 3", file=f"{set_name}_1.xml")
        return super().read(set_name, personal_data=personal_data)


# --- the model ---------------------------------------------------------------------------------

_INSKR = [
    "inskrivningsfastighet",
    "agande",
    "forvarv",
    "fang",
    "overlatelse",
    "avtalsrattighet",
    "inteckning",
    "anteckning",
    "tomtrattsupplatelse",
]
KEYS = {
    "provisions": "provision_id",
    "affected_properties": "provision_id",
    "decisions": "provision_id",
    **{t: "object_id" for t in _INSKR},
    "persons": "owner_key",
    "organisations": "owner_key",
}
ALIASES = {"affected": "affected_properties"}
OWNERS = {
    BEST_SET: ["provisions", "affected_properties", "decisions"],
    "inskrivningsfastighet": ["inskrivningsfastighet"],
    "inskrivet_agande": ["agande", "forvarv", "fang", "overlatelse"],
    **{t: [t] for t in ["avtalsrattighet", "inteckning", "anteckning", "tomtrattsupplatelse"]},
    "folkbokford_person_organisation": ["persons", "organisations"],
}
#: Seed 004: "Förändringsfiler innehåller endast förändrade informationsdelmängder" — a change
#: replaces, per provision, only the subsets it carries.
SUBSETS = {"basinformation": ["provisions", "decisions"], "berorkrets": ["affected_properties"]}
#: What a rebase empties: every table of the product, also those of sets the new base lacks.
PRODUCT_OF = {BEST_SET: "bestammelse"}  # every other set is inskrivning's
PERSONAL = {"personnummer"}


@dataclass
class Model:
    """The rules of FORMATS.md §4, on plain lists of row dictionaries."""

    tables: dict[str, list[dict]] = field(default_factory=lambda: {t: [] for t in KEYS})
    applied: dict[str, str] = field(default_factory=dict)  # extract id → checksum
    last: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # product → (id, time)
    residences: dict[int, dict] = field(default_factory=dict)  # id → row

    def check(self, d: MemoryDelivery, rebase: bool = False) -> str:
        """'apply', 'noop', or raise LedgerError like the store must."""
        if d.extract_id in self.applied:
            if self.applied[d.extract_id] != d.checksum:
                raise LedgerError("same id, other checksum")
            return "noop"
        last = self.last.get(d.product)
        if d.extract_type == "change":
            if last is None:
                raise LedgerError("no base")
            # only when the metadata names it (not a documented element)
            if (
                getattr(d, "previous_extract_id", None) is not None
                and d.previous_extract_id != last[0]
            ):
                raise LedgerError("gap")
        if last is not None and d.produced_at <= last[1]:
            raise LedgerError("older")
        if d.extract_type == "base" and last is not None and not rebase:
            raise LedgerError("a base over data the store holds, without rebase")
        return "apply"

    def apply(self, d: MemoryDelivery, rebase: bool = False) -> str:
        verdict = self.check(d, rebase)
        if verdict == "noop":
            return verdict
        d.verify()
        new = {t: list(rows) for t, rows in self.tables.items()}
        if d.extract_type == "base" and d.product in self.last:
            for s, tables in OWNERS.items():  # a rebase: the product's earlier data goes, all of it
                if PRODUCT_OF.get(s, "inskrivning") == d.product:
                    for t in tables:
                        new[t] = []
        for s in d.sets:
            frames = {ALIASES.get(k, k): v for k, v in d.read(s).items()}
            subsets = frames.pop("subsets", None)
            owned = OWNERS[s]
            if d.extract_type == "base":
                for t in owned:
                    new[t] = []
            else:
                for t in owned:
                    gone = set(d.deletions(s))
                    if subsets is None:
                        for name, f in frames.items():
                            if KEYS[name] == KEYS[t]:
                                gone |= set(f[KEYS[t]].astype(str))
                    else:
                        gone |= covered(t, subsets)
                    new[t] = [r for r in new[t] if r[KEYS[t]] not in gone]
            for t, f in frames.items():
                rows = rows_of(f, drop=PERSONAL)
                if subsets is not None:
                    # only the rows of the subsets each member carried (seed 004)
                    ids = covered(t, subsets)
                    rows = [r for r in rows if r[KEYS[t]] in ids]
                new[t] += rows
        if d.product == "inskrivning":
            owners = {r["owner_key"] for r in new["agande"]}
            new["persons"] = [
                r for r in new["persons"] if not r["protected"] and r["owner_key"] in owners
            ]
            new["organisations"] = [r for r in new["organisations"] if r["owner_key"] in owners]
        self.tables = new
        self.applied[d.extract_id] = d.checksum
        self.last[d.product] = (d.extract_id, d.produced_at)
        return "apply"


def covered(table: str, subsets: pd.DataFrame) -> set[str]:
    """The identities whose carried subsets own ``table``: a provision subset (SUBSETS), or an
    inskrivning set, whose objects are replaced whole within the set (seed 003)."""
    id_col = next(c for c in subsets.columns if c != "subset")
    return {
        str(i)
        for i, sub in zip(subsets[id_col], subsets["subset"], strict=True)
        if table in SUBSETS.get(str(sub).lower(), OWNERS.get(str(sub), ()))
    }


def _py(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, shapely.Geometry):
        return None if v.is_empty else shapely.to_wkb(shapely.normalize(v), hex=True)
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, np.generic):
        return v.item()
    return v


def rows_of(frame: pd.DataFrame, *, drop=()) -> list[dict]:
    cols = [c for c in frame.columns if c not in drop]
    return [
        {c: _py(v) for c, v in zip(cols, vals, strict=True)}
        for vals in zip(*(frame[c] for c in cols), strict=True)
    ]


def canonical(rows: list[dict], columns: list[str]) -> list[tuple]:
    """Rows as sorted tuples over ``columns`` (missing → None), for order-free comparison."""
    out = [tuple(repr(_py(r.get(c))) for c in columns) for r in rows]
    return sorted(out)


def store_rows(store, table: str) -> list[dict]:
    frame = store.read_table(table)
    return rows_of(frame)


def snapshot(store) -> dict[str, list]:
    """Every content table (all columns as text, geometry as normalised WKB) sorted, and the ledger.

    Vectorised, so that stores of tens of thousands of rows compare quickly.
    """
    out = {}
    for t in KEYS:
        frame = store.read_table(t)
        data = {}
        for c in sorted(frame.columns):
            s = frame[c]
            if c == "geometry":
                g = np.asarray(s.values, dtype=object)
                data[c] = pd.Series(
                    shapely.to_wkb(shapely.normalize(g), hex=True), dtype=object
                ).astype(str)
            else:
                data[c] = s.astype(object).where(s.notna(), None).astype(str)
        f = pd.DataFrame(data)
        f = f.sort_values(list(f.columns), ignore_index=True) if len(f.columns) else f
        out[t] = [list(f.columns), f.to_numpy().tolist()]
    out["_ledger"] = store.ledger()[
        ["extract_id", "product", "extract_type", "checksum"]
    ].values.tolist()
    return out


def schedule(start: datetime = T0):
    """Strictly increasing production times, a week apart."""
    i = 0
    while True:
        yield start + timedelta(days=7 * i)
        i += 1
