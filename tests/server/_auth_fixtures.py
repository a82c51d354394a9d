"""Fixtures of the access-control tests: a keys file, a JWKS file, and apps over a vggeo store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyproj
import pytest
from _tokens import AUDIENCE, ISSUER, SigningKey, jwks

ORIGIN = "https://maps.example"


@dataclass
class Keys:
    path: Path
    locations: str  # residences only
    full: str  # residences, residences:attributes
    metrics: str  # metrics only
    provisions: str  # provisions only (public anyway)


@pytest.fixture(scope="session")
def api_keys(tmp_path_factory) -> Keys:
    from vggeo_server.auth.keys import create_key

    path = tmp_path_factory.mktemp("keys") / "keys.json"

    def make(name, *scopes):
        return create_key(path, name=name, scopes=list(scopes))[0]

    return Keys(
        path,
        make("locations", "residences"),
        make("full", "residences", "residences:attributes"),
        make("ops", "metrics"),
        make("provisions", "provisions"),
    )


@pytest.fixture(scope="session")
def signing_keys() -> dict[str, SigningKey]:
    return {"rsa": SigningKey.rsa("rsa-1"), "ec": SigningKey.ec("ec-1")}


@pytest.fixture(scope="session")
def jwks_file(tmp_path_factory, signing_keys) -> Path:
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps(jwks(*signing_keys.values())))
    return path


def auth_settings(api_keys: Keys, jwks_file: Path | None = None, **extra):
    from vggeo_server.auth import AuthSettings

    kw = {"keys_file": api_keys.path}
    if jwks_file is not None:
        kw |= {"jwks": str(jwks_file), "issuer": ISSUER, "audience": AUDIENCE}
    return AuthSettings(_env_file=None, **(kw | extra))


def make_client(store_path: Path, auth, **extra):
    from fastapi.testclient import TestClient

    from vggeo_server import Settings, create_app

    settings = Settings(
        _env_file=None,
        store=str(store_path),
        reload_interval=0,
        auth=auth,
        cors_origins=[ORIGIN],
        base_url="https://maps.example/vggeo",
        **extra,
    )
    return TestClient(create_app(settings))


@pytest.fixture(scope="session")
def secured(vg_store, api_keys, jwks_file):
    """A client of the app with API keys and JWTs, over the vggeo store (provisions public)."""
    with make_client(vg_store[0], auth_settings(api_keys, jwks_file)) as c:
        yield c


@pytest.fixture(scope="session")
def residence_tiles(vg_store):
    """(z, x, y) of Web Mercator tiles holding residences: one clustered (z10), one of points
    (z15)."""
    import morecantile

    res = vg_store[1]
    to_lonlat = pyproj.Transformer.from_crs(3006, 4326, always_xy=True)
    x, y = res.geometry.x.to_numpy(), res.geometry.y.to_numpy()
    # the residence nearest to the median: a tile that certainly holds one
    i = int(np.argmin((x - np.median(x)) ** 2 + (y - np.median(y)) ** 2))
    lon, lat = to_lonlat.transform(x[i], y[i])
    tms = morecantile.tms.get("WebMercatorQuad")
    return {z: (z, tms.tile(lon, lat, z).x, tms.tile(lon, lat, z).y) for z in (10, 15)}
