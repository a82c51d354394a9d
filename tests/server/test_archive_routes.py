"""A server on a tile archive advertises exactly what the archive holds (read back with the
``pmtiles`` package's reader) and never lists a layer that 404s."""

from __future__ import annotations

import gzip

import mapbox_vector_tile
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pmtiles.reader import MmapSource, Reader

from vggeo.cli import cli


@pytest.fixture(scope="module")
def archive(tmp_path_factory, store):
    path = tmp_path_factory.mktemp("served") / "sweden.pmtiles"
    r = CliRunner().invoke(
        cli,
        [
            "tiles",
            "export",
            "--store",
            str(store[0]),
            "-o",
            str(path),
            "--maxzoom",
            "12",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    return path


@pytest.fixture(scope="module")
def held(archive):
    with open(archive, "rb") as f:
        rd = Reader(MmapSource(f))
        return rd.header(), rd.metadata()


@pytest.fixture(scope="module")
def aclient(archive):
    from vggeo_server import Settings, create_app

    app = create_app(Settings(_env_file=None, store=str(archive), reload_interval=0))
    with TestClient(app) as c:
        yield c


def test_tilejson_gives_the_archives_zooms_layers_and_fields(aclient, held):
    header, meta = held
    tj = aclient.get("/tiles/composite.json").json()
    assert (tj["minzoom"], tj["maxzoom"]) == (header["min_zoom"], header["max_zoom"]) == (0, 12)
    assert tj["fillzoom"] == 12  # a client overzooms from here
    want = {vl["id"]: vl for vl in meta["vector_layers"]}
    assert {vl["id"] for vl in tj["vector_layers"]} == set(want)
    for vl in tj["vector_layers"]:
        assert set(vl["fields"]) == set(want[vl["id"]]["fields"])
        assert header["min_zoom"] <= vl["minzoom"] <= vl["maxzoom"] <= header["max_zoom"]


def test_every_listed_layer_answers_and_no_other_is_listed(aclient, held):
    _, meta = held
    doc = aclient.get("/layers").json()
    listed = [lay["id"] for lay in doc["layers"]]
    assert set(listed) == {"composite", *(vl["id"] for vl in meta["vector_layers"])}
    for lay in doc["layers"]:
        assert aclient.get(lay["tilejson"]).status_code == 200
        assert aclient.get(f"/tiles/{lay['id']}/5/17/9.mvt").status_code in (200, 204)
    collections = aclient.get("/collections").json()["collections"]
    assert {c["id"] for c in collections} == set(listed)
    for missing in ("regulations_plan", "regulations_fornlamning"):
        assert aclient.get(f"/tiles/{missing}.json").status_code == 404
        assert aclient.get(f"/collections/{missing}").status_code == 404
        assert aclient.get(f"/tiles/{missing}/5/17/9.mvt").status_code == 404


def test_filter_panel_gets_what_the_archive_can_filter(aclient, source):
    doc = aclient.get("/layers").json()
    assert doc["filter_mode"] == "client"
    comp = next(lay for lay in doc["layers"] if lay["id"] == "composite")
    allowed = source.allowed_values()
    assert comp["filters"] == {k: allowed[k] for k in ("home_type", "provision_type", "status")}
    assert all(comp["filters"].values())
    assert set(doc["cluster_count_fields"]) == set(source.home_types())
    fields = comp["fields"]
    assert all(f in fields for f in doc["cluster_count_fields"].values())
    # the archive cannot filter on the server: a filtered tile is refused, not answered wrong
    r = aclient.get("/tiles/composite/5/17/9.mvt?home_type=villa")
    assert r.status_code == 400 and "client" in r.json()["detail"]


def test_deeper_zooms_are_served_not_blank(aclient, source):
    from vggeo.tiles.layers import get_layer
    from vggeo.tiles.pmtiles import tiles_to_render

    cols, rows = tiles_to_render(source, get_layer("residences"), 16)
    x, y = int(cols[len(cols) // 2]), int(rows[len(rows) // 2])
    r = aclient.get(f"/tiles/composite/16/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    layers = mapbox_vector_tile.decode(
        r.content if r.content[:2] != b"\x1f\x8b" else gzip.decompress(r.content)
    )
    assert layers["residences"]["features"]


def test_style_draws_only_what_the_archive_holds(aclient):
    style = aclient.get("/style.json").json()
    assert style["sources"]["vggeo"]["url"].endswith("/tiles/composite.json")
    used = {lay.get("source-layer") for lay in style["layers"] if lay.get("source") == "vggeo"}
    assert used == {"residences", "regulations"}


def test_an_archive_of_one_layer_is_drawn_from_that_layer(tmp_path, store):
    from vggeo_server import Settings, create_app

    path = tmp_path / "homes.pmtiles"
    r = CliRunner().invoke(
        cli,
        [
            "tiles",
            "export",
            "--store",
            str(store[0]),
            "-o",
            str(path),
            "--maxzoom",
            "6",
            "--layer",
            "residences",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    app = create_app(Settings(_env_file=None, store=str(path), reload_interval=0))
    with TestClient(app) as c:
        assert [lay["id"] for lay in c.get("/layers").json()["layers"]] == ["residences"]
        assert c.get("/tiles/composite.json").status_code == 404
        style = c.get("/style.json").json()
        assert style["sources"]["vggeo"]["url"].endswith("/tiles/residences.json")
        assert not any(lay["id"].startswith("regulations") for lay in style["layers"])
        assert c.get("/tiles/residences.json").json()["maxzoom"] == 6
