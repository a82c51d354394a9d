"""Request parameters parsed once: by the time a route body runs it holds a resolved layer, a
tile checked against its grid, and validated filters.

The dependencies are ``async`` although they do no I/O: they are microseconds of pure Python,
and as sync functions FastAPI would send each through the thread pool (a hop of ~50 µs each).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request, params
from fastapi.dependencies.utils import get_flat_params

from vggeo.errors import InputError, TileError
from vggeo.features import FeatureReader
from vggeo.tiles.grids import Grid, get_grid, grid_ids
from vggeo.tiles.layers import Composite, Filters, Layer, get_layer, layer_ids
from vggeo.tiles.service import TileService
from vggeo_server.auth.middleware import get_access
from vggeo_server.auth.policy import Access
from vggeo_server.auth.views import layer_view
from vggeo_server.errors import NotFound
from vggeo_server.settings import bind_url

TILE_FORMATS = ("mvt", "pbf")
#: What the OpenAPI document says a tile index looks like (the parsers below enforce it and more:
#: FastAPI's own pattern check would answer with its generic message).
_DIGITS = {"pattern": "^[0-9]{1,9}$"}


async def get_service(request: Request) -> TileService:
    """The process's tile service (opened in the lifespan)."""
    return request.app.state.service


async def base_url(request: Request) -> str:
    """The public URL links are built from: the configured ``base_url``, else the address the
    server is bound to (the ASGI ``server`` of the connection). Never the request's ``Host``
    header, which any client sets at will (and caches would store the result)."""
    configured = getattr(request.app.state, "base_url", None)
    if configured:
        return configured
    host, port = request.scope.get("server") or ("localhost", 80)
    url = bind_url(str(host), port or 80).removesuffix(":80")
    return url + request.scope.get("root_path", "").rstrip("/")


async def layer_param(
    request: Request,
    layer: Annotated[
        str,
        Path(
            description="Layer (collection) id (see /layers), e.g. "
            "`residences`, `regulations`, `regulations_plan`, `composite`.",
            json_schema_extra={"enum": layer_ids()},
        ),
    ],
) -> Layer | Composite:
    """Resolve a layer id or raise 404; 401/403 when the caller may see none of it."""
    try:
        found = get_layer(layer)
    except KeyError as err:
        raise NotFound(err.args[0]) from err
    layer_view(await get_access(request), found)
    return found


async def grid_param(
    tms: Annotated[
        str,
        Path(
            description="Tile matrix set: `WebMercatorQuad` or `SWEREF99TM` "
            "(alias `3006`, Lantmäteriet's matrix set).",
            json_schema_extra={"enum": [*grid_ids(), "3006"]},
        ),
    ],
) -> Grid:
    """Resolve a tile matrix set id or raise 404."""
    try:
        return get_grid(tms)
    except TileError as err:
        raise NotFound(str(err)) from err


def _int(name: str, text: str) -> int:
    # ASCII only: str.isdigit() also accepts "²" and other Unicode digits int() refuses.
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise TileError(f"{name} must be a non-negative integer", field=name, value=text[:50])
    return int(text)


@dataclass(frozen=True)
class TileParams:
    """A tile checked against its grid: zoom, column (x), row (y)."""

    grid: Grid
    z: int
    x: int
    y: int


async def xyz_tile(
    z: Annotated[str, Path(description="Zoom level.", json_schema_extra=_DIGITS)],
    x: Annotated[str, Path(description="Column, from the west.", json_schema_extra=_DIGITS)],
    y: Annotated[str, Path(description="Row, from the north.", json_schema_extra=_DIGITS)],
    fmt: Annotated[
        str,
        Path(
            description="`mvt` or `pbf` (same content).",
            json_schema_extra={"enum": list(TILE_FORMATS)},
        ),
    ],
) -> TileParams:
    """Parse an XYZ (WebMercatorQuad) tile address; 400 when malformed or out of range."""
    if fmt not in TILE_FORMATS:
        raise TileError(
            f"unknown tile format; use one of {', '.join(TILE_FORMATS)}", field="format", value=fmt
        )
    grid = get_grid("WebMercatorQuad")
    t = TileParams(grid, _int("z", z), _int("x", x), _int("y", y))
    grid.check(t.z, t.x, t.y)
    return t


async def ogc_tile(
    grid: Annotated[Grid, Depends(grid_param)],
    tileMatrix: Annotated[
        str,
        Path(
            description="Tile matrix (zoom level) id.",  # noqa: N803
            json_schema_extra=_DIGITS,
        ),
    ],
    tileRow: Annotated[str, Path(description="Row, from the top.", json_schema_extra=_DIGITS)],  # noqa: N803
    tileCol: Annotated[str, Path(description="Column, from the left.", json_schema_extra=_DIGITS)],  # noqa: N803
) -> TileParams:
    """Parse an OGC API – Tiles address; 400 when malformed or out of range."""
    t = TileParams(
        grid, _int("tileMatrix", tileMatrix), _int("tileCol", tileCol), _int("tileRow", tileRow)
    )
    grid.check(t.z, t.x, t.y)
    return t


async def known_parameters(request: Request) -> None:
    """Refuse a query parameter the route does not define (OGC API – Features,
    ``/req/core/query-param-unknown``): a misspelt filter (``limt``, ``home-type``) would
    otherwise be ignored, and a page or tile look filtered when it is not. The names are the
    route's own declared query parameters (and its dependencies'); ``api_key`` never gets
    here (the authentication middleware takes it out). Every route that takes the attribute
    filters checks (:func:`filters_param`), and the features routes."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:  # pragma: no cover - every FastAPI route has one
        return
    known = getattr(route, "vggeo_query_names", None)  # computed once per route
    if known is None:
        names = {
            f.alias for f in get_flat_params(dependant) if isinstance(f.field_info, params.Query)
        }
        known = frozenset(names)
        route.vggeo_query_names = known  # type: ignore[union-attr]
    unknown = sorted({k for k in request.query_params if k not in known})
    if unknown:
        raise InputError(
            f"unknown query parameter {unknown[0][:60]!r}; this operation takes "
            + ", ".join(sorted(known))
        )


async def filters_param(
    _known: Annotated[None, Depends(known_parameters)],
    service: Annotated[TileService, Depends(get_service)],
    layer: Annotated[Layer | Composite, Depends(layer_param)],
    access: Annotated[Access, Depends(get_access)],
    home_type: Annotated[
        list[str] | None,
        Query(description="Residences: home types to keep (repeat or comma-separate)."),
    ] = None,
    ownership_type: Annotated[
        list[str] | None, Query(description="Residences: ownership types to keep.")
    ] = None,
    construction_year_min: Annotated[
        str | None, Query(description="Residences: earliest construction year (inclusive).")
    ] = None,
    construction_year_max: Annotated[
        str | None, Query(description="Residences: latest construction year (inclusive).")
    ] = None,
    provision_type: Annotated[
        list[str] | None, Query(description="Regulations: provision types to keep.")
    ] = None,
    status: Annotated[
        list[str] | None, Query(description="Regulations: statuses to keep (e.g. `gällande`).")
    ] = None,
) -> Filters:
    """Validate the attribute filters against the layer and the values in the data."""
    raw = {
        "home_type": home_type,
        "ownership_type": ownership_type,
        "construction_year_min": construction_year_min,
        "construction_year_max": construction_year_max,
        "provision_type": provision_type,
        "status": status,
    }
    # Before parsing: a filter on a hidden attribute would reveal it, and so would the list of
    # values an invalid one is answered with.
    access.check_filters(name for name, value in raw.items() if value not in (None, "", []))
    return Filters.parse(raw, allowed=service.source.allowed_values(), accepted=layer.filters)


async def get_features(request: Request) -> FeatureReader | None:
    """The process's :class:`~vggeo.features.FeatureReader`, or ``None`` when the store has
    no features to serve."""
    return getattr(request.app.state, "features", None)


#: The feature reader of the process as a parameter type (``None``: tiles only).
FeaturesDep = Annotated[FeatureReader | None, Depends(get_features)]
