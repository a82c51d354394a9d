"""The store ``vggeo serve`` shows by default: the bundled sample data, through the real pipeline.

The inputs are committed in ``sample_data/`` (a registry slice and base + change deliveries of both
Lantmäteriet products). The store is *built* from them exactly as a user would build theirs —
``registry load`` into a GeoPackage store, then ``ingest`` of every delivery in order — rather
than shipped as a second, derived binary that could drift from its inputs. It is cached under
``$XDG_CACHE_HOME/vggeo`` keyed by a hash of the inputs and the vggeo version, and written to a
temporary file first, so concurrent first starts (``--workers N``) and interruptions are safe.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import vggeo
from vggeo import __version__
from vggeo.atomic import atomic_path
from vggeo.lm import open_delivery
from vggeo.registry import read_registry
from vggeo.store import open_store

__all__ = ["find_sample_data", "build_sample_store", "sample_store"]

#: Where the inputs live inside a sample-data folder.
REGISTRY = Path("registry") / "registry.parquet"
DELIVERIES = (Path("deliveries") / "bestammelse", Path("deliveries") / "inskrivning")


def find_sample_data() -> Path | None:
    """The sample-data folder: ``$VGGEO_SAMPLE_DATA``, the source tree's, or the working dir's."""
    candidates: list[str | Path | None] = [os.environ.get("VGGEO_SAMPLE_DATA")]
    candidates += [
        Path(vggeo.__file__).resolve().parent.parent / "sample_data",
        Path.cwd() / "sample_data",
    ]
    for c in candidates:
        if c and (Path(c) / REGISTRY).exists():
            return Path(c)
    return None


def _inputs(sample_dir: Path) -> list[Path]:
    files = [sample_dir / REGISTRY]
    for folder in DELIVERIES:
        files += sorted((sample_dir / folder).glob("*.zip"))
    return files


def build_sample_store(
    path: str | os.PathLike, *, sample_dir: str | os.PathLike, progress: bool = False
) -> Path:
    """Build a GeoPackage store from a sample-data folder (atomically: :func:`atomic_path`)."""
    path, sample_dir = Path(path), Path(sample_dir)
    with atomic_path(path) as tmp, open_store(tmp, create=True) as store:
        store.load_residences(read_registry(sample_dir / REGISTRY), mode="replace")
        for zip_path in _inputs(sample_dir)[1:]:  # file names sort in application order
            with open_delivery(zip_path) as delivery:
                store.apply(delivery, progress=progress)
    return path


def sample_store(sample_dir: str | os.PathLike | None = None) -> Path:
    """Path of the cached sample store, built on first use.

    Raises
    ------
    FileNotFoundError
        No sample-data folder was found (an installed package without the source tree).
    """
    sample_dir = Path(sample_dir) if sample_dir is not None else find_sample_data()
    if sample_dir is None:
        raise FileNotFoundError(
            2, "no sample_data folder found (set VGGEO_SAMPLE_DATA)", "sample_data"
        )
    digest = hashlib.sha256(__version__.encode())
    for f in _inputs(sample_dir):
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vggeo"
    path = cache / f"sample-{digest.hexdigest()[:16]}.gpkg"
    if not path.exists():
        build_sample_store(path, sample_dir=sample_dir)
    return path
