"""The store's tables, declared once as data and shared by both backends.

Each table has a fixed set of *core* columns (from ``docs/contracts.md``) and may grow *extra*
columns: the readers are allowed to deliver fields the contract does not name (inskrivning in
particular), and the store keeps them rather than dropping data. Extra columns are added inside the
same transaction that first brings them, and their pandas dtype is remembered in ``vggeo_columns``
so that :meth:`Store.read_table` hands back what was written (``Int16``, ``category``,
``datetime64[ms]``, lists …) on both backends.

Column *kinds* are the small vocabulary both databases understand:

========== ================= ============================== ===========================
kind       pandas            GeoPackage (SQLite)            PostGIS
========== ================= ============================== ===========================
text       str / category    TEXT                           text
int        Int64/Int16/int   INTEGER                        bigint
float      float64           REAL                           double precision
bool       bool / boolean    BOOLEAN (0/1)                  boolean
datetime   datetime64[ms]    DATETIME (ISO 8601 text, Z)    timestamp
json       lists / dicts     TEXT (JSON)                    jsonb
geometry   shapely           GPKG geometry blob + R-tree    geometry(type, 3006) + GiST
========== ================= ============================== ===========================
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "SRID",
    "GEOMETRY_COLUMN",
    "Column",
    "Table",
    "TABLES",
    "DELIVERY_TABLES",
    "SET_TABLES",
    "TABLE_ALIASES",
    "SUBSET_TABLES",
    "MEMBER_COLUMNS",
    "PERSONAL_COLUMNS",
    "LEDGER_TABLE",
    "kind_of",
    "dtype_name",
]

#: Every geometry in the store is in SWEREF 99 TM, x = easting.
SRID = 3006
#: Name of the geometry column in the database (``geometry`` in the GeoDataFrames).
GEOMETRY_COLUMN = "geom"
LEDGER_TABLE = "vggeo_ledger"
META_TABLE = "vggeo_meta"
COLUMNS_TABLE = "vggeo_columns"

KINDS = ("text", "int", "float", "bool", "datetime", "json")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    dtype: str  # pandas dtype to restore on read


@dataclass(frozen=True)
class Table:
    """One store table: its identity column, core columns and optional geometry.

    ``key`` is the identity that "delete, then add" works on (not necessarily unique: a provision
    has several decisions). ``unique`` says whether ``key`` identifies one row.
    """

    name: str
    key: str
    columns: tuple[Column, ...]
    geometry_type: str | None = None  # OGC name, e.g. "MULTIPOLYGON"
    unique: bool = False
    description: str = ""
    extra_allowed: bool = True
    indexes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _t(name: str) -> Column:
    return Column(name, "text", "str")


def _i(name: str) -> Column:
    return Column(name, "int", "Int64")


def _d(name: str) -> Column:
    return Column(name, "datetime", "datetime64[ms]")


_INSKRIVNING_SETS = (
    "inskrivningsfastighet",
    "agande",
    "forvarv",
    "fang",
    "overlatelse",
    "avtalsrattighet",
    "inteckning",
    "anteckning",
    "tomtrattsupplatelse",
)

_tables: list[Table] = [
    # only the key is fixed: the registry's own field order (coord_source included) is kept
    Table(
        "residences",
        "id",
        (Column("id", "int", "int64"),),
        geometry_type="POINT",
        unique=True,
        description="Valueguard residential registry (vggeo.registry)",
    ),
    Table(
        "provisions",
        "provision_id",
        (
            _t("provision_id"),
            Column("provision_type", "text", "category"),
            _i("object_version"),
            _t("municipality"),
            _t("designation"),
            _t("name"),
            _t("status"),
            _t("plan_type"),
            _t("alt_designation"),
            _d("last_changed"),
            _d("implementation_start"),
            _d("implementation_end"),
        ),
        geometry_type="MULTIPOLYGON",
        unique=True,
        description="Markreglerande bestämmelser (Lantmäteriet)",
    ),
    Table(
        "affected_properties",
        "provision_id",
        (_t("provision_id"), _t("register_unit_id")),
        description="Berörkrets: register units a provision affects",
        indexes=("register_unit_id",),
    ),
    Table(
        "decisions",
        "provision_id",
        (
            _t("provision_id"),
            _t("kind"),
            _i("object_version"),
            _d("valid_from"),
            _d("decision_date"),
            _t("decision_id"),
        ),
        description="Bildande-, ändrings- and upphävandebeslut of provisions",
    ),
    *[
        Table(
            n,
            "object_id",
            (_t("object_id"), _t("property_id")),
            description=f"Inskrivning: {n}",
            indexes=("property_id",),
        )
        for n in _INSKRIVNING_SETS
        if n != "agande"
    ],
    Table(
        "agande",
        "object_id",
        (_t("object_id"), _t("property_id"), _t("owner_key"), Column("current", "bool", "boolean")),
        description="Inskrivning: ägande (current = false: tidigareAgande, a former owner)",
        indexes=("property_id", "owner_key"),
    ),
    Table(
        "persons",
        "owner_key",
        (_t("owner_key"), Column("protected", "bool", "bool")),
        unique=True,
        description="Folkbokförda personer (owners)",
    ),
    Table(
        "organisations",
        "owner_key",
        (_t("owner_key"),),
        unique=True,
        description="Organisations (owners)",
    ),
]

#: Every content table by name (the ledger and meta tables are kept apart).
TABLES: dict[str, Table] = {t.name: t for t in _tables}

#: Tables that deliveries write (residences come from the registry instead).
DELIVERY_TABLES: tuple[str, ...] = tuple(t for t in TABLES if t != "residences")

#: Information set (inner ZIP name, FORMATS.md §3) → the store tables it owns. A base extract of
#: the set replaces exactly these tables; a deletion file of the set deletes from all of them.
#: Tables a reader returns for a set are added to this at apply time, so an unknown set still works.
SET_TABLES: dict[str, tuple[str, ...]] = {
    "markreglerandebestammelse": ("provisions", "affected_properties", "decisions"),
    "bestammelse": ("provisions", "affected_properties", "decisions"),
    "inskrivningsfastighet": ("inskrivningsfastighet",),
    "inskrivet_agande": ("agande", "forvarv", "fang", "overlatelse"),
    "inskrivetagande": ("agande", "forvarv", "fang", "overlatelse"),
    "agande": ("agande", "forvarv", "fang", "overlatelse"),
    "avtalsrattighet": ("avtalsrattighet",),
    "inteckning": ("inteckning",),
    "anteckning": ("anteckning",),
    "tomtrattsupplatelse": ("tomtrattsupplatelse",),
    "folkbokford_person_organisation": ("persons", "organisations"),
}

#: Names a reader may use for a table → the store table.
TABLE_ALIASES: dict[str, str] = {
    "affected": "affected_properties",
    "berorkrets": "affected_properties",
    "ägande": "agande",
    "förvärv": "forvarv",
}

#: Information subsets (the readers' ``subsets`` frame) → the tables a change of it replaces.
#: Markreglerande bestämmelse has two subsets, orderable and delivered independently (seed 004);
#: an inskrivning record is replaced per information set, so there the "subset" a reader reports
#: is the set's own name and resolves through :data:`SET_TABLES` (see ``vggeo.store.base``).
SUBSET_TABLES: dict[str, tuple[str, ...]] = {
    "basinformation": ("provisions", "decisions"),
    "berorkrets": ("affected_properties",),
}

#: Tables in which the reader writes one row per delivered member whatever subsets it carried,
#: and the columns such a row has without any subset: the identity and what the feature element's
#: own name says (a Berörkrets-only provision still yields a ``provisions`` row of identity and
#: type). A row with nothing beyond these columns belongs to no subset; any further value (an
#: attribute, a non-empty geometry) shows the subset that owns the table was delivered.
MEMBER_COLUMNS: dict[str, tuple[str, ...]] = {
    "provisions": ("provision_id", "provision_type"),
}

#: Columns that identify a natural person. Without ``personal_data=True`` the store never writes
#: them, in any owner table (the readers already redact; this is the store's own guarantee).
IDENTIFYING_COLUMNS: frozenset[str] = frozenset(
    {
        "personnummer",
        "personal_number",
        "idnummer",
        "id_number",
        "owner_idnumber",
        "annat_id",
        "annatid",
        "owner_other_id",
        "fornamn",
        "förnamn",
        "first_name",
        "given_name",
        "mellannamn",
        "middle_name",
        "efternamn",
        "last_name",
        "surname",
        "full_name",
        "care_of",
        "co_adress",
    }
)
#: Further columns that are personal data in the ``persons`` table (a natural person's address).
PERSON_ADDRESS_COLUMNS: frozenset[str] = frozenset(
    {
        "name",
        "adress",
        "address",
        "utdelningsadress",
        "postnummer",
        "postal_code",
        "postort",
        "postal_town",
        "city",
        "street",
    }
)
PERSONAL_COLUMNS: dict[str, frozenset[str]] = {
    "persons": IDENTIFYING_COLUMNS | PERSON_ADDRESS_COLUMNS,
    "agande": IDENTIFYING_COLUMNS,
    "forvarv": IDENTIFYING_COLUMNS,
    "fang": IDENTIFYING_COLUMNS,
    "overlatelse": IDENTIFYING_COLUMNS,
    "organisations": IDENTIFYING_COLUMNS,  # care_of names a person
}


def kind_of(series: pd.Series) -> str:
    """The store kind of a pandas column (see the table in the module docstring)."""
    dt = series.dtype
    if isinstance(dt, pd.CategoricalDtype):
        return kind_of(pd.Series(dt.categories)) if len(dt.categories) else "text"
    if pd.api.types.is_bool_dtype(dt):
        return "bool"
    if pd.api.types.is_integer_dtype(dt):
        return "int"
    if pd.api.types.is_float_dtype(dt):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dt):
        return "datetime"
    if pd.api.types.is_string_dtype(dt) and not dt == object:  # noqa: E721
        return "text"
    # object columns: lists/dicts go to JSON, anything else is text
    sample = series.dropna()
    if len(sample) and isinstance(sample.iloc[0], list | tuple | dict | np.ndarray):
        return "json"
    if len(sample) and isinstance(sample.iloc[0], bool | np.bool_):
        return "bool"
    return "text"


def dtype_name(series: pd.Series) -> str:
    """The pandas dtype to restore on read, as text kept in ``vggeo_columns``.

    Plain dtypes are their pandas names (``Int16``, ``string``, ``datetime64[ms]`` …);
    categoricals are ``category:`` + JSON of their categories; Arrow types (``list<int64>``
    from the registry's ``number``) are ``arrow:`` + the base64 of an Arrow schema.
    """
    dt = series.dtype
    if isinstance(dt, pd.CategoricalDtype):
        return category_dtype_name(dt)
    if isinstance(dt, pd.ArrowDtype):
        schema = pa.schema([pa.field("v", dt.pyarrow_dtype)])
        return "arrow:" + base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")
    k = kind_of(series)
    if k == "json":
        return "json"
    if k == "text":
        return str(dt) if pd.api.types.is_string_dtype(dt) and dt != object else "str"  # noqa: E721
    if k == "datetime":
        unit = np.datetime_data(dt.base if hasattr(dt, "base") else dt)[0]
        unit = unit if unit in ("s", "ms", "us") else "us"
        tz = getattr(dt, "tz", None)
        return f"datetime64[{unit}, {tz}]" if tz is not None else f"datetime64[{unit}]"
    if k == "bool":
        return "boolean" if series.isna().any() or str(dt) == "boolean" else "bool"
    return str(dt)


def category_dtype_name(dt: pd.CategoricalDtype) -> str:
    cats = dt.categories
    return "category:" + json.dumps(
        {
            "categories": [v.item() if hasattr(v, "item") else v for v in cats.tolist()],
            "dtype": str(cats.dtype),
            "ordered": bool(dt.ordered),
        },
        ensure_ascii=False,
    )


def parse_category(name: str) -> pd.CategoricalDtype | None:
    """The CategoricalDtype of a ``category:`` name (None for a bare ``category``)."""
    if not name.startswith("category:"):
        return None
    doc = json.loads(name[len("category:") :])
    try:
        cats = pd.Index(doc["categories"], dtype=doc["dtype"])
    except (TypeError, ValueError):
        cats = pd.Index(doc["categories"])
    return pd.CategoricalDtype(cats, ordered=doc["ordered"])


def merge_categories(registered: str, incoming: pd.CategoricalDtype) -> str | None:
    """The registered category name extended by new categories, or None if nothing is new."""
    old = parse_category(registered)
    if old is None:
        return category_dtype_name(incoming)
    new = incoming.categories.difference(old.categories, sort=False)
    if len(new) == 0:
        return None
    cats = old.categories.append(pd.Index(new).astype(old.categories.dtype, copy=False))
    return category_dtype_name(pd.CategoricalDtype(cats, ordered=old.ordered))
