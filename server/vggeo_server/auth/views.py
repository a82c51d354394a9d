"""A caller's view of a tile layer, applied to tiles (with their cache) and to metadata documents.

:func:`layer_view` turns an :class:`~vggeo_server.auth.policy.Access` and a layer (or composite) into a
:class:`LayerView`: the MVT layers the caller sees and, of each, the properties. Tiles are
rendered once for everyone and restricted afterwards (:func:`vggeo.tiles.restrict.restrict_tile`);
a restricted tile is cached under the full tile's key plus the view's key, so a tile cached for
one class of caller is never served to a caller of another class, and callers of the same class
share entries. Metadata documents (TileJSON ``vector_layers``, tileset ``layers``, the MapLibre
style, ``/layers``) are filtered with the same view, so nothing is advertised that the caller
would not get.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass

from vggeo.tiles.cache import CachedTile, compress
from vggeo.tiles.grids import Grid
from vggeo.tiles.layers import Composite, Filters, Layer, fields, get_layer, members
from vggeo.tiles.restrict import restrict_tile
from vggeo.tiles.service import TileService
from vggeo_server.auth.policy import FILTER_FIELDS, Access, AccessDenied, table_policy

__all__ = ["LayerView", "layer_view", "view_tile", "cached_view_tile"]


@dataclass(frozen=True)
class LayerView:
    """What of a layer or composite one caller sees.

    Attributes
    ----------
    layers
        (MVT layer id, visible property names or ``None`` for all) of each visible member.
    full
        True when the caller sees the whole layer (the tile bytes are the full tile's).
    """

    layers: tuple[tuple[str, frozenset[str] | None], ...]
    full: bool

    @property
    def key(self) -> str:
        """Canonical text of the view: part of a restricted tile's cache key."""
        return ";".join(
            f"{lid}:{'*' if f is None else ','.join(sorted(f))}" for lid, f in self.layers
        )

    def as_mapping(self) -> dict[str, frozenset[str] | None]:
        return dict(self.layers)

    def sees(self, layer_id: str | None) -> bool:  # None: a document entry without an id
        return layer_id in self.as_mapping()

    def sees_field(self, layer_id: str | None, field: str) -> bool:
        mapping = self.as_mapping()
        if layer_id not in mapping:
            return False
        allowed = mapping[layer_id]
        return allowed is None or field in allowed

    # --- documents ---------------------------------------------------------------------------

    def vector_layers(self, entries: list[dict]) -> list[dict]:
        """TileJSON ``vector_layers`` (``fields``) or tileset ``layers`` (``propertiesSchema``)
        entries of visible layers, with visible fields only."""
        if self.full:
            return entries
        out = []
        for entry in entries:
            lid = entry.get("id")
            if not self.sees(lid):
                continue
            entry = dict(entry)
            if isinstance(entry.get("fields"), dict):
                entry["fields"] = {
                    k: v for k, v in entry["fields"].items() if self.sees_field(lid, k)
                }
            schema = entry.get("propertiesSchema")
            if isinstance(schema, dict) and isinstance(schema.get("properties"), dict):
                entry["propertiesSchema"] = {
                    **schema,
                    "properties": {
                        k: v for k, v in schema["properties"].items() if self.sees_field(lid, k)
                    },
                }
            out.append(entry)
        return out

    def style_layers(self, layers: list[dict], source: str) -> list[dict]:
        """Style layers minus those drawing an MVT layer of ``source`` the caller cannot see."""
        if self.full:
            return layers
        return [
            la for la in layers if la.get("source") != source or self.sees(la.get("source-layer"))
        ]


def layer_view(access: Access, layer: Layer | Composite) -> LayerView:
    """The caller's view of ``layer``.

    Raises
    ------
    AccessDenied
        When the caller sees none of its members (401 without credentials, 403 with).
    """
    visible: list[tuple[str, frozenset[str] | None]] = []
    missing = None
    for m in members(layer):
        if access.can_read(m.table):
            visible.append((m.id, access.fields(m.table)))
        elif missing is None:
            missing = access.denial(table_policy(m.table).scope, f"layer {m.id!r}")
    if not visible:
        raise missing or access.denial("unclassified", f"layer {layer.id!r}")
    full = missing is None and all(f is None for _, f in visible)
    return LayerView(tuple(visible), full)


def _view_key(
    service: TileService,
    layer: Layer | Composite,
    z: int,
    x: int,
    y: int,
    grid: str | Grid,
    filters: Filters | None,
    view: LayerView,
) -> tuple:
    return (*service.key(layer.id, z, x, y, grid=grid, filters=filters), "view", view.key)


def cached_view_tile(
    service: TileService,
    layer: Layer | Composite,
    z: int,
    x: int,
    y: int,
    *,
    grid: str | Grid,
    filters: Filters | None,
    view: LayerView,
) -> CachedTile | None:
    """The caller's tile if the cache holds it (never renders: safe on the event loop)."""
    if view.full:
        return service.cached(layer.id, z, x, y, grid=grid, filters=filters)
    return service.cache.get(_view_key(service, layer, z, x, y, grid, filters, view))


def view_tile(
    service: TileService,
    layer: Layer | Composite,
    z: int,
    x: int,
    y: int,
    *,
    grid: str | Grid,
    filters: Filters | None,
    view: LayerView,
) -> CachedTile:
    """The caller's tile: the full tile (rendered and cached once for everyone), restricted to
    the view and cached under the view's key."""
    if view.full:
        return service.get(layer.id, z, x, y, grid=grid, filters=filters)
    key = _view_key(service, layer, z, x, y, grid, filters, view)  # data version first
    hit = service.cache.get(key)
    if hit is not None:
        return hit
    full = service.get(layer.id, z, x, y, grid=grid, filters=filters)
    tile = (
        full
        if full.empty
        else compress(restrict_tile(gzip.decompress(full.body), view.as_mapping()), version=key[0])
    )
    if service.version == key[0]:  # not if the store was reloaded meanwhile
        service.cache.put(key, tile)
    return tile


# --- metadata documents ----------------------------------------------------------------------


def _member_fields(layer: Layer | Composite, home_types: Sequence[str]) -> dict[str, set[str]]:
    return {m.id: set(fields(m, home_types)) for m in members(layer)}


def restrict_layers_doc(doc: dict, access: Access, home_types: Sequence[str]) -> dict:
    """The ``/layers`` document as the caller may see it: layers it cannot see left out, and of
    the others only the visible members, fields and filters."""
    if not access.enforced:
        return doc
    out = []
    for entry in doc["layers"]:
        layer = get_layer(entry["id"])
        try:
            view = layer_view(access, layer)
        except AccessDenied:
            continue
        if not view.full:
            owners = _member_fields(layer, home_types)
            entry = {**entry, "layers": [m for m in entry["layers"] if view.sees(m)]}
            entry["fields"] = {
                k: v
                for k, v in entry["fields"].items()
                if any(k in owned and view.sees_field(m, k) for m, owned in owners.items())
            }
        entry["filters"] = {
            k: v
            for k, v in entry["filters"].items()
            if access.field_scope(*FILTER_FIELDS[k]) is None
        }
        out.append(entry)
    return {**doc, "layers": out}


def visible_style_layers(
    layers: list[dict], access: Access, *, source: str = "vggeo", composite: str = "composite"
) -> list[dict]:
    """Style layers minus those drawing data of ``source`` (the composite) the caller cannot
    see."""
    if not access.enforced:
        return layers
    try:
        view = layer_view(access, get_layer(composite))
    except AccessDenied:
        return [la for la in layers if la.get("source") != source]
    return view.style_layers(layers, source)


def feature_properties(
    access: Access, table: str, requested: list[str] | None, columns: list[str]
) -> list[str] | None:
    """The properties to read for a features request: those asked for (403 when one is hidden
    from the caller), or, when none were named, every one the caller may see (``None``: all)."""
    allowed = access.fields(table)
    if allowed is None:
        return requested
    if requested is None:
        return [c for c in columns if c in allowed]
    for name in requested:
        if name in columns and name not in allowed:
            raise access.denial(
                access.field_scope(table, name) or "unclassified", f"the property {name!r}"
            )
    return requested
