"""Small tile-ready GeoPackage stores built from generated frames (no shared data needed)."""

from __future__ import annotations

from pathlib import Path

from vggeo.tiles.sample import generate, write_store


def make_store(
    path: Path, n: int = 4000, *, seed: int = 11, n_towns: int = 25
) -> tuple[Path, object, object]:
    """Write a store of ``n`` homes around ``n_towns`` towns; return (path, residences, provisions)."""
    residences, provisions = generate(n, seed=seed, n_towns=n_towns, provisions_per_town=8)
    write_store(path, residences, provisions)
    return path, residences, provisions
