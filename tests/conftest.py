"""Shared fixtures. System parts (GDAL, PostGIS, Chromium, QGIS) come from ``tests/system.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from system import postgis_cluster  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "sample_data"


@pytest.fixture(scope="session")
def postgis_url():
    """URL of a real, throwaway PostGIS database for the whole session."""
    with postgis_cluster() as url:
        yield url


@pytest.fixture(scope="session")
def sample_data() -> Path:
    return SAMPLE_DATA
