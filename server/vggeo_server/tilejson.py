"""Metadata documents: TileJSON 3.0.0, the MapLibre style, /layers (OGC API documents: ogcapi)."""

from __future__ import annotations

import contextlib
from typing import Any

from vggeo.tiles.backends.archive import ArchiveSource
from vggeo.tiles.backends.base import TileSource
from vggeo.tiles.cluster import CLUSTER_ID_BASE
from vggeo.tiles.layers import (
    HOME_TYPES,
    LAYERS,
    PROVISION_TYPES,
    Composite,
    Layer,
    fields,
    get_layer,
    layer_ids,
    members,
    slug,
    vector_layers,
)
from vggeo_server import basemap as bm

#: Colours of the map page and style (also used by the legend).
HOME_TYPE_COLOURS = {
    "villa": "#1b9e77",
    "radhus": "#66a61e",
    "kedjehus": "#a6d854",
    "lägenhet": "#d95f02",
    "småhus övriga": "#7570b3",
    "lantbruk": "#a6761d",
    "lantbruk övriga": "#e6ab02",
    "okänd": "#999999",
}
PROVISION_COLOURS = {
    "plan": "#3182bd",
    "naturvardsbestammelse": "#31a354",
    "ovrig_bestammelse": "#756bb1",
    "mineralrattighet": "#636363",
    "utredning": "#e6550d",
    "fornlamning": "#b15928",
}


def _fields(layer: Layer, source: TileSource) -> dict[str, str]:
    return fields(layer, source.home_types())


def served_layer_ids(layer_ids: list[str], source: TileSource) -> list[str]:
    """The layers of ``layer_ids`` the backend answers: all of them, except for a tile archive,
    which answers only what it holds (so nothing listed here ever 404s)."""
    served = getattr(source, "served_layers", None)
    if served is None:
        return list(layer_ids)
    held = set(served())
    return [lid for lid in layer_ids if lid in held]


def zoom_range(source: TileSource, minzoom: int, maxzoom: int) -> tuple[int, int]:
    """Zooms to advertise: the configured range, or an archive's own (clients overzoom past
    its deepest zoom, which is what keeps z15–16 of a z14 archive from going blank)."""
    if isinstance(source, ArchiveSource):
        return source.minzoom, source.maxzoom
    return minzoom, maxzoom


def _archive_vector_layers(layer: Layer | Composite, source: ArchiveSource) -> list[dict]:
    """An archive's own vector_layers, with TileJSON's field descriptions where vggeo knows
    the field (the archive records MBTiles types)."""
    out = []
    for vl in source.vector_layers(layer):
        known = {}
        with contextlib.suppress(KeyError):
            known = fields(LAYERS[vl["id"]], source.home_types())
        out.append(
            {
                "id": vl["id"],
                "description": vl.get("description", ""),
                "fields": {k: known.get(k, v) for k, v in vl.get("fields", {}).items()},
                "minzoom": max(int(vl.get("minzoom", source.minzoom)), source.minzoom),
                "maxzoom": min(int(vl.get("maxzoom", source.maxzoom)), source.maxzoom),
            }
        )
    return out


def tilejson(
    layer: Layer | Composite, source: TileSource, url: str, *, minzoom: int, maxzoom: int
) -> dict:
    """TileJSON 3.0.0 of a layer or composite (of a tile archive: its own zooms and layers)."""
    bounds = source.bounds_wgs84() or (10.0, 55.0, 24.2, 69.1)
    minzoom, maxzoom = zoom_range(source, minzoom, maxzoom)
    center = [
        round((bounds[0] + bounds[2]) / 2, 5),
        round((bounds[1] + bounds[3]) / 2, 5),
        max(minzoom, min(maxzoom, 4)),
    ]
    if isinstance(source, ArchiveSource):
        layers = _archive_vector_layers(layer, source)
    else:
        layers = vector_layers(layer, source.home_types(), minzoom=minzoom, maxzoom=maxzoom)
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
        "vector_layers": layers,
    }


def cluster_count_fields(source: TileSource) -> dict[str, str]:
    """Home type → the clusters' ``count_<home type>`` field that counts it."""
    return {t: f"count_{slug(t)}" for t in source.home_types()}


def layers_doc(layer_ids: list[str], source: TileSource) -> dict:
    """The /layers document: the layers the backend answers, their fields and filters.

    ``filter_mode`` says who filters: ``server`` (filter parameters on tile URLs) or, for a
    tile archive, ``client`` (the map filters what it draws; only filters that are exact at
    every zoom are offered).
    """
    allowed = source.allowed_values()
    out = []
    for lid in served_layer_ids(layer_ids, source):
        lay = get_layer(lid)
        filters: dict[str, list[str] | None]
        if isinstance(source, ArchiveSource):
            field_map = {
                k: v for vl in _archive_vector_layers(lay, source) for k, v in vl["fields"].items()
            }
            filters = {f: allowed[f] for f in lay.filters if f in allowed}
        else:
            field_map = {k: v for m in members(lay) for k, v in _fields(m, source).items()}
            filters = {f: allowed.get(f) for f in lay.filters}
        out.append(
            {
                "id": lay.id,
                "title": lay.title,
                "description": lay.description,
                "composite": isinstance(lay, Composite),
                "layers": [m.id for m in members(lay)],
                "geometry": sorted({m.geometry for m in members(lay)}),
                "fields": field_map,
                "filters": filters,
                "tilejson": f"/tiles/{lay.id}.json",
            }
        )
    return {
        "layers": out,
        "cluster_id_base": CLUSTER_ID_BASE,
        "filter_mode": getattr(source, "filter_mode", "server"),
        "cluster_count_fields": cluster_count_fields(source),
    }


#: Cluster sizes and labels read this count (the map page swaps in a sum of count_<home type>
#: fields when it filters home types itself).
POINT_COUNT = ["get", "point_count"]
#: Layers a click or hover picks (the map page reads this list from the style's metadata).
INTERACTIVE = ["residences-points", "residences-clusters", "regulations-fill"]


def cluster_radius(count: list) -> list:
    """Circle radius of a cluster: grows with the log of its count."""
    return ["interpolate", ["linear"], ["ln", ["max", count, 1]], 0.6, 8, 12, 26]


def cluster_label(count: list) -> list:
    """Text of a cluster: the exact count below 1 000, then 1.2k, 15k …"""
    return [
        "case",
        [">=", count, 10_000],
        ["concat", ["to-string", ["round", ["/", count, 1000]]], "k"],
        [">=", count, 1000],
        [
            "concat",
            ["number-format", ["/", count, 1000], {"locale": "en", "max-fraction-digits": 1}],
            "k",
        ],
        ["to-string", count],
    ]


def data_source_layer(source: TileSource) -> str:
    """The layer the map draws: the composite, or what an archive holds instead."""
    served = served_layer_ids([*layer_ids()], source)
    return "composite" if "composite" in served else served[0]


def style(base: str, source: TileSource, *, basemap: str = "builtin") -> dict:
    """A MapLibre GL style (v8): residences and regulations over a basemap.

    ``basemap`` is ``builtin`` (the offline basemap this server serves), ``none``, or the URL of
    an external MapLibre style; with a URL this style carries only the data layers and names the
    basemap in ``metadata["vggeo:basemap"]`` (the map page draws the data on top of it).
    """
    home = ["match", ["get", "home_type"]]
    for k, v in HOME_TYPE_COLOURS.items():
        home += [k, v]
    home.append("#444444")
    prov = ["match", ["get", "provision_type"]]
    for k, v in PROVISION_COLOURS.items():
        prov += [k, v]
    prov.append("#888888")
    bounds = source.bounds_wgs84() or (10.0, 55.0, 24.2, 69.1)
    drawn = get_layer(data_source_layer(source))
    tables = {m.table: m.id for m in members(drawn)}  # source-layer of each table
    sources: dict = {
        "vggeo": {"type": "vector", "promoteId": "id", "url": f"{base}/tiles/{drawn.id}.json"}
    }
    below: list[dict] = []
    labels: list[dict] = []
    top: list[dict] = []
    if basemap == bm.BUILTIN:
        sources["basemap"] = {"type": "vector", "url": f"{base}/basemap.json"}
        below, labels, top = bm.style_layers(), bm.label_layers(), bm.major_label_layers()
    elif basemap == bm.NONE:
        below = [{"id": "background", "type": "background", "paint": {"background-color": bm.LAND}}]
    data: list[dict[str, Any]] = []
    if "provisions" in tables:
        data += [
            {
                "id": "regulations-fill",
                "type": "fill",
                "source": "vggeo",
                "source-layer": tables["provisions"],
                "paint": {
                    "fill-color": prov,
                    "fill-opacity": [
                        "case",
                        ["boolean", ["feature-state", "hover"], False],
                        0.55,
                        0.3,
                    ],
                },
            },
            {
                "id": "regulations-line",
                "type": "line",
                "source": "vggeo",
                "source-layer": tables["provisions"],
                "paint": {"line-color": prov, "line-width": 1},
            },
        ]
    clusters: list[dict[str, Any]] = []
    if "residences" in tables:
        data += [
            {
                "id": "residences-clusters",
                "type": "circle",
                "source": "vggeo",
                "source-layer": "residences",
                "filter": ["has", "point_count"],
                "paint": {
                    "circle-color": "#3f4a5c",
                    "circle-opacity": 0.75,
                    "circle-stroke-color": "#ffffff",
                    "circle-stroke-width": 1,
                    "circle-radius": cluster_radius(POINT_COUNT),
                },
            },
            {
                "id": "residences-points",
                "type": "circle",
                "source": "vggeo",
                "source-layer": "residences",
                "filter": ["!", ["has", "point_count"]],
                "paint": {
                    "circle-color": home,
                    "circle-stroke-color": "#ffffff",
                    "circle-stroke-width": [
                        "case",
                        ["boolean", ["feature-state", "hover"], False],
                        2,
                        0.5,
                    ],
                    "circle-radius": ["interpolate", ["linear"], ["zoom"], 8, 3, 16, 6],
                },
            },
        ]
        clusters = [
            {
                "id": "residences-cluster-count",
                "type": "symbol",
                "source": "vggeo",
                "source-layer": "residences",
                "filter": ["has", "point_count"],
                "layout": {
                    "text-field": cluster_label(POINT_COUNT),
                    "text-font": ["Noto Sans Bold"],
                    "text-size": 11,
                    # Always drawn; place names make way for them.
                    "text-allow-overlap": True,
                    "text-ignore-placement": False,
                },
                "paint": {"text-color": "#ffffff"},
            },
        ]
    doc = {
        "version": 8,
        "name": "vggeo",
        "metadata": {
            "vggeo:basemap": basemap,
            "vggeo:interactive": [i for i in INTERACTIVE if any(d["id"] == i for d in data)],
        },
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2],
        "zoom": 4,
        "sources": sources,
        "layers": [*below, *data, *labels, *clusters, *top],
    }
    return doc


__all__ = [
    "tilejson",
    "style",
    "layers_doc",
    "served_layer_ids",
    "zoom_range",
    "HOME_TYPES",
    "PROVISION_TYPES",
]
