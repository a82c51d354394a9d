"""Valueguard's residential registry field list, declared once.

Source: Valueguard's wiki page "Residential Registry", section *Field list* (seed 000), and the
format notes in FORMATS.md §1. Every reader, writer, check and the sample generator work from
:data:`FIELDS`; a real file that differs is fixed here, in one place.

Canonical dtypes (see ``docs/contracts.md``):

============  ===============================================================================
kind          canonical pandas dtype
============  ===============================================================================
``key``       ``int64`` (``id``; never missing, unique)
``int``       nullable integer (``Int8``/``Int16``/``Int32``), as wide as the documented type
``float``     ``float64`` (``NaN`` = missing); coordinates are kept as floats so a
              non-integral value is never rounded away
``string``    pandas ``string``; Valueguard's ``""`` for "not specified" is kept as ``""``
``padded``    pandas ``string``, zero-padded to ``width`` digits (``county_code`` ``"05"``)
``code``      ``category`` whose categories are the documented codes (plus any unknown values
              seen, which :mod:`vggeo.registry.checks` reports) — see :mod:`vggeo.codes`
``date``      ``datetime64[ms]`` from ``YYYY-MM-DD``
``list``      ``list<int64>`` (pandas ``ArrowDtype``): ``number`` such as ``[1, 3, None]``
============  ===============================================================================

``number`` holds the parts of the address number as integers. A meter address (``is_meter_address``
= 1; seed 000: 'the number of the address is of type "302-12"') has two parts, so ``"302-12"`` —
as text, inside a list, or as pandas writes a list to CSV — is read as ``[302, 12]``; a plain
number ``7`` is ``[7]``. Writers give the list back as it is stored (``[302, 12]``).

Columns vggeo derives (:data:`DERIVED_COLUMNS`; recomputed on every read, never trusted from input):

=================================  ==========================================================
``kommunkod``                      ``string``: the four-digit municipality code, ``county_code``
                                   + ``municipality_code`` (``"05"`` + ``"13"`` → ``"0513"``) —
                                   the code Lantmäteriet data carries (``kommun``; the
                                   provisions' ``municipality``). ``municipality_code`` alone is
                                   the two-digit code *within* the county.
``construction_year_placeholder``  ``bool``: ``construction_year`` is 1909 for a house or 1929 for
                                   a flat, the values Lantmäteriet uses when the year is unknown
``coord_source``                   ``category``: the pair the geometry came from
``geometry``                       Point, EPSG:3006
=================================  ==========================================================

Every documented rule a value can break is declared, quoted, in :mod:`vggeo.registry.rules`
(``rules_of("deleted")`` lists a field's rules with their quotes; code lists quote theirs in
:mod:`vggeo.codes`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Field",
    "FIELDS",
    "FIELD_NAMES",
    "field",
    "COORDINATE_FIELDS",
    "SEARCH_CRITERIA",
    "SPECIAL_CRITERIA",
    "RANGE_CRITERIA",
]


@dataclass(frozen=True)
class Field:
    """One field of the registry.

    Attributes
    ----------
    name
        The JSON key / CSV column, exactly as Valueguard spells it.
    kind
        ``key``, ``int``, ``float``, ``string``, ``padded``, ``code``, ``date`` or ``list``.
    dtype
        The canonical pandas dtype (a string pandas understands, or ``"list<int64>"``).
    nullable
        Whether a row may lack a value (every field except ``id``: accounts see different fields,
        so any field may also be absent as a whole).
    source_type
        The type as documented (MySQL notation), for reference.
    description
        Valueguard's description, condensed.
    codes
        Name of the code list in :data:`vggeo.codes.CODE_LISTS`, for ``code`` fields.
    width
        Digits of a zero-padded ``padded`` field.
    """

    name: str
    kind: str
    dtype: str
    nullable: bool
    source_type: str
    description: str
    codes: str | None = None
    width: int | None = None


def _f(
    name: str,
    kind: str,
    dtype: str,
    source_type: str,
    description: str,
    *,
    codes: str | None = None,
    width: int | None = None,
    nullable: bool = True,
) -> Field:
    return Field(name, kind, dtype, nullable, source_type, description, codes, width)


#: The documented fields, in Valueguard's order.
FIELDS: tuple[Field, ...] = (
    _f(
        "id",
        "key",
        "int64",
        "varchar(255)",
        "unique id (serial number) of the residence",
        nullable=False,
    ),
    _f(
        "property_key",
        "padded",
        "string",
        "int(8)",
        "unique id of the property (Fastighetsregistret); zero-padded",
        width=9,
    ),
    _f("address", "string", "string", "varchar(60)", "street, number, letter, postal code"),
    _f("street", "string", "string", "varchar(60)", "street name in the address"),
    _f(
        "number",
        "list",
        "list<int64>",
        "list",
        "parts of the address number: [7]; a meter address 302-12 is [302, 12]",
    ),
    _f("letter", "string", "string", "char(5)", "letter of the address; '' if none"),
    _f(
        "entrance", "string", "string", "varchar(5)", "entrance of the address; '' if not specified"
    ),
    _f(
        "is_meter_address",
        "code",
        "category",
        "tinyint(1)",
        "1 = meter address (number like 302-12)",
        codes="is_meter_address",
    ),
    _f("postal_code", "string", "string", "varchar(7)", "postal code"),
    _f("postal_area", "string", "string", "varchar(40)", "postal area"),
    _f("house_nr", "int", "Int32", "mediumint(5)", "number of the house within its property"),
    _f(
        "apartment_nr",
        "int",
        "Int16",
        "smallint(4)",
        "lägenhetsnummer: floor code (10 = entrance level) and position; leading zeros may be lost",
    ),
    _f(
        "living_space",
        "float",
        "float64",
        "double",
        "area of the residence, m² (Lägenhetsregistret washed with Fastighetsregistret)",
    ),
    _f(
        "apartment_area",
        "int",
        "Int16",
        "smallint(4)",
        "area of the residence, m² (Lägenhetsregistret, all home types)",
    ),
    _f(
        "rooms",
        "float",
        "float64",
        "double",
        "rooms of at least 7 m², kitchen and bathroom excluded",
    ),
    _f("floor", "float", "float64", "double", "floor of the residence (Valueguard's estimate)"),
    _f("floors", "float", "float64", "double", "highest floor of the address"),
    _f(
        "apartment_category",
        "code",
        "category",
        "tinyint(2)",
        "dwelling category",
        codes="apartment_category",
    ),
    _f("kitchen_type", "code", "category", "tinyint(2)", "kitchen type", codes="kitchen_type"),
    _f(
        "building_purpose",
        "code",
        "category",
        "tinyint(2)",
        "building purpose",
        codes="building_purpose",
    ),
    _f(
        "sweref99x",
        "float",
        "float64",
        "int(7)",
        "SWEREF 99 TM **northing** (Valueguard's x, the RT 90 habit)",
    ),
    _f("sweref99y", "float", "float64", "int(7)", "SWEREF 99 TM **easting** (Valueguard's y)"),
    _f("rt90x", "float", "float64", "double", "RT 90 2.5 gon V northing"),
    _f("rt90y", "float", "float64", "double", "RT 90 2.5 gon V easting"),
    _f("wgs84lat", "float", "float64", "double", "WGS 84 latitude"),
    _f("wgs84lon", "float", "float64", "double", "WGS 84 longitude"),
    _f(
        "construction_year",
        "int",
        "Int16",
        "smallint(4)",
        "building year; 1909 (houses) / 1929 (flats) often mean unknown",
    ),
    _f(
        "owner_id",
        "string",
        "string",
        "char(11)",
        "organisation number NNNNNN-NNNN (e.g. a housing cooperative)",
    ),
    _f("building_type", "code", "category", "tinyint(2)", "building type", codes="building_type"),
    _f(
        "type_code",
        "code",
        "category",
        "smallint(3)",
        "property type code (taxeringsenhet)",
        codes="type_code",
    ),
    _f("home_type", "code", "category", "varchar(20)", "home type", codes="home_type"),
    _f(
        "ownership_type",
        "code",
        "category",
        "varchar(30)",
        "form of ownership",
        codes="ownership_type",
    ),
    _f("living_area", "int", "Int32", "smallint(5)", "area of residence, m² (Fastighetsregistret)"),
    _f("ancillary_area", "int", "Int32", "smallint(5)", "ancillary area, m²"),
    _f(
        "standard_points",
        "int",
        "Int8",
        "tinyint(2)",
        "0–59, condition from assessed value (not for co-operative apartments)",
    ),
    _f("plot_area", "int", "Int32", "int(9)", "area of the plot, m²"),
    _f(
        "error_code",
        "code",
        "category",
        "tinyint(1)",
        "1 = suspected error in data",
        codes="error_code",
    ),
    _f(
        "deleted",
        "code",
        "category",
        "tinyint(1)",
        "0 not deleted, 1 deleted, 2 maybe deleted (registry: 0 or 2)",
        codes="deleted",
    ),
    _f(
        "probability_deleted",
        "float",
        "float64",
        "decimal(3,2)",
        "probability that the home is deleted, 0.00–1.00",
    ),
    _f("area_id", "int", "Int32", "int(9)", "id of area_name"),
    _f("area_name", "string", "string", "varchar(60)", "Valueguard's neighbourhood"),
    _f("updated_at", "date", "datetime64[ms]", "varchar(10)", "latest update from the sources"),
    _f(
        "updated_from",
        "string",
        "string",
        "varchar(60)",
        "source of the update (always public_data here)",
    ),
    _f("county_code", "padded", "string", "varchar(2)", "county code (länskod)", width=2),
    _f(
        "municipality_code",
        "padded",
        "string",
        "varchar(2)",
        "municipality code within the county (two digits; kommunkod = county_code + municipality_code)",
        width=2,
    ),
    _f("parish_code", "padded", "string", "varchar(2)", "parish code", width=2),
    _f(
        "vacation_like_home",
        "code",
        "category",
        "tinyint(1)",
        "1 = estimated to be a vacation home",
        codes="vacation_like_home",
    ),
    _f(
        "person_registered",
        "code",
        "category",
        "tinyint(1)",
        "1 = someone is registered at the address",
        codes="person_registered",
    ),
    _f(
        "person_registered_date",
        "date",
        "datetime64[ms]",
        "varchar(10)",
        "update date of person_registered",
    ),
    _f(
        "first_person_registered_date",
        "date",
        "datetime64[ms]",
        "varchar(10)",
        "when the first person now living there was registered",
    ),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
_BY_NAME = {f.name: f for f in FIELDS}

#: Coordinate columns (all three pairs); see :data:`vggeo.registry.coordinates.VALUEGUARD_PAIRS`.
COORDINATE_FIELDS = ("sweref99x", "sweref99y", "rt90x", "rt90y", "wgs84lat", "wgs84lon")

#: Columns vggeo adds to the canonical frame, in this order after the fields (recomputed from the
#: fields on every read; an input's own copy is used only where the fields it comes from are absent).
DERIVED_COLUMNS = ("kommunkod", "construction_year_placeholder", "coord_source", "geometry")


def field(name: str) -> Field:
    """The declared field ``name`` (KeyError naming the known fields otherwise)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown field {name!r}; known: {', '.join(FIELD_NAMES)}") from None


#: Documented search criteria (seed 000, "Search Criteria fields"): name → kind of value.
#: ``text`` criteria are sent as given; ``int``/``date`` ones are checked before sending.
SEARCH_CRITERIA: dict[str, str] = {
    "id": "int",
    "address": "text",
    "apartment_area_max": "int",
    "apartment_area_min": "int",
    "apartment_category": "int",
    "apartment_nr": "int",
    "area_id": "int",
    "building_purpose": "int",
    "construction_year_max": "int",
    "construction_year_min": "int",
    "floor_max": "number",
    "floor_min": "number",
    "floors_max": "number",
    "floors_min": "number",
    "kitchen_type": "int",
    "living_space_max": "number",
    "living_space_min": "number",
    "owner_id": "text",
    "postal_area": "text",
    "postal_code": "text",
    "rooms_max": "number",
    "rooms_min": "number",
    "updated_at_min": "date",
    "street": "text",
    "letter": "text",
    "number": "int",
    "entrance": "text",
    "is_meter_address": "int",
    "property_key": "text",
    "ownership_type": "text",
    "building_type": "int",
    "county_code": "text",
    "municipality_code": "text",
    "parish_code": "text",
    "residence_per_building": "int",
    "residence_per_building_min": "int",
    "residence_per_building_max": "int",
}
#: Criteria that need special access (documented separately).
SPECIAL_CRITERIA: dict[str, str] = {"SSN": "text", "sensitive_data": "int"}
#: The ``_min``/``_max`` pairs, for checking that min ≤ max.
RANGE_CRITERIA = tuple(
    sorted(
        {
            k[:-4]
            for k in SEARCH_CRITERIA
            if k.endswith(("_min", "_max"))
            if f"{k[:-4]}_min" in SEARCH_CRITERIA and f"{k[:-4]}_max" in SEARCH_CRITERIA
        }
    )
)
