"""The map page's resources: the offline basemap's tiles and TileJSON, the favicon, and a style
that MapLibre's own validator (``gl-style-validate`` from the npm package
``@maplibre/maplibre-gl-style-spec``) accepts with every basemap setting."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from pmtiles.reader import MmapSource, Reader
from system import missing

from vggeo.tiles.basemap import shipped_basemap

STYLE_SPEC = "@maplibre/maplibre-gl-style-spec@26"


def _client(store, **settings):
    from vggeo_server import Settings, create_app

    app = create_app(Settings(_env_file=None, store=str(store), reload_interval=0, **settings))
    return TestClient(app)


def test_basemap_tilejson_names_the_archive_and_its_sources(client):
    tj = client.get("/basemap.json").json()
    with open(shipped_basemap(), "rb") as f:
        rd = Reader(MmapSource(f))
        header, meta = rd.header(), rd.metadata()
    assert tj["tilejson"] == "3.0.0" and tj["tiles"][0].endswith("/basemap/{z}/{x}/{y}.mvt")
    assert (tj["minzoom"], tj["maxzoom"]) == (header["min_zoom"], header["max_zoom"])
    assert {vl["id"] for vl in tj["vector_layers"]} == {vl["id"] for vl in meta["vector_layers"]}
    assert "GSHHG" in tj["attribution"] and "GeoNames" in tj["attribution"]


def test_basemap_tiles_are_served_as_stored_and_overzoomed(client):
    with open(shipped_basemap(), "rb") as f:
        stored = Reader(MmapSource(f)).get(5, 17, 9)
    r = client.get("/basemap/5/17/9.mvt", headers={"Accept-Encoding": "gzip"})
    assert (
        r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    )
    body = r.content if r.content[:2] != b"\x1f\x8b" else gzip.decompress(r.content)
    assert body == gzip.decompress(stored)
    assert (
        client.get("/basemap/5/17/9.mvt", headers={"If-None-Match": r.headers["etag"]}).status_code
        == 304
    )
    plain = client.get("/basemap/5/17/9.pbf", headers={"Accept-Encoding": "identity"})
    assert plain.content == body
    # Deeper than the archive (z10): cut from the z10 tile, land over Stockholm.
    deep = client.get("/basemap/13/4507/2406.mvt", headers={"Accept-Encoding": "identity"})
    assert deep.status_code == 200
    assert mapbox_vector_tile.decode(deep.content)["land"]["features"]
    assert client.get("/basemap/3/0/0.mvt").status_code == 204  # nothing there
    for bad in (
        "/basemap/5/99/9.mvt",
        "/basemap/x/1/1.mvt",
        "/basemap/5/17/9.png",
        "/basemap/%C2%B2/0/0.mvt",
        "/basemap/99999999999/0/0.mvt",
    ):
        assert client.get(bad).status_code in (400, 404), bad


def test_favicon_is_an_icon(client):
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"] == "image/x-icon"
    assert r.content[:4] == b"\x00\x00\x01\x00"  # ICO header: reserved 0, type 1 (icon)
    assert client.get("/static/favicon.svg").status_code == 200


def test_style_draws_data_over_the_basemap_with_cluster_counts(client):
    style = client.get("/style.json").json()
    ids = [lay["id"] for lay in style["layers"]]
    assert style["sources"]["basemap"]["url"].endswith("/basemap.json")
    assert (
        ids.index("basemap-land")
        < ids.index("regulations-fill")
        < ids.index("residences-clusters")
        < ids.index("residences-cluster-count")
    )
    count = next(lay for lay in style["layers"] if lay["id"] == "residences-cluster-count")
    assert "point_count" in json.dumps(count["layout"]["text-field"])


@pytest.mark.parametrize("basemap", ["none", "https://maps.example/styles/topo.json"])
def test_basemap_setting(store, basemap):
    with _client(store[0], basemap=basemap) as c:
        style = c.get("/style.json").json()
        assert style["metadata"]["vggeo:basemap"] == basemap
        assert "basemap" not in style["sources"]
        assert not any(lay["id"].startswith("basemap") for lay in style["layers"])
        assert c.get("/basemap.json").status_code == 404


def test_basemap_setting_is_checked():
    from pydantic import ValidationError

    from vggeo_server import Settings

    with pytest.raises(ValidationError, match="basemap"):
        Settings(_env_file=None, basemap="ftp://x")
    with pytest.raises(ValidationError, match="basemap_archive"):
        Settings(_env_file=None, basemap_archive="no-such-basemap.pmtiles")


def test_a_basemap_built_with_the_cli_is_served(store, tmp_path):
    own = tmp_path / "mine.pmtiles"
    shutil.copy(shipped_basemap(), own)
    with _client(store[0], basemap_archive=str(own)) as c:
        assert c.get("/basemap/5/17/9.mvt").status_code == 200


@pytest.fixture(scope="session")
def style_validator(tmp_path_factory) -> str:
    """``gl-style-validate``, installed from npm (the registry CI reaches) into a temp dir."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        missing("node and npm (for MapLibre's style validator)", "nodejs npm")
    prefix = tmp_path_factory.mktemp("style-spec")
    r = subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(prefix),
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            STYLE_SPEC,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if r.returncode != 0:
        pytest.fail(f"npm install {STYLE_SPEC} failed:\n{r.stderr[-2000:]}")
    return str(prefix / "node_modules" / ".bin" / "gl-style-validate")


def _validate(validator: str, style: dict, tmp_path) -> None:
    path = tmp_path / "style.json"
    path.write_text(json.dumps(style), encoding="utf-8")
    r = subprocess.run([validator, str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("basemap", ["builtin", "none", "https://maps.example/style.json"])
def test_style_passes_maplibres_validator(style_validator, store, basemap, tmp_path):
    with _client(store[0], basemap=basemap) as c:
        _validate(style_validator, c.get("/style.json").json(), tmp_path)


def test_validator_catches_a_broken_style(style_validator, client, tmp_path):
    style = client.get("/style.json").json()
    style["layers"][1]["source"] = "nowhere"
    with pytest.raises(AssertionError, match="nowhere"):
        _validate(style_validator, style, tmp_path)
