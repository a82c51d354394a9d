"""Cache-Control of tiles per zoom range (for a CDN in front of the replicas)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from vggeo_server import Settings, create_app

ZOOMS = {"0-5": "public, max-age=3600", "6-9": "public, max-age=60", "14": "no-store"}


@pytest.fixture(scope="module")
def policy_client(store):
    app = create_app(
        Settings(
            _env_file=None,
            store=str(store[0]),
            reload_interval=0,
            cache_control="public, no-cache",
            cache_control_zooms=ZOOMS,
        )
    )
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize(
    ("z", "expected"),
    [
        (0, "public, max-age=3600"),
        (5, "public, max-age=3600"),
        (6, "public, max-age=60"),
        (9, "public, max-age=60"),
        (10, "public, no-cache"),
        (14, "no-store"),
        (15, "public, no-cache"),
    ],
)
def test_each_zoom_gets_its_range_on_a_miss_and_on_a_cached_hit(policy_client, z, expected):
    url = f"/tiles/residences/{z}/0/0.mvt"
    first, second = policy_client.get(url), policy_client.get(url)  # rendered, then cached
    assert first.headers["cache-control"] == second.headers["cache-control"] == expected
    assert first.headers["etag"] == second.headers["etag"]


@pytest.mark.parametrize(
    "zooms", [{"0-5": "a", "5-9": "b"}, {"x": "a"}, {"9-3": "a"}, {"0-40": "a"}]
)
def test_bad_or_overlapping_ranges_are_refused(zooms):
    with pytest.raises(ValidationError, match="cache_control_zooms"):
        Settings(_env_file=None, cache_control_zooms=zooms)


def test_ranges_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("VGGEO_CACHE_CONTROL_ZOOMS", '{"0-8": "public, max-age=86400"}')
    assert Settings(_env_file=None).cache_control_zooms == {"0-8": "public, max-age=86400"}
