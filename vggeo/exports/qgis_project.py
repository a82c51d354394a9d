"""A QGIS project stored inside the exported GeoPackage (table ``qgis_projects``).

Styles in ``layer_styles`` reach every QGIS version, but a *relation* between layers is project
state: QGIS 3.22 (Debian 12) neither discovers foreign keys of OGR layers (that came in 3.28) nor
resolves the relations carried in a style on its own. A project embedded in the GeoPackage —
QGIS' own "save project to GeoPackage" storage — carries both: the Browser lists it under the
file, and opening it gives every layer styled, in a sensible drawing order, with the relations
provisions → affected properties / decisions ready for forms and "related features".

No library writes ``.qgs``; the document below holds only what QGIS needs and fills in itself
otherwise (it is read back by QGIS in the test suite). Layer sources are relative to the
GeoPackage (``./<file>.gpkg|layername=…``), as QGIS writes them: renaming the file means
re-pointing the layers, which QGIS offers to do.
"""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime

from lxml import etree

from vggeo.crs import get_crs
from vggeo.exports.styles import LayerStyle, RelationSpec

__all__ = ["PROJECT_NAME", "write_project"]

PROJECT_NAME = "vggeo"

#: Drawing order: points above polygons, per-type layers hidden by default (they duplicate
#: ``provisions``), attribute tables last.
_GEOMETRY = {"Point": ("Point", "Point"), "MultiPolygon": ("Polygon", "MultiPolygon")}


def _srs(parent: etree._Element, authid: str) -> None:
    """A ``spatialrefsys`` QGIS accepts: WKT (from PROJ, via vggeo.crs) plus the EPSG id."""
    crs = get_crs(authid)
    srs = etree.SubElement(parent, "spatialrefsys")
    etree.SubElement(srs, "wkt").text = crs.pyproj_crs.to_wkt()
    etree.SubElement(srs, "srid").text = str(crs.epsg)
    etree.SubElement(srs, "authid").text = authid
    etree.SubElement(srs, "description").text = crs.name
    etree.SubElement(srs, "geographicflag").text = "true" if crs.is_geographic else "false"


def layer_id(name: str) -> str:
    """A stable layer id; QGIS ignores ids of 10 characters or fewer (``residences``!)."""
    return f"vggeo_{name}"


def build_project(
    file_name: str,
    layers: Sequence[tuple[str, str | None, LayerStyle]],
    relations: Sequence[RelationSpec],
    crs_authid: str,
) -> str:
    """The ``.qgs`` XML for ``layers`` (name, geometry type or None, style) of ``file_name``."""
    root = etree.Element("qgis", projectname=PROJECT_NAME, version="3.22.0")
    etree.SubElement(root, "title").text = "vggeo export"
    # QGIS reads <projectCrs> only when this (historic "on the fly reprojection") flag is set.
    props = etree.SubElement(etree.SubElement(root, "properties"), "SpatialRefSys")
    etree.SubElement(props, "ProjectionsEnabled", type="int").text = "1"
    _srs(etree.SubElement(root, "projectCrs"), crs_authid)
    tree = etree.SubElement(root, "layer-tree-group")
    rel_parent = etree.SubElement(root, "relations")
    for rel in relations:
        el = etree.SubElement(
            rel_parent,
            "relation",
            id=rel.id,
            name=rel.name,
            strength="Association",
            referencingLayer=layer_id(rel.child),
            referencedLayer=layer_id(rel.parent),
        )
        etree.SubElement(
            el, "fieldRef", referencingField=rel.child_field, referencedField=rel.parent_field
        )
    project_layers = etree.SubElement(root, "projectlayers")
    for name, geometry, style in layers:
        source = f"./{file_name}|layername={name}"
        visible = not name.startswith("provisions_")
        etree.SubElement(
            tree,
            "layer-tree-layer",
            id=layer_id(name),
            name=name,
            source=source,
            providerKey="ogr",
            expanded="0" if geometry is None else "1",
            checked="Qt::Checked" if visible else "Qt::Unchecked",
        )
        attrs = {"type": "vector", "styleCategories": "AllStyleCategories"}
        if geometry is None:
            attrs.update(geometry="No geometry", wkbType="NoGeometry")
        else:
            attrs.update(geometry=_GEOMETRY[geometry][0], wkbType=_GEOMETRY[geometry][1])
        ml = etree.SubElement(project_layers, "maplayer", attrs)
        etree.SubElement(ml, "id").text = layer_id(name)
        etree.SubElement(ml, "datasource").text = source
        etree.SubElement(ml, "layername").text = name
        if geometry is not None:
            _srs(etree.SubElement(ml, "srs"), crs_authid)
        etree.SubElement(ml, "provider", encoding="UTF-8").text = "ogr"
        # The layer's default style, as QGIS would embed it: the QML root's children.
        qml = etree.fromstring(style.qml.split("\n", 1)[1].encode("utf-8"))
        for child in list(qml):  # a copy: appending moves the element out of `qml`
            if child.tag not in ("referencedLayers", "referencingLayers"):
                ml.append(child)
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def write_project(
    conn: sqlite3.Connection,
    file_name: str,
    layers: Sequence[tuple[str, str | None, LayerStyle]],
    relations: Sequence[RelationSpec],
    crs_authid: str,
    *,
    now: datetime,
) -> None:
    """Store the project in ``qgis_projects`` the way QGIS does (zipped ``.qgs``, hex text)."""
    qgs = build_project(file_name, layers, relations, crs_authid)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{PROJECT_NAME}.qgs", qgs)
    meta: Mapping[str, str] = {
        "last_modified_time": now.strftime("%Y-%m-%dT%H:%M:%S"),
        "last_modified_user": "vggeo",
    }
    conn.execute(
        "CREATE TABLE IF NOT EXISTS qgis_projects(name TEXT PRIMARY KEY, metadata BLOB, "
        "content BLOB)"
    )
    conn.execute(
        "INSERT OR REPLACE INTO qgis_projects VALUES (?, ?, ?)",
        (PROJECT_NAME, json.dumps(meta), buf.getvalue().hex()),
    )
