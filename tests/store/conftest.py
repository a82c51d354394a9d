"""Store fixtures: every store test runs on both backends (GeoPackage and real PostGIS)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

# the helpers beside these tests (deliveries, crash_worker …) import under any --import-mode
sys.path.insert(0, str(Path(__file__).parent))

from vggeo.store import open_store


def _schema() -> str:
    return "t_" + uuid.uuid4().hex[:12]


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def backend(request) -> str:
    return request.param


@pytest.fixture
def store_location(backend, tmp_path, request):
    """``(location, schema)`` of a fresh, not yet created store on the backend."""
    if backend == "gpkg":
        yield str(tmp_path / "store.gpkg"), "public"
        return
    url = request.getfixturevalue("postgis_url")
    schema = _schema()
    yield url, schema
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def store(store_location):
    """A freshly created, empty store on each backend."""
    location, schema = store_location
    s = open_store(location, create=True, schema=schema)
    yield s
    s.close()
