"""Default QGIS styles (QML) and their SLD twins for the exported layers.

QGIS reads a layer's default style from the GeoPackage's ``layer_styles`` table when it opens the
layer (QGIS' "GeoPackage styling" convention, the table QGIS itself creates with *Save as
default*). The styles are generated here, not copied from a QGIS session, because the categories
depend on the data: only the home types, provision types and statuses present get a legend entry.
No library writes QML, so the small XML documents are built by hand with lxml; the element and
option names are those QGIS 3.x writes (``renderer-v2``, ``<Option type="Map">``), and the test
suite opens the result in QGIS itself to check they are applied.

Colours and labels are package data: ``vggeo/data/styles/palette.json`` and ``fields.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files

from lxml import etree

__all__ = [
    "LayerStyle",
    "STYLE_NAME_WIDTH",
    "RelationSpec",
    "field_docs",
    "palette",
    "residences_style",
    "provisions_style",
    "table_style",
]

_QML_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
_QGIS_VERSION = "3.22.0"
_SLD_NS = "http://www.opengis.net/sld"
_SE_NS = "http://www.opengis.net/se"
_OGC_NS = "http://www.opengis.net/ogc"
_NSMAP = {
    None: _SLD_NS,
    "se": _SE_NS,
    "ogc": _OGC_NS,
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}


@lru_cache(maxsize=1)
def palette() -> dict:
    """Colours and labels of the default styles (package data)."""
    return json.loads(files("vggeo").joinpath("data/styles/palette.json").read_text("utf-8"))


@lru_cache(maxsize=1)
def field_docs() -> dict[str, tuple[str, str]]:
    """Column name → (alias, description), for ``gpkg_data_columns`` and QML aliases."""
    raw = json.loads(files("vggeo").joinpath("data/styles/fields.json").read_text("utf-8"))
    return {k: (v[0], v[1]) for k, v in raw.items() if not k.startswith("_")}


@dataclass(frozen=True)
class RelationSpec:
    """A one-to-many relation: ``parent.parent_field`` = ``child.child_field``."""

    id: str
    name: str
    parent: str
    parent_field: str
    child: str
    child_field: str


#: Width of ``layer_styles.styleName`` as QGIS declares it (``TEXT(30)``). QGIS lists styles per
#: layer, so a style's name need not repeat the layer's (``provisions_naturvardsbestammelse``
#: alone is 32 characters).
STYLE_NAME_WIDTH = 30


@dataclass
class LayerStyle:
    """One default style: the QML QGIS applies and an SLD for other clients."""

    name: str
    qml: str
    sld: str
    description: str = ""
    relations: list[RelationSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.name) > STYLE_NAME_WIDTH:
            raise ValueError(
                f"style name {self.name!r} is longer than {STYLE_NAME_WIDTH} "
                "characters (layer_styles.styleName is TEXT(30))"
            )


# --- helpers -----------------------------------------------------------------------------------


def _rgba(hex_color: str, alpha: float = 1.0) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"{r},{g},{b},{round(alpha * 255)}"


def _options(parent: etree._Element, values: dict[str, str]) -> None:
    opt = etree.SubElement(parent, "Option", type="Map")
    for k, v in values.items():
        etree.SubElement(opt, "Option", name=k, type="QString", value=str(v))


def _qml_root() -> etree._Element:
    return etree.Element(
        "qgis",
        version=_QGIS_VERSION,
        styleCategories="AllStyleCategories",
        hasScaleBasedVisibilityFlag="0",
        minScale="100000000",
        maxScale="0",
    )


def _marker_symbol(symbols: etree._Element, name: str, color: str) -> None:
    sym = etree.SubElement(
        symbols, "symbol", name=name, type="marker", alpha="1", clip_to_extent="1", force_rhr="0"
    )
    layer = etree.SubElement(
        sym, "layer", {"class": "SimpleMarker", "enabled": "1", "locked": "0", "pass": "0"}
    )
    _options(
        layer,
        {
            "name": "circle",
            "color": _rgba(color),
            "outline_color": "35,35,35,255",
            "outline_style": "solid",
            "outline_width": "0.2",
            "outline_width_unit": "MM",
            "size": "2",
            "size_unit": "MM",
            "angle": "0",
            "joinstyle": "bevel",
            "scale_method": "diameter",
        },
    )


def _fill_symbol(
    symbols: etree._Element, name: str, color: str, in_force: bool, alpha: float
) -> None:
    sym = etree.SubElement(
        symbols, "symbol", name=name, type="fill", alpha="1", clip_to_extent="1", force_rhr="0"
    )
    layer = etree.SubElement(
        sym, "layer", {"class": "SimpleFill", "enabled": "1", "locked": "0", "pass": "0"}
    )
    _options(
        layer,
        {
            "color": _rgba(color, alpha if in_force else 0.0),
            "style": "solid" if in_force else "no",
            "outline_color": _rgba(color),
            "outline_style": "solid" if in_force else "dash",
            "outline_width": "0.4" if in_force else "0.6",
            "outline_width_unit": "MM",
            "joinstyle": "bevel",
            "border_width_unit": "MM",
        },
    )


def _aliases(root: etree._Element, columns: list[str]) -> None:
    docs = field_docs()
    aliases = etree.SubElement(root, "aliases")
    for i, col in enumerate(columns):
        alias = docs.get(col, ("", ""))[0]
        etree.SubElement(aliases, "alias", field=col, index=str(i), name=alias)


def _relations(root: etree._Element, layer: str, relations: list[RelationSpec]) -> None:
    """QGIS "weak relations": resolved by layer name when both layers are in a project."""
    referenced = etree.SubElement(root, "referencedLayers")  # this layer is the child
    referencing = etree.SubElement(root, "referencingLayers")  # this layer is the parent
    for rel in relations:
        if rel.child == layer:
            parent_el, other = referenced, rel.parent
        elif rel.parent == layer:
            parent_el, other = referencing, rel.child
        else:
            continue
        el = etree.SubElement(
            parent_el,
            "relation",
            {
                "id": rel.id,
                "name": rel.name,
                "strength": "Association",
                "referencingLayer": rel.child,
                "referencedLayer": rel.parent,
                "layerId": other,
                "layerName": other,
                "providerKey": "ogr",
                "dataSource": f"|layername={other}",
            },
        )
        etree.SubElement(
            el, "fieldRef", referencingField=rel.child_field, referencedField=rel.parent_field
        )


def _qml_text(root: etree._Element) -> str:
    body = etree.tostring(root, pretty_print=True, encoding="unicode")
    return f"{_QML_DOCTYPE}\n{body}"


def _qgis_quote(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


# --- SLD -------------------------------------------------------------------------------------


def _sld_root(layer: str) -> tuple[etree._Element, etree._Element]:
    # lxml takes None for the default namespace; lxml-stubs want str keys
    root = etree.Element(
        f"{{{_SLD_NS}}}StyledLayerDescriptor",
        nsmap=_NSMAP,  # type: ignore[arg-type]
        version="1.1.0",
    )
    root.set(
        "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation",
        "http://www.opengis.net/sld http://schemas.opengis.net/sld/1.1.0/StyledLayerDescriptor.xsd",
    )
    nl = etree.SubElement(root, f"{{{_SLD_NS}}}NamedLayer")
    etree.SubElement(nl, f"{{{_SE_NS}}}Name").text = layer
    us = etree.SubElement(nl, f"{{{_SLD_NS}}}UserStyle")
    etree.SubElement(us, f"{{{_SE_NS}}}Name").text = layer
    fts = etree.SubElement(us, f"{{{_SE_NS}}}FeatureTypeStyle")
    return root, fts


def _sld_rule(
    fts: etree._Element, title: str, equals: list[tuple[str, str]] | None, else_rule: bool = False
) -> etree._Element:
    rule = etree.SubElement(fts, f"{{{_SE_NS}}}Rule")
    etree.SubElement(rule, f"{{{_SE_NS}}}Name").text = title
    desc = etree.SubElement(rule, f"{{{_SE_NS}}}Description")
    etree.SubElement(desc, f"{{{_SE_NS}}}Title").text = title
    if equals:
        flt = etree.SubElement(rule, f"{{{_OGC_NS}}}Filter")
        parent = flt
        if len(equals) > 1:
            parent = etree.SubElement(flt, f"{{{_OGC_NS}}}And")
        for prop, value in equals:
            eq = etree.SubElement(parent, f"{{{_OGC_NS}}}PropertyIsEqualTo")
            etree.SubElement(eq, f"{{{_OGC_NS}}}PropertyName").text = prop
            etree.SubElement(eq, f"{{{_OGC_NS}}}Literal").text = str(value)
    elif else_rule:
        etree.SubElement(rule, f"{{{_SE_NS}}}ElseFilter")
    return rule


def _svg(parent: etree._Element, name: str, value: str) -> None:
    p = etree.SubElement(parent, f"{{{_SE_NS}}}SvgParameter", name=name)
    p.text = value


def _sld_point(rule: etree._Element, color: str) -> None:
    ps = etree.SubElement(rule, f"{{{_SE_NS}}}PointSymbolizer")
    g = etree.SubElement(ps, f"{{{_SE_NS}}}Graphic")
    m = etree.SubElement(g, f"{{{_SE_NS}}}Mark")
    etree.SubElement(m, f"{{{_SE_NS}}}WellKnownName").text = "circle"
    f = etree.SubElement(m, f"{{{_SE_NS}}}Fill")
    _svg(f, "fill", color)
    s = etree.SubElement(m, f"{{{_SE_NS}}}Stroke")
    _svg(s, "stroke", "#232323")
    _svg(s, "stroke-width", "0.5")
    etree.SubElement(g, f"{{{_SE_NS}}}Size").text = "7"


def _sld_polygon(rule: etree._Element, color: str, in_force: bool, alpha: float) -> None:
    ps = etree.SubElement(rule, f"{{{_SE_NS}}}PolygonSymbolizer")
    if in_force:
        f = etree.SubElement(ps, f"{{{_SE_NS}}}Fill")
        _svg(f, "fill", color)
        _svg(f, "fill-opacity", f"{alpha:g}")
    s = etree.SubElement(ps, f"{{{_SE_NS}}}Stroke")
    _svg(s, "stroke", color)
    _svg(s, "stroke-width", "1.5" if in_force else "2")
    if not in_force:
        _svg(s, "stroke-dasharray", "6 3")


def _sld_text(root: etree._Element) -> str:
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8").decode(
        "utf-8"
    )


# --- the styles --------------------------------------------------------------------------------


def residences_style(
    layer: str, columns: list[str], home_types: list[str], relations: Sequence[RelationSpec] = ()
) -> LayerStyle:
    """Points categorised by ``home_type``: one colour per type present, then "other"."""
    pal = palette()
    known = pal["home_type"]
    ordered = [h for h in known if h in home_types] + sorted(set(home_types) - set(known))
    root = _qml_root()
    renderer = etree.SubElement(
        root,
        "renderer-v2",
        type="categorizedSymbol",
        attr="home_type",
        symbollevels="0",
        enableorderby="0",
        forceraster="0",
    )
    cats = etree.SubElement(renderer, "categories")
    symbols = etree.SubElement(renderer, "symbols")
    sld, fts = _sld_root(layer)
    for i, ht in enumerate(ordered):
        spec = known.get(ht, pal["home_type_other"])
        label = spec["label"] if ht in known else ht
        etree.SubElement(cats, "category", value=ht, symbol=str(i), label=label, render="true")
        _marker_symbol(symbols, str(i), spec["color"])
        _sld_point(_sld_rule(fts, label, [("home_type", ht)]), spec["color"])
    # An empty value is QGIS' "all other values" category: missing or new home types.
    n = len(ordered)
    other = pal["home_type_other"]
    etree.SubElement(cats, "category", value="", symbol=str(n), label=other["label"], render="true")
    _marker_symbol(symbols, str(n), other["color"])
    _sld_point(_sld_rule(fts, other["label"], None, else_rule=True), other["color"])
    _aliases(root, columns)
    _relations(root, layer, list(relations))
    etree.SubElement(root, "layerGeometryType").text = "0"
    return LayerStyle(
        name="vggeo: by home type",
        qml=_qml_text(root),
        sld=_sld_text(sld),
        description="vggeo default: residences categorised by home type",
        relations=list(relations),
    )


def provisions_style(
    layer: str,
    columns: list[str],
    type_status: list[tuple[str, str]],
    relations: Sequence[RelationSpec] = (),
) -> LayerStyle:
    """Polygons by provision type (colour) and status (filled when in force, dashed otherwise).

    A rule-based renderer with one rule per type and a child rule per status present, so the
    legend reads *type → status*.
    """
    pal = palette()
    known = pal["provision_type"]
    in_force = {s.casefold() for s in pal["status"]["in_force"]}
    alpha = float(pal["status"]["fill_alpha"])
    by_type: dict[str, list[str]] = {}
    for t, s in type_status:
        by_type.setdefault(t, [])
        if s not in by_type[t]:
            by_type[t].append(s)
    types = [t for t in known if t in by_type] + sorted(set(by_type) - set(known))
    root = _qml_root()
    renderer = etree.SubElement(
        root,
        "renderer-v2",
        type="RuleRenderer",
        symbollevels="0",
        enableorderby="0",
        forceraster="0",
    )
    rules = etree.SubElement(renderer, "rules", key="root")
    symbols = etree.SubElement(renderer, "symbols")
    sld, fts = _sld_root(layer)
    k = 0
    for ti, t in enumerate(types):
        spec = known.get(t, pal["provision_type_other"])
        label = spec["label"] if t in known else t
        trule = etree.SubElement(
            rules,
            "rule",
            key=f"type_{ti}",
            label=label,
            filter=f'"provision_type" = {_qgis_quote(t)}',
        )
        # In force first, then the other statuses alphabetically.
        statuses = sorted(by_type[t], key=lambda s: (s.casefold() not in in_force, s))
        for si, s in enumerate(statuses):
            force = s.casefold() in in_force
            etree.SubElement(
                trule,
                "rule",
                key=f"type_{ti}_status_{si}",
                symbol=str(k),
                label=s or "(no status)",
                filter=f'"status" = {_qgis_quote(s)}' if s else '"status" IS NULL',
            )
            _fill_symbol(symbols, str(k), spec["color"], force, alpha)
            rule = _sld_rule(fts, f"{label}: {s}", [("provision_type", t), ("status", s)])
            _sld_polygon(rule, spec["color"], force, alpha)
            k += 1
    other = pal["provision_type_other"]
    etree.SubElement(rules, "rule", key="other", symbol=str(k), label=other["label"], filter="ELSE")
    _fill_symbol(symbols, str(k), other["color"], False, alpha)
    _sld_polygon(_sld_rule(fts, other["label"], None, else_rule=True), other["color"], False, alpha)
    _aliases(root, columns)
    _relations(root, layer, list(relations))
    etree.SubElement(root, "layerGeometryType").text = "2"
    return LayerStyle(
        name="vggeo: by type and status",
        qml=_qml_text(root),
        sld=_sld_text(sld),
        description="vggeo default: provisions by type (colour) and status (fill)",
        relations=list(relations),
    )


def table_style(
    layer: str, columns: list[str], relations: Sequence[RelationSpec] = ()
) -> LayerStyle:
    """An attribute table: aliases and relations only (nothing to draw)."""
    root = _qml_root()
    _aliases(root, columns)
    _relations(root, layer, list(relations))
    etree.SubElement(root, "layerGeometryType").text = "4"
    sld, _ = _sld_root(layer)
    return LayerStyle(
        name="vggeo: fields",
        qml=_qml_text(root),
        sld=_sld_text(sld),
        description="vggeo default: field aliases and relations",
        relations=list(relations),
    )
