"""Fixtures for the registry tests: a small generated registry, raw records, a local API server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def small_registry():
    """300 generated homes (canonical GeoDataFrame), no injected defects."""
    from vggeo.sample.registry import generate_registry

    return generate_registry(300, seed=11)


@pytest.fixture(scope="session")
def raw_records(small_registry) -> list[dict]:
    """The same homes as the API sends them: plain JSON objects."""
    from vggeo.registry.readers import to_raw

    raw = to_raw(small_registry.drop(columns=["coord_source"]), number_as="list")
    return json.loads(raw.to_json(orient="records", force_ascii=False))
