"""An independent second writer of markreglerande-bestämmelse deliveries, for tests.

It shares nothing with ``vggeo.sample`` (the generator) nor ``vggeo.lm.mapping``: every element
name below is written out by hand from Lantmäteriet's published example (FORMATS.md §7) and
with other spelling habits than the generator's — another namespace URI and prefix or a default
namespace, other element order, one grouping level (*Markreglerande bestämmelse*) around each
feature, ``Yta`` in the geometry namespace, ``gml:boundedBy`` envelopes, ``srsDimension``
attributes, other ``gml:id`` forms, pretty-printed or single-line output, CRLF line ends.

:func:`write_delivery` returns the ground truth: what it wrote, in plain Python values, so a
test can compare what vggeo reads with what is in the file.
"""

from __future__ import annotations

import io
import random
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

GML = "http://www.opengis.net/gml/3.2"
GEO = "http://namespace.lantmateriet.se/distribution/geometri/v2"
DATA_NS = "http://namespace.lantmateriet.se/distribution/produkter/markreglerandebestammelse/v2.0"
META_NS = "http://namespace.lantmateriet.se/distribution/produkter/metadata/v2.0"

# Feature element, attribute block, vggeo's expected provision_type (the test's oracle is this
# table and FORMATS.md §5, not vggeo's mapping).
TYPES = [
    ("Plan", "PlanAttribut", "plan"),
    ("Naturvardsbestammelse", "NaturvardsbestammelseAttribut", "naturvardsbestammelse"),
    ("OvrigBestammelse", "OvrigBestammelseAttribut", "ovrig_bestammelse"),
    ("Fornlamning", "FornlamningAttribut", "fornlamning"),
]


@dataclass
class Truth:
    """One provision as written."""

    provision_id: str
    provision_type: str
    designation: str
    name: str
    status: str
    municipality: str
    plan_type: str
    alt_designation: str
    last_changed: str  # YYYY-MM-DD
    implementation_start: str | None
    implementation_end: str | None
    object_version: int
    affected: list[str] = field(default_factory=list)
    decisions: list[dict] = field(
        default_factory=list
    )  # kind, object_version, valid_from, decision_date, decision_id
    polygons: list[list[list[tuple[float, float]]]] = field(
        default_factory=list
    )  # (easting, northing)


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ring(rng: random.Random, e0: float, n0: float, size: float) -> list[tuple[float, float]]:
    k = rng.randint(4, 9)
    pts = []
    for i in range(k):
        # a star-free polygon: points on a circle at increasing angles, radius jittered
        import math

        a = 2 * math.pi * i / k
        r = size * (0.6 + 0.4 * rng.random())
        pts.append((round(e0 + r * math.cos(a), 3), round(n0 + r * math.sin(a), 3)))
    pts.append(pts[0])
    return pts


def make_truth(n: int, seed: int = 1) -> list[Truth]:
    """``n`` provisions of random content."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        elem, _attr, ptype = TYPES[i % len(TYPES)]
        kommun = f"{rng.choice([114, 180, 1280, 2583, 480]):04d}"
        start = f"{rng.randint(1960, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        has_impl = rng.random() < 0.7
        t = Truth(
            provision_id=_uid(rng),
            provision_type=ptype,
            designation=f"{kommun}-{rng.randint(1, 999)}{rng.choice('ABCD')}/BH",
            name=rng.choice(["SOLHEM", "ÅKERBÄRET", "Norra Ängen 2", "KV. MÅSEN & TÄRNAN"]),
            status=rng.choice(["gällande", "upphävd"]),
            municipality=kommun,
            plan_type=rng.choice(["detaljplan", "byggnadsplan", "stadsplan"]),
            alt_designation=f"ALT-{i}",
            last_changed=f"{rng.randint(1990, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            implementation_start=start if has_impl else None,
            implementation_end=(f"{int(start[:4]) + 10}{start[4:]}" if has_impl else None),
            object_version=rng.randint(1, 5),
        )
        t.affected = [_uid(rng) for _ in range(rng.randint(0, 6))]
        for kind in ["bildandebeslut"] + (["andringsbeslut"] if rng.random() < 0.3 else []):
            t.decisions.append(
                {
                    "kind": kind,
                    "object_version": rng.randint(1, 3),
                    "valid_from": f"{rng.randint(1950, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    "decision_date": f"{rng.randint(1950, 2020)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
                    "decision_id": _uid(rng),
                }
            )
        e0, n0 = rng.uniform(300_000, 800_000), rng.uniform(6_200_000, 7_500_000)
        for p in range(rng.choice([1, 1, 2])):
            outer = _ring(rng, e0 + p * 5000, n0, 800)
            polygon = [outer]
            if rng.random() < 0.2:  # a hole, clockwise
                polygon.append(list(reversed(_ring(rng, e0 + p * 5000, n0, 100))))
            t.polygons.append(polygon)
        out.append(t)
    return out


@dataclass
class Style:
    """Spelling habits of one writer."""

    prefix: str | None = "mb"  # None: default namespace
    geo_prefix: str = "lmg"
    gml_prefix: str = "gml"
    wrap: bool = True  # the grouping level Markreglerande bestämmelse around each feature
    pretty: bool = True
    crlf: bool = False
    bounded_by: bool = True
    srs_dimension: bool = True
    reverse_order: bool = False  # blocks within a feature in another order


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _feature(t: Truth, i: int, st: Style) -> str:
    p = f"{st.prefix}:" if st.prefix else ""
    g = st.gml_prefix
    elem, attr, _ = next(x for x in TYPES if x[2] == t.provision_type)
    gid = f"{elem.lower()}.{i}" if i % 2 else f"_{t.provision_id.upper()}"
    a = [
        f"<{p}bestammelsenamn>{_esc(t.name)}</{p}bestammelsenamn>",
        f"<{p}objektidentitet>{t.provision_id}</{p}objektidentitet>",
        f"<{p}Status>{t.status}</{p}Status>",
        f"<{p}bestammelsebeteckning>{_esc(t.designation)}</{p}bestammelsebeteckning>",
        f"<{p}kommunkod>{int(t.municipality)}</{p}kommunkod>",  # not zero-padded
        f"<{p}plantyp>{t.plan_type}</{p}plantyp>",
        f"<{p}alternativbeteckning>{t.alt_designation}</{p}alternativbeteckning>",
        f"<{p}senasteAndringAllmannaDelen>{t.last_changed}</{p}senasteAndringAllmannaDelen>",
        f"<{p}objektversion>{t.object_version}</{p}objektversion>",
    ]
    if t.implementation_start:
        a.append(
            f"<{p}genomforandetidBorjar>{t.implementation_start}T00:00:00+01:00</{p}genomforandetidBorjar>"
        )
        a.append(
            f"<{p}genomforandetidSlutar>{t.implementation_end.replace('-', '')}</{p}genomforandetidSlutar>"
        )
    blocks = [f"<{p}{attr}>{''.join(a)}</{p}{attr}>"]
    refs = "".join(
        f"<{p}Registerenhetsreferens><{p}objektidentitet>{r.upper()}</{p}objektidentitet>"
        f"</{p}Registerenhetsreferens>"
        for r in t.affected
    )
    if t.affected:
        blocks.append(f"<{p}Beror>{refs}</{p}Beror>")
    for d in t.decisions:
        name = "Bildandebeslut" if d["kind"] == "bildandebeslut" else "Andringsbeslut"
        blocks.append(
            f"<{p}{name}><{p}beslutsdatum>{d['decision_date']}</{p}beslutsdatum>"
            f"<{p}bildarObjektidentitet>{d['decision_id']}</{p}bildarObjektidentitet>"
            f"<{p}giltigFran>{d['valid_from']}</{p}giltigFran>"
            f"<{p}objektversion>{d['object_version']}</{p}objektversion></{p}{name}>"
        )
    dim = ' srsDimension="2"' if st.srs_dimension else ""
    surfaces = []
    for k, poly in enumerate(t.polygons):
        rings = []
        for j, ring in enumerate(poly):
            pos = " ".join(f"{n:.3f} {e:.3f}" for e, n in ring)  # northing first (EPSG:3006)
            tag = "exterior" if j == 0 else "interior"
            rings.append(
                f"<{g}:{tag}><{g}:LinearRing><{g}:posList{dim}>{pos}</{g}:posList>"
                f"</{g}:LinearRing></{g}:{tag}>"
            )
        surfaces.append(
            f'<{g}:surfaceMember><{g}:Polygon {g}:id="p{i}-{k}">{"".join(rings)}'
            f"</{g}:Polygon></{g}:surfaceMember>"
        )
    blocks.append(
        f'<{st.geo_prefix}:Yta><{g}:MultiSurface {g}:id="ms-{i}" '
        f'srsName="urn:ogc:def:crs:EPSG::3006"{dim}>{"".join(surfaces)}</{g}:MultiSurface>'
        f"</{st.geo_prefix}:Yta>"
    )
    if st.reverse_order:
        blocks.reverse()
    head = ""
    if st.bounded_by:
        es = [e for poly in t.polygons for e, _ in poly[0]]
        ns = [n for poly in t.polygons for _, n in poly[0]]
        head = (
            f'<{g}:boundedBy><{g}:Envelope srsName="urn:ogc:def:crs:EPSG::3006">'
            f"<{g}:lowerCorner>{min(ns):.3f} {min(es):.3f}</{g}:lowerCorner>"
            f"<{g}:upperCorner>{max(ns):.3f} {max(es):.3f}</{g}:upperCorner></{g}:Envelope>"
            f"</{g}:boundedBy>"
        )
    body = f'<{p}{elem} {g}:id="{gid}">{head}{"".join(blocks)}</{p}{elem}>'
    if st.wrap:
        body = f"<{p}MarkreglerandeBestammelse>{body}</{p}MarkreglerandeBestammelse>"
    return f"<{p}member>{body}</{p}member>"


def write_data(truth: list[Truth], st: Style) -> bytes:
    """One data file holding every provision of ``truth``."""
    p = f"{st.prefix}:" if st.prefix else ""
    xmlns = f'xmlns:{st.prefix}="{DATA_NS}"' if st.prefix else f'xmlns="{DATA_NS}"'
    nl = "\r\n" if st.crlf else "\n"
    sep = nl if st.pretty else ""
    parts = [
        f'<?xml version="1.0" encoding="UTF-8"?>{nl}',
        f'<{p}FeatureCollection {xmlns} xmlns:{st.gml_prefix}="{GML}" xmlns:{st.geo_prefix}="{GEO}">{sep}',
    ]
    for i, t in enumerate(truth):
        f = _feature(t, i, st)
        if st.pretty:  # a line break and indentation between every element
            f = f.replace("><", f">{nl}  <")
        parts.append(f + sep)
    parts.append(f"</{p}FeatureCollection>{nl}")
    return "".join(parts).encode("utf-8")


def write_delivery(path: Path, n: int, *, seed: int = 1, style: Style | None = None) -> list[Truth]:
    """A base delivery ZIP (set ZIP + metadata inside a folder) of ``n`` provisions; its truth."""
    st = style or Style()
    truth = make_truth(n, seed)
    data = write_data(truth, st)
    name = "markreglerandebestammelse_1.xml"
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, data)
    meta = (
        f'<?xml version="1.0" encoding="UTF-8"?><md:Leveransmetadata xmlns:md="{META_NS}">'
        f"<md:uttagsidentitet>{uuid.UUID(int=seed, version=4)}</md:uttagsidentitet>"
        "<md:uttagstyp>Basuttag</md:uttagstyp>"
        "<md:fardigproducerad>2026-11-30T05:00:00+01:00</md:fardigproducerad>"
        "<md:koordinatsystem>urn:ogc:def:crs:EPSG::3006</md:koordinatsystem>"
        "<md:informationsmangd>markreglerandebestammelse</md:informationsmangd>"
        f"<md:totaltAntalObjekt>{n}</md:totaltAntalObjekt>"
        f"<md:filer><md:Fil><md:filnamn>{name}</md:filnamn><md:antalObjekt>{n}</md:antalObjekt>"
        f"<md:filstorlek>{len(data)}</md:filstorlek></md:Fil></md:filer>"
        "</md:Leveransmetadata>"
    ).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Markreglerande bestammelse/markreglerandebestammelse.zip", inner.getvalue())
        z.writestr("Markreglerande bestammelse/markreglerandebestammelse_metadata.xml", meta)
    return truth
