"""``vggeo serve`` as the README runs it: no store → the sample data; bad store → exit 2."""

import httpx
from click.testing import CliRunner
from tiles._live import live_server

from vggeo.cli import cli


def test_serve_without_store_serves_sample_data(tmp_path):
    with live_server(None, env={"XDG_CACHE_HOME": str(tmp_path)}) as (base, _pid):
        health = httpx.get(f"{base}/healthz").json()
        assert health["status"] == "ok" and health["backend"] == "embedded"
        layers = httpx.get(f"{base}/layers").json()["layers"]
        assert any(la["id"] == "residences" for la in layers)
        # homes and regulations both around Stockholm (the largest town) at zoom 10
        r = httpx.get(f"{base}/tiles/composite/10/562/300.mvt")
        assert r.status_code == 200
        import mapbox_vector_tile

        tile = mapbox_vector_tile.decode(r.content)
        assert tile["residences"]["features"] and tile["regulations"]["features"]
    # the sample store was built from sample_data/ through the real pipeline, in the cache dir
    built = list((tmp_path / "vggeo").glob("sample-*.gpkg"))
    assert len(built) == 1
    from vggeo.store import open_store

    with open_store(built[0]) as store:
        counts = store.counts()
        ledger = store.ledger()
    assert counts["residences"] == 20_000 and counts["provisions"] > 1_000
    assert counts["agande"] > 0 and len(ledger) == 7  # residences + 3 extracts of each product


def test_serve_with_missing_store_exits_2(tmp_path):
    r = CliRunner().invoke(cli, ["serve", "--store", str(tmp_path / "nope.gpkg")])
    assert r.exit_code == 2 and "nope.gpkg" in r.output


def test_serve_help_lists_the_options():
    r = CliRunner().invoke(cli, ["serve", "--help"])
    assert r.exit_code == 0
    for opt in ("--store", "--host", "--port", "--workers", "--base-url"):
        assert opt in r.output
