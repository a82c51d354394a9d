"""The PostGIS backend (ST_AsMVT) yields the same tiles as the embedded backend."""

import mapbox_vector_tile
import numpy as np
import pytest

from vggeo.tiles import open_source
from vggeo.tiles.backends.memory import MemorySource
from vggeo.tiles.index import DEPTH, demorton
from vggeo.tiles.layers import Filters

pytestmark = pytest.mark.postgis


@pytest.fixture(scope="module")
def pg_source(postgis_url, store):
    from vggeo.tiles.backends.postgis import write_tables

    write_tables(postgis_url, store[1], store[2])
    src = open_source(postgis_url, pool_size=4)
    yield src
    src.close()


def _decode(data):
    return {
        name: {f["id"]: f for f in layer["features"]}
        for name, layer in (mapbox_vector_tile.decode(data).items() if data else [])
    }


def _tiles(source: MemorySource, z: int, k: int, grid="WebMercatorQuad"):
    idx = source.data.points(grid)
    depth = z + idx.grid.root_depth
    codes, counts = np.unique(idx.codes >> np.uint64(2 * (DEPTH - depth)), return_counts=True)
    col, row = demorton(codes[np.argsort(-counts)[:k]])
    return list(zip(col.tolist(), row.tolist(), strict=True))


def _assert_same(a: bytes, b: bytes, what: str, *, polygons_subset=False):
    da, db = _decode(a), _decode(b)
    assert set(da) == set(db), what
    for name in da:
        fa, fb = da[name], db[name]
        if name == "residences":
            assert set(fa) == set(fb), f"{what}: residence/cluster ids differ"
            for fid, f in fa.items():
                assert f["properties"] == fb[fid]["properties"], f"{what}: {fid}"
                (ax, ay), (bx, by) = (
                    f["geometry"]["coordinates"],
                    fb[fid]["geometry"]["coordinates"],
                )
                assert abs(ax - bx) <= 1 and abs(ay - by) <= 1, f"{what}: {fid} moved"
        else:
            # Both drop polygons that collapse when rounded; the rest must agree.
            common = set(fa) & set(fb)
            assert len(common) >= 0.9 * max(len(fa), len(fb)), f"{what}: regulation ids differ"
            for fid in common:
                assert fa[fid]["properties"] == fb[fid]["properties"], f"{what}: {fid}"


@pytest.mark.parametrize("z", [3, 8, 12, 14, 16])
def test_same_tiles_as_embedded(pg_source, source, z):
    for x, y in _tiles(source, z, 3):
        _assert_same(
            source.tile("composite", z, x, y), pg_source.tile("composite", z, x, y), f"{z}/{x}/{y}"
        )


def test_same_filtered_and_sweref_tiles(pg_source, source):
    f = Filters.parse(
        {"home_type": "villa,lägenhet", "construction_year_min": "1960", "status": "gällande"},
        allowed=source.allowed_values(),
    )
    for z in (6, 11, 15):
        for x, y in _tiles(source, z, 2):
            _assert_same(
                source.tile("composite", z, x, y, filters=f),
                pg_source.tile("composite", z, x, y, filters=f),
                f"filtered {z}/{x}/{y}",
            )
    for z in (2, 7, 12):
        for x, y in _tiles(source, z, 2, grid="SWEREF99TM"):
            _assert_same(
                source.tile("composite", z, x, y, grid="SWEREF99TM"),
                pg_source.tile("composite", z, x, y, grid="SWEREF99TM"),
                f"3006 {z}/{x}/{y}",
            )


def test_overflow_clustering_matches(pg_source, source, store, postgis_url):
    from vggeo.tiles.cluster import ClusterOptions

    opt = ClusterOptions(max_points=40)
    emb = MemorySource(source.data, options=opt)
    pg = open_source(postgis_url, options=opt, pool_size=2)
    try:
        for x, y in _tiles(source, 15, 2):
            a = emb.tile("residences", 15, x, y)
            assert any(f["properties"].get("cluster") for f in _decode(a)["residences"].values())
            _assert_same(a, pg.tile("residences", 15, x, y), f"overflow 15/{x}/{y}")
    finally:
        pg.close()


def test_server_on_postgis_serves_the_same_tiles(pg_source, postgis_url, source):
    from fastapi.testclient import TestClient

    from vggeo_server import Settings, create_app

    app = create_app(Settings(_env_file=None, store=postgis_url, reload_interval=0, pool_size=2))
    with TestClient(app) as c:
        assert c.get("/healthz").json()["backend"] == "postgis"
        assert "villa" in c.get("/layers").json()["layers"][0]["filters"]["home_type"]
        for z, (x, y) in [(5, _tiles(source, 5, 1)[0]), (15, _tiles(source, 15, 1)[0])]:
            r = c.get(f"/tiles/composite/{z}/{x}/{y}.mvt")
            assert r.status_code == 200
            _assert_same(source.tile("composite", z, x, y), r.content, f"http {z}/{x}/{y}")
        assert c.get("/tiles/residences/12/0/0.mvt").status_code == 204


def test_no_postgis_tile_holds_an_empty_layer(pg_source, source):
    """ST_AsMVT over no rows gives no layer; a layer without features never reaches a client."""
    from vggeo.tiles.layers import PROVISION_TYPES, get_layer
    from vggeo.tiles.pmtiles import tiles_to_render

    n = 0
    for z in (4, 6, 8):
        cols, rows = tiles_to_render(source, get_layer("regulations"), z)
        for x, y in list(zip(cols.tolist(), rows.tolist(), strict=True))[:40]:
            for lid in ("composite", *(f"regulations_{t}" for t in PROVISION_TYPES)):
                for name, layer in _decode(pg_source.tile(lid, z, x, y)).items():
                    assert layer, f"{lid}/{z}/{x}/{y}: layer {name!r} holds no feature"
                    n += 1
    assert n > 50


def test_tiles_rendered_on_an_event_loop_are_the_threads_tiles(pg_source, source, postgis_url):
    """tile_async runs the same plans on an asyncio pool: the same bytes as tile(), at every
    kind of tile (cells, clusters, points, overflow clusters, provisions, filters, 3006)."""
    import asyncio

    from vggeo.tiles.cluster import ClusterOptions

    f = Filters.parse({"home_type": "villa", "status": "gällande"}, allowed=source.allowed_values())
    cases = [
        (layer, z, x, y, grid, filters)
        for layer in ("composite", "residences", "regulations")
        for z in (3, 8, 12, 14, 16)
        for x, y in _tiles(source, z, 2)
        for grid, filters in (("WebMercatorQuad", None), ("WebMercatorQuad", f))
    ]
    cases += [
        ("composite", z, x, y, "SWEREF99TM", None)
        for z in (4, 9)
        for x, y in _tiles(source, z, 2, grid="SWEREF99TM")
    ]
    pg = open_source(postgis_url, options=ClusterOptions(max_points=40), pool_size=2)
    try:
        pg.warm()  # the cells of WebMercatorQuad; SWEREF99TM's are built by tile() below
        want = [pg.tile(lay, z, x, y, grid=g, filters=ff) for lay, z, x, y, g, ff in cases]

        async def on_a_loop():
            got = [
                await pg.tile_async(lay, z, x, y, grid=g, filters=ff)
                for lay, z, x, y, g, ff in cases
            ]
            await asyncio.to_thread(pg.close)  # closes the asyncio pool on this loop
            return got

        got = asyncio.run(on_a_loop())
    finally:
        pg.close()
    assert sum(bool(w) for w in want) > len(cases) // 2
    assert got == want


def test_tile_async_leaves_unbuilt_cells_and_other_loops_to_a_thread(postgis_url, source):
    import asyncio

    pg = open_source(postgis_url, pool_size=1)
    x, y = _tiles(source, 8, 1)[0]
    a, b = _tiles(source, 15, 1)[0]
    try:

        async def first():
            unbuilt = await pg.tile_async("residences", 8, x, y)  # would block on a DDL build
            points = await pg.tile_async("residences", 15, a, b)  # needs no cells
            return unbuilt, points

        unbuilt, points = asyncio.run(first())
        assert unbuilt is None
        assert points == pg.tile("residences", 15, a, b) and points
        # the pool belongs to the first loop, now closed: another loop renders in a thread
        assert asyncio.run(pg.tile_async("residences", 15, a, b)) is None
    finally:
        pg.close()


def test_the_server_renders_plain_postgis_tiles_on_its_event_loop(pg_source, postgis_url, source):
    """A plain tile miss is rendered on the server's loop (the asyncio pool opens), and answers
    the same body and ETag as the same tile rendered in a thread."""
    import gzip

    from fastapi.testclient import TestClient

    from vggeo.tiles.service import TileService
    from vggeo_server import Settings, create_app

    x, y = _tiles(source, 15, 1)[0]
    app = create_app(
        Settings(_env_file=None, store=postgis_url, reload_interval=0, pool_size=2, cache_bytes=0)
    )
    with TestClient(app) as c:
        r = c.get(f"/tiles/residences/15/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"})
        pool = app.state.service.source._apool
        assert pool is not None, "rendered in a thread, not on the loop"
    threaded = TileService(lambda: pg_source, cache_bytes=0).get("residences", 15, x, y)
    assert r.status_code == 200
    assert r.headers["etag"] == threaded.etag
    assert gzip.decompress(threaded.body) == pg_source.tile("residences", 15, x, y)
    assert pool.closed  # closed on its loop when the server stopped


# Planner settings that change the order in which PostgreSQL hands a statement its rows: a GiST
# index scan (index order), a sequential scan (physical order), hash or sorted grouping, and
# parallel plans (workers' rows interleaved by timing) — as a generic plan, new statistics or a
# busier table can bring in production. The settings reach every connection of the source's
# pools through libpq's ``options``.
_PLANS = {
    "index scans": "-c enable_bitmapscan=off -c enable_hashagg=off",
    "sequential scans": "-c enable_indexscan=off -c enable_bitmapscan=off",
    "parallel plans": (
        "-c parallel_setup_cost=0 -c parallel_tuple_cost=0 -c min_parallel_table_scan_size=0 "
        "-c min_parallel_index_scan_size=0 -c max_parallel_workers_per_gather=2 "
        "-c enable_indexscan=off -c enable_bitmapscan=off"
    ),
}


def test_postgis_tiles_are_the_same_bytes_whatever_the_plan(postgis_url, pg_source, source):
    """A tile's bytes, hence its ETag, do not depend on the order the planner reads rows in:
    every replica, and the same one after a cache eviction, answers a revalidation with 304."""
    import asyncio
    from urllib.parse import quote

    from vggeo.tiles.cluster import ClusterOptions

    f = Filters.parse({"home_type": "villa"}, allowed=source.allowed_values())
    cases = [
        (layer, z, x, y, filters)
        for layer in ("composite", "residences")
        for z in (8, 12, 14, 16)
        for x, y in _tiles(source, z, 2)
        for filters in (None, f)
    ]
    options = ClusterOptions(max_points=40)  # overflow clusters at z14–z16 too
    base = open_source(postgis_url, options=options, pool_size=1)
    try:
        want = [base.tile(lay, z, x, y, filters=ff) for lay, z, x, y, ff in cases]
    finally:
        base.close()
    assert sum(len(w) > 1000 for w in want) >= len(cases) // 4  # tiles with many features
    sep = "&" if "?" in postgis_url else "?"
    for what, settings in _PLANS.items():
        pg = open_source(
            f"{postgis_url}{sep}options={quote(settings)}", options=options, pool_size=1
        )
        try:
            got = [pg.tile(lay, z, x, y, filters=ff) for lay, z, x, y, ff in cases]

            async def on_a_loop(pg=pg):
                out = [await pg.tile_async(lay, z, x, y, filters=ff) for lay, z, x, y, ff in cases]
                await asyncio.to_thread(pg.close)
                return out

            got_async = asyncio.run(on_a_loop())
        finally:
            pg.close()
        for case, w, g, ga in zip(cases, want, got, got_async, strict=True):
            assert g == w, f"{what}: {case[:4]} has other bytes in a thread"
            assert ga is None or ga == w, f"{what}: {case[:4]} has other bytes on a loop"


def test_tile_connections_run_generic_plans_and_on_the_loop_no_parallel_workers(postgis_url):
    """The source's pools: generic plans on both (GENERIC_PLANS), no parallel workers on the
    asyncio pool's sessions (TILE_SESSION); a URL's own ``options`` come after and win."""
    import asyncio
    from urllib.parse import quote

    names = ("plan_cache_mode", "max_parallel_workers_per_gather")

    async def settings(url: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        pg = open_source(url, pool_size=1)
        try:
            with pg.pool.connection() as conn:
                threads = tuple(conn.execute(f"SHOW {n}").fetchone()[0] for n in names)
            pool = await pg._async_pool()
            async with pool.connection() as conn:
                loop = []
                for n in names:
                    cur = await conn.execute(f"SHOW {n}")
                    loop.append((await cur.fetchone())[0])
            await asyncio.to_thread(pg.close)
        finally:
            pg.close()
        return threads, tuple(loop)

    threads, loop = asyncio.run(settings(postgis_url))
    assert threads[0] == loop[0] == "force_generic_plan"
    assert loop[1] == "0" and threads[1] != "0"  # the server's default in threads
    sep = "&" if "?" in postgis_url else "?"
    theirs = quote("-c max_parallel_workers_per_gather=3 -c plan_cache_mode=auto")
    threads, loop = asyncio.run(settings(f"{postgis_url}{sep}options={theirs}"))
    assert threads == loop == ("auto", "3")


def test_high_zoom_tiles_from_the_point_table_are_the_residences_tables_tiles(
    postgis_url, pg_source, source
):
    """Once built, homes one by one come from the Hilbert-ordered copy in the grid's CRS: the
    same bytes as read from the residences table (a source that never builds the copy), plain,
    filtered, as overflow clusters and on the other grid."""
    from vggeo.tiles.cluster import ClusterOptions

    f = Filters.parse(
        {"home_type": "villa", "construction_year_min": "1950"}, allowed=source.allowed_values()
    )
    options = ClusterOptions(max_points=40)
    built = open_source(postgis_url, options=options, pool_size=1)
    plain = open_source(postgis_url, options=options, pool_size=1, precompute=False)
    try:
        built.warm()  # WebMercatorQuad's tables; SWEREF99TM's with its first low-zoom tile
        built.tile("residences", 2, *_tiles(source, 2, 1, grid="SWEREF99TM")[0], grid="SWEREF99TM")
        assert built._cells_ready == {"WebMercatorQuad": True, "SWEREF99TM": True}
        n = 0
        for grid in ("WebMercatorQuad", "SWEREF99TM"):
            for z in (13, 14, 15):
                for x, y in _tiles(source, z, 3, grid=grid):
                    for ff in (None, f):
                        want = plain.tile("residences", z, x, y, grid=grid, filters=ff)
                        got = built.tile("residences", z, x, y, grid=grid, filters=ff)
                        assert got == want, f"{grid} {z}/{x}/{y} {ff}"
                        n += len(want) > 0
        assert n >= 18  # tiles with homes (a filter leaves some empty)
    finally:
        built.close()
        plain.close()


def test_cell_and_point_tables_emptied_or_of_an_older_layout_are_rebuilt(postgis_url, pg_source):
    """After a crash PostgreSQL empties an unlogged table and keeps its comment (the tag); a
    table built by an older vggeo has the data version's tag without the point table. Neither
    passes for current: the next opener rebuilds both."""
    import psycopg

    from vggeo.tiles.backends.postgis import TABLES_LAYOUT

    pg_source.warm()
    cells, points = "vggeo_tile_cells_webmercatorquad", "vggeo_tile_points_webmercatorquad"
    with psycopg.connect(postgis_url, autocommit=True) as conn:
        count = conn.execute(f"SELECT count(*) FROM {points}").fetchone()[0]
        assert count == conn.execute("SELECT count(*) FROM residences").fetchone()[0]
        conn.execute(f"TRUNCATE {cells}")  # what crash recovery leaves of an unlogged table
        src = open_source(postgis_url, pool_size=1)
        try:
            assert not src.cells_current()
            src.warm()
            assert src.cells_current()
            assert conn.execute(f"SELECT count(*) FROM {cells}").fetchone()[0] > 0
            # an older layout: the tag without the layout's mark, no point table
            tag = conn.execute(f"SELECT obj_description('{cells}'::regclass)").fetchone()[0]
            old = tag.removesuffix(f":{TABLES_LAYOUT}")
            conn.execute(f"COMMENT ON TABLE {cells} IS '{old}'")
            conn.execute(f"DROP TABLE {points}")
        finally:
            src.close()
        src = open_source(postgis_url, pool_size=1)
        try:
            assert not src.cells_current()
            src.warm()
            assert src.cells_current()
            assert conn.execute(f"SELECT count(*) FROM {points}").fetchone()[0] == count
        finally:
            src.close()
