"""The map page in real headless Chromium against a real ``vggeo serve`` process."""

import os

import pytest
from system import chromium_path
from tiles._live import live_server

pytestmark = pytest.mark.browser

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip


def test_map_loads_renders_and_pops_up(store):
    exe = chromium_path()
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with live_server(store[0]) as (base, _pid), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            errors, tiles = [], []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("response", lambda r: tiles.append(r.status) if "/tiles/composite/" in r.url
                    else None)  # fmt: skip
            # Stockholm, zoom 11: clusters, single homes and regulation polygons.
            page.goto(f"{base}/#11/59.33/18.06")
            page.wait_for_function("window.vggeoReady === true", timeout=60_000)
            page.wait_for_function("window.vggeoMap.areTilesLoaded() && window.vggeoTilesLoaded > 0",
                                   timeout=60_000)  # fmt: skip
            page.wait_for_function(
                "window.vggeoMap.queryRenderedFeatures({layers: ['residences-points', "
                "'residences-clusters']}).length > 0", timeout=30_000)
            assert tiles and all(s in (200, 204, 304) for s in tiles) and 200 in tiles
            n_reg = page.evaluate("window.vggeoMap.queryRenderedFeatures({layers: "
                                  "['regulations-fill']}).length")  # fmt: skip
            assert n_reg > 0
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
            # A filter re-points the source at filtered tiles.
            page.check("input[name=home_type][value=villa]")
            page.wait_for_function(
                "window.vggeoMap.getSource('vggeo').url.includes('home_type=villa')", timeout=10_000)
            assert not errors, errors
        finally:
            browser.close()
