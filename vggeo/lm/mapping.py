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
  nothing is dropped silently. A single-valued field keeps its first value; a further element
  for it (a repeat, or another alias) with another value is reported as
  ``path (another value)``.

Column kinds: ``str``, ``uuid`` (lower-cased), ``int`` (Int64), ``float``, ``bool``, ``date``
(``YYYY-MM-DD``, ``YYYYMMDD`` or ``xs:dateTime`` with offset → ``datetime64[ms]``, wall-clock
time as written), ``kommun`` (four-digit string, zero-padded), ``personal`` (a string redacted
unless personal data is asked for).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

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
    "EXCHANGE_INHERITED_FIELDS",
    "DELETION_NAMESPACE",
    "METADATA_NAMESPACE",
    "reads",
    "PRODUCTS",
    "product_of_set",
    "SET_ALIASES",
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
    #: The namespace of the product's schema, as vggeo's sample deliveries declare it. The reader
    #: accepts any namespace under :data:`LM_NAMESPACE_PREFIX` that holds ``namespace_hint``.
    namespace: str = ""

    def __post_init__(self) -> None:
        if not (
            self.namespace.startswith(LM_NAMESPACE_PREFIX) and self.namespace_hint in self.namespace
        ):
            raise ValueError(
                f"{self.product}: namespace {self.namespace!r} is not one the reader accepts"
            )


# --- markreglerande bestämmelse ---------------------------------------------------------------

_DECISION_FIELDS = (
    Field("object_version", ("objektversion",), "int"),
    Field("valid_from", ("giltigfran", "giltigfrom", "giltigtfrom", "versiongiltigfran"), "date"),
    Field("decision_date", ("beslutsdatum", "beslutdatum", "datum"), "date"),
    Field(
        "decision_id",
        ("objektidentitet", "beslutsidentitet", "identitet", "bildarobjektidentitet"),
        "uuid",
    ),
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
        Field(
            "designation",
            ("attribut/aktbeteckning", "attribut/beteckning", "attribut/bestammelsebeteckning"),
            "str",
        ),
        Field("name", ("attribut/namn", "attribut/plannamn", "attribut/bestammelsenamn"), "str"),
        Field("status", ("attribut/status",), "str"),
        # [inferred] the six types carry their own sub-type element; plan uses "plantyp".
        Field(
            "plan_type",
            (
                "attribut/plantyp",
                "attribut/bestammelsetyp",
                "attribut/typ",
                "attribut/naturvardstyp",
                "attribut/rattighetstyp",
            ),
            "str",
        ),
        Field(
            "alt_designation",
            ("attribut/alternativaktbeteckning", "attribut/alternativbeteckning"),
            "str",
        ),
        Field(
            "last_changed",
            (
                "attribut/senasteandringallmannadelen",
                "attribut/senastandradallmannadelen",
                "attribut/senasteandring",
                # [inferred] the version's valid-from in the example
                "attribut/versiongiltigfran",
            ),
            "date",
        ),
        Field(
            "implementation_start",
            (
                "attribut/genomforandetidstart",
                "attribut/genomforandetid/start",
                "attribut/genomforandetidfrom",
                "attribut/genomforandetidborjar",
                "attribut/genomforandetid/borjar",
            ),
            "date",
        ),
        Field(
            "implementation_end",
            (
                "attribut/genomforandetidslut",
                "attribut/genomforandetid/slut",
                "attribut/genomforandetidtom",
                "attribut/genomforandetidslutar",
                "attribut/genomforandetid/slutar",
            ),
            "date",
        ),
        Field("reference_text", ("hanvisningstext",), "str"),
    ),
    geometry="yta",
    subsets={
        "basinformation": (
            "attribut",
            "yta",
            "bildandebeslut",
            "andringsbeslut",
            "upphavandebeslut",
            "hanvisningstext",
        ),
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
            constants={
                "kind": {
                    "bildandebeslut": "bildandebeslut",
                    "andringsbeslut": "andringsbeslut",
                    "upphavandebeslut": "upphavandebeslut",
                }
            },
            fields=_DECISION_FIELDS,
        ),
    ),
    # Berör's own objektversion (Lantmäteriet's example) versions the berörkrets subset as a
    # whole; vggeo keeps the references, not that version. Known, deliberately not mapped.
    # gml:boundedBy is the envelope of the feature's own geometry (derived, not data).
    ignore=(
        "beror",
        "beror/objektversion",
        "boundedby/envelope/lowercorner",
        "boundedby/envelope/uppercorner",
    ),
)

BESTAMMELSE = ProductMapping(
    product="bestammelse",
    sets=(BESTAMMELSE_SET,),
    records={BESTAMMELSE_SET: (_PROVISION,)},
    namespace_hint="markreglerandebestammelse",
    namespace=LM_NAMESPACE_PREFIX + "produkter/markreglerandebestammelse/v2",
)


# --- inskrivning --------------------------------------------------------------------------------
# v3 spellings (FORMATS.md §6, the Direkt API's v3 names, which mirror the XML): records carry
# their own ``objektidentitet``; Agande holds Lagfart or Tomtrattsinnehav; Agare holds Person,
# Organisation or UtlandskAgare; addresses are adress{coAdress, utdelningsadress1/2, postnummer,
# postort}, sarskildAdress and utlandsadress{utdelningsadress1–4, land}. Accepted beside the
# older names (InskrivenPerson, utdelningsadress …).

_KEYS = (
    Field("object_id", ("objektidentitet",), "uuid"),
    Field("property_id", ("fastighetsreferens/objektidentitet",), "uuid"),
)
_INSKRIVNING_REF = (
    Field("registered_on", ("inskrivningsdag",), "date"),
    Field("decision", ("beslut",), "str"),
    Field("diary_number", ("dagboksnummer",), "str"),
    Field("act_number", ("aktnummer",), "str"),
    Field("version_valid_from", ("versiongiltigfran",), "date"),
)

#: The elements an Agare's content may sit in: none (flat), the older InskrivenPerson /
#: InskrivenOrganisation, or v3's Person / Organisation / UtlandskAgare.
_HOLDERS = (
    "",
    "inskrivenperson/",
    "inskrivenorganisation/",
    "person/",
    "organisation/",
    "utlandskagare/",
)


def _held(*leaves: str) -> tuple[str, ...]:
    return tuple(f"{h}{leaf}" for leaf in leaves for h in _HOLDERS)


def _address(block: str, *leaves: str) -> tuple[str, ...]:
    return _held(*(f"{block}/{leaf}" for leaf in leaves))


#: Owner (Ägare) fields; ``personal`` kinds are redacted by default, ``address`` kinds for
#: natural persons only.
_OWNER_FIELDS = (
    Field("owner_idnumber", _held("idnummer", "personnummer", "organisationsnummer"), "idnumber"),
    Field("owner_other_id", _held("annatid"), "personal"),
    Field("first_name", _held("fornamn"), "personal"),
    Field("last_name", _held("efternamn"), "personal"),
    Field("organisation_name", _held("organisationsnamn"), "str"),
    Field("care_of", _address("adress", "coadress"), "personal"),
    Field("address", _address("adress", "utdelningsadress", "utdelningsadress1"), "address"),
    Field("address_line2", _address("adress", "utdelningsadress2"), "address"),
    Field("postal_code", _address("adress", "postnummer"), "address"),
    Field("postal_town", _address("adress", "postort"), "address"),
    Field("special_care_of", _address("sarskildadress", "coadress"), "personal"),
    Field(
        "special_address",
        _address("sarskildadress", "utdelningsadress1", "utdelningsadress")
        + _held("sarskildadress"),
        "address",
    ),
    Field("special_address_line2", _address("sarskildadress", "utdelningsadress2"), "address"),
    Field("special_postal_code", _address("sarskildadress", "postnummer"), "address"),
    Field("special_postal_town", _address("sarskildadress", "postort"), "address"),
    *[
        Field(f"foreign_address{i}", _address("utlandsadress", f"utdelningsadress{i}"), "address")
        for i in range(1, 5)
    ],
    Field("foreign_country", _address("utlandsadress", "land"), "address"),
)

#: Where an Agande's content may sit: directly, or inside v3's Lagfart / Tomtrattsinnehav.
_TENURES = ("", "lagfart/", "tomtrattsinnehav/")


def _tenure(f: Field) -> Field:
    return Field(f.column, tuple(f"{t}{p}" for p in f.paths for t in _TENURES), f.kind)


#: Agande (current owners, subset Ägare – Aktuella/Alla) and tidigareAgande (former owners,
#: only in Ägare – Alla) fill one table; ``current`` tells them apart.
_AGANDE = Record(
    names=("agande", "tidigareagande"),
    table="agande",
    inherit=("object_id", "property_id"),
    constants={"current": {"agande": "true", "tidigareagande": "false"}},
    fields=(
        # [inferred] which of v3's two wrappers held it: its identity is the ownership_id, its
        # name the ownership_type when no typ is given (vggeo.lm.inskrivning fills both)
        Field("_lagfart", ("lagfart/objektidentitet",), "uuid"),
        Field("_tomtrattsinnehav", ("tomtrattsinnehav/objektidentitet",), "uuid"),
        _tenure(Field("ownership_id", ("objektidentitet", "agandeidentitet", "identitet"), "uuid")),
        _tenure(Field("ownership_type", ("typ",), "str")),  # Lagfart / Tomträttsinnehav
        *[_tenure(f) for f in _INSKRIVNING_REF],
        _tenure(Field("share_numerator", ("beviljadandel/taljare",), "int")),
        _tenure(Field("share_denominator", ("beviljadandel/namnare",), "int")),
        *[
            _tenure(Field(f.column, tuple(f"agare/{p}" for p in f.paths), f.kind))
            for f in _OWNER_FIELDS
        ],
    ),
)

#: Fång: a list in each Fastighetsägandeförändring (own table ``fang``).
_FANG = Record(
    names=("fang",),
    table="fang",
    inherit=("object_id", "property_id", "acquisition_id"),
    fields=(
        Field("fang_id", ("objektidentitet", "identitet"), "uuid"),
        Field("acquired_on", ("fangesdag",), "date"),
        Field("acquisition_kind", ("fangesart",), "str"),
        Field("acquisition_code", ("fangeskod",), "str"),
        Field("registered_on", ("inskrivningsdag",), "date"),
        Field("decision", ("beslut",), "str"),
        Field("act_number", ("aktnummer",), "str"),
        Field("share_numerator", ("andelfang/taljare",), "int"),
        Field("share_denominator", ("andelfang/namnare",), "int"),
        Field("ownership_id", ("inskrivetagande/objektidentitet", "inskrivetagande"), "uuid"),
    ),
)

#: Överlåtelse: what the former owners conveyed (own table ``overlatelse``).
_OVERLATELSE = Record(
    names=("overlatelse",),
    table="overlatelse",
    inherit=("object_id", "property_id", "acquisition_id"),
    fields=(
        Field("conveyance_id", ("objektidentitet", "identitet"), "uuid"),
        Field("share_numerator", ("andeloverlatelse/taljare",), "int"),
        Field("share_denominator", ("andeloverlatelse/namnare",), "int"),
        Field("ownership_id", ("inskrivetagande/objektidentitet", "inskrivetagande"), "uuid"),
    ),
)

_FORVARV = Record(
    names=("fastighetsagandeforandring", "forvarv"),
    table="forvarv",
    inherit=("object_id", "property_id"),
    fields=(
        Field("acquisition_id", ("objektidentitet", "identitet", "forvarvsidentitet"), "uuid"),
        # acquired_on … share_denominator: of the first Fång (every Fång is in table ``fang``)
        Field("price_id", ("kopeskilling/objektidentitet",), "uuid"),
        Field("price_currency", ("kopeskilling/kopeskillingfastegendom/valuta",), "str"),
        Field("price", ("kopeskilling/kopeskillingfastegendom/summa",), "float"),
        Field("price_type", ("kopeskilling/kopeskillingstyp",), "str"),
        Field("owner_idnumber", ("forvarvare/idnummer", "idnummer"), "idnumber"),
        Field("version_valid_from", ("versiongiltigfran",), "date"),
    ),
    children=(_FANG, _OVERLATELSE),
)

_AVTALSRATTIGHET = Record(
    names=("avtalsrattighet",),
    table="avtalsrattighet",
    inherit=("object_id", "property_id"),
    fields=(
        Field("right_id", ("objektidentitet", "identitet", "rattighetsidentitet"), "uuid"),
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
        Field(
            "mortgage_id",
            (
                "inskrivenbelastning/objektidentitet",
                "objektidentitet",
                "identitet",
                "inteckningsidentitet",
            ),
            "uuid",
        ),
        Field("priority", ("foretradesordning",), "int"),
        Field("mortgage_type", ("inskrivenbelastning/typ", "typ"), "str"),
        Field("amount_currency", ("inskrivenbelastning/belopp/valuta", "belopp/valuta"), "str"),
        Field("amount", ("inskrivenbelastning/belopp/summa", "belopp/summa"), "float"),
        Field("mortgage_deed_type", ("inskrivenbelastning/pantbrevstyp", "pantbrevstyp"), "str"),
        *[
            Field(f.column, (*f.paths, *(f"inskrivenbelastning/{p}" for p in f.paths)), f.kind)
            for f in _INSKRIVNING_REF
        ],
    ),
)

_ANTECKNING = Record(
    names=("anteckning",),
    table="anteckning",
    inherit=("object_id", "property_id"),
    fields=(
        Field("note_id", ("objektidentitet", "identitet", "anteckningsidentitet"), "uuid"),
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
        Field("leasehold_id", ("objektidentitet", "identitet"), "uuid"),
        Field("granted_on", ("upplatelsedag",), "date"),
        Field("ground_rent_currency", ("avgald/valuta", "tomtrattsavgald/valuta"), "str"),
        Field("ground_rent", ("avgald/summa", "tomtrattsavgald/summa"), "float"),
        *_INSKRIVNING_REF,
    ),
)


#: The exchange object's own fields that the records of a set other than inskrivningsfastighet
#: carry (a user who orders only Inteckning still gets the property designation): its
#: ``versiongiltigfran`` is ``object_valid_from`` there, the records having one of their own.
_EXCHANGE_INHERITED = (
    "object_version",
    "object_valid_from",
    "property_designation",
    "municipality",
)


def _exchange(children: tuple[Record, ...], table: str = "inskrivningsfastighet") -> Record:
    """The exchange object of every inskrivning set: the Inskrivningsfastighet.

    Only the inskrivningsfastighet set returns its table; in the other sets the records below
    it inherit its fields (:data:`_EXCHANGE_INHERITED`), so none is dropped.
    """
    own = table == "inskrivningsfastighet"
    return Record(
        names=("inskrivningsfastighet",),
        table=table,
        fields=(
            *_KEYS,
            Field("object_version", ("objektversion",), "int"),
            Field(
                "version_valid_from" if own else "object_valid_from", ("versiongiltigfran",), "date"
            ),
            Field(
                "property_designation",
                ("fastighetsreferens/fastighetsbeteckning", "fastighetsbeteckning"),
                "str",
            ),
            Field("municipality", ("fastighetsreferens/kommun", "kommun", "kommunkod"), "kommun"),
        ),
        children=tuple(replace(c, inherit=(*c.inherit, *_EXCHANGE_INHERITED)) for c in children),
    )


#: The fields the records of sets other than inskrivningsfastighet inherit from their exchange
#: object, typed as the exchange object types them.
EXCHANGE_INHERITED_FIELDS: tuple[Field, ...] = tuple(
    f for f in _exchange((), table="_exchange").fields if f.column in _EXCHANGE_INHERITED
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
        Field("address", ("adress/utdelningsadress", "adress/utdelningsadress1"), "address"),
        Field("address_line2", ("adress/utdelningsadress2",), "address"),
        Field("postal_code", ("adress/postnummer",), "address"),
        Field("postal_town", ("adress/postort",), "address"),
        Field(
            "special_address",
            ("sarskildadress/utdelningsadress1", "sarskildadress/utdelningsadress"),
            "address",
        ),
        Field("special_postal_code", ("sarskildadress/postnummer",), "address"),
        Field("special_postal_town", ("sarskildadress/postort",), "address"),
        *[
            Field(f"foreign_address{i}", (f"utlandsadress/utdelningsadress{i}",), "address")
            for i in range(1, 5)
        ],
        Field("foreign_country", ("utlandsadress/land",), "address"),
    ),
)
_ORGANISATION = Record(
    names=("organisation", "folkbokfordorganisation"),
    table="organisations",
    fields=(
        Field("owner_idnumber", ("organisationsnummer", "idnummer"), "idnumber"),
        Field("organisation_name", ("organisationsnamn", "namn"), "str"),
        # c/o names a person, even at an organisation's address
        Field("care_of", ("adress/coadress",), "personal"),
        Field("address", ("adress/utdelningsadress", "adress/utdelningsadress1"), "str"),
        Field("address_line2", ("adress/utdelningsadress2",), "str"),
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
        "inskrivetagande": (_exchange((_AGANDE, _FORVARV), table="_agande_exchange"),),
    },
    namespace_hint="inskrivning",
    namespace=LM_NAMESPACE_PREFIX + "produkter/inskrivning/v3",
)

#: Sets delivered without deletion files even in change extracts: persons and organisations come
#: with Inskrivet ägande and are removed by the orphan rule instead (seed 003).
SETS_WITHOUT_DELETIONS = ("folkbokford_person_organisation",)

#: The surname Lantmäteriet writes for an owner under *skyddad personuppgift* (seed 003).
PROTECTED_SURNAME = "SKYDDAD PERSONUPPGIFT"

PRODUCTS = {"bestammelse": BESTAMMELSE, "inskrivning": INSKRIVNING}


#: Other spellings of an information set's name, as its files are named (FORMATS.md §6: a vendor
#: names the ownership file ``inskrivetagande.xml``) → the set. Read with the set's records.
SET_ALIASES = {"inskrivetagande": "inskrivet_agande"}


def product_of_set(set_name: str) -> str | None:
    """``"bestammelse"`` / ``"inskrivning"`` for a known information-set name, else None."""
    set_name = SET_ALIASES.get(set_name.lower(), set_name)
    for p in PRODUCTS.values():
        if set_name in p.sets:
            return p.product
    return None


# --- deletion files (borttag-2.0.0.xsd) ---------------------------------------------------------

#: Local names (lower-case) whose text is an identity to delete. [inferred]
DELETION_ID_NAMES = ("objektidentitet", "identitet")
#: The namespace of borttag-2.0.0.xsd as vggeo's sample deliveries declare it (deletion files are
#: read by local name, in any namespace).
DELETION_NAMESPACE = LM_NAMESPACE_PREFIX + "produkter/borttag/v2"


# --- metadata files (metadata-2.0.0.xsd) -------------------------------------------------------
# Every name below is [inferred]: the seed documents list the *content* of a metadata file
# (seed 003/004 "Metadatafil"), not its element names.

#: The namespace of metadata-2.0.0.xsd as vggeo's sample deliveries declare it (metadata files
#: are read by local name, in any namespace).
METADATA_NAMESPACE = LM_NAMESPACE_PREFIX + "produkter/metadata/v2"

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
        Field(
            "subsets",
            ("informationsdelmangd", "informationsdelmangder/informationsdelmangd"),
            "list",
        ),
        Field("selection_type", ("urval/urvalstyp", "urvalstyp"), "str"),
        Field("list_reference", ("urval/listreferens", "listreferens"), "str"),
        Field("selection", ("urval/kommunkod", "urval/registerenhet", "urval/varde"), "list"),
        Field("extract_type", ("uttagstyp",), "str"),
        Field(
            "direct_marketing",
            ("personinformation/direktmarknadsforing", "personinformationdirektmarknadsforing"),
            "bool",
        ),
        Field(
            "exclude_personnummer",
            ("personinformation/exkluderapersonnummer", "personinformationexkluderapersonnummer"),
            "bool",
        ),
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


# --- what the reader reads, for writers ----------------------------------------------------------


def _segment(name: str) -> str:
    low = name.lower()
    for rx, repl in SEGMENT_ALIASES:
        if rx.match(low):
            return repl
    return low


def reads(record: Record, path: str) -> str:
    """``path``'s last element name, as given, once checked to be one the reader reads below
    ``record``: a field alias, the geometry element, a child record, an element of a subset or
    a path deliberately ignored. A writer (:mod:`vggeo.sample.delivery`) names its elements
    through this, so it cannot write a name this mapping does not read.

    The casing is the caller's: local names match case-insensitively, so how a name is
    capitalised is not a reading concern. Path segments are renamed by
    :data:`SEGMENT_ALIASES` as the reader does (``Planattribut/kommun`` is ``attribut/kommun``).

    Raises
    ------
    KeyError
        For a path the mapping does not read below ``record``.

    Examples
    --------
    >>> reads(BESTAMMELSE.records[BESTAMMELSE_SET][0], "Planattribut/senasteAndringAllmannaDelen")
    'senasteAndringAllmannaDelen'
    """
    key = "/".join(_segment(s) for s in path.split("/"))
    known = {p for f in record.fields for p in f.paths}
    known |= set(record.ignore) | {n for c in record.children for n in c.names}
    known |= {n for names in record.subsets.values() for n in names}
    known |= {record.geometry} if record.geometry else set()
    if key not in known:
        raise KeyError(f"{path!r} is not read below {record.names[0]!r}")
    return path.rpartition("/")[2]
