"""An independent reference model of a subscription: what the store must hold after each delivery.

It reads the delivery ZIP files themselves with lxml (metadata, data files, deletion files) and
applies Lantmäteriet's rules to plain dictionaries. It shares no code with ``vggeo`` (it imports
nothing from it): the element names it knows are the ones FORMATS.md §5–§6 documents, matched by
local name; everything else is the seeds' rules, quoted beside the lines that implement them.

State, per product:

* bestämmelse — ``{provision id: {"type": element name, subset name: content}}`` where the
  content of ``basinformation`` is a dict of attribute values, decision identities and the
  coordinates of its ``Yta``, and the content of ``berorkrets`` the sorted register-unit identities;
* inskrivning — ``{set: {object id: {child element name: sorted dagboksnummer/aktnummer/…}}}``.
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter

from lxml import etree


def local(el) -> str:
    return etree.QName(el).localname.lower() if isinstance(el.tag, str) else ""


def child(el, name: str):
    return next((c for c in el if local(c) == name), None)


def text(el, name: str) -> str | None:
    c = child(el, name)
    return c.text.strip() if c is not None and c.text and c.text.strip() else None


def read_zip(path) -> list[dict]:
    """Every information set of an outer delivery ZIP: its type, data members and deletions."""
    sets = []
    with zipfile.ZipFile(path) as outer:
        names = outer.namelist()
        for inner_name in (n for n in names if n.endswith(".zip")):
            set_name = inner_name.rsplit("/", 1)[-1][: -len(".zip")]
            meta = etree.fromstring(outer.read(inner_name[: -len(".zip")] + "_metadata.xml"))
            kind = next(e.text for e in meta.iter() if local(e) == "uttagstyp").strip().lower()
            listed = {
                next(x.text for x in f if local(x) == "filnamn"): int(
                    next(x.text for x in f if local(x) == "antalobjekt")
                )
                for f in meta.iter()
                if local(f) == "fil"
            }
            members, deleted = [], []
            with zipfile.ZipFile(io.BytesIO(outer.read(inner_name))) as inner:
                for name in sorted(inner.namelist()):
                    root = etree.fromstring(inner.read(name))
                    if name.endswith("_borttag.xml"):
                        deleted += [
                            e.text.strip().lower()
                            for e in root.iter()
                            if local(e) == "objektidentitet"
                        ]
                    else:
                        got = [m for m in root if isinstance(m.tag, str)]
                        assert len(got) == listed[name], f"{name}: metadata count"
                        members += got
            sets.append(
                {
                    "set": set_name,
                    "base": kind.startswith("bas"),
                    "members": members,
                    "deleted": deleted,
                }
            )
    return sets


# --- markreglerande bestämmelse ------------------------------------------------------------------

BASINFORMATION = ("yta", "bildandebeslut", "andringsbeslut", "upphavandebeslut", "hanvisningstext")


def provision(member) -> tuple[str, str, dict]:
    """(identity, feature element name, {subset: content}) of one member."""
    feature = next(c for c in member if isinstance(c.tag, str))
    ident = text(feature, "objektidentitet").lower()
    subsets: dict = {}
    attr = next((c for c in feature if local(c).endswith("attribut")), None)
    if attr is not None or any(local(c) in BASINFORMATION for c in feature):
        # "Markreglerande bestämmelse … håller samman och grupperar informationsdelmängderna
        # Basinformation och Berörkrets" (seed 004): attributes, decisions and area are Basinformation.
        yta = child(feature, "yta")
        nums = [
            float(v)
            for e in (yta.iter() if yta is not None else ())
            if local(e) in ("poslist", "pos")
            for v in e.text.split()
        ]
        subsets["basinformation"] = {
            "status": text(attr, "status") if attr is not None else None,
            "designation": text(attr, "aktbeteckning") if attr is not None else None,
            "name": text(attr, "namn") if attr is not None else None,
            "municipality": text(attr, "kommun") if attr is not None else None,
            "object_version": int(text(attr, "objektversion")) if attr is not None else None,
            "decisions": sorted(
                text(c, "objektidentitet").lower() for c in feature if local(c).endswith("beslut")
            ),
            # urn:ogc:def:crs:EPSG::3006 is northing first: (easting, northing) = (2nd, 1st)
            "points": [(nums[i + 1], nums[i]) for i in range(0, len(nums) - 1, 2)],
        }
    beror = child(feature, "beror")
    if beror is not None:
        subsets["berorkrets"] = sorted(
            e.text.strip().lower() for e in beror.iter() if local(e) == "objektidentitet"
        )
    return ident, local(feature), subsets


def apply_bestammelse(state: dict, path) -> dict:
    """The provisions after applying one delivery ZIP to ``state`` (returned, not modified)."""
    new = {k: dict(v) for k, v in state.items()}
    for s in read_zip(path):
        if s["base"]:
            new = {}
        # "Borttagsfiler innehåller objektidentitet/er för de markreglerande bestämmelser som inte
        # längre ska tillhandahållas. Du ska ta bort objektet inklusive all tillhörande
        # information." — a deletion removes the provision with every subset.
        for ident in s["deleted"]:
            new.pop(ident, None)
        for m in s["members"]:
            ident, kind, subsets = provision(m)
            # "Förändringsfiler innehåller endast förändrade informationsdelmängder för respektive
            # markreglerande bestämmelse. … När en informationsdelmängd har förändrats tar du först
            # bort informationen och därefter lägger du in den förändrade informationen."
            # — only the subsets delivered are replaced; the others stay as they were.
            entry = new.setdefault(ident, {})
            entry["type"] = kind
            entry.update(subsets)
    return new


# --- inskrivning ---------------------------------------------------------------------------------

#: The child elements a set's exchange object holds, and the value that tells its instances apart.
INSKRIVNING_CHILDREN = {
    "inskrivet_agande": {"agande": "dagboksnummer", "fastighetsagandeforandring": "aktnummer"},
    "inteckning": {"inteckning": "dagboksnummer"},
    "avtalsrattighet": {"avtalsrattighet": "aktnummer"},
    "anteckning": {"anteckning": "inskrivningsdag"},
    "tomtrattsupplatelse": {"tomtrattsupplatelse": "upplatelsedag"},
    "inskrivningsfastighet": {},
}


def _deep_text(el, name: str) -> str | None:
    return next((e.text.strip() for e in el.iter() if local(e) == name and e.text), None)


def apply_inskrivning(state: dict, path) -> dict:
    """``{set: {object id: {child: sorted keys}}}`` after one delivery ZIP."""
    new = {s: dict(v) for s, v in state.items()}
    for s in read_zip(path):
        if s["set"] not in INSKRIVNING_CHILDREN:
            continue  # persons and organisations: the owner rules, not checked here
        objs = {} if s["base"] else new.setdefault(s["set"], {})
        # "Ta bort objekten inklusive all tillhörande information för de objekt vars uuid finns i
        # borttagsfilen." — remove what the deletion file names.
        for ident in s["deleted"]:
            objs.pop(ident, None)
        for m in s["members"]:
            obj = next(c for c in m if isinstance(c.tag, str))
            # "Ta bort objekten inklusive all tillhörande information för de objekt som finns i
            # förändringsfilen. Lägga till all information som finns i förändringsfilen." — an
            # object is replaced whole within its information set (each set is its own file), so
            # one sent without any mortgage has none afterwards.
            objs[text(obj, "objektidentitet").lower()] = {
                name: sorted(_deep_text(c, key) or "" for c in obj if local(c) == name)
                for name, key in INSKRIVNING_CHILDREN[s["set"]].items()
            }
        new[s["set"]] = objs
    return new


def counts(state: dict) -> Counter:
    """Rows per (set, child) over all objects: a quick summary for messages."""
    return Counter(
        {(s, c): len(v) for s, objs in state.items() for o in objs.values() for c, v in o.items()}
    )
