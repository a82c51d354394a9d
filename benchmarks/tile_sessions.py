"""A tile list shaped like map sessions, for ``benchmarks/tiles.py --tiles`` (run on demand).

    .venv/bin/python benchmarks/tile_sessions.py --store benchmarks/out/bench-5600000.gpkg \\
        --sessions 20 --seed 20261204 -o benchmarks/out/sessions-20261204.txt

``tiles.py`` draws its list tile by tile from the data's density: each request is a tile that
holds homes. A web map asks for something else: every tile of its viewport, the empty and sparse
neighbours of a town included, then the tiles that a pan or a zoom uncovers, each once (the
browser caches the rest). This script writes such requests, so the servers are also measured on
a list whose shape the density draw did not make:

* a session starts at a random home (read from the store with pyogrio, as any client of the
  file would), at a random zoom of z14–z16, in a 1 600 × 900 px viewport of 512 px tiles (the
  vector tile size MapLibre displays);
* then makes ``--actions`` moves: a pan by half the viewport in a random direction (70 %), a zoom
  in or out by one (15 % each, kept within z14–z16);
* after each move it requests the viewport's tiles not yet requested in the session, nearest to
  the viewport's centre first (as MapLibre orders them).

Tile numbers come from pyproj's Web Mercator projection, not from vggeo. The output is one
``z/x/y`` per line, with a comment line per session.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

HALF = 20037508.342789244  # half the Web Mercator world's width, metres
ZOOMS = (14, 15, 16)
VIEW_W, VIEW_H, TILE_PX = 1600, 900, 512


def viewport(cx: float, cy: float, z: int) -> list[tuple[int, int, int]]:
    """Tiles covering a viewport centred on Web Mercator (cx, cy) at zoom z, nearest first."""
    size = 2 * HALF / (1 << z)  # metres per tile
    per_px = size / TILE_PX
    x0, x1 = cx - VIEW_W / 2 * per_px, cx + VIEW_W / 2 * per_px
    y0, y1 = cy - VIEW_H / 2 * per_px, cy + VIEW_H / 2 * per_px
    cols = range(math.floor((x0 + HALF) / size), math.floor((x1 + HALF) / size) + 1)
    rows = range(math.floor((HALF - y1) / size), math.floor((HALF - y0) / size) + 1)
    fx, fy = (cx + HALF) / size, (HALF - cy) / size  # the centre in tile units
    tiles = [(z, c, r) for c in cols for r in rows if 0 <= c < 1 << z and 0 <= r < 1 << z]
    return sorted(tiles, key=lambda t: (t[1] + 0.5 - fx) ** 2 + (t[2] + 0.5 - fy) ** 2)


def session(rng: np.random.Generator, cx: float, cy: float, actions: int) -> list[tuple]:
    z = int(rng.choice(ZOOMS))
    seen: set[tuple[int, int, int]] = set()
    out: list[tuple[int, int, int]] = []
    for step in range(actions + 1):
        if step:
            move = rng.random()
            if move < 0.70:
                per_px = 2 * HALF / (1 << z) / TILE_PX
                angle = rng.uniform(0, 2 * math.pi)
                cx += math.cos(angle) * VIEW_W / 2 * per_px
                cy += math.sin(angle) * VIEW_H / 2 * per_px
            elif move < 0.85:
                z = min(z + 1, ZOOMS[-1])
            else:
                z = max(z - 1, ZOOMS[0])
        for t in viewport(cx, cy, z):
            if t not in seen:
                seen.add(t)
                out.append(t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, required=True, help="GeoPackage with a residences layer")
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--actions", type=int, default=8, help="moves per session after the first view")
    ap.add_argument("--seed", type=int, default=20261204)
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args()

    import pyogrio
    import shapely
    from pyproj import Transformer

    meta, table = pyogrio.raw.read_arrow(args.store, layer="residences", columns=[])
    points = shapely.from_wkb(np.asarray(table.column(meta["geometry_name"] or "wkb_geometry")))
    crs = pyogrio.read_info(args.store, layer="residences")["crs"]
    to_merc = Transformer.from_crs(crs, 3857, always_xy=True)
    rng = np.random.default_rng(args.seed)
    starts = rng.integers(0, len(points), args.sessions)
    mx, my = to_merc.transform(shapely.get_x(points[starts]), shapely.get_y(points[starts]))
    lines = []
    for i, (cx, cy) in enumerate(zip(mx, my, strict=True)):
        tiles = session(rng, float(cx), float(cy), args.actions)
        lines.append(f"# session {i + 1}: {len(tiles)} tiles")
        lines += [f"{z}/{x}/{y}" for z, x, y in tiles]
    args.output.write_text("\n".join(lines) + "\n")
    n = sum(1 for line in lines if not line.startswith("#"))
    print(f"{args.output}: {args.sessions} sessions, {n} tiles")


if __name__ == "__main__":
    main()
