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


def test_serve_with_a_store_it_cannot_open_is_one_line_and_exit_2(tmp_path):
    """A file that is not a store, or a store cut short: one line naming it and exit 2, before
    uvicorn starts (opened in the start-up, Starlette printed a traceback and uvicorn exited 3)."""
    import subprocess
    import sys

    from vggeo.store import open_store

    good = tmp_path / "good.gpkg"
    with open_store(good, create=True):
        pass
    data = good.read_bytes()
    cut = tmp_path / "cut.gpkg"
    cut.write_bytes(data[: len(data) // 2])
    text = tmp_path / "text.gpkg"
    text.write_text("not a GeoPackage\n")
    for store in (cut, text):
        r = subprocess.run(
            [sys.executable, "-m", "vggeo", "serve", "--store", str(store), "--port", "0"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr, r.stderr
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"vggeo: error: {store}"), r.stderr
