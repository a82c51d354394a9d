"""The declarative mappings from Lantmäteriet XML to vggeo's tables — one per product.

The real delivery schemas (``markreglerande-bestammelse-2.0.1.xsd``, ``inskrivning-3.0.0.xsd``,
``borttag-2.0.0.xsd``, ``metadata-2.0.0.xsd``) are not public. Element names here come from what
*is* public (FORMATS.md §3–6: Lantmäteriet's example provision, the Direkt API's names, the v3 JSON
API's field names) and are otherwise **inferred**. This module is the one place to correct when a
real file differs. Matching rules (applied by :mod:`vggeo.lm._records`):

* Elements match by **local name, case-insensitively**; the namespace may be anything under
  ``http://namespace.lantmateriet.se/distribution/`` (or none), plus GML for geometry.
* A field is addressed by its path of local names below the record element, e.g.
  ``"beviljadandel/taljare"``. Several aliases may map to one column.
* Path segments matching :data:`SEGMENT_ALIASES` are renamed first (every ``…attribut`` block —
  ``Planattribut``, ``Naturvardsbestammelseattribut`` … — becomes ``attribut``).
* Every element the mapping does not use is counted by path and reported (``vggeo inspect``);
  nothing is dropped silently.

Column kinds: ``str``, ``uuid`` (lower-cased), ``int`` (Int64), ``float``, ``bool``, ``date``
(``YYYY-MM-DD``, ``YYYYMMDD`` or ``xs:dateTime`` with offset → ``datetime64[ms]``, wall-clock
time as written), ``kommun`` (four-digit string, zero-padded), ``personal`` (a string redacted
unless personal data is asked for).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "LM_NAMESPACE_PREFIX",
    "SEGMENT_ALIASES",
    "Field",
    "Record",
    "ProductMapping",
    "BESTAMMELSE",
    "INSKRIVNING",
    "METADATA",
    "DELETION_ID_NAMES",
    "PRODUCTS",
    "product_of_set",
    "EXTRACT_TYPES",
]

LM_NAMESPACE_PREFIX = "http://namespace.lantmateriet.se/distribution/"

#: Path segments renamed before lookup: (regex on the lower-cased local name, replacement).
SEGMENT_ALIASES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^.+attribut$"), "attribut"),  # Planattribut, Naturvardsbestammelseattribut …
)


@dataclass(frozen=True)
class Field:
    """One column: its name, kind and the element paths (aliases) that fill it."""

    column: str
    paths: tuple[str, ...]
    kind: str = "str"


@dataclass(frozen=True)
class Record:
    """One kind of record element and the table its rows go to.

    Attributes
    ----------
    names
        Local names (lower-case) of elements that start such a record.
    table
        The output table.
    fields
        Columns filled from element paths below the record element.
    constants
        Columns derived from the record element's own name: ``{column: {local name: value}}``.
    children
        Nested records (own tables), linked by the parent's ``inherit`` columns.
    inherit
        Columns of the parent row copied into each child row (e.g. ``provision_id``).
    geometry
        Local name of the element holding GML geometry (e.g. ``yta``), or None.
    subsets
        ``{subset name: (local names of elements that belong to it)}`` — which information
        subsets a record carried (a change replaces only those).
    ignore
        Paths known and deliberately not mapped (not reported as unmapped).
    """

    names: tuple[str, ...]
    table: str
    fields: tuple[Field, ...] = ()
    constants: dict[str, dict[str, str]] = field(default_factory=dict)
    children: tuple[Record, ...] = ()
    inherit: tuple[str, ...] = ()
    geometry: str | None = None
    subsets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProductMapping:
    """A product: its information sets and the records its data files hold."""

    product: str
    sets: tuple[str, ...]
    records: dict[str, tuple[Record, ...]]  # set name → top-level records of its data files
    namespace_hint: str  # a substring of the data namespace that identifies the product


# --- markreglerande bestämmelse ---------------------------------------------------------------

_DECISION_FIELDS = (
    Field("object_version", ("objektversion",), "int"),
    Field("valid_from", ("giltigfran", "giltigfrom", "giltigtfrom", "versiongiltigfran"), "date"),
    Field("decision_date", ("beslutsdatum", "beslutdatum", "datum"), "date"),
    Field("decision_id", ("objektidentitet", "beslutsidentitet", "identitet",
                          "bildarobjektidentitet"), "uuid"),  # fmt: skip
)

#: Provision element local name → ``provision_type`` (all six types of FORMATS.md §5).
PROVISION_TYPES = {
    "plan": "plan",
    "naturvardsbestammelse": "naturvardsbestammelse",
    "ovrigbestammelse": "ovrig_bestammelse",
    "mineralrattighet": "mineralrattighet",
    "utredning": "utredning",
    "fornlamning": "fornlamning",
}

BESTAMMELSE_SET = "markreglerandebestammelse"

_PROVISION = Record(
    names=tuple(PROVISION_TYPES),
    table="provisions",
    constants={"provision_type": PROVISION_TYPES},
    fields=(
        # Lantmäteriet's example also shows an objektidentitet inside the attribute block.
        Field("provision_id", ("objektidentitet", "attribut/objektidentitet"), "uuid"),
        Field("object_version", ("attribut/objektversion", "objektversion"), "int"),
        Field("municipality", ("attribut/kommun", "attribut/kommunkod", "kommun"), "kommun"),
        # Lantmäteriet's published example labels (FORMATS.md §7), ASCII-folded beside ours.
        Field("designation", ("attribut/aktbeteckning", "attribut/beteckning",
                              "attribut/bestammelsebeteckning"), "str"),  # fmt: skip
        Field("name", ("attribut/namn", "attribut/plannamn", "attribut/bestammelsenamn"), "str"),
        Field("status", ("attribut/status",), "str"),
        # [inferred] the six types carry their own sub-type element; plan uses "plantyp".
        Field("plan_type", ("attribut/plantyp", "attribut/bestammelsetyp", "attribut/typ",
                            "attribut/naturvardstyp", "attribut/rattighetstyp"), "str"),  # fmt: skip
        Field("alt_designation", ("attribut/alternativaktbeteckning",
                                  "attribut/alternativbeteckning"), "str"),  # fmt: skip
        Field("last_changed", ("attribut/senasteandringallmannadelen",
                               "attribut/senastandradallmannadelen",
                               "attribut/senasteandring",
                               # [inferred] the version's valid-from in the example
                               "attribut/versiongiltigfran"), "date"),  # fmt: skip
        Field("implementation_start", ("attribut/genomforandetidstart",
                                       "attribut/genomforandetid/start",
                                       "attribut/genomforandetidfrom",
                                       "attribut/genomforandetidborjar",
                                       "attribut/genomforandetid/borjar"), "date"),  # fmt: skip
        Field("implementation_end", ("attribut/genomforandetidslut",
                                     "attribut/genomforandetid/slut",
                                     "attribut/genomforandetidtom",
                                     "attribut/genomforandetidslutar",
                                     "attribut/genomforandetid/slutar"), "date"),  # fmt: skip
        Field("reference_text", ("hanvisningstext",), "str"),
    ),
    geometry="yta",
    subsets={
        "basinformation": ("attribut", "yta", "bildandebeslut", "andringsbeslut",
                           "upphavandebeslut", "hanvisningstext"),  # fmt: skip
        "berorkrets": ("beror",),
    },
    children=(
        Record(
            names=("registerenhetsreferens",),
            table="affected_properties",
            inherit=("provision_id",),
            fields=(Field("register_unit_id", ("objektidentitet",), "uuid"),),
        ),
        Record(
            names=("bildandebeslut", "andringsbeslut", "upphavandebeslut"),
            table="decisions",
            inherit=("provision_id",),
            constants={"kind": {"bildandebeslut": "bildandebeslut",
                                "andringsbeslut": "andringsbeslut",
                                "upphavandebeslut": "upphavandebeslut"}},  # fmt: skip
            fields=_DECISION_FIELDS,
        ),
    ),
    # Berör's own objektversion (Lantmäteriet's example) versions the berörkrets subset as a
    # whole; vggeo keeps the references, not that version. Known, deliberately not mapped.
    # gml:boundedBy is the envelope of the feature's own geometry (derived, not data).
    ignore=("beror", "beror/objektversion", "boundedby/envelope/lowercorner",
            "boundedby/envelope/uppercorner"),  # fmt: skip
)

BESTAMMELSE = ProductMapping(
    product="bestammelse",
    sets=(BESTAMMELSE_SET,),
    records={BESTAMMELSE_SET: (_PROVISION,)},
    namespace_hint="markreglerandebestammelse",
)


# --- inskrivning --------------------------------------------------------------------------------

_KEYS = (
    Field("object_id", ("objektidentitet",), "uuid"),
    Field("property_id", ("fastighetsreferens/objektidentitet",), "uuid"),
)
_INSKRIVNING_REF = (
    Field("registered_on", ("inskrivningsdag",), "date"),
    Field("decision", ("beslut",), "str"),
    Field("diary_number", ("dagboksnummer",), "str"),
    Field("act_number", ("aktnummer",), "str"),
)

#: Owner (Ägare) fields; ``personal`` kinds are redacted by default.
_OWNER_FIELDS = (
    Field("owner_idnumber", ("inskrivenperson/idnummer", "inskrivenperson/personnummer",
                             "inskrivenorganisation/idnummer",
                             "inskrivenorganisation/organisationsnummer",
                             "idnummer", "personnummer", "organisationsnummer"), "idnumber"),  # fmt: skip
    Field("owner_other_id", ("utlandskagare/annatid", "annatid"), "personal"),
    Field("first_name", ("inskrivenperson/fornamn", "fornamn", "utlandskagare/fornamn"), "personal"),
    Field("last_name", ("inskrivenperson/efternamn", "efternamn", "utlandskagare/efternamn"), "personal"),
    Field("organisation_name", ("inskrivenorganisation/organisationsnamn", "organisationsnamn",
                                "utlandskagare/organisationsnamn"), "str"),  # fmt: skip
    Field("care_of", ("inskrivenperson/adress/coadress", "adress/coadress"), "personal"),
    Field("address", ("inskrivenperson/adress/utdelningsadress", "adress/utdelningsadress",
                      "inskrivenorganisation/adress/utdelningsadress"), "address"),  # fmt: skip
    Field("postal_code", ("inskrivenperson/adress/postnummer", "adress/postnummer",
                          "inskrivenorganisation/adress/postnummer"), "address"),  # fmt: skip
    Field("postal_town", ("inskrivenperson/adress/postort", "adress/postort",
                          "inskrivenorganisation/adress/postort"), "address"),  # fmt: skip
)

_AGANDE = Record(
    names=("agande",),
    table="agande",
    inherit=("object_id", "property_id"),
    fields=(
        Field("ownership_id", ("agandeidentitet", "identitet"), "uuid"),
        Field("ownership_type", ("typ",), "str"),  # Lagfart / Tomträttsinnehav
        *_INSKRIVNING_REF,
        Field("share_numerator", ("beviljadandel/taljare",), "int"),
        Field("share_denominator", ("beviljadandel/namnare",), "int"),
        *[Field(f.column, tuple(f"agare/{p}" for p in f.paths), f.kind) for f in _OWNER_FIELDS],
    ),
)

_FORVARV = Record(
    names=("fastighetsagandeforandring", "forvarv"),
    table="forvarv",
    inherit=("object_id", "property_id"),
    fields=(
        Field("acquisition_id", ("identitet", "forvarvsidentitet"), "uuid"),
        Field("acquired_on", ("fang/fangesdag", "fangesdag"), "date"),
        Field("acquisition_kind", ("fang/fangesart", "fangesart"), "str"),
        Field("act_number", ("fang/aktnummer", "aktnummer"), "str"),
        Field("share_numerator", ("fang/andelfang/taljare", "andelfang/taljare"), "int"),
        Field("share_denominator", ("fang/andelfang/namnare", "andelfang/namnare"), "int"),
        Field("price_currency", ("kopeskilling/kopeskillingfastegendom/valuta",), "str"),
        Field("price", ("kopeskilling/kopeskillingfastegendom/summa",), "float"),
        Field("owner_idnumber", ("forvarvare/idnummer", "idnummer"), "idnumber"),
    ),
)

_AVTALSRATTIGHET = Record(
    names=("avtalsrattighet",),
    table="avtalsrattighet",
    inherit=("object_id", "property_id"),
    fields=(
        Field("right_id", ("identitet", "rattighetsidentitet"), "uuid"),
        Field("right_type", ("typ", "rattighetstyp"), "str"),
        Field("purpose", ("andamal",), "str"),
        *_INSKRIVNING_REF,
    ),
)

_INTECKNING = Record(
    names=("inteckning", "belastar"),
    table="inteckning",
    inherit=("object_id", "property_id"),
    fields=(
        Field("mortgage_id", ("identitet", "inteckningsidentitet"), "uuid"),
        Field("mortgage_type", ("inskrivenbelastning/typ", "typ"), "str"),
        Field("amount_currency", ("inskrivenbelastning/belopp/valuta", "belopp/valuta"), "str"),
        Field("amount", ("inskrivenbelastning/belopp/summa", "belopp/summa"), "float"),
        Field("mortgage_deed_type", ("inskrivenbelastning/pantbrevstyp", "pantbrevstyp"), "str"),
        *_INSKRIVNING_REF,
    ),
)

_ANTECKNING = Record(
    names=("anteckning",),
    table="anteckning",
    inherit=("object_id", "property_id"),
    fields=(
        Field("note_id", ("identitet", "anteckningsidentitet"), "uuid"),
        Field("note_type", ("typ", "anteckningstyp"), "str"),
        Field("text", ("text", "anteckningstext"), "str"),
        *_INSKRIVNING_REF,
    ),
)

_TOMTRATT = Record(
    names=("tomtrattsupplatelse",),
    table="tomtrattsupplatelse",
    inherit=("object_id", "property_id"),
    fields=(
        Field("leasehold_id", ("identitet",), "uuid"),
        Field("granted_on", ("upplatelsedag",), "date"),
        Field("ground_rent_currency", ("avgald/valuta", "tomtrattsavgald/valuta"), "str"),
        Field("ground_rent", ("avgald/summa", "tomtrattsavgald/summa"), "float"),
        *_INSKRIVNING_REF,
    ),
)


def _exchange(children: tuple[Record, ...], table: str = "inskrivningsfastighet") -> Record:
    """The exchange object of every inskrivning set: the Inskrivningsfastighet."""
    return Record(
        names=("inskrivningsfastighet",),
        table=table,
        fields=(
            *_KEYS,
            Field("object_version", ("objektversion",), "int"),
            Field("property_designation", ("fastighetsreferens/fastighetsbeteckning",
                                           "fastighetsbeteckning"), "str"),  # fmt: skip
            Field("municipality", ("fastighetsreferens/kommun", "kommun", "kommunkod"), "kommun"),
        ),
        children=children,
    )


_PERSON = Record(
    names=("folkbokfordperson", "person"),
    table="persons",
    fields=(
        Field("owner_idnumber", ("idnummer", "personnummer"), "idnumber"),
        Field("first_name", ("fornamn",), "personal"),
        Field("middle_name", ("mellannamn",), "personal"),
        Field("last_name", ("efternamn",), "personal"),
        Field("care_of", ("adress/coadress",), "personal"),
        Field("address", ("adress/utdelningsadress",), "address"),
        Field("postal_code", ("adress/postnummer",), "address"),
        Field("postal_town", ("adress/postort",), "address"),
    ),
)
_ORGANISATION = Record(
    names=("organisation", "folkbokfordorganisation"),
    table="organisations",
    fields=(
        Field("owner_idnumber", ("organisationsnummer", "idnummer"), "idnumber"),
        Field("organisation_name", ("organisationsnamn", "namn"), "str"),
        Field("address", ("adress/utdelningsadress",), "str"),
        Field("postal_code", ("adress/postnummer",), "str"),
        Field("postal_town", ("adress/postort",), "str"),
    ),
)

INSKRIVNING_SETS = (
    "inskrivningsfastighet",
    "inskrivet_agande",
    "folkbokford_person_organisation",
    "avtalsrattighet",
    "inteckning",
    "anteckning",
    "tomtrattsupplatelse",
)

INSKRIVNING = ProductMapping(
    product="inskrivning",
    sets=INSKRIVNING_SETS,
    records={
        "inskrivningsfastighet": (_exchange(()),),
        "inskrivet_agande": (_exchange((_AGANDE, _FORVARV), table="_agande_exchange"),),
        "avtalsrattighet": (_exchange((_AVTALSRATTIGHET,), table="_exchange"),),
        "inteckning": (_exchange((_INTECKNING,), table="_exchange"),),
        "anteckning": (_exchange((_ANTECKNING,), table="_exchange"),),
        "tomtrattsupplatelse": (_exchange((_TOMTRATT,), table="_exchange"),),
        "folkbokford_person_organisation": (_PERSON, _ORGANISATION),
    },
    namespace_hint="inskrivning",
)

#: Sets delivered without deletion files even in change extracts: persons and organisations come
#: with Inskrivet ägande and are removed by the orphan rule instead (seed 003).
SETS_WITHOUT_DELETIONS = ("folkbokford_person_organisation",)

#: The surname Lantmäteriet writes for an owner under *skyddad personuppgift* (seed 003).
PROTECTED_SURNAME = "SKYDDAD PERSONUPPGIFT"

PRODUCTS = {"bestammelse": BESTAMMELSE, "inskrivning": INSKRIVNING}


def product_of_set(set_name: str) -> str | None:
    """``"bestammelse"`` / ``"inskrivning"`` for a known information-set name, else None."""
    for p in PRODUCTS.values():
        if set_name in p.sets:
            return p.product
    return None


# --- deletion files (borttag-2.0.0.xsd) ---------------------------------------------------------

#: Local names (lower-case) whose text is an identity to delete. [inferred]
DELETION_ID_NAMES = ("objektidentitet", "identitet")


# --- metadata files (metadata-2.0.0.xsd) -------------------------------------------------------
# Every name below is [inferred]: the seed documents list the *content* of a metadata file
# (seed 003/004 "Metadatafil"), not its element names.

METADATA = Record(
    names=("metadata", "uttagsmetadata", "leveransmetadata"),
    table="metadata",
    fields=(
        Field("extract_id", ("uttagsidentitet", "uttagsid", "unikidentitet", "identitet"), "str"),
        # [vggeo's own, not in Lantmäteriet's documentation] The extract a change follows. Real
        # metadata does not carry it, so the ledger judges gaps by production time; still read
        # (older vggeo samples wrote it) and, when present, used as one more check.
        Field("previous_extract_id", ("foregaendeuttagsidentitet", "foregaendeuttagsid"), "str"),
        Field("produced_at", ("fardigproducerad", "tidpunkt", "producerad"), "datetime"),
        Field("total_count", ("totaltantalobjekt", "antalobjekt"), "int"),
        Field("total_persons", ("antalpersoner",), "int"),
        Field("total_organisations", ("antalorganisationer",), "int"),
        Field("file_size", ("filstorlek",), "int"),
        Field("crs", ("koordinatsystem", "kodforkoordinatsystem", "koordinatsystemkod"), "str"),
        Field("information_type", ("informationstyp",), "str"),
        Field("information_set", ("informationsmangd",), "str"),
        Field("subsets", ("informationsdelmangd", "informationsdelmangder/informationsdelmangd"), "list"),
        Field("selection_type", ("urval/urvalstyp", "urvalstyp"), "str"),
        Field("list_reference", ("urval/listreferens", "listreferens"), "str"),
        Field("selection", ("urval/kommunkod", "urval/registerenhet", "urval/varde"), "list"),
        Field("extract_type", ("uttagstyp",), "str"),
        Field("direct_marketing", ("personinformation/direktmarknadsforing",
                                   "personinformationdirektmarknadsforing"), "bool"),  # fmt: skip
        Field("exclude_personnummer", ("personinformation/exkluderapersonnummer",
                                       "personinformationexkluderapersonnummer"), "bool"),  # fmt: skip
    ),
    children=(
        Record(
            names=("fil", "produceradfil"),
            table="files",
            fields=(
                Field("file_name", ("filnamn",), "str"),
                Field("count", ("antalobjekt", "antal"), "int"),
                Field("file_size", ("filstorlek",), "int"),
            ),
        ),
    ),
    ignore=("filer", "produceradefiler"),
)

#: Uttagstyp values → ``extract_type``.
EXTRACT_TYPES = {
    "basuttag": "base",
    "bas": "base",
    "base": "base",
    "forandringsuttag": "change",
    "förändringsuttag": "change",
    "forandring": "change",
    "förändring": "change",
    "change": "change",
}
