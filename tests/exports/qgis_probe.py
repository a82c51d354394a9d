"""Run by Debian's Python with python3-qgis (not our venv): open a GeoPackage the way QGIS does.

Usage: python3 qgis_probe.py FILE.gpkg — prints one JSON document describing every layer as
QGIS sees it after loading (default style from ``layer_styles`` applied) and the relations the
project knows once all layers are added.
"""

import json
import sys

from qgis.core import (
    QgsApplication,
    QgsProject,
    QgsProviderRegistry,
    QgsVectorLayer,
)


def describe_renderer(renderer):
    if renderer is None:
        return None
    out = {"type": renderer.type()}
    if renderer.type() == "categorizedSymbol":
        out["attribute"] = renderer.classAttribute()
        out["categories"] = [
            {"value": c.value(), "label": c.label(), "color": c.symbol().color().name()}
            for c in renderer.categories()
        ]
    elif renderer.type() == "RuleRenderer":

        def rule(r):
            return {
                "label": r.label(),
                "filter": r.filterExpression(),
                "color": r.symbol().color().name() if r.symbol() else None,
                "children": [rule(c) for c in r.children()],
            }

        out["rules"] = [rule(c) for c in renderer.rootRule().children()]
    out["legend"] = [item.label() for item in renderer.legendSymbolItems()]
    return out


def main(path):
    app = QgsApplication([], False)
    app.initQgis()
    meta = QgsProviderRegistry.instance().providerMetadata("ogr")
    names = [d.name() for d in meta.querySublayers(path)]
    result = {"layers": {}, "relations": []}
    layers = []
    for name in names:
        layer = QgsVectorLayer(f"{path}|layername={name}", name, "ogr")
        fields = layer.fields()
        result["layers"][name] = {
            "valid": layer.isValid(),
            "count": layer.featureCount(),
            "crs": layer.crs().authid() if layer.isSpatial() else None,
            "spatial": layer.isSpatial(),
            "renderer": describe_renderer(layer.renderer()) if layer.isSpatial() else None,
            "aliases": {f.name(): layer.attributeAlias(i) for i, f in enumerate(fields)},
            "styles_in_db": layer.listStylesInDatabase()[0],
        }
        layers.append(layer)
    QgsProject.instance().addMapLayers(layers)
    for rel in QgsProject.instance().relationManager().relations().values():
        result["relations"].append(
            {
                "name": rel.name(),
                "valid": rel.isValid(),
                "parent": rel.referencedLayer().name() if rel.referencedLayer() else None,
                "child": rel.referencingLayer().name() if rel.referencingLayer() else None,
                "fields": [[p.referencingField(), p.referencedField()] for p in rel.fieldPairs()],
            }
        )
    del meta
    # The project embedded in the GeoPackage: layers, styles and relations as QGIS opens them.
    project = QgsProject.instance()
    project.clear()
    result["project"] = {
        "read": project.read(f"geopackage:{path}?projectName=vggeo"),
        "crs": project.crs().authid(),
        "layers": {},
        "relations": [],
    }
    for layer in project.mapLayers().values():
        result["project"]["layers"][layer.name()] = {
            "valid": layer.isValid(),
            "count": layer.featureCount(),
            "renderer": layer.renderer().type() if layer.isSpatial() else None,
            "visible": project.layerTreeRoot().findLayer(layer.id()).isVisible(),
        }
    for rel in project.relationManager().relations().values():
        related = {}
        for feature in rel.referencedLayer().getFeatures():
            n = sum(1 for _ in rel.getRelatedFeatures(feature))
            if n:
                related[feature["provision_id"]] = n
        result["project"]["relations"].append(
            {
                "name": rel.name(),
                "valid": rel.isValid(),
                "parent": rel.referencedLayer().name(),
                "child": rel.referencingLayer().name(),
                "related": related,
            }
        )
    print(json.dumps(result))
    app.exitQgis()


if __name__ == "__main__":
    main(sys.argv[1])
