"""Layer definitions as data: what each tile layer holds, which attributes, which filters.

A :class:`Layer` reads one store table (``residences`` or ``provisions``), optionally restricted
to one provision type, and carries a fixed list of attributes. A :class:`Composite` bundles
layers into one tile. :class:`Filters` is the parsed, validated, hashable form of the attribute
filters a caller may pass (query parameters in the server, keyword arguments in Python); its
:meth:`Filters.key` is part of the tile cache key.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from vggeo.errors import InputError

__all__ = [
    "Attribute",
    "Layer",
    "Composite",
    "Filters",
    "LAYERS",
    "COMPOSITES",
    "HOME_TYPES",
    "OWNERSHIP_TYPES",
    "PROVISION_TYPES",
    "get_layer",
    "layer_ids",
    "slug",
]

#: Valueguard's home types (seed 000, "Field list"), in the order legends show them.
HOME_TYPES = (
    "villa",
    "radhus",
    "kedjehus",
    "lägenhet",
    "småhus övriga",
    "lantbruk",
    "lantbruk övriga",
    "okänd",
)
#: Valueguard's ownership types.
OWNERSHIP_TYPES = ("äganderätt", "bostadsrätt", "hyresrätt", "tomträtt", "okänd")
#: Provision types of ``docs/contracts.md`` (Lantmäteriet's markreglerande bestämmelser).
PROVISION_TYPES = (
    "plan",
    "naturvardsbestammelse",
    "ovrig_bestammelse",
    "mineralrattighet",
    "utredning",
    "fornlamning",
)

Kind = Literal["int", "str", "bool"]
_YEAR = re.compile(r"-?[0-9]{1,6}", re.ASCII)


@dataclass(frozen=True)
class Attribute:
    """One attribute of a layer's features: source column, MVT value kind, description."""

    name: str
    kind: Kind
    description: str


@dataclass(frozen=True)
class Layer:
    """One tile layer.

    Attributes
    ----------
    id
        URL name and MVT layer name.
    table
        Store table: ``residences`` (points) or ``provisions`` (polygons).
    provision_type
        For per-type regulation layers: the only provision type this layer holds.
    attributes
        Attributes written to every feature (besides the feature id, which is also written as
        the ``id`` property so MapLibre's ``promoteId`` can use it).
    filters
        Names of the filters this layer accepts (see :class:`Filters`).
    """

    id: str
    title: str
    description: str
    table: Literal["residences", "provisions"]
    geometry: Literal["point", "polygon"]
    attributes: tuple[Attribute, ...]
    filters: tuple[str, ...]
    provision_type: str | None = None
    minzoom: int = 0
    maxzoom: int = 16

    @property
    def columns(self) -> list[str]:
        return [a.name for a in self.attributes]


@dataclass(frozen=True)
class Composite:
    """Several layers in one tile (each keeps its own MVT layer name)."""

    id: str
    title: str
    description: str
    members: tuple[str, ...]
    minzoom: int = 0
    maxzoom: int = 16

    @property
    def filters(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for m in self.members:
            seen.update(dict.fromkeys(LAYERS[m].filters))
        return tuple(seen)


RESIDENCE_ATTRIBUTES = (
    Attribute("id", "int", "Valueguard's residence id (also the feature id)."),
    Attribute("home_type", "str", "Home type: " + ", ".join(HOME_TYPES) + "."),
    Attribute("ownership_type", "str", "Ownership: " + ", ".join(OWNERSHIP_TYPES) + "."),
    Attribute("construction_year", "int", "Building year (1909/1929 often mean unknown)."),
    Attribute(
        "municipality_code",
        "str",
        "Valueguard's two-digit municipality code within the "
        "county (the four-digit kommunkod is county_code + municipality_code).",
    ),
)
#: Attributes of cluster features at low zooms (besides ``count_<home type>`` per home type).
CLUSTER_ATTRIBUTES = (
    Attribute("id", "int", "Stable cluster id (≥ 2^52; residence ids are smaller)."),
    Attribute("cluster", "bool", "True on cluster features."),
    Attribute("point_count", "int", "Exact number of residences in the cluster."),
)
PROVISION_ATTRIBUTES = (
    Attribute("id", "int", "Feature id: the first 52 bits of provision_id (a UUID)."),
    Attribute("provision_id", "str", "Lantmäteriet's identity of the provision (UUID)."),
    Attribute("provision_type", "str", "Provision type: " + ", ".join(PROVISION_TYPES) + "."),
    Attribute("status", "str", "Status as delivered (gällande, avregistrerad …)."),
    Attribute("designation", "str", "Aktbeteckning."),
    Attribute("name", "str", "Name of the provision."),
    Attribute("municipality", "str", "Four-digit municipality code."),
    Attribute("plan_type", "str", "Plan type (plans only)."),
)

RESIDENCE_FILTERS = (
    "home_type",
    "ownership_type",
    "construction_year_min",
    "construction_year_max",
)
PROVISION_FILTERS = ("provision_type", "status")

LAYERS: dict[str, Layer] = {
    "residences": Layer(
        "residences",
        "Residences",
        "Homes of Valueguard's registry; clustered at low zooms with "
        "exact counts (point_count, count_<home type>).",
        "residences",
        "point",
        RESIDENCE_ATTRIBUTES,
        RESIDENCE_FILTERS,
        maxzoom=16,
    ),
    "regulations": Layer(
        "regulations",
        "Regulations",
        "All land-regulating provisions (markreglerande bestämmelser), simplified per zoom.",
        "provisions",
        "polygon",
        PROVISION_ATTRIBUTES,
        PROVISION_FILTERS,
    ),
}
for _t in PROVISION_TYPES:
    LAYERS[f"regulations_{_t}"] = Layer(
        f"regulations_{_t}",
        f"Regulations: {_t}",
        f"Provisions of type {_t!r} only.",
        "provisions",
        "polygon",
        PROVISION_ATTRIBUTES,
        ("status",),
        provision_type=_t,
    )

COMPOSITES: dict[str, Composite] = {
    "composite": Composite(
        "composite",
        "Residences and regulations",
        "The residences and regulations layers in one tile.",
        ("residences", "regulations"),
    ),
}


def layer_ids() -> list[str]:
    """Every layer and composite id."""
    return [*LAYERS, *COMPOSITES]


def get_layer(layer_id: str) -> Layer | Composite:
    """A layer or composite by id; :class:`KeyError` names the known ones."""
    found = LAYERS.get(layer_id) or COMPOSITES.get(layer_id)
    if found is None:
        raise KeyError(f"unknown layer {layer_id!r}; known: {', '.join(layer_ids())}")
    return found


def members(layer: Layer | Composite) -> list[Layer]:
    """The plain layers a layer or composite consists of."""
    return [LAYERS[m] for m in layer.members] if isinstance(layer, Composite) else [layer]


_MBTILES_TYPES = {"int": "Number", "str": "String", "bool": "Boolean"}


def fields(layer: Layer, home_types: Sequence[str] = (), *, types: bool = False) -> dict[str, str]:
    """Attribute name → description of a layer's features (clusters' fields included).

    With ``types=True``: name → ``Number``/``String``/``Boolean``, as the MBTiles 1.3 metadata
    ``json`` requires (GDAL types its fields from it); TileJSON 3.0.0 wants descriptions.
    """
    attrs = [*layer.attributes, *(CLUSTER_ATTRIBUTES if layer.table == "residences" else ())]
    out = {a.name: _MBTILES_TYPES[a.kind] if types else a.description for a in attrs}
    if layer.table == "residences":
        for t in home_types:
            out[f"count_{slug(t)}"] = (
                "Number" if types else (f"Clusters: residences of home type {t!r} (omitted if 0).")
            )
    return out


def vector_layers(
    layer: Layer | Composite,
    home_types: Sequence[str] = (),
    *,
    minzoom: int = 0,
    maxzoom: int = 16,
    types: bool = False,
) -> list[dict]:
    """TileJSON (or, with ``types=True``, MBTiles) ``vector_layers`` of a layer or composite."""
    return [
        {
            "id": m.id,
            "description": m.description,
            "fields": fields(m, home_types, types=types),
            "minzoom": max(minzoom, m.minzoom),
            "maxzoom": maxzoom,
        }
        for m in members(layer)
    ]


def slug(value: str) -> str:
    """ASCII property-name form of a code value: ``'småhus övriga'`` → ``'smahus_ovriga'``."""
    ascii_ = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return "".join(c if c.isalnum() else "_" for c in ascii_.lower())


@dataclass(frozen=True)
class Filters:
    """Validated attribute filters. Empty sets and ``None`` mean "no restriction".

    Build with :meth:`parse`, which checks every value against the values the data holds.
    """

    home_type: frozenset[str] = field(default_factory=frozenset)
    ownership_type: frozenset[str] = field(default_factory=frozenset)
    construction_year_min: int | None = None
    construction_year_max: int | None = None
    provision_type: frozenset[str] = field(default_factory=frozenset)
    status: frozenset[str] = field(default_factory=frozenset)

    SET_FIELDS = ("home_type", "ownership_type", "provision_type", "status")

    def key(self) -> str:
        """Canonical text of the active filters ("" when none) — part of the cache key."""
        parts = []
        for name in (
            "home_type",
            "ownership_type",
            "construction_year_min",
            "construction_year_max",
            "provision_type",
            "status",
        ):
            v = getattr(self, name)
            if isinstance(v, frozenset):
                if v:
                    parts.append(f"{name}={','.join(sorted(v))}")
            elif v is not None:
                parts.append(f"{name}={v}")
        return "&".join(parts)

    def __bool__(self) -> bool:
        return bool(self.key())

    def for_table(self, table: str) -> Filters:
        """Only the filters that concern ``table`` (so unrelated filters share cache entries)."""
        if table == "residences":
            return Filters(
                self.home_type,
                self.ownership_type,
                self.construction_year_min,
                self.construction_year_max,
            )
        return Filters(provision_type=self.provision_type, status=self.status)

    @classmethod
    def parse(
        cls,
        raw: Mapping[str, str | Sequence[str] | None],
        *,
        allowed: Mapping[str, Iterable[str]],
        accepted: Iterable[str] | None = None,
    ) -> Filters:
        """Parse raw filter values (comma-separated text or lists) and validate them.

        Parameters
        ----------
        raw
            Filter name → value(s). ``None`` and ``""`` mean "not given".
        allowed
            For set filters: the values the data can hold (an error lists them).
        accepted
            Filter names the layer accepts; others raise :class:`InputError`.

        Raises
        ------
        InputError
            Naming the filter (``field``), the bad value and the allowed values.
        """
        accepted = set(accepted) if accepted is not None else None
        out: dict[str, object] = {}
        for name, value in raw.items():
            if value is None or value == "" or value == []:
                continue
            if accepted is not None and name not in accepted:
                raise InputError(
                    f"filter not accepted by this layer; accepted: {', '.join(sorted(accepted))}",
                    field=name,
                )
            values = [value] if isinstance(value, str) else list(value)
            items = [v.strip() for text in values for v in str(text).split(",") if v.strip()]
            if name in cls.SET_FIELDS:
                ok = set(allowed.get(name, ()))
                bad = [v for v in items if v not in ok]
                if bad:
                    raise InputError(
                        f"unknown value; allowed: {', '.join(sorted(ok)) or '(none in data)'}",
                        field=name,
                        value=bad[0],
                    )
                out[name] = frozenset(items)
            elif name in ("construction_year_min", "construction_year_max"):
                # ASCII digits, bounded: str.isdigit() also accepts "²", which int() refuses,
                # and int() of thousands of digits raises too.
                if len(items) != 1 or not _YEAR.fullmatch(items[0]):
                    raise InputError("must be one integer year", field=name, value=str(value)[:50])
                year = int(items[0])
                if not 1000 <= year <= 2200:
                    raise InputError("year out of range 1000…2200", field=name, value=year)
                out[name] = year
            else:
                raise InputError("unknown filter", field=name)
        lo, hi = out.get("construction_year_min"), out.get("construction_year_max")
        if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
            raise InputError(
                f"construction_year_min ({lo}) is greater than construction_year_max ({hi})",
                field="construction_year_min",
            )
        # each value was parsed and checked for its field above; the dict cannot say so
        return cls(**out)  # type: ignore[arg-type]
