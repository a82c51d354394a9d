"""The PostGIS tile backend over a vggeo store: any subset of tables, the store's schema, the
store's data version, cell aggregates built once and tagged with that version, NOTIFY on ingest."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import mapbox_vector_tile
import psycopg
import pytest

from vggeo.lm import open_delivery
from vggeo.sample.delivery import generate_deliveries
from vggeo.store import open_store
from vggeo.tiles import open_source
from vggeo.tiles.backends.postgis import listen_versions, write_tables
from vggeo.tiles.sample import generate

pytestmark = pytest.mark.postgis


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory):
    return generate_deliveries(
        tmp_path_factory.mktemp("best"), product="bestammelse", n=120, changes=1, seed=3
    )


@pytest.fixture(scope="module")
def homes():
    residences, _ = generate(3000, seed=5, n_towns=6)
    return residences


@pytest.fixture
def schema(postgis_url):
    name = "t_" + uuid.uuid4().hex[:10]
    yield name
    with psycopg.connect(postgis_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _features(data: bytes) -> dict[str, list]:
    return (
        {name: layer["features"] for name, layer in mapbox_vector_tile.decode(data).items()}
        if data
        else {}
    )


def _point_total(data: bytes) -> int:
    return sum(f["properties"].get("point_count", 1) for f in _features(data).get("residences", []))


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchone()[0]


def test_store_with_provisions_only_serves_its_regulations(postgis_url, schema, deliveries):
    import morecantile
    import shapely
    from pyproj import Transformer

    with open_store(postgis_url, create=True, schema=schema) as s:
        s.apply(open_delivery(deliveries[0]))
        provisions = s.read_table("provisions")
    src = open_source(postgis_url, schema=schema)
    try:
        src.warm()  # the residences table exists but never got a registry column
        assert src.tile("residences", 0, 0, 0) == b""
        to_wgs84 = Transformer.from_crs(3006, 4326, always_xy=True)
        tms = morecantile.tms.get("WebMercatorQuad")
        geoms = provisions.geometry.to_numpy()
        b = shapely.bounds(geoms)
        big = (b[:, 2] - b[:, 0] >= 100) | (b[:, 3] - b[:, 1] >= 100)
        assert big.sum() >= 0.5 * len(provisions)
        for pid, geom in zip(provisions["provision_id"][big], geoms[big], strict=True):
            p = shapely.point_on_surface(geom)
            t = tms.tile(*to_wgs84.transform(p.x, p.y), 12)
            got = {
                f["properties"]["provision_id"]
                for f in _features(src.tile("regulations", 12, t.x, t.y)).get("regulations", [])
            }
            assert pid in got, f"provision {pid} missing from its tile 12/{t.x}/{t.y}"
    finally:
        src.close()


def test_store_with_registry_only_serves_its_homes(postgis_url, schema, homes):
    with open_store(postgis_url, create=True, schema=schema) as s:
        s.load_residences(homes)
    src = open_source(postgis_url, schema=schema)
    try:
        src.warm()
        assert _point_total(src.tile("composite", 0, 0, 0)) == len(homes)
    finally:
        src.close()


def test_tables_are_read_from_the_store_schema_not_the_search_path(postgis_url, schema, homes):
    other, _ = generate(500, seed=9, n_towns=3)
    write_tables(postgis_url, other, _)  # decoys in public, found first by an unqualified name
    with open_store(postgis_url, create=True, schema=schema) as s:
        s.load_residences(homes)
    src = open_source(postgis_url, schema=schema)
    try:
        assert _point_total(src.tile("residences", 0, 0, 0)) == len(homes)
        assert _point_total(src.tile("residences", 3, 4, 2)) == len(homes)  # the cell table too
    finally:
        src.close()


def test_data_version_is_the_stores(postgis_url, schema, homes):
    with open_store(postgis_url, create=True, schema=schema) as s:
        s.load_residences(homes)
        src = open_source(postgis_url, schema=schema, precompute=False)
        try:
            assert src.version == s.data_version
            s.load_residences(homes.head(100))
            assert src.current_version() == s.data_version != src.version
        finally:
            src.close()


def _cells_tag(url: str, schema: str) -> str | None:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT obj_description(to_regclass(%s), 'pg_class')",
            [f'"{schema}"."vggeo_tile_cells_webmercatorquad"'],
        ).fetchone()[0]


def test_cells_are_built_once_by_concurrent_openers_and_rebuilt_after_an_ingest(
    postgis_url, schema, homes, caplog
):
    with open_store(postgis_url, create=True, schema=schema) as s:
        s.load_residences(homes)
        first = s.data_version

    def start(_):
        src = open_source(postgis_url, schema=schema, pool_size=2)
        src.warm()
        return src

    caplog.set_level("INFO", logger="vggeo.tiles.backends.postgis")
    with ThreadPoolExecutor(4) as pool:
        sources = list(pool.map(start, range(4)))
    try:
        builds = [r for r in caplog.records if r.getMessage().startswith("built vggeo_tile_cells")]
        assert len(builds) == 1
        assert _cells_tag(postgis_url, schema).startswith(first + ":")
        assert all(s.cells_current() for s in sources)
        with open_store(postgis_url, schema=schema) as s:
            s.load_residences(homes.head(1000))
            second = s.data_version
        assert not sources[0].cells_current()
        caplog.clear()
        with ThreadPoolExecutor(4) as pool:
            renewed = list(pool.map(start, range(4)))
        builds = [r for r in caplog.records if r.getMessage().startswith("built vggeo_tile_cells")]
        assert len(builds) == 1
        assert _cells_tag(postgis_url, schema).startswith(second + ":")
        assert _point_total(renewed[0].tile("residences", 2, 2, 1)) == 1000
        sources += renewed
    finally:
        for src in sources:
            src.close()


def test_an_ingest_notifies_listeners_at_commit_only(postgis_url, schema, homes, deliveries):
    heard: list[str] = []
    got = threading.Event()
    stop = threading.Event()

    def note(version: str) -> None:
        heard.append(version)
        got.set()

    with open_store(postgis_url, create=True, schema=schema) as s:
        t = threading.Thread(
            target=listen_versions,
            args=(postgis_url, schema, note, stop),
            kwargs={"wait": 0.1},
            daemon=True,
        )
        t.start()
        try:
            import time

            time.sleep(0.5)  # LISTEN is in place
            s.apply(open_delivery(deliveries[0]))
            assert got.wait(5), "no notification after the commit"
            assert heard == [s.data_version]
            got.clear()
            with pytest.raises(Exception):  # noqa: B017, PT011 - a refused write: no notification
                s.load_residences(homes.assign(id=1))
            assert not got.wait(1)
            # another schema's ingest is not this store's
            with open_store(postgis_url, create=True, schema=schema + "_b") as other:
                other.load_residences(homes.head(10))
            assert not got.wait(1)
        finally:
            stop.set()
            t.join(5)
            with psycopg.connect(postgis_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_b" CASCADE')
