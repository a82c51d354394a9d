"""Grid arithmetic against morecantile (the definitions) and Lantmäteriet's 3006 convention."""

import morecantile
import numpy as np
import pytest

from vggeo.errors import TileError
from vggeo.tiles.grids import get_grid, tile_matrix_set


@pytest.mark.parametrize("grid_id", ["WebMercatorQuad", "SWEREF99TM"])
def test_bounds_agree_with_morecantile(grid_id):
    grid, tms = get_grid(grid_id), tile_matrix_set(grid_id)
    rng = np.random.default_rng(3)
    for z in [0, 1, 5, 9, 15]:
        w, h = grid.matrix_size(z)
        assert (w, h) == (tms.matrix(z).matrixWidth, tms.matrix(z).matrixHeight)
        for _ in range(5):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            ours = grid.bounds(z, x, y)
            theirs = tms.xy_bounds(morecantile.Tile(x, y, z))
            np.testing.assert_allclose(ours, tuple(theirs), rtol=0, atol=1e-6)


def test_sweref_grid_matches_lantmateriet_3006():
    g = get_grid("3006")
    assert g.id == "SWEREF99TM" and g.epsg == 3006
    # Level 0: 4096 m/pixel × 256 px; the top-left corner is E −1 200 000, N 8 500 000.
    assert g.bounds(0, 0, 0) == (
        -1_200_000,
        8_500_000 - 1_048_576,
        -1_200_000 + 1_048_576,
        8_500_000,
    )
    assert g.tile_size(3) == 4096 / 8 * 256
    # Stockholm (E 674 577, N 6 580 752): column from the west, row from the north — not swapped.
    e, n = 674_577.7, 6_580_752.2
    for z in range(0, 12):
        size = g.tile_size(z)
        col, row = int((e + 1_200_000) // size), int((8_500_000 - n) // size)
        b = g.bounds(z, col, row)
        assert b.west <= e < b.east and b.south < n <= b.north
    # The JSON holds pointOfOrigin in EPSG:3006 axis order: northing first.
    assert tuple(tile_matrix_set("SWEREF99TM").tileMatrices[0].pointOfOrigin) == (
        8_500_000,
        -1_200_000,
    )


def test_out_of_range_tiles_are_refused():
    g = get_grid("WebMercatorQuad")
    with pytest.raises(TileError, match="column"):
        g.check(2, 4, 0)
    with pytest.raises(TileError, match="zoom 25"):
        g.check(25, 0, 0)
    with pytest.raises(TileError, match="unknown tile matrix set"):
        get_grid("EPSG:4326")
