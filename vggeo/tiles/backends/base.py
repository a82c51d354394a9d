"""The interface of a tile backend: :class:`TileSource` (as tipg's ``Collection.get_tile``).

A source is built from a store (:func:`vggeo.tiles.source_for`) and renders — or, for an
archive, looks up — the tiles of the store's data as it was when the source was built:
:attr:`TileSource.version` is the store's data version then, the key of every cached tile and
ETag; :meth:`TileSource.current_version` asks the store again, and a difference makes
:class:`~vggeo.tiles.service.TileService` build a new source.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from vggeo.tiles.grids import Grid, get_grid
from vggeo.tiles.layers import Composite, Filters, Layer, get_layer, members

if TYPE_CHECKING:
    from vggeo.store import DataSource

__all__ = ["TileSource", "RenderingSource"]


class TileSource(ABC):
    """Tiles of one store at one data version.

    Attributes
    ----------
    kind
        ``"memory"``, ``"postgis"`` or ``"archive"`` (reported by ``/readyz``).
    filter_mode
        ``"server"`` when :meth:`tile` applies attribute filters, ``"client"`` when the tiles
        are stored unfiltered and a client filters them itself.
    store
        The store the source was built from (it stays open; whoever opened it closes it).
    version
        The store's data version when the source was built.
    """

    kind: str = ""
    filter_mode: str = "server"
    #: Close the store with the source (:func:`vggeo.tiles.open_source` opened it for it).
    owns_store: bool = False
    #: :meth:`tile_async` renders on the event loop (else it always answers ``None``).
    renders_on_loop: bool = False
    #: None: data made in memory, not read from a store (a MemorySource of generated data).
    store: DataSource | None
    version: str

    @abstractmethod
    def tile(
        self,
        layer: str | Layer | Composite,
        z: int,
        x: int,
        y: int,
        *,
        grid: str | Grid = "WebMercatorQuad",
        filters: Filters | None = None,
    ) -> bytes:
        """The uncompressed MVT of a layer or composite at z/x/y (column x, row y); ``b""`` if
        the tile holds no feature.

        Raises
        ------
        TileError
            If z/x/y is not a tile of ``grid``.
        KeyError
            For an unknown layer.
        """

    async def tile_async(
        self,
        layer: str | Layer | Composite,
        z: int,
        x: int,
        y: int,
        *,
        grid: str | Grid = "WebMercatorQuad",
        filters: Filters | None = None,
    ) -> bytes | None:
        """:meth:`tile` awaited on the running event loop, where a backend can render without
        blocking it (PostGIS: an asyncio connection pool); ``None`` where it cannot — the
        default — and the caller runs :meth:`tile` in a thread."""
        return None

    def current_version(self) -> str:
        """The store's data version now (differs from :attr:`version` once it changed)."""
        return self.version if self.store is None else self.store.data_version

    @abstractmethod
    def allowed_values(self) -> dict[str, list[str]]:
        """Values each set filter accepts (the categories present in the data)."""

    @abstractmethod
    def home_types(self) -> list[str]:
        """Home types in the data, in the order of the clusters' ``count_<type>`` fields."""

    @abstractmethod
    def bounds_wgs84(self) -> tuple[float, float, float, float] | None:
        """(west, south, east, north) of the data in degrees, or ``None`` when empty."""

    def warm(self) -> None:  # noqa: B027 - optional: nothing to build ahead by default
        """Build indexes now (at start-up) instead of on the first request."""

    def close(self) -> None:
        """Release what the source holds (a pool, a mapped file); the store only if
        :attr:`owns_store`."""
        self._release()
        if self.owns_store and self.store is not None:
            self.store.close()

    def _release(self) -> None:  # noqa: B027 - optional: nothing held by default
        """What a backend releases on :meth:`close`."""

    def __enter__(self) -> TileSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class RenderingSource(TileSource):
    """A source that renders its tiles (memory, PostGIS): the tile request is checked and split
    into its member layers here, once; each backend renders one member layer."""

    def tile(
        self,
        layer: str | Layer | Composite,
        z: int,
        x: int,
        y: int,
        *,
        grid: str | Grid = "WebMercatorQuad",
        filters: Filters | None = None,
    ) -> bytes:
        """The uncompressed MVT of a layer or composite at z/x/y; see :meth:`TileSource.tile`."""
        g, todo = self._members_at(layer, z, x, y, grid, filters)
        return b"".join(self._member_tile(m, g, z, x, y, mf) for m, mf in todo)

    @staticmethod
    def _members_at(
        layer: str | Layer | Composite,
        z: int,
        x: int,
        y: int,
        grid: str | Grid,
        filters: Filters | None,
    ) -> tuple[Grid, list[tuple[Layer, Filters]]]:
        """The request checked against its grid, and the member layers shown at ``z``, each with
        the filters on its table (for :meth:`tile` and a backend's :meth:`tile_async`)."""
        g = get_grid(grid) if isinstance(grid, str) else grid
        g.check(z, x, y)
        lay = get_layer(layer) if isinstance(layer, str) else layer
        f = filters or Filters()
        return g, [(m, f.for_table(m.table)) for m in members(lay) if z >= m.minzoom]

    @abstractmethod
    def _member_tile(
        self, member: Layer, g: Grid, z: int, x: int, y: int, filters: Filters
    ) -> bytes:
        """One member layer's encoded MVT layer (``b""`` when it holds nothing here)."""
