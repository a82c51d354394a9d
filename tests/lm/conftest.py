"""Session fixtures: small synthetic deliveries made by vggeo's own generator (seeded)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

import vggeo.lm._compiled as compiled
from vggeo.sample.delivery import generate_deliveries


@pytest.fixture(autouse=True)
def walk_is_the_stylesheet(monkeypatch):
    """Every chunk the compiled path transforms in these tests, written both ways: the tree walk
    (vggeo/lm/_walk.pyx) must write byte for byte what the stylesheet writes for the same tree.

    So every unusual member, mutation, separator and writer these tests generate checks the walk
    against libxslt, which evaluates the stylesheet's XPath independently of our code."""
    differ: list[tuple[bytes, bytes]] = []
    transform = compiled.Plan.transform

    def both(self, doc):
        real = compiled._walk is not None and isinstance(self.walker, compiled._walk.Program)
        walked = self.walker.run(doc) if real else None
        if walked is not None:
            reference = bytes(compiled._xslt(self.stylesheet)(doc))
            if walked != reference:
                differ.append((walked, reference))
        return transform(self, doc)

    monkeypatch.setattr(compiled.Plan, "transform", both)
    yield
    assert not differ, f"the walk differs from the stylesheet in {len(differ)} chunk(s)"


@pytest.fixture(scope="session")
def bestammelse_deliveries(tmp_path_factory) -> list[Path]:
    """Base + 2 changes, 160 provisions, SWEREF 99 TM, 70 objects per file (3 numbered files)."""
    return generate_deliveries(
        tmp_path_factory.mktemp("best"),
        product="bestammelse",
        n=160,
        changes=2,
        seed=11,
        per_file=70,
    )


@pytest.fixture(scope="session")
def bestammelse_local_zone(tmp_path_factory) -> list[Path]:
    """The same provisions (same seed) delivered in SWEREF 99 16 30 (EPSG:3010)."""
    return generate_deliveries(
        tmp_path_factory.mktemp("best3010"),
        product="bestammelse",
        n=160,
        changes=0,
        seed=11,
        per_file=70,
        crs=3010,
    )


@pytest.fixture(scope="session")
def inskrivning_deliveries(tmp_path_factory) -> list[Path]:
    return generate_deliveries(
        tmp_path_factory.mktemp("insk"), product="inskrivning", n=120, changes=2, seed=5
    )


@pytest.fixture(scope="session")
def unpack():
    """The function that unpacks an outer delivery ZIP into a folder."""
    return _unpack


def _unpack(outer: Path, dest: Path, *, inner_too: bool = True) -> Path:
    """Unpack an outer delivery ZIP (and its set ZIPs) into a folder, as a user would."""
    with zipfile.ZipFile(outer) as z:
        z.extractall(dest)
    if inner_too:
        for inner in list(dest.rglob("*.zip")):
            with zipfile.ZipFile(inner) as z:
                z.extractall(inner.parent)
            inner.unlink()
    return dest
