"""The map page in real headless Chromium against a real ``vggeo serve`` process.

What is drawn is read back two independent ways: MapLibre's ``queryRenderedFeatures`` (what it
placed on screen) and the pixels of a screenshot (decoded by the browser's own image decoder,
not by the map). Screenshots are kept in the test's temporary directory, and copied to
``$VGGEO_SCREENSHOTS`` when that is set.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from system import chromium_path
from tiles._live import live_server

from vggeo.cli import cli

pytestmark = pytest.mark.browser

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAND, WATER = (0xF4, 0xF1, 0xEA), (0xC9, 0xDC, 0xEB)  # server/basemap.py's colours


@contextlib.contextmanager
def browser_page(viewport=(1100, 800)):
    exe = chromium_path()
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.errors, page.failed, page.tile_urls = [], [], []  # type: ignore[attr-defined]
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            page.on(
                "response",
                lambda r: page.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )
            page.on(
                "request",
                lambda r: (
                    page.tile_urls.append(r.url)
                    if "/tiles/" in r.url and r.url.endswith(".mvt")
                    else None
                ),
            )
            yield page
        finally:
            browser.close()


def show(page, base: str, where: str) -> None:
    """Open the map at ``where`` (#zoom/lat/lon) and wait until everything is drawn."""
    page.goto(f"{base}/#{where}")
    page.wait_for_function("window.vggeoReady === true", timeout=60_000)
    page.wait_for_function(
        "window.vggeoMap.loaded() && window.vggeoMap.areTilesLoaded()", timeout=60_000
    )
    page.evaluate("""() => new Promise((done) => {
        const m = window.vggeoMap; m.once('idle', done); m.triggerRepaint(); })""")


def rendered(page, layers: list[str]) -> list[dict]:
    return page.evaluate(
        """(layers) => window.vggeoMap.queryRenderedFeatures({layers:
        layers.filter((l) => window.vggeoMap.getLayer(l))}).map((f) => ({layer: f.layer.id,
        properties: f.properties, geometry: f.geometry}))""",
        layers,
    )


def screenshot(page, tmp_path, name: str) -> bytes:
    png = page.screenshot(path=str(tmp_path / f"{name}.png"))
    keep = os.environ.get("VGGEO_SCREENSHOTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(tmp_path / f"{name}.png", os.path.join(keep, f"{name}.png"))
    return png


def pixels(page, png: bytes, points: list[tuple[float, float]]) -> list[tuple[int, int, int]]:
    """Colours of a screenshot at ``points``, decoded by the browser's PNG decoder."""
    return [
        tuple(p[:3])
        for p in page.evaluate(
            """async ([b64, pts]) => {
        const blob = await (await fetch('data:image/png;base64,' + b64)).blob();
        const bmp = await createImageBitmap(blob);
        const ctx = new OffscreenCanvas(bmp.width, bmp.height).getContext('2d');
        ctx.drawImage(bmp, 0, 0);
        return pts.map(([x, y]) => Array.from(ctx.getImageData(x, y, 1, 1).data));
    }""",
            [base64.b64encode(png).decode(), [[int(x), int(y)] for x, y in points]],
        )
    ]


def near(colour, want, tol: int = 8) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(colour, want, strict=True))


def basemap_pixels(page, png: bytes) -> dict[str, int]:
    """On a grid over the map: points where MapLibre drew only land, or only water (a lake or
    the sea, which is the background), and how many of their pixels have that colour."""
    probes = page.evaluate("""() => {
        const m = window.vggeoMap, c = m.getCanvas().getBoundingClientRect(), out = [];
        for (let x = 20; x < c.width - 20; x += 37) for (let y = 20; y < c.height - 20; y += 37) {
            if (document.elementFromPoint(x, y) !== m.getCanvas()) continue;  // legend, controls
            const ids = m.queryRenderedFeatures([[x - 3, y - 3], [x + 3, y + 3]]).map((f) => f.layer.id);
            if (ids.length === 1 && ids[0] === 'basemap-land') out.push(['land', x, y]);
            if (ids.length === 0 || (ids.length === 1 && ids[0] === 'basemap-water')) out.push(['water', x, y]);
        }
        return out; }""")
    colours = pixels(page, png, [(x, y) for _, x, y in probes])
    out = {"land": 0, "water": 0, "land_ok": 0, "water_ok": 0}
    for (kind, _, _), colour in zip(probes, colours, strict=True):
        out[kind] += 1
        out[f"{kind}_ok"] += near(colour, LAND if kind == "land" else WATER)
    return out


def cluster_has_label(page, png: bytes) -> bool:
    """A rendered cluster of ≥ 10 homes: dark circle pixels and white text pixels at its centre."""
    centres = page.evaluate("""() => {
        const m = window.vggeoMap;
        return m.queryRenderedFeatures({layers: ['residences-cluster-count']})
          .filter((f) => f.properties.point_count >= 10)
          .map((f) => { const p = m.project(f.geometry.coordinates); return [p.x, p.y]; }); }""")
    for cx, cy in centres[:10]:
        box = [(cx + dx, cy + dy) for dx in range(-6, 7, 2) for dy in range(-4, 5, 2)]
        cols = pixels(page, png, box)
        dark = sum(max(c) < 140 for c in cols)
        white = sum(min(c) > 200 for c in cols)
        if dark >= 3 and white >= 3:
            return True
    return False


@pytest.fixture(scope="module")
def spot(store) -> str:
    """lat/lon of a residence that lies in a regulation: where z16 shows both."""
    import geopandas as gpd

    homes, provisions = store[1], store[2]
    inside = gpd.sjoin(homes[["geometry"]], provisions[["geometry"]], predicate="within")
    point = homes.loc[inside.index[:1]].to_crs(4326).geometry.iloc[0]
    return f"{point.y:.5f}/{point.x:.5f}"


def test_map_loads_renders_and_pops_up(store):
    with live_server(store[0]) as (base, _pid), browser_page() as page:
        # Stockholm, zoom 11: clusters, single homes and regulation polygons.
        show(page, base, "11/59.33/18.06")
        page.wait_for_function(
            "window.vggeoMap.queryRenderedFeatures({layers: ['residences-points', "
            "'residences-clusters']}).length > 0",
            timeout=30_000,
        )
        assert rendered(page, ["regulations-fill"])
        # Click a rendered residence: a popup with its attributes appears.
        point = page.evaluate("""() => {
            const m = window.vggeoMap;
            const f = m.queryRenderedFeatures({layers: ['residences-points', 'residences-clusters']})[0];
            const p = m.project(f.geometry.coordinates);
            const r = m.getCanvas().getBoundingClientRect();
            return [p.x + r.left, p.y + r.top];
        }""")
        page.mouse.click(point[0], point[1])
        popup = page.wait_for_selector(".maplibregl-popup-content", timeout=10_000)
        text = popup.inner_text()
        assert "id" in text and ("home_type" in text or "point_count" in text)
        # A filter re-points the source at filtered tiles (the store filters them).
        page.check("input[name=home_type][value=villa]")
        page.wait_for_function(
            "window.vggeoMap.getSource('vggeo').url.includes('home_type=villa')", timeout=10_000
        )
        assert not page.errors, page.errors
        assert not page.failed, page.failed


def test_screenshots_at_z5_z11_z16_show_basemap_clusters_and_regulations(store, spot, tmp_path):
    with live_server(store[0]) as (base, _pid), browser_page(viewport=(1280, 900)) as page:
        show(page, base, "5/62/16")
        png = screenshot(page, tmp_path, "z05")
        px = basemap_pixels(page, png)
        assert px["land"] > 50 and px["water"] > 50, px
        assert px["land_ok"] >= 0.9 * px["land"] and px["water_ok"] >= 0.9 * px["water"], px
        assert rendered(page, ["basemap-water"]), "no lake drawn at z5"
        assert rendered(page, ["basemap-boundary"]), "no national border drawn at z5"
        assert cluster_has_label(page, png), "no cluster with a readable count at z5"
        names = {
            f["properties"]["name"]
            for f in rendered(page, ["basemap-places", "basemap-places-major"])
        }
        assert "Stockholm" in names, names

        show(page, base, "11/59.33/18.06")
        png = screenshot(page, tmp_path, "z11")
        px = basemap_pixels(page, png)
        assert px["land"] > 5 and px["water"] > 5, px
        assert px["land_ok"] >= 0.9 * px["land"] and px["water_ok"] >= 0.9 * px["water"], px
        assert cluster_has_label(page, png), "no cluster with a readable count at z11"
        assert rendered(page, ["regulations-fill"]) and rendered(page, ["residences-points"])

        show(page, base, f"16/{spot}")
        screenshot(page, tmp_path, "z16")
        assert rendered(page, ["basemap-land"]), "basemap blank at z16"
        assert rendered(page, ["regulations-fill"]), "no regulation drawn at z16"
        assert rendered(page, ["residences-points"]), "no residence drawn at z16"
        assert not page.errors, page.errors
        assert not page.failed, page.failed


def test_legend_fits_a_900_px_window_and_nothing_404s(store):
    with live_server(store[0]) as (base, _pid), browser_page(viewport=(1280, 900)) as page:
        show(page, base, "6/59/15")
        box = page.evaluate("""() => { const e = document.getElementById('legend');
            const r = e.getBoundingClientRect();
            return {top: r.top, bottom: r.bottom, right: r.right, left: r.left,
                    scroll: e.scrollHeight, client: e.clientHeight, rows:
                    e.querySelectorAll('.legend-row').length,
                    panel: document.getElementById('panel').getBoundingClientRect().left}; }""")
        assert box["rows"] >= 15
        assert 0 <= box["top"] and box["bottom"] <= 900 and box["right"] <= box["panel"], box
        assert box["scroll"] <= box["client"] + 1, "the legend is cut off"
        assert page.request.get(f"{base}/favicon.ico").status == 200
        assert not page.failed, page.failed


def test_archive_server_in_the_browser_overzooms_and_filters_on_the_client(store, spot, tmp_path):
    archive = tmp_path / "sweden.pmtiles"
    r = CliRunner().invoke(
        cli,
        [
            "tiles",
            "export",
            "--store",
            str(store[0]),
            "-o",
            str(archive),
            "--maxzoom",
            "14",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    with live_server(archive) as (base, _pid), browser_page(viewport=(1280, 900)) as page:
        for z in (15, 16):
            show(page, base, f"{z}/{spot}")
            screenshot(page, tmp_path, f"archive-z{z}")
            assert rendered(page, ["residences-points"]), f"blank at z{z}"
            assert rendered(page, ["regulations-fill"]), f"no regulations at z{z}"
        zooms = {int(u.split("/tiles/composite/")[1].split("/")[0]) for u in page.tile_urls}
        assert zooms and max(zooms) <= 14, "the map asked the archive for zooms it lacks"

        show(page, base, "11/59.33/18.06")
        assert page.evaluate("window.vggeoFilterMode") == "client"
        assert page.is_hidden("#fs-ownership_type") and page.is_visible("#f-note")
        page.check("input[name=home_type][value=villa]")
        page.evaluate("""() => new Promise((done) => {
            const m = window.vggeoMap; m.once('idle', done); m.triggerRepaint(); })""")
        points = rendered(page, ["residences-points"])
        clusters = rendered(page, ["residences-clusters"])
        assert points and {f["properties"]["home_type"] for f in points} == {"villa"}
        assert clusters and all(f["properties"].get("count_villa", 0) > 0 for f in clusters)
        assert not page.errors, page.errors
        assert not page.failed, page.failed


class _StyleHandler(BaseHTTPRequestHandler):
    """An "external" basemap style: a magenta background (nothing leaves this machine)."""

    def do_GET(self):  # noqa: N802 - the http.server API
        body = json.dumps(
            {
                "version": 8,
                "name": "external",
                "sources": {},
                "layers": [
                    {
                        "id": "external-background",
                        "type": "background",
                        "paint": {"background-color": "#ff00ff"},
                    }
                ],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_an_external_basemap_style_is_drawn_beneath_the_data(store, tmp_path):
    ext = ThreadingHTTPServer(("127.0.0.1", 0), _StyleHandler)
    thread = threading.Thread(target=ext.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{ext.server_address[1]}/style.json"
    try:
        with (
            live_server(store[0], env={"VGGEO_BASEMAP": url}) as (base, _pid),
            browser_page() as page,
        ):
            show(page, base, "11/59.33/18.06")
            ids = page.evaluate("window.vggeoMap.getStyle().layers.map((l) => l.id)")
            assert ids[0] == "external-background" and "residences-clusters" in ids
            assert not any(i.startswith("basemap-") for i in ids)
            png = screenshot(page, tmp_path, "external")
            corner = pixels(page, png, [(60, 400), (500, 780)])
            assert any(near(c, (0xFF, 0x00, 0xFF), 40) for c in corner), corner
            assert rendered(page, ["residences-clusters", "residences-points"])
            assert not page.errors, page.errors
    finally:
        ext.shutdown()
        thread.join(5)


def test_map_page_asks_for_a_key_and_sends_it_as_a_header(store, tmp_path):
    from vggeo_server.auth.keys import create_key

    keys = tmp_path / "keys.json"
    key, _ = create_key(keys, name="browser", scopes=["residences", "residences:attributes"])
    env = {"VGGEO_AUTH_KEYS_FILE": str(keys), "VGGEO_CORS_ORIGINS": "[]"}
    with live_server(store[0], env=env) as (base, _pid), browser_page() as page:
        sent = []
        page.on("request", lambda r: sent.append((r.url, r.headers.get("x-api-key"))))
        page.goto(f"{base}/#11/59.33/18.06")
        # without a key: regulations only, and the page asks for one
        page.wait_for_selector("#vggeo-key", timeout=30_000)
        page.wait_for_function("window.vggeoReady === true", timeout=60_000)
        assert page.evaluate("!window.vggeoMap.getLayer('residences-points')")
        page.fill("#vggeo-key-input", key)
        page.click("#vggeo-key button[type=submit]")
        page.wait_for_function("window.vggeoReady === true", timeout=60_000)
        page.wait_for_function(
            "window.vggeoMap.getLayer('residences-points') && window.vggeoMap"
            ".queryRenderedFeatures({layers: ['residences-points', 'residences-clusters']})"
            ".length > 0",
            timeout=60_000,
        )
        assert page.query_selector("#vggeo-key") is None
        ours = [(u, h) for u, h in sent if u.startswith(base)]
        tiles = [(u, h) for u, h in ours if "/tiles/composite/" in u]
        assert tiles and all(h == key for _u, h in tiles[-5:])
        assert all(h is None for u, h in sent if not u.startswith(base))  # other hosts: never
        assert not [u for u, _ in sent if key in u]  # never in a URL
        assert not page.errors, page.errors
