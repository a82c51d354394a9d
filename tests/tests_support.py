"""Small helpers shared by the server tests."""

from __future__ import annotations

import numpy as np

from vggeo.tiles.index import DEPTH, demorton


def busy_tile(source, z: int) -> tuple[int, int]:
    """(column, row) of the Web Mercator tile at ``z`` holding the most residences."""
    idx = source.data.points("WebMercatorQuad")
    codes, counts = np.unique(idx.codes >> np.uint64(2 * (DEPTH - z)), return_counts=True)
    col, row = demorton(codes[np.argmax(counts)])
    return int(col), int(row)
