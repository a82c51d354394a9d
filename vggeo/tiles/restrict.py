"""A vector tile with only some of its layers and properties: what a caller of lesser rights sees.

Works on finished MVT bytes, so it applies alike to tiles rendered in memory, by PostGIS or read
from an archive, and the full tile can be cached once for everyone. Geometries, feature ids and
feature order are copied unchanged; dropped properties leave nothing behind (their keys and the
values only they used are removed from the layer's tables, which would otherwise still list, say,
every home type in the tile)::

    from vggeo.tiles.restrict import restrict_tile
    public = restrict_tile(mvt, {"residences": {"id", "cluster", "point_count"},
                                 "regulations": None})     # None: every property

Parsing goes through the protobuf classes ``mapbox-vector-tile`` ships (the C implementation of
protobuf does the decoding and encoding).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["restrict_tile"]


def restrict_tile(mvt: bytes, layers: Mapping[str, Collection[str] | None]) -> bytes:
    """Keep the MVT layers named in ``layers`` and, of each, only the listed properties.

    Parameters
    ----------
    mvt
        An uncompressed Mapbox Vector Tile (``b""``: an empty tile).
    layers
        MVT layer name → the property names to keep, or ``None`` to keep the layer whole. Layers
        not named are dropped.

    Returns
    -------
    bytes
        The restricted tile; ``b""`` when no layer is left.
    """
    if not mvt:
        return b""
    # lazy: mapbox_vector_tile is in the server extra
    from mapbox_vector_tile.Mapbox import vector_tile_pb2

    tile = vector_tile_pb2.tile()
    tile.ParseFromString(mvt)
    out = vector_tile_pb2.tile()
    for layer in tile.layers:
        if layer.name not in layers:
            continue
        keep = layers[layer.name]
        if keep is None:
            out.layers.add().CopyFrom(layer)
        else:
            _copy_restricted(layer, out.layers.add(), frozenset(keep))
    return out.SerializeToString()


def _copy_restricted(src: Any, dst: Any, keep: frozenset[str]) -> None:
    # src, dst: vector_tile_pb2.tile.Layer messages (mapbox-vector-tile has no types)
    """Copy layer ``src`` into ``dst`` with only the properties named in ``keep``."""
    dst.version = src.version
    dst.name = src.name
    if src.HasField("extent"):
        dst.extent = src.extent
    key_map: dict[int, int] = {}
    for i, key in enumerate(src.keys):
        if key in keep:
            key_map[i] = len(key_map)
    dst.keys.extend(k for k in src.keys if k in keep)
    value_map: dict[int, int] = {}
    for feature in src.features:
        tags = list(feature.tags)
        new_tags: list[int] = []
        for j in range(0, len(tags) - 1, 2):
            k = key_map.get(tags[j])
            if k is not None:
                v = value_map.setdefault(tags[j + 1], len(value_map))
                new_tags += (k, v)
        f = dst.features.add()
        if feature.HasField("id"):
            f.id = feature.id
        if feature.HasField("type"):
            f.type = feature.type
        f.geometry.extend(feature.geometry)
        f.tags.extend(new_tags)
    for old in sorted(value_map, key=value_map.__getitem__):
        dst.values.add().CopyFrom(src.values[old])
