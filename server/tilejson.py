"""Metadata documents: TileJSON 3.0.0, the MapLibre style, /layers (OGC API documents: ogcapi)."""

from __future__ import annotations

from vggeo.tiles.cluster import CLUSTER_ID_BASE
from vggeo.tiles.layers import (
    HOME_TYPES,
    PROVISION_TYPES,
    Composite,
    Layer,
    fields,
    get_layer,
    members,
    vector_layers,
)

#: Colours of the map page and style (also used by the legend).
HOME_TYPE_COLOURS = {
    "villa": "#1b9e77", "radhus": "#66a61e", "kedjehus": "#a6d854", "lägenhet": "#d95f02",
    "småhus övriga": "#7570b3", "lantbruk": "#a6761d", "lantbruk övriga": "#e6ab02",
    "okänd": "#999999",
}  # fmt: skip
PROVISION_COLOURS = {
    "plan": "#3182bd", "naturvardsbestammelse": "#31a354", "ovrig_bestammelse": "#756bb1",
    "mineralrattighet": "#636363", "utredning": "#e6550d", "fornlamning": "#b15928",
}  # fmt: skip


def _fields(layer: Layer, source) -> dict[str, str]:
    return fields(layer, source.home_types())


def tilejson(layer: Layer | Composite, source, url: str, *, minzoom: int, maxzoom: int) -> dict:
    """TileJSON 3.0.0 of a layer or composite."""
    bounds = source.bounds_wgs84() or (10.0, 55.0, 24.2, 69.1)
    center = [round((bounds[0] + bounds[2]) / 2, 5), round((bounds[1] + bounds[3]) / 2, 5),
              max(minzoom, 4)]  # fmt: skip
    return {
        "tilejson": "3.0.0",
        "name": layer.id,
        "description": layer.description,
        "version": "1.0.0",
        "attribution": "Valueguard; Lantmäteriet",
        "scheme": "xyz",
        "tiles": [url],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": [round(b, 6) for b in bounds],
        "center": center,
        "fillzoom": maxzoom,
        "vector_layers": vector_layers(layer, source.home_types(), minzoom=minzoom,
                                       maxzoom=maxzoom),
    }  # fmt: skip


def layers_doc(layer_ids: list[str], source) -> dict:
    """The /layers document."""
    allowed = source.allowed_values()
    out = []
    for lid in layer_ids:
        lay = get_layer(lid)
        out.append({
            "id": lay.id, "title": lay.title, "description": lay.description,
            "composite": isinstance(lay, Composite),
            "layers": [m.id for m in members(lay)],
            "geometry": sorted({m.geometry for m in members(lay)}),
            "fields": {k: v for m in members(lay) for k, v in _fields(m, source).items()},
            "filters": {f: allowed.get(f) for f in lay.filters},
            "tilejson": f"/tiles/{lay.id}.json",
        })  # fmt: skip
    return {"layers": out, "cluster_id_base": CLUSTER_ID_BASE}


def style(base: str, source) -> dict:
    """A MapLibre GL style (v8) for the composite source."""
    home = ["match", ["get", "home_type"]]
    for k, v in HOME_TYPE_COLOURS.items():
        home += [k, v]
    home.append("#444444")
    prov = ["match", ["get", "provision_type"]]
    for k, v in PROVISION_COLOURS.items():
        prov += [k, v]
    prov.append("#888888")
    bounds = source.bounds_wgs84() or (10.0, 55.0, 24.2, 69.1)
    return {
        "version": 8,
        "name": "vggeo",
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2],
        "zoom": 4,
        "sources": {"vggeo": {"type": "vector", "url": f"{base}/tiles/composite.json",
                              "promoteId": "id"}},
        "layers": [
            {"id": "background", "type": "background", "paint": {"background-color": "#f4f1ea"}},
            {"id": "regulations-fill", "type": "fill", "source": "vggeo",
             "source-layer": "regulations",
             "paint": {"fill-color": prov, "fill-opacity": ["case", ["boolean",
                       ["feature-state", "hover"], False], 0.55, 0.3]}},
            {"id": "regulations-line", "type": "line", "source": "vggeo",
             "source-layer": "regulations", "paint": {"line-color": prov, "line-width": 1}},
            {"id": "residences-clusters", "type": "circle", "source": "vggeo",
             "source-layer": "residences", "filter": ["has", "point_count"],
             "paint": {"circle-color": "#3f4a5c", "circle-opacity": 0.7,
                       "circle-stroke-color": "#ffffff", "circle-stroke-width": 1,
                       "circle-radius": ["interpolate", ["linear"],
                                         ["ln", ["get", "point_count"]], 0.6, 4, 12, 22]}},
            {"id": "residences-points", "type": "circle", "source": "vggeo",
             "source-layer": "residences", "filter": ["!", ["has", "point_count"]],
             "paint": {"circle-color": home, "circle-stroke-color": "#ffffff",
                       "circle-stroke-width": ["case", ["boolean", ["feature-state", "hover"],
                                                        False], 2, 0.5],
                       "circle-radius": ["interpolate", ["linear"], ["zoom"], 8, 3, 16, 6]}},
        ],
    }  # fmt: skip


__all__ = ["tilejson", "style", "layers_doc", "HOME_TYPES", "PROVISION_TYPES"]
