"""Synthetic Lantmäteriet deliveries: one base extract and K change extracts, as ZIPs.

The packaging follows FORMATS.md §3 exactly (outer ZIP named by the order UUID → a folder per
information type → ``<set>.zip`` + ``<set>_metadata.xml``; inside, ``<set>_1.xml`` … and, in
change extracts, ``<set>_borttag.xml``). XML element names are the ones :mod:`vggeo.lm.mapping`
reads — public where FORMATS.md says so, inferred elsewhere. Output file names sort in the order
the deliveries must be applied: ``000_base_<uuid>.zip``, ``001_change_<uuid>.zip`` …

Markreglerande bestämmelser: all six provision types, both statuses (``gällande``,
``avregistrerad``), overlapping generated homes the way real ones do: block- to
neighbourhood-scale detailed plans tile the built-up areas of real towns
(:func:`vggeo.sample.towns.swedish_towns`, where :mod:`vggeo.sample.registry` puts its homes),
nature reserves, mineral rights and utredningar lie between and outside the towns, shoreline
strips start in their outskirts, small ancient monuments are scattered in and around them
(``benchmarks/join.md``, "Generator realism", has the measured shares); holes, multipart areas,
arcs (``gml:Arc`` edges, ``gml:Circle`` ancient-monument areas); coordinates in EPSG:3006 or a chosen local zone, northing first under
``urn:ogc:def:crs:EPSG::<code>`` as Lantmäteriet writes them. Change extracts edit (new object
version, changed geometry or status, new decisions; sometimes only the berörkrets subset), add and
delete (deletion file) provisions.

Inskrivning: properties with owners (persons and organisations, shares), acquisitions with prices,
mortgages, easements, notes, site leaseholds; one owner under *skyddad personuppgift* in the base
and another who becomes protected in the first change; sales and de-registered properties leave
persons without any ownership (orphans the store must remove).
"""

from __future__ import annotations

import io
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar
from xml.sax.saxutils import escape

import numpy as np
import shapely

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Iterator, Mapping

    import pandas as pd
    from numpy.typing import ArrayLike


from vggeo.atomic import atomic_path
from vggeo.crs import get_crs, transform
from vggeo.lm import mapping as M
from vggeo.lm.gml import GML32
from vggeo.sample.towns import swedish_towns

T = TypeVar("T")

__all__ = ["generate_deliveries", "write_bestammelse_file", "MAX_OBJECTS_PER_FILE"]

MAX_OBJECTS_PER_FILE = 50_000
# Namespaces and element names come from the mapping the reader uses (vggeo.lm.mapping): the
# namespaces as they are, every element name through M.reads, which refuses (at import) a name the
# reader would not read. What stays here is how names are capitalised (the reader matches local
# names case-insensitively, so casing is the writer's alone) and the wrapper elements around the
# records (…Response, …Member): the reader accepts any grouping levels, so they are no reading
# concern.
NS_MB = M.BESTAMMELSE.namespace
NS_IN = M.INSKRIVNING.namespace
NS_BT = M.DELETION_NAMESPACE
NS_MD = M.METADATA_NAMESPACE
GML = GML32

_PROVISION = M.BESTAMMELSE.records[M.BESTAMMELSE_SET][0]
_AFFECTED, _DECISION = _PROVISION.children
_FILE = M.METADATA.children[0]
#: Record elements whose capitalisation marks a word boundary the mapping's lower-case local name
#: loses; other record elements are written capitalised (``plan`` → ``Plan``).
_CASING = {
    "ovrigbestammelse": "OvrigBestammelse",
    "tidigareagande": "TidigareAgande",
    "folkbokfordperson": "FolkbokfordPerson",
}


def _cased(name: str) -> str:
    """A record element's local name (lower-case, from the mapping) as the generator writes it."""
    return _CASING.get(name, name.capitalize())


#: provision_type → the element that holds such a provision.
_ELEMENT = {t: _cased(n) for n, t in M.PROVISION_TYPES.items()}
_TYPES = tuple(_ELEMENT)
_BILDANDE, _ANDRING, _UPPHAVANDE = (
    M.reads(_PROVISION, n) for n in ("Bildandebeslut", "Andringsbeslut", "Upphavandebeslut")
)


def _names(record: M.Record, *paths: str) -> dict[str, str]:
    """``{name, lower-case: the name as written}`` for every element of ``paths``, each path one
    the mapping reads below ``record``."""
    out: dict[str, str] = {}
    for p in paths:
        M.reads(record, p)
        out |= {seg.lower(): seg for seg in p.split("/")}
    return out


#: Element names of a provision (``attribut/…``: inside its ``<Type>attribut`` block).
_PV = _names(
    _PROVISION,
    "objektidentitet",
    "attribut/objektversion",
    "attribut/kommun",
    "attribut/aktbeteckning",
    "attribut/namn",
    "attribut/status",
    "attribut/senasteAndringAllmannaDelen",
    "attribut/plantyp",
    "attribut/bestammelsetyp",
    "attribut/alternativAktbeteckning",
    "attribut/genomforandetidStart",
    "attribut/genomforandetidSlut",
    "Beror",
    "Registerenhetsreferens",
    "Hanvisningstext",
    "Yta",
)
_AFFECTED_ID = M.reads(_AFFECTED, "objektidentitet")
_DV = _names(_DECISION, "objektversion", "giltigFran", "beslutsdatum", "objektidentitet")
#: Element names of a metadata file.
_MD = _names(
    M.METADATA,
    "uttagsidentitet",
    "foregaendeUttagsidentitet",
    "koordinatsystem",
    "personinformation/direktmarknadsforing",
    "personinformation/exkluderaPersonnummer",
    "antalPersoner",
    "antalOrganisationer",
    "fardigproducerad",
    "informationstyp",
    "informationsmangd",
    "informationsdelmangd",
    "urval/urvalstyp",
    "urval/listreferens",
    "urval/kommunkod",
    "uttagstyp",
    "totaltAntalObjekt",
    "filstorlek",
    "filer",
)
_MD_ROOT = M.METADATA.names[0].capitalize()
_FV = _names(_FILE, "filnamn", "antalObjekt", "filstorlek")
_FV["fil"] = M.reads(M.METADATA, "Fil")
_DELETION_ID = "objektidentitet"
assert _DELETION_ID in M.DELETION_ID_NAMES
_EXTRACT_TYPE = {"base": "basuttag", "change": "förändringsuttag"}
assert all(M.EXTRACT_TYPES[v] == k for k, v in _EXTRACT_TYPE.items())


_INSK = M.INSKRIVNING.records
_EXCHANGE = _INSK["inskrivningsfastighet"][0]
_AGANDE, _FORVARV = _INSK["inskrivet_agande"][0].children
(_FANG, _) = _FORVARV.children
(_INTECKNING,) = _INSK["inteckning"][0].children
(_AVTALSRATT,) = _INSK["avtalsrattighet"][0].children
(_ANTECKNING,) = _INSK["anteckning"][0].children
(_TOMTRATT,) = _INSK["tomtrattsupplatelse"][0].children
_PERSON, _ORGANISATION = _INSK["folkbokford_person_organisation"]
#: Element names of an Inskrivningsfastighet (the exchange object of every inskrivning set).
_EX = _names(
    _EXCHANGE,
    "objektidentitet",
    "objektversion",
    "Fastighetsreferens/objektidentitet",
    "Fastighetsreferens/fastighetsbeteckning",
    "Fastighetsreferens/kommun",
)
_EX["inskrivningsfastighet"] = _cased(_EXCHANGE.names[0])
_ADDRESS = ("adress/utdelningsadress", "adress/postnummer", "adress/postort")
#: Element names of an Agande / TidigareAgande with its Agare.
_AG = _names(
    _AGANDE,
    "typ",
    "inskrivningsdag",
    "beslut",
    "dagboksnummer",
    "beviljadAndel/taljare",
    "beviljadAndel/namnare",
    *(f"Agare/InskrivenOrganisation/{p}" for p in ("organisationsnummer", "organisationsnamn")),
    *(f"Agare/InskrivenOrganisation/{p}" for p in _ADDRESS),
    *(f"Agare/InskrivenPerson/{p}" for p in ("idnummer", "fornamn", "efternamn", *_ADDRESS)),
)
_AG_TAGS = {n: _cased(n) for n in _AGANDE.names}  # agande, tidigareagande
_FO = _names(
    _FORVARV,
    "Fang",
    "kopeskilling/kopeskillingFastEgendom/valuta",
    "kopeskilling/kopeskillingFastEgendom/summa",
)
_FO["fastighetsagandeforandring"] = _cased(_FORVARV.names[0])
_FA = _names(_FANG, "fangesdag", "fangesart", "aktnummer", "andelFang/taljare", "andelFang/namnare")
_IN = _names(
    _INTECKNING,
    "inskrivenBelastning/typ",
    "inskrivenBelastning/belopp/valuta",
    "inskrivenBelastning/belopp/summa",
    "inskrivenBelastning/pantbrevstyp",
    "inskrivningsdag",
    "dagboksnummer",
)
_AV = _names(_AVTALSRATT, "typ", "andamal", "inskrivningsdag", "aktnummer")
_AN = _names(_ANTECKNING, "typ", "text", "inskrivningsdag")
_TO = _names(_TOMTRATT, "upplatelsedag", "avgald/valuta", "avgald/summa", "inskrivningsdag")
#: The record elements of the other sets, as written.
_RECORD = {
    r.names[0]: _cased(r.names[0])
    for r in (_INTECKNING, _AVTALSRATT, _ANTECKNING, _TOMTRATT, _PERSON, _ORGANISATION)
}
_PE = _names(_PERSON, "idnummer", "fornamn", "efternamn", *_ADDRESS)
_OR = _names(_ORGANISATION, "organisationsnummer", "organisationsnamn", *_ADDRESS)


def _el(name: str, text: object) -> str:
    return f"<{name}>{text}</{name}>"


_TYPE_WEIGHTS = np.array([0.62, 0.12, 0.10, 0.04, 0.04, 0.08])
_ELEMENT = {
    "plan": "Plan",
    "naturvardsbestammelse": "Naturvardsbestammelse",
    "ovrig_bestammelse": "OvrigBestammelse",
    "mineralrattighet": "Mineralrattighet",
    "utredning": "Utredning",
    "fornlamning": "Fornlamning",
}
_PLAN_TYPES = (
    "detaljplan",
    "detaljplan",
    "detaljplan",
    "områdesbestämmelser",
    "fastighetsplan",
    "tomtindelning",
    "byggnadsplan",
    "stadsplan",
)
_SUBTYPES = {
    "naturvardsbestammelse": (
        "naturreservat",
        "naturvårdsområde",
        "biotopskyddsområde",
        "djur- och växtskyddsområde",
    ),
    "ovrig_bestammelse": ("strandskydd", "vattenskyddsområde", "byggnadsminne", "riksintresse"),
    "mineralrattighet": ("bearbetningskoncession", "undersökningstillstånd"),
    "utredning": ("fastighetsbildning pågår", "planläggning pågår"),
    "fornlamning": ("fornlämning", "fornlämningsområde"),
}
_NAMES = (
    "SOLHEM",
    "ENEBACKEN",
    "KVARNEN",
    "STRANDEN",
    "ÄNGSLYCKAN",
    "BJÖRKHAGA",
    "HAMNEN",
    "CENTRUM",
    "SKOLAN",
    "NORRMALM",
    "SÖDERÄNG",
    "VÄSTERBY",
    "ÖSTERMALM",
    "TALLBACKEN",
    "LINDEN",
    "ALMEN",
    "RÅDHUSET",
    "STATIONEN",
    "MAJORSKAN",
    "GLASBRUKET",
)


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


# --- geometry ---------------------------------------------------------------------------------


@dataclass
class Area:
    """A generated area in EPSG:3006 (x = easting), as polygons of rings, plus arc markers.

    ``arcs`` holds, per polygon, an optional (index of the ring vertex where an arc starts,
    arc middle point) for the exterior ring — written as a ``gml:Arc`` segment.
    ``circle`` holds (cx, cy, r) for a provision drawn as a ``gml:Circle``.
    """

    polygons: list[list[np.ndarray]]
    arc: tuple[int, tuple[float, float]] | None = None
    circle: tuple[float, float, float] | None = None
    style: str = "polygon"  # polygon | multisurface | surface


def _blob(
    rng: np.random.Generator, cx: float, cy: float, r: float, n: int, rough: float = 0.25
) -> np.ndarray:
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * (1 + rough * (rng.random(n) - 0.5)) * (1 + 0.15 * np.sin(3 * ang + rng.random() * 6))
    pts = np.column_stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)])
    return np.vstack([pts, pts[:1]])


def _block(
    rng: np.random.Generator,
    cx: float,
    cy: float,
    w: float | None = None,
    h: float | None = None,
    a: float | None = None,
) -> np.ndarray:
    """A block-shaped plan ``w`` × ``h`` m turned by ``a`` (random block size/angle if None)."""
    w = rng.uniform(60, 260) if w is None else w
    h = rng.uniform(50, 200) if h is None else h
    a = rng.uniform(0, np.pi) if a is None else a
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    # A few extra vertices along the edges: real plans follow property lines.
    pts: list[np.ndarray] = []
    for i in range(4):
        p, q = corners[i], corners[(i + 1) % 4]
        k = int(rng.integers(1, 6))
        t = np.sort(rng.uniform(0.05, 0.95, k))
        nrm = np.array([q[1] - p[1], p[0] - q[0]]) / np.linalg.norm(q - p)
        pts.append(p)
        # Jitter across the edge only, so the vertices keep their order and never cross.
        pts.extend(p + (q - p) * tt + nrm * rng.normal(0, 1.5) for tt in t)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    ring = np.array(pts) @ rot.T + [cx, cy]
    return np.vstack([ring, ring[:1]])


def _ccw(ring: np.ndarray, ccw: bool = True) -> np.ndarray:
    x, y = ring[:, 0], ring[:, 1]
    area = 0.5 * np.sum(x[:-1] * y[1:] - x[1:] * y[:-1])
    return ring if (area > 0) == ccw else ring[::-1].copy()


def _strip(rng: np.random.Generator, cx: float, cy: float, scale: float = 1.0) -> np.ndarray:
    """A shoreline strip: a wavy line (2–9 km · ``scale``) buffered 100–300 m on one side."""
    length = scale * rng.uniform(2000, 9000)
    n = max(int(length / 60), 8)
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.08, n))
    step = length / n
    xs = cx + np.concatenate([[0], np.cumsum(step * np.cos(heading[:-1]))])
    ys = cy + np.concatenate([[0], np.cumsum(step * np.sin(heading[:-1]))])
    line = shapely.LineString(np.column_stack([xs, ys]))
    poly = line.buffer(rng.uniform(100, 300), quad_segs=2, single_sided=True)
    poly = shapely.simplify(poly, 1.0)
    if poly.geom_type != "Polygon":
        poly = max(poly.geoms, key=lambda g: g.area)
    return np.asarray(poly.exterior.coords)


def _built_up_radius(pop: ArrayLike) -> np.ndarray:
    """Radius (m) of a town's built-up area, matching :mod:`vggeo.sample.registry`'s homes.

    The registry puts houses |N(0, 1)| · 700 · (pop/1000)^0.3 + Exp(400) m from the centre and
    apartment buildings within N(0, 150 · (pop/1000)^0.35) — much tighter; 1.5 σ of the houses
    plus the exponential's mean holds about 85 % of a town's homes.
    """
    return 1.5 * 700.0 * (np.asarray(pop, dtype=float) / 1000.0) ** 0.3 + 400.0


@dataclass
class _Towns:
    """Towns as arrays (EPSG:3006) with their built-up radii, for placing provisions."""

    frame: pd.DataFrame  # from swedish_towns
    weights: np.ndarray
    e: np.ndarray
    n: np.ndarray
    pop: np.ndarray
    r: np.ndarray
    #: Linear size of the countryside provisions (reserves, strips, mineral rights): 1 up to
    #: 20 000 provisions, then shrinking as 1/√n, so their total area stays that of one country
    #: and the share of homes inside them does not grow with n (as plan blocks shrink too).
    scale: float = 1.0

    @classmethod
    def of(cls, towns: pd.DataFrame, weights: np.ndarray, n: int) -> _Towns:
        pop = towns["population"].to_numpy(float)
        return cls(
            towns,
            weights,
            towns["easting"].to_numpy(float),
            towns["northing"].to_numpy(float),
            pop,
            _built_up_radius(pop),
            float(np.sqrt(min(1.0, 20_000 / max(n, 1)))),
        )


@dataclass
class _PlanCells:
    """Where plans go: blocks tiling the towns' built-up areas, densest first (see :func:`_plan_cells`)."""

    town: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    w: np.ndarray
    h: np.ndarray
    angle: np.ndarray
    tiled: int  # the first ``tiled`` entries tile the towns; later ones lie over them
    used: int = 0

    def take(
        self, rng: np.random.Generator
    ) -> tuple[int, tuple[float, float, float, float, float], bool]:
        """The next plan's (town, block) and whether it tiles; an overlay once all are used."""
        i = self.used
        if i < len(self.cx):
            self.used += 1
            return (
                int(self.town[i]),
                (
                    float(self.cx[i]),
                    float(self.cy[i]),
                    float(self.w[i]),
                    float(self.h[i]),
                    float(self.angle[i]),
                ),
                i < self.tiled,
            )
        return self.overlay(rng)

    def overlay(
        self, rng: np.random.Generator
    ) -> tuple[int, tuple[float, float, float, float, float], bool]:
        """A new block-scale plan over part of an existing one (a plan changing an older plan)."""
        i = int(rng.integers(0, max(1, min(self.used, self.tiled))))
        w, h = min(rng.uniform(60, 260), self.w[i]), min(rng.uniform(50, 200), self.h[i])
        # Inside the tiling block, so the overlay never reaches past the built-up area.
        du = rng.uniform(-0.5, 0.5) * (self.w[i] - w)
        dv = rng.uniform(-0.5, 0.5) * (self.h[i] - h)
        a = self.angle[i]
        cx = self.cx[i] + du * np.cos(a) - dv * np.sin(a)
        cy = self.cy[i] + du * np.sin(a) + dv * np.cos(a)
        return int(self.town[i]), (float(cx), float(cy), float(w), float(h), float(a)), False


# Sub-blocks of a grid cell: (offset along w, offset along h, share of w, share of h), so one
# cell is one, two or four plans and plan sizes vary without gaps or overlaps.
_SPLITS = {
    1: np.array([[0.0, 0.0, 1.0, 1.0]]),
    2: np.array([[-0.25, 0.0, 0.5, 1.0], [0.25, 0.0, 0.5, 1.0]]),
    4: np.array(
        [
            [-0.25, -0.25, 0.5, 0.5],
            [0.25, -0.25, 0.5, 0.5],
            [-0.25, 0.25, 0.5, 0.5],
            [0.25, 0.25, 0.5, 0.5],
        ]
    ),
}
_SPLIT_K = np.array([1, 2, 4])
_SPLIT_P = np.array([0.55, 0.30, 0.15])


def _plan_cells(rng: np.random.Generator, tw: _Towns, n_plans: int) -> _PlanCells:
    """Blocks for ``n_plans`` detailed plans that tile the towns where the homes are.

    Real detailed plans (detaljplan, stadsplan, byggnadsplan) tile a town's built-up area, block
    to neighbourhood scale, rarely overlapping. Each town gets a grid (its own angle and cell
    shape) over its built-up disc (:func:`_built_up_radius`), a cell centred on the town
    centre; each cell is one, two or four plans. The cell size makes ``n_plans`` cover the
    built-up area of every town, but stays between 150 m and 700 m (0.02–0.5 km² cells): with
    fewer plans than that needs, cells are taken in order of the homes the registry generator
    expects in them, so the plans cover the densest parts first. Vectorised: one numpy pass.
    """
    mean_k = float(_SPLIT_K @ _SPLIT_P)
    s = float(np.clip(np.sqrt((np.pi * tw.r**2).sum() * mean_k / max(n_plans, 1)), 150.0, 700.0))
    nt = len(tw.e)
    aspect = rng.uniform(0.8, 1.25, nt)
    sx, sy = s * aspect, s / aspect
    ang = rng.uniform(0, np.pi / 2, nt)
    m = np.ceil(tw.r / np.minimum(sx, sy)).astype(np.int64)
    side = 2 * m + 1
    counts = side**2
    town = np.repeat(np.arange(nt), counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    u = (local // side[town] - m[town]) * sx[town]
    v = (local % side[town] - m[town]) * sy[town]
    r = np.hypot(u, v)
    keep = r <= tw.r[town]
    town, u, v, r = town[keep], u[keep], v[keep], r[keep]
    # Neighbouring towns' built-up discs overlap (Stockholm's suburbs are towns of their own):
    # a cell belongs to the town it lies relatively nearest (distance / built-up radius), so the
    # grids of two towns meet at a boundary instead of covering the same ground twice.
    cx = tw.e[town] + u * np.cos(ang[town]) - v * np.sin(ang[town])
    cy = tw.n[town] + u * np.sin(ang[town]) + v * np.cos(ang[town])
    pts = shapely.points(cx, cy)
    discs = shapely.buffer(shapely.points(tw.e, tw.n), tw.r, quad_segs=16)
    ci, ti = shapely.STRtree(discs).query(pts, predicate="intersects")
    rel = np.hypot(cx[ci] - tw.e[ti], cy[ci] - tw.n[ti]) / tw.r[ti]
    best = np.full(len(cx), np.inf)
    np.minimum.at(best, ci, rel)
    keep = r / tw.r[town] <= best + 1e-12
    town, u, v, r = town[keep], u[keep], v[keep], r[keep]
    # Homes the registry generator expects in each cell (its two spatial models, by town share).
    sb = 150.0 * (tw.pop / 1000.0) ** 0.35
    sh = 700.0 * (tw.pop / 1000.0) ** 0.3 + 400.0
    w_apt = 0.48 * tw.pop**1.1 / (tw.pop**1.1).sum()
    w_house = 0.46 * tw.pop**0.85 / (tw.pop**0.85).sum()
    apt = w_apt[town] * np.exp(-(r**2) / (2 * sb[town] ** 2)) / (2 * np.pi * sb[town] ** 2)
    house = (
        w_house[town]
        * np.sqrt(2 / np.pi)
        / sh[town]
        * np.exp(-(r**2) / (2 * sh[town] ** 2))
        / (2 * np.pi * np.maximum(r, s / 2))
    )
    order = np.argsort(-(apt + house) * rng.uniform(0.9, 1.1, len(r)), kind="stable")
    town, u, v = town[order], u[order], v[order]
    k = rng.choice(_SPLIT_K, len(town), p=_SPLIT_P)
    n_cells = int(np.searchsorted(np.cumsum(k), n_plans) + 1)
    town, u, v, k = town[:n_cells], u[:n_cells], v[:n_cells], k[:n_cells]
    parts = np.concatenate([_SPLITS[int(kk)] for kk in k]) if n_cells else np.zeros((0, 4))
    town, u, v = np.repeat(town, k), np.repeat(u, k), np.repeat(v, k)
    cw, ch = sx[town], sy[town]
    u, v = u + parts[:, 0] * cw, v + parts[:, 1] * ch
    a = ang[town]
    cx = tw.e[town] + u * np.cos(a) - v * np.sin(a)
    cy = tw.n[town] + u * np.sin(a) + v * np.cos(a)
    cells = _PlanCells(town, cx, cy, parts[:, 2] * cw, parts[:, 3] * ch, a, tiled=len(cx))
    cells.tiled = min(len(cx), n_plans)
    # A random order, so files do not list plans densest first; the tiling blocks come first.
    perm = rng.permutation(cells.tiled)
    for name in ("town", "cx", "cy", "w", "h", "angle"):
        setattr(cells, name, getattr(cells, name)[: cells.tiled][perm])
    return cells


def _away(
    rng: np.random.Generator, tw: _Towns, t: int, r: float, lo: float, hi: float, slack: float = 0.0
) -> tuple[float, float]:
    """A centre lo–hi m beyond town ``t``'s built-up edge for a disc of radius ``r`` that stays
    clear of every town's built-up area (or reaches ``slack`` m into one)."""
    for _ in range(30):
        ang = rng.uniform(0, 2 * np.pi)
        d = tw.r[t] + r + rng.uniform(lo, hi)
        cx, cy = tw.e[t] + d * np.cos(ang), tw.n[t] + d * np.sin(ang)
        if (np.hypot(tw.e - cx, tw.n - cy) - tw.r - r).min() >= -slack:
            break
    return cx, cy


def _area_for(
    kind: str,
    rng: np.random.Generator,
    tw: _Towns,
    t: int,
    block: tuple[float, float, float, float, float] | None = None,
) -> Area:
    """A valid area of the kind (redrawn in the rare case a random shape is not valid)."""
    for _ in range(20):
        a = _draw_area(kind, rng, tw, t, block)
        if a.circle is not None:
            return a
        geom = shapely.MultiPolygon([shapely.Polygon(p[0], p[1:]) for p in a.polygons])
        if shapely.is_valid(geom):
            return a
    raise RuntimeError("could not draw a valid area")  # pragma: no cover


def _draw_area(
    kind: str,
    rng: np.random.Generator,
    tw: _Towns,
    t: int,
    block: tuple[float, float, float, float, float] | None = None,
) -> Area:
    if kind == "plan":
        if block is None:
            raise ValueError("a plan is drawn in its block")
        cx, cy, w, h, a = block
        # Streets between neighbouring plans: each plan keeps 5–12 m off its block's edge.
        margin = rng.uniform(5, 12)
        w, h = w - 2 * margin, h - 2 * margin
        ext = _ccw(_block(rng, cx, cy, w, h, a))
        polys = [[ext]]
        u = rng.random()
        style = "polygon"
        if u < 0.12:  # a hole (a courtyard excluded from the plan)
            polys[0].append(_ccw(_blob(rng, cx, cy, min(12.0, w / 6, h / 6), 8, 0.1), ccw=False))
        elif u < 0.22:  # multipart: the block's two halves across a street
            half = w / 4 + margin / 2
            dx, dy = half * np.cos(a), half * np.sin(a)
            polys = [
                [_ccw(_block(rng, cx - dx, cy - dy, w / 2 - margin, h, a))],
                [_ccw(_block(rng, cx + dx, cy + dy, w / 2 - margin, h, a))],
            ]
            style = "multisurface"
        elif u < 0.27:
            style = "surface"
        arc = None
        if rng.random() < 0.08 and len(polys) == 1 and len(polys[0]) == 1:
            ring = polys[0][0]
            i = int(rng.integers(0, len(ring) - 2))
            p, q = ring[i], ring[i + 1]
            c = float(np.linalg.norm(q - p))
            if c > 60:
                # Curved boundaries are short (a corner, a curb): the arc spans the first 60 m
                # of the edge (a collinear vertex is added), radius under 100 m.
                q = p + (q - p) * (60 / c)
                ring = polys[0][0] = np.insert(ring, i + 1, q, axis=0)
                c = 60.0
            mid = (p + q) / 2
            nrm = np.array([q[1] - p[1], p[0] - q[0]])
            nrm /= max(np.linalg.norm(nrm), 1e-9)
            # Outward for a ccw ring; at most the street margin, so it stays off the neighbour.
            bulge = min(0.15 * c, margin)
            m = mid + nrm * bulge
            arc = (i, (float(m[0]), float(m[1])))
        return Area(polys, arc=arc, style=style)
    if kind == "naturvardsbestammelse":
        # Between the towns (forests, coasts, mountains); one in ten touches a town's edge.
        r = tw.scale * float(np.clip(rng.lognormal(np.log(600.0), 0.7), 150.0, 4000.0))
        if rng.random() < 0.1:
            cx, cy = _away(rng, tw, t, r, -0.2 * r, 0.0, slack=0.3 * r)
        else:
            cx, cy = _away(rng, tw, t, r, 1000.0, 30000.0)
        n = int(np.clip(r / 7.5, 100, 480))
        ext = _ccw(_blob(rng, cx, cy, r, n))
        polys = [[ext]]
        if rng.random() < 0.3:
            polys[0].append(_ccw(_blob(rng, cx, cy, r * 0.15, 24, 0.2), ccw=False))
        if rng.random() < 0.15:
            polys.append([_ccw(_blob(rng, cx + 2.6 * r, cy, r * 0.4, max(24, n // 4)))])
            return Area(polys, style="multisurface")
        return Area(polys)
    if kind == "ovrig_bestammelse":
        # Shoreline strips start from the town's outskirts out to the countryside.
        ang = rng.uniform(0, 2 * np.pi)
        dist = tw.r[t] * rng.uniform(0.7, 3.0)
        cx, cy = tw.e[t] + dist * np.cos(ang), tw.n[t] + dist * np.sin(ang)
        return Area([[_ccw(_strip(rng, cx, cy, tw.scale))]])
    if kind == "fornlamning":
        # Small and scattered; about a third inside towns.
        ang = rng.uniform(0, 2 * np.pi)
        if rng.random() < 0.3:
            dist = tw.r[t] * np.sqrt(rng.random())
        else:
            dist = tw.r[t] + rng.uniform(0, 12000)
        cx, cy = tw.e[t] + dist * np.cos(ang), tw.n[t] + dist * np.sin(ang)
        r = rng.uniform(15, 80)
        if rng.random() < 0.5:
            return Area([], circle=(cx, cy, r))
        return Area([[_ccw(_blob(rng, cx, cy, r, 16, 0.3))]])
    # mineralrättighet / utredning: medium polygons outside towns; a few utredningar (planning
    # under way) at a town's edge.
    if kind == "utredning" and rng.random() < 0.15:
        r = rng.uniform(150, 500)
        cx, cy = _away(rng, tw, t, r, -r, 0.0, slack=r)
    else:
        r = tw.scale * rng.uniform(300, 1500)
        cx, cy = _away(rng, tw, t, r, 200.0, 20000.0)
    return Area([[_ccw(_blob(rng, cx, cy, r, 40, 0.3))]])


# --- GML writing ----------------------------------------------------------------------------------


class _CoordWriter:
    """Writes 3006 easting/northing arrays as northing-first text in the delivery CRS."""

    def __init__(self, crs: int) -> None:
        self.crs = crs
        self.srs = f"urn:ogc:def:crs:EPSG::{crs}"

    def convert(self, en: np.ndarray) -> np.ndarray:
        if self.crs == 3006:
            return en
        e, n = transform(en[:, 0], en[:, 1], src=3006, dst=self.crs, in_order="en", out_order="en")
        return np.column_stack([e, n])

    def text(self, en: np.ndarray) -> str:
        ne = self.convert(en)[:, ::-1]
        return " ".join(f"{v:.3f}" for v in ne.ravel())


def _ring_xml(cw: _CoordWriter, ring: np.ndarray) -> str:
    return f"<gml:LinearRing><gml:posList>{cw.text(ring)}</gml:posList></gml:LinearRing>"


def _polygon_xml(
    cw: _CoordWriter, rings: list[np.ndarray], gid: str, *, srs: bool, tag: str = "Polygon"
) -> str:
    attrs = f' gml:id="{gid}"' if tag == "Polygon" else ""
    if srs:
        attrs += f' srsName="{cw.srs}"'
    inner = "".join(f"<gml:interior>{_ring_xml(cw, r)}</gml:interior>" for r in rings[1:])
    return f"<gml:{tag}{attrs}><gml:exterior>{_ring_xml(cw, rings[0])}</gml:exterior>{inner}</gml:{tag}>"


def _arc_polygon_xml(
    cw: _CoordWriter, ring: np.ndarray, i: int, mid: tuple[float, float], gid: str
) -> str:
    """An exterior Ring: LineStringSegment up to vertex i, an Arc i → mid → i+1, then the rest."""
    before = ring[: i + 1]
    after = ring[i + 1 :]
    arc = np.array([ring[i], mid, ring[i + 1]])
    segs = []
    if len(before) >= 2:
        segs.append(
            f"<gml:LineStringSegment><gml:posList>{cw.text(before)}</gml:posList></gml:LineStringSegment>"
        )
    segs.append(f"<gml:Arc><gml:posList>{cw.text(arc)}</gml:posList></gml:Arc>")
    if len(after) >= 2:
        segs.append(
            f"<gml:LineStringSegment><gml:posList>{cw.text(after)}</gml:posList></gml:LineStringSegment>"
        )
    return (
        f'<gml:Polygon gml:id="{gid}" srsName="{cw.srs}"><gml:exterior><gml:Ring><gml:curveMember>'
        f"<gml:Curve><gml:segments>{''.join(segs)}</gml:segments></gml:Curve>"
        "</gml:curveMember></gml:Ring></gml:exterior></gml:Polygon>"
    )


def _circle_xml(cw: _CoordWriter, cx: float, cy: float, r: float, gid: str) -> str:
    pts = np.array([[cx + r, cy], [cx, cy + r], [cx - r, cy]])
    return (
        f'<gml:Polygon gml:id="{gid}" srsName="{cw.srs}"><gml:exterior><gml:Ring><gml:curveMember>'
        f"<gml:Curve><gml:segments><gml:Circle><gml:posList>{cw.text(pts)}</gml:posList>"
        "</gml:Circle></gml:segments></gml:Curve></gml:curveMember></gml:Ring></gml:exterior>"
        "</gml:Polygon>"
    )


def area_xml(cw: _CoordWriter, area: Area, gid: str) -> str:
    if area.circle is not None:
        return _circle_xml(cw, *area.circle, gid)
    if area.arc is not None:
        return _arc_polygon_xml(cw, area.polygons[0][0], area.arc[0], area.arc[1], gid)
    if area.style == "multisurface" or len(area.polygons) > 1:
        members = "".join(
            f"<gml:surfaceMember>{_polygon_xml(cw, p, f'{gid}_{k}', srs=False)}</gml:surfaceMember>"
            for k, p in enumerate(area.polygons)
        )
        return f'<gml:MultiSurface gml:id="{gid}" srsName="{cw.srs}">{members}</gml:MultiSurface>'
    if area.style == "surface":
        patch = _polygon_xml(cw, area.polygons[0], gid, srs=False, tag="PolygonPatch")
        return f'<gml:Surface gml:id="{gid}" srsName="{cw.srs}"><gml:patches>{patch}</gml:patches></gml:Surface>'
    return _polygon_xml(cw, area.polygons[0], gid, srs=True)


# --- provisions ---------------------------------------------------------------------------------


@dataclass
class Provision:
    pid: str
    kind: str
    version: int
    municipality: str
    designation: str
    name: str
    status: str
    plan_type: str
    alt_designation: str | None
    last_changed: date
    impl: tuple[date, date] | None
    area: Area
    affected: list[str]
    decisions: list[tuple[str, int, date, date, str]] = field(default_factory=list)
    text: str | None = None


def _date_forms(rng: np.random.Generator, d: date, kind: str) -> str:
    # Dates arrive in three forms (FORMATS.md §5); decision dates often without hyphens.
    if kind == "decision":
        return d.strftime("%Y%m%d") if rng.random() < 0.7 else d.isoformat()
    if rng.random() < 0.1:
        return f"{d.isoformat()}T00:00:00+0{1 + int(rng.random() < 0.5)}:00"
    return d.isoformat()


def _random_date(rng: np.random.Generator, start: int = 1930, end: int = 2025) -> date:
    return date(start, 1, 1) + timedelta(days=int(rng.integers(0, (end - start) * 365)))


def _new_provision(
    rng: np.random.Generator, tw: _Towns, kind: str, cells: _PlanCells, *, added: bool = False
) -> Provision:
    """A provision of ``kind``; a plan takes the next tiling block (an added one overlays)."""
    if kind == "plan":
        ti, block, _ = cells.overlay(rng) if added else cells.take(rng)
    else:
        ti, block = int(rng.choice(len(tw.e), p=tw.weights)), None
    t = tw.frame.iloc[ti]
    area = _area_for(kind, rng, tw, ti, block)
    kommun = str(t.municipality_code)
    created = _random_date(rng)
    num = int(rng.integers(1, 999))
    designation = (
        f"{kommun}-P{created.year % 100:02d}/{num}"
        if kind == "plan"
        else f"{kommun}-{_ELEMENT[kind][:3].upper()}{num}"
    )
    status = "avregistrerad" if rng.random() < 0.15 else "gällande"
    plan_type = (
        _PLAN_TYPES[int(rng.integers(len(_PLAN_TYPES)))]
        if kind == "plan"
        else _SUBTYPES[kind][int(rng.integers(len(_SUBTYPES[kind])))]
    )
    impl = None
    if kind == "plan" and plan_type == "detaljplan" and created.year > 1987:
        impl = (created, created + timedelta(days=365 * int(rng.integers(5, 16))))
    n_aff = int(rng.integers(1, 12 if kind == "plan" else 30))
    p = Provision(
        pid=_uuid(rng),
        kind=kind,
        version=1,
        municipality=kommun,
        designation=designation,
        name=_NAMES[int(rng.integers(len(_NAMES)))] if rng.random() < 0.8 else "",
        status=status,
        plan_type=plan_type,
        alt_designation=f"{kommun} ¤ {int(rng.integers(1, 999))}" if rng.random() < 0.2 else None,
        last_changed=created,
        impl=impl,
        area=area,
        affected=[_uuid(rng) for _ in range(n_aff)],
        text="Se planhandling." if rng.random() < 0.1 else None,
    )
    p.decisions.append((_BILDANDE, 1, created + timedelta(days=21), created, _uuid(rng)))
    if status == "avregistrerad":
        d = _random_date(rng, created.year + 1, 2026)
        p.decisions.append((_UPPHAVANDE, 1, d + timedelta(days=21), d, _uuid(rng)))
    return p


def provision_xml(
    rng: np.random.Generator,
    cw: _CoordWriter,
    p: Provision,
    *,
    subsets: Collection[str] = ("basinformation", "berorkrets"),
) -> str:
    el = _ELEMENT[p.kind]
    parts = [f'<{el} gml:id="ID_{p.pid}">', _el(_PV["objektidentitet"], p.pid)]
    if "basinformation" in subsets:
        attr = [
            _el(_PV["objektversion"], p.version),
            _el(_PV["kommun"], p.municipality),
            _el(_PV["aktbeteckning"], escape(p.designation)),
        ]
        if p.name:
            attr.append(_el(_PV["namn"], escape(p.name)))
        attr.append(_el(_PV["status"], p.status))
        attr.append(
            _el(_PV["senasteandringallmannadelen"], _date_forms(rng, p.last_changed, "attr"))
        )
        tag = _PV["plantyp"] if p.kind == "plan" else _PV["bestammelsetyp"]
        attr.append(_el(tag, escape(p.plan_type)))
        if p.alt_designation:
            attr.append(_el(_PV["alternativaktbeteckning"], escape(p.alt_designation)))
        if p.impl:
            attr.append(_el(_PV["genomforandetidstart"], p.impl[0].isoformat()))
            attr.append(_el(_PV["genomforandetidslut"], p.impl[1].isoformat()))
        parts.append(_el(f"{el}attribut", "".join(attr)))
    if "berorkrets" in subsets:
        refs = "".join(_el(_PV["registerenhetsreferens"], _el(_AFFECTED_ID, a)) for a in p.affected)
        parts.append(_el(_PV["beror"], refs))
    if "basinformation" in subsets:
        for kind, ver, valid, decided, did in p.decisions:
            body = (
                _el(_DV["objektversion"], ver)
                + _el(_DV["giltigfran"], valid.isoformat())
                + _el(_DV["beslutsdatum"], _date_forms(rng, decided, "decision"))
                + _el(_DV["objektidentitet"], did)
            )
            parts.append(_el(kind, body))
        if p.text:
            parts.append(_el(_PV["hanvisningstext"], escape(p.text)))
        parts.append(_el(_PV["yta"], area_xml(cw, p.area, "Y_" + p.pid[:8])))
    parts.append(f"</{el}>")
    return "".join(parts)


def write_bestammelse_file(
    out: IO[bytes],
    provisions: Iterable[Provision],
    rng: np.random.Generator,
    cw: _CoordWriter,
    subsets_of: Mapping[str, tuple[str, ...]] | None = None,
) -> int:
    """Write one provision data file to a binary stream; return its object count."""
    out.write(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<MarkreglerandeBestammelseResponse '
        f'xmlns="{NS_MB}" xmlns:gml="{GML}">\n'.encode()
    )
    n = 0
    for p in provisions:
        subs = (
            subsets_of.get(p.pid, ("basinformation", "berorkrets"))
            if subsets_of
            else ("basinformation", "berorkrets")
        )
        out.write(
            (
                "<MarkreglerandeBestammelseMember>"
                + provision_xml(rng, cw, p, subsets=subs)
                + "</MarkreglerandeBestammelseMember>\n"
            ).encode()
        )
        n += 1
    out.write(b"</MarkreglerandeBestammelseResponse>\n")
    return n


def _deletion_xml(ids: Iterable[str]) -> bytes:
    body = "".join(f"<BorttagMember>{_el(_DELETION_ID, i)}</BorttagMember>\n" for i in ids)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<BorttagResponse xmlns="{NS_BT}">\n{body}'
        "</BorttagResponse>\n"
    ).encode()


def _metadata_xml(
    *,
    set_name: str,
    info_type: str,
    subsets: Iterable[str],
    extract_id: str,
    produced: datetime,
    extract_type: str,
    crs: int | None,
    kommuner: Iterable[str],
    files: list[tuple[str, int, int]],
    personal: tuple[bool, bool] | None = None,
    totals: tuple[int, int] | None = None,
    previous: str | None = None,
) -> bytes:
    total = sum(c for name, c, _ in files if not name.endswith("_borttag.xml"))
    rows = "".join(
        _el(
            _FV["fil"],
            _el(_FV["filnamn"], n) + _el(_FV["antalobjekt"], c) + _el(_FV["filstorlek"], s),
        )
        for n, c, s in files
    )
    subs = "".join(_el(_MD["informationsdelmangd"], s) for s in subsets)
    kom = "".join(_el(_MD["kommunkod"], k) for k in kommuner)
    extra = ""
    if previous:
        # Not Lantmäteriet's: an element vggeo once invented (the extract a change follows). The
        # generator no longer writes it; tests pass ``previous`` to see that a reader still uses
        # it when present.
        extra += _el(_MD["foregaendeuttagsidentitet"], previous)
    if crs:
        extra += _el(_MD["koordinatsystem"], f"EPSG:{crs}")
    if personal:
        extra += _el(
            "personinformation",
            _el(_MD["direktmarknadsforing"], str(personal[0]).lower())
            + _el(_MD["exkluderapersonnummer"], str(personal[1]).lower()),
        )
    if totals:
        extra += _el(_MD["antalpersoner"], totals[0]) + _el(_MD["antalorganisationer"], totals[1])
    size = sum(s for _, _, s in files)
    selection = (
        _el(_MD["urvalstyp"], "kommunkod")
        + _el(_MD["listreferens"], f"LISTA-{extract_id[:8]}")
        + kom
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{_MD_ROOT} xmlns="{NS_MD}">'
        + _el(_MD["uttagsidentitet"], extract_id)
        + extra
        + _el(_MD["fardigproducerad"], produced.isoformat(timespec="seconds"))
        + _el(_MD["informationstyp"], info_type)
        + _el(_MD["informationsmangd"], set_name)
        + subs
        + _el("urval", selection)
        + _el(_MD["uttagstyp"], _EXTRACT_TYPE["base" if extract_type == "base" else "change"])
        + _el(_MD["totaltantalobjekt"], total)
        + _el(_MD["filstorlek"], size)
        + _el(_MD["filer"], rows)
        + f"</{_MD_ROOT}>\n"
    ).encode()


def _write_set(
    folder: str,
    set_name: str,
    data_files: list[tuple[str, bytes, int]],
    deletions: list[str] | None,
    meta_kwargs: dict,
    outer: zipfile.ZipFile,
) -> None:
    """Write ``<set>.zip`` + ``<set>_metadata.xml`` into the outer ZIP."""
    buf = io.BytesIO()
    listed = []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as inner:
        for name, data, count in data_files:
            inner.writestr(name, data)
            listed.append((name, count, len(data)))
        if deletions is not None:
            d = _deletion_xml(deletions)
            inner.writestr(f"{set_name}_borttag.xml", d)
            listed.append((f"{set_name}_borttag.xml", len(deletions), len(d)))
    outer.writestr(f"{folder}/{set_name}.zip", buf.getvalue(), compress_type=zipfile.ZIP_STORED)
    outer.writestr(
        f"{folder}/{set_name}_metadata.xml",
        _metadata_xml(set_name=set_name, files=listed, **meta_kwargs),
    )


def _chunks(seq: list[T], n: int) -> Iterator[list[T]]:
    for i in range(0, max(len(seq), 1), n):
        yield seq[i : i + n]


def _bestammelse_files(
    rng: np.random.Generator,
    cw: _CoordWriter,
    provs: list[Provision],
    per_file: int,
    subsets_of: dict[str, tuple[str, ...]] | None = None,
) -> list[tuple[str, bytes, int]]:
    out = []
    for k, chunk in enumerate(_chunks(provs, per_file), start=1):
        buf = io.BytesIO()
        n = write_bestammelse_file(buf, chunk, rng, cw, subsets_of)
        out.append((f"markreglerandebestammelse_{k}.xml", buf.getvalue(), n))
    return out


def _towns(n_min: int = 1000, crs: int = 3006) -> tuple[pd.DataFrame, np.ndarray]:
    """Towns, weighted by population; for a local zone only those within its band (±1.5°)."""
    towns = swedish_towns(n_min)
    if crs != 3006:
        cm = get_crs(crs).central_meridian_deg
        near = towns[(towns["lon"] - cm).abs() <= 1.5].reset_index(drop=True)
        # Provisions far from a zone's meridian are not delivered in it: a municipality orders
        # its own zone.
        towns = near if len(near) else towns
    w = towns["population"].to_numpy(float) ** 0.8
    return towns, w / w.sum()


def _edit_provision(rng: np.random.Generator, p: Provision) -> tuple[Provision, tuple[str, ...]]:
    """A new version of a provision and the subsets the change carries."""
    u = rng.random()
    if u < 0.25:  # only the berörkrets changed
        p.affected = p.affected[: max(1, len(p.affected) - 1)] + [_uuid(rng)]
        return p, ("berorkrets",)
    p.version += 1
    d = _random_date(rng, 2020, 2026)
    if p.status == "gällande" and u < 0.45:
        p.status = "avregistrerad"
        p.decisions.append((_UPPHAVANDE, p.version, d + timedelta(days=21), d, _uuid(rng)))
    else:
        p.decisions.append((_ANDRING, p.version, d + timedelta(days=21), d, _uuid(rng)))
        if p.area.polygons:
            shift = rng.uniform(-5, 5, 2)  # a boundary correction: the whole area moves a little
            p.area.polygons = [[r + shift for r in poly] for poly in p.area.polygons]
            if p.area.arc is not None:
                i, (mx, my) = p.area.arc
                p.area.arc = (i, (mx + shift[0], my + shift[1]))
    p.last_changed = d
    return p, ("basinformation", "berorkrets")


def _bestammelse(
    out_dir: Path,
    *,
    n: int,
    changes: int,
    seed: int,
    crs: int,
    per_file: int,
    start: datetime,
    variety: bool = False,
) -> list[Path]:
    rng = np.random.default_rng(seed)
    tw = _Towns.of(*_towns(crs=crs), n)
    cw = _CoordWriter(crs)
    kinds = [_TYPES[i] for i in rng.choice(len(_TYPES), n, p=_TYPE_WEIGHTS)]
    # At least one block, so a plan added by a change extract has one to lie over.
    cells = _plan_cells(rng, tw, max(1, kinds.count("plan")))
    state = {p.pid: p for p in (_new_provision(rng, tw, k, cells) for k in kinds)}
    paths = []
    produced = start
    for k in range(changes + 1):
        extract_id = _uuid(rng)
        order = _uuid(rng)
        if k == 0:
            provs = list(state.values())
            files = _bestammelse_files(rng, cw, provs, per_file)
            deletions = None
            subsets_of = None
        elif variety and k % 3 == 2:
            # An extract in which nothing changed: empty change and deletion files (seed 004).
            files = _bestammelse_files(rng, cw, [], per_file)
            deletions = []
        else:
            ids = list(state)
            n_edit = max(1, int(0.06 * len(ids)))
            n_del = max(1, int(0.015 * len(ids)))
            n_add = max(1, int(0.03 * len(ids)))
            pick = rng.permutation(len(ids))
            edit_ids = [ids[i] for i in pick[:n_edit]]
            del_ids = [ids[i] for i in pick[n_edit : n_edit + n_del]]
            same_ids = [
                ids[i] for i in pick[n_edit + n_del : n_edit + n_del + max(1, n_edit // 10)]
            ]
            subsets_of = {}
            changed = []
            for pid in edit_ids:
                p, subs = _edit_provision(rng, state[pid])
                if variety and len(subs) == 2 and rng.random() < 0.4:
                    subs = ("basinformation",)  # the berörkrets did not change this time
                subsets_of[pid] = subs
                changed.append(p)
            changed += [state[i] for i in same_ids]  # repeated without a new version (allowed)
            for _ in range(n_add):
                kind = _TYPES[int(rng.choice(len(_TYPES), p=_TYPE_WEIGHTS))]
                p = _new_provision(rng, tw, kind, cells, added=True)
                state[p.pid] = p
                changed.append(p)
            for pid in del_ids:
                del state[pid]
            files = _bestammelse_files(rng, cw, changed, per_file, subsets_of)
            deletions = del_ids
            if variety:  # provisions the subscriber never held (left before it started)
                deletions = deletions + [_uuid(rng) for _ in range(2)]
        kommuner = sorted({p.municipality for p in state.values()})[:50]
        path = out_dir / f"{k:03d}_{'base' if k == 0 else 'change'}_{order}.zip"
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as outer:
            _write_set(
                "Markreglerande bestammelse",
                "markreglerandebestammelse",
                files,
                deletions,
                dict(
                    info_type="Markreglerande bestämmelse",
                    subsets=("Basinformation", "Berörkrets"),
                    extract_id=extract_id,
                    produced=produced,
                    extract_type="base" if k == 0 else "change",
                    crs=crs,
                    kommuner=kommuner,
                ),
                outer,
            )
        paths.append(path)
        produced = produced + timedelta(days=7)
    return paths


# --- inskrivning --------------------------------------------------------------------------------

_FIRST = (
    "Anna",
    "Erik",
    "Maria",
    "Lars",
    "Karin",
    "Anders",
    "Eva",
    "Johan",
    "Sara",
    "Per",
    "Lena",
    "Mikael",
    "Emma",
    "Karl",
    "Ingrid",
    "Olof",
    "Elin",
    "Nils",
    "Sofia",
    "Gustav",
)
_LAST = (
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsson",
    "Olsson",
    "Persson",
    "Svensson",
    "Gustafsson",
    "Pettersson",
    "Jonsson",
    "Lindberg",
    "Lindqvist",
)
_STREETS = ("Storgatan", "Kyrkogatan", "Skolvägen", "Björkvägen", "Strandvägen", "Parkgatan")
_ORGS = ("Fastighets AB", "Bostäder AB", "Förvaltning AB", "HB", "Bostadsrättsförening")


def _luhn(digits: str) -> int:
    s = 0
    for i, ch in enumerate(digits):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        s += d - 9 if d > 9 else d
    return (10 - s % 10) % 10


def _personnummer(rng: np.random.Generator) -> str:
    born = _random_date(rng, 1930, 2004)
    serial = f"{int(rng.integers(0, 1000)):03d}"
    core = born.strftime("%y%m%d") + serial
    return f"{born.strftime('%Y%m%d')}{serial}{_luhn(core)}"


def _orgnr(rng: np.random.Generator) -> str:
    core = f"55{int(rng.integers(0, 10_000_000)):07d}"
    return f"{core[:6]}-{core[6:]}{_luhn(core)}"


@dataclass
class Owner:
    key: str  # personnummer or orgnr
    org: bool
    first: str = ""
    last: str = ""
    org_name: str = ""
    address: tuple[str, str, str] = ("", "", "")
    protected: bool = False


@dataclass
class Property:
    object_id: str
    property_id: str
    designation: str
    kommun: str
    version: int
    owners: list[tuple[Owner, int, int, date, str]]  # owner, num, den, date, dagboksnummer
    price: int
    mortgages: list[tuple[str, int, date, str]]
    rights: list[tuple[str, str, date, str]]
    notes: list[tuple[str, str, date]]
    leasehold: tuple[date, int] | None
    former: list[tuple[Owner, int, int, date, str]] = field(default_factory=list)  # sold off


def _new_owner(rng: np.random.Generator, towns: pd.DataFrame) -> Owner:
    t = towns.iloc[int(rng.integers(0, min(len(towns), 200)))]
    addr = (
        f"{_STREETS[int(rng.integers(len(_STREETS)))]} {int(rng.integers(1, 80))}",
        f"{int(rng.integers(100, 990)) * 100 + int(rng.integers(0, 99)):05d}",
        str(t["name"]).upper(),
    )
    if rng.random() < 0.15:
        return Owner(
            _orgnr(rng),
            True,
            org_name=f"{_LAST[int(rng.integers(len(_LAST)))]} {_ORGS[int(rng.integers(len(_ORGS)))]}",
            address=addr,
        )
    return Owner(
        _personnummer(rng),
        False,
        first=_FIRST[int(rng.integers(len(_FIRST)))],
        last=_LAST[int(rng.integers(len(_LAST)))],
        address=addr,
    )


def _new_property(
    rng: np.random.Generator, towns: pd.DataFrame, weights: np.ndarray, owners_pool: list[Owner]
) -> Property:
    t = towns.iloc[int(rng.choice(len(towns), p=weights))]
    k = int(rng.choice([1, 2, 3], p=[0.55, 0.38, 0.07]))
    acquired = _random_date(rng, 1970, 2026)
    owners = []
    for _ in range(k):
        # The draw comes first whatever the pool holds, so every seed that generated before
        # generates the same; an empty pool (the first owner) always gets a new owner.
        reuse = rng.random() < 0.1
        o = (
            owners_pool[int(rng.integers(len(owners_pool)))]
            if reuse and owners_pool
            else _new_owner(rng, towns)
        )
        if o not in owners_pool:
            owners_pool.append(o)
        owners.append((o, 1, k, acquired, f"{acquired.year}/{int(rng.integers(1, 99999))}"))
    mort = [
        (
            "Inteckning",
            int(rng.integers(1, 80)) * 50_000,
            _random_date(rng, acquired.year, 2026),
            f"{int(rng.integers(1990, 2026))}/{int(rng.integers(1, 99999))}",
        )
        for _ in range(int(rng.choice([0, 1, 2, 3], p=[0.3, 0.4, 0.2, 0.1])))
    ]
    rights = [
        (
            ("Servitut", "Nyttjanderätt", "Ledningsrätt")[int(rng.integers(3))],
            "väg",
            _random_date(rng),
            f"{int(rng.integers(1950, 2026))}/{int(rng.integers(1, 9999))}",
        )
        for _ in range(int(rng.choice([0, 1, 2], p=[0.7, 0.2, 0.1])))
    ]
    notes = [("Anteckning", "Tvist om gräns", _random_date(rng))] if rng.random() < 0.05 else []
    lease = (
        (_random_date(rng, 1950, 2000), int(rng.integers(5, 200)) * 1000)
        if rng.random() < 0.03
        else None
    )
    block = _NAMES[int(rng.integers(len(_NAMES)))]
    return Property(
        _uuid(rng),
        _uuid(rng),
        f"{str(t['name']).upper()} {block.capitalize()} {int(rng.integers(1, 30))}:{int(rng.integers(1, 200))}",
        str(t.municipality_code),
        1,
        owners,
        int(rng.integers(5, 120)) * 50_000,
        mort,
        rights,
        notes,
        lease,
    )


def _address_xml(names: dict[str, str], a: tuple[str, str, str]) -> str:
    return _el(
        names["adress"],
        _el(names["utdelningsadress"], escape(a[0]))
        + _el(names["postnummer"], a[1])
        + _el(names["postort"], escape(a[2])),
    )


def _owner_xml(o: Owner, pnr: bool = True) -> str:
    if o.org:
        body = (
            _el(_AG["organisationsnummer"], o.key)
            + _el(_AG["organisationsnamn"], escape(o.org_name))
            + _address_xml(_AG, o.address)
        )
        return _el(_AG["agare"], _el(_AG["inskrivenorganisation"], body))
    if o.protected:
        # Personnummer and names removed; the surname reads SKYDDAD PERSONUPPGIFT (seed 003).
        body = _el(_AG["efternamn"], M.PROTECTED_SURNAME)
        return _el(_AG["agare"], _el(_AG["inskrivenperson"], body))
    ident = _el(_AG["idnummer"], o.key) if pnr else ""  # an order "utan personnummer"
    body = (
        ident
        + _el(_AG["fornamn"], escape(o.first))
        + _el(_AG["efternamn"], escape(o.last))
        + _address_xml(_AG, o.address)
    )
    return _el(_AG["agare"], _el(_AG["inskrivenperson"], body))


def _head(p: Property) -> str:
    ref = (
        _el(_EX["objektidentitet"], p.property_id)
        + _el(_EX["fastighetsbeteckning"], escape(p.designation))
        + _el(_EX["kommun"], p.kommun)
    )
    return (
        f"<{_EX['inskrivningsfastighet']}>"
        + _el(_EX["objektidentitet"], p.object_id)
        + _el(_EX["objektversion"], p.version)
        + _el(_EX["fastighetsreferens"], ref)
    )


def _set_body(set_name: str, p: Property, pnr: bool = True, former: bool = False) -> str:
    parts = [_head(p)]
    if set_name == "inskrivet_agande":
        held = [(_AG_TAGS["agande"], x) for x in p.owners]
        if former:  # Ägare – Alla: former owners too, as tidigareAgande
            held += [(_AG_TAGS["tidigareagande"], x) for x in p.former]
        for tag, (o, num, den, d, dbn) in held:
            share = _el(_AG["taljare"], num) + _el(_AG["namnare"], den)
            parts.append(
                _el(
                    tag,
                    _el(_AG["typ"], "Lagfart")
                    + _el(_AG["inskrivningsdag"], d.isoformat())
                    + _el(_AG["beslut"], "Beviljad")
                    + _el(_AG["dagboksnummer"], dbn)
                    + _el(_AG["beviljadandel"], share)
                    + _owner_xml(o, pnr),
                )
            )
        d = p.owners[0][3]
        den = p.owners[0][2]
        fang = (
            _el(_FA["fangesdag"], (d - timedelta(days=30)).strftime("%Y%m%d"))
            + _el(_FA["fangesart"], "Köp")
            + _el(_FA["aktnummer"], p.owners[0][4].replace("/", "A"))
            + _el(_FA["andelfang"], _el(_FA["taljare"], 1) + _el(_FA["namnare"], den))
        )
        price = _el(_FO["valuta"], "SEK") + _el(_FO["summa"], p.price)
        parts.append(
            _el(
                _FO["fastighetsagandeforandring"],
                _el(_FO["fang"], fang)
                + _el(_FO["kopeskilling"], _el(_FO["kopeskillingfastegendom"], price)),
            )
        )
    elif set_name == "inteckning":
        for typ, amount, d, dbn in p.mortgages:
            amount_xml = _el(_IN["valuta"], "SEK") + _el(_IN["summa"], amount)
            burden = (
                _el(_IN["typ"], typ)
                + _el(_IN["belopp"], amount_xml)
                + _el(_IN["pantbrevstyp"], "Datapantbrev")
            )
            parts.append(
                _el(
                    _RECORD["inteckning"],
                    _el(_IN["inskrivenbelastning"], burden)
                    + _el(_IN["inskrivningsdag"], d.isoformat())
                    + _el(_IN["dagboksnummer"], dbn),
                )
            )
    elif set_name == "avtalsrattighet":
        for typ, purpose, d, akt in p.rights:
            parts.append(
                _el(
                    _RECORD["avtalsrattighet"],
                    _el(_AV["typ"], typ)
                    + _el(_AV["andamal"], purpose)
                    + _el(_AV["inskrivningsdag"], d.isoformat())
                    + _el(_AV["aktnummer"], akt),
                )
            )
    elif set_name == "anteckning":
        for typ, text, d in p.notes:
            parts.append(
                _el(
                    _RECORD["anteckning"],
                    _el(_AN["typ"], typ)
                    + _el(_AN["text"], escape(text))
                    + _el(_AN["inskrivningsdag"], d.isoformat()),
                )
            )
    elif set_name == "tomtrattsupplatelse" and p.leasehold:
        d, fee = p.leasehold
        parts.append(
            _el(
                _RECORD["tomtrattsupplatelse"],
                _el(_TO["upplatelsedag"], d.isoformat())
                + _el(_TO["avgald"], _el(_TO["valuta"], "SEK") + _el(_TO["summa"], fee))
                + _el(_TO["inskrivningsdag"], d.isoformat()),
            )
        )
    parts.append(f"</{_EX['inskrivningsfastighet']}>")
    return "".join(parts)


def _inskrivning_file(
    set_name: str, props: list[Property], pnr: bool = True, former: bool = False
) -> tuple[bytes, int]:
    body = "".join(
        f"<InskrivningMember>{_set_body(set_name, p, pnr, former)}</InskrivningMember>\n"
        for p in props
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<InskrivningResponse xmlns="{NS_IN}">\n{body}'
        "</InskrivningResponse>\n"
    ).encode(), len(props)


def _persons_file(owners: list[Owner], pnr: bool = True) -> tuple[bytes, int, int, int]:
    rows = []
    n_p = n_o = 0
    for o in owners:
        if o.org:
            body = (
                _el(_OR["organisationsnummer"], o.key)
                + _el(_OR["organisationsnamn"], escape(o.org_name))
                + _address_xml(_OR, o.address)
            )
            rows.append(
                _el("FolkbokfordPersonOrganisationMember", _el(_RECORD["organisation"], body))
            )
            n_o += 1
        elif not o.protected:
            ident = _el(_PE["idnummer"], o.key) if pnr else ""
            body = (
                ident
                + _el(_PE["fornamn"], escape(o.first))
                + _el(_PE["efternamn"], escape(o.last))
                + _address_xml(_PE, o.address)
            )
            rows.append(
                _el("FolkbokfordPersonOrganisationMember", _el(_RECORD["folkbokfordperson"], body))
            )
            n_p += 1
    body = "\n".join(rows)
    return (
        (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<FolkbokfordPersonOrganisationResponse xmlns="{NS_IN}">\n'
            f"{body}\n</FolkbokfordPersonOrganisationResponse>\n"
        ).encode(),
        n_p + n_o,
        n_p,
        n_o,
    )


_INSKRIVNING_SETS = (
    "inskrivningsfastighet",
    "inskrivet_agande",
    "avtalsrattighet",
    "inteckning",
    "anteckning",
    "tomtrattsupplatelse",
)


def _inskrivning(
    out_dir: Path,
    *,
    n: int,
    changes: int,
    seed: int,
    per_file: int,
    start: datetime,
    variety: bool = False,
    personnummer: bool = True,
    owners: str = "current",
) -> list[Path]:
    former = owners == "all"
    rng = np.random.default_rng(seed)
    towns, weights = _towns()
    pool: list[Owner] = []
    state = {p.object_id: p for p in (_new_property(rng, towns, weights, pool) for _ in range(n))}
    # One protected owner in the base extract.
    first = next(iter(state.values()))
    first.owners[0][0].protected = True
    paths = []
    produced = start
    for k in range(changes + 1):
        extract_id, order = _uuid(rng), _uuid(rng)
        if k == 0:
            changed = list(state.values())
            deletions = None
        elif variety and k % 3 == 2:
            changed, deletions = [], []  # nothing changed: empty files (seed 003)
        else:
            ids = list(state)
            pick = rng.permutation(len(ids))
            n_edit, n_del = max(2, int(0.05 * len(ids))), max(1, int(0.01 * len(ids)))
            edit = [state[ids[i]] for i in pick[:n_edit]]
            deletions = [ids[i] for i in pick[n_edit : n_edit + n_del]]
            for j, p in enumerate(edit):
                p.version += 1
                if j == 0 and k == 1:
                    # An owner gets skyddad personuppgift: re-sent without personnummer or name.
                    o = next((o for o, *_ in p.owners if not o.org), None)
                    if o is not None:
                        o.protected = True
                elif j % 2 == 0:
                    # Sold: new owners; the old ones may now own nothing (orphans).
                    d = _random_date(rng, 2025, 2027)
                    new = _new_owner(rng, towns)
                    pool.append(new)
                    p.former = p.former + p.owners
                    p.owners = [(new, 1, 1, d, f"{d.year}/{int(rng.integers(1, 99999))}")]
                    p.price = int(rng.integers(10, 150)) * 50_000
                elif variety and j % 4 == 1:
                    # Mortgages and rights cancelled: the property is re-sent in those sets
                    # without any, and its old rows must go.
                    p.mortgages, p.rights, p.notes = [], [], []
                else:
                    d = _random_date(rng, 2024, 2027)
                    p.mortgages.append(
                        (
                            "Inteckning",
                            int(rng.integers(1, 40)) * 50_000,
                            d,
                            f"{d.year}/{int(rng.integers(1, 99999))}",
                        )
                    )
            for oid in deletions:
                del state[oid]
            if variety:  # properties the subscriber never held, and one sent unchanged
                deletions = deletions + [_uuid(rng)]
                rest = [q for q in state.values() if q not in edit]
                edit = edit + rest[:1]
            adds = [_new_property(rng, towns, weights, pool) for _ in range(max(1, int(0.02 * n)))]
            for p in adds:
                state[p.object_id] = p
            changed = edit + adds
        path = out_dir / f"{k:03d}_{'base' if k == 0 else 'change'}_{order}.zip"
        kommuner = sorted({p.kommun for p in state.values()})[:50]
        common = dict(
            info_type="Inskrivning",
            extract_id=extract_id,
            produced=produced,
            extract_type="base" if k == 0 else "change",
            crs=None,
            kommuner=kommuner,
            personal=(False, not personnummer),
        )
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as outer:
            for set_name in _INSKRIVNING_SETS:
                files = []
                for j, chunk in enumerate(_chunks(changed, per_file), start=1):
                    data, cnt = _inskrivning_file(set_name, chunk, personnummer, former)
                    files.append((f"{set_name}_{j}.xml", data, cnt))
                subsets = (
                    (f"Ägare - {'Alla' if former else 'Aktuella'}", "Förvärv")
                    if set_name == "inskrivet_agande"
                    else ()
                )
                _write_set(
                    "Inskrivning", set_name, files, deletions, dict(common, subsets=subsets), outer
                )
            held = [x for p in changed for x in (p.owners + p.former if former else p.owners)]
            owners_now = list({o.key: o for o, *_ in held}.values())
            data, cnt, n_p, n_o = _persons_file(owners_now, personnummer)
            _write_set(
                "Inskrivning",
                "folkbokford_person_organisation",
                [("folkbokford_person_organisation.xml", data, cnt)],
                None,
                dict(common, subsets=(), totals=(n_p, n_o)),
                outer,
            )
        paths.append(path)
        produced = produced + timedelta(days=7)
    return paths


def generate_deliveries(
    out_dir: str | Path,
    *,
    product: str,
    n: int,
    changes: int = 0,
    seed: int = 0,
    crs: int = 3006,
    per_file: int = MAX_OBJECTS_PER_FILE,
    start: datetime | None = None,
    variety: bool = False,
    personnummer: bool = True,
    owners: str = "current",
) -> list[Path]:
    """Write one base and ``changes`` change deliveries; return their paths in application order.

    Parameters
    ----------
    product
        ``"bestammelse"`` or ``"inskrivning"``.
    n
        Provisions (bestämmelse) or properties (inskrivning) in the base extract.
    crs
        EPSG code of the geometries: 3006 or a local zone 3007–3018 (bestämmelse only).
    per_file
        Objects per numbered data file (Lantmäteriet: at most 50 000).
    variety
        Also the rarer cases of the rules (for tests): provisions changed in Basinformation only,
        deletions of identities never delivered, properties whose mortgages and rights are all
        cancelled, an object re-sent unchanged (inskrivning), and every third extract empty.
        Off by default, so the bundled sample data stay as they are.
    personnummer
        Inskrivning: deliver personnummer (False: an order "utan personnummer", seed 003 —
        persons carry names and addresses only; the metadata says so).
    owners
        Inskrivning: ``"current"`` (subset Ägare – Aktuella) or ``"all"`` (Ägare – Alla: owners
        who sold in a change stay as ``TidigareAgande``).
    """
    out = Path(out_dir)
    start = start or datetime(2026, 1, 5, 4, 30, tzinfo=timezone(timedelta(hours=1)))
    if product not in ("bestammelse", "inskrivning"):
        raise ValueError(f"product must be 'bestammelse' or 'inskrivning', not {product!r}")
    code = get_crs(crs).epsg
    if code != 3006 and not 3007 <= code <= 3018:
        raise ValueError(f"deliveries use EPSG 3006 or 3007–3018, not {code}")
    if owners not in ("current", "all"):
        raise ValueError(f"owners must be 'current' or 'all', not {owners!r}")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    # Each ZIP is written through atomic_path: interrupted (Ctrl-C) or failed, no half-written
    # delivery is left behind, and nor is the folder if this call made it and nothing was done.
    try:
        if product == "bestammelse":
            return _bestammelse(
                out,
                n=n,
                changes=changes,
                seed=seed,
                crs=code,
                per_file=per_file,
                start=start,
                variety=variety,
            )
        return _inskrivning(
            out,
            n=n,
            changes=changes,
            seed=seed,
            per_file=per_file,
            start=start,
            variety=variety,
            personnummer=personnummer,
            owners=owners,
        )
    except BaseException:
        if created and not any(out.iterdir()):
            out.rmdir()
        raise
