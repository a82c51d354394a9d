"""Plain tile requests are answered before routing, uncached ones too, exactly as the route would."""

from __future__ import annotations

import json
import logging

import mapbox_vector_tile
import pytest
from tests_support import busy_tile


@pytest.fixture(scope="module")
def uncached(store):
    """A server without a tile cache: every tile request is a miss."""
    from fastapi.testclient import TestClient

    from vggeo_server import Settings, create_app

    app = create_app(
        Settings(_env_file=None, store=str(store[0]), reload_interval=0, cache_bytes=0)
    )
    with TestClient(app) as c:
        yield c


def _route_answer(client, url: str):
    """The same tile through FastAPI's route (a query string keeps the fast path out; an empty
    filter is a filter not given, and an unknown parameter would be refused)."""
    return client.get(url + "?construction_year_min=", headers={"Accept-Encoding": "gzip"})


@pytest.mark.parametrize(
    "layer, z", [("residences", 15), ("residences", 9), ("composite", 14), ("regulations", 12)]
)
def test_a_miss_is_rendered_before_routing_with_the_routes_answer(uncached, source, layer, z):
    x, y = busy_tile(source, z)
    url = f"/tiles/{layer}/{z}/{x}/{y}.mvt"
    fast = uncached.get(url, headers={"Accept-Encoding": "gzip"})
    routed = _route_answer(uncached, url)
    assert fast.status_code == routed.status_code == 200
    for h in ("etag", "content-encoding", "content-type", "cache-control", "vary"):
        assert fast.headers[h] == routed.headers[h], h
    assert fast.content == routed.content == source.tile(layer, z, x, y)
    assert mapbox_vector_tile.decode(fast.content)  # a real tile
    again = uncached.get(
        url, headers={"Accept-Encoding": "gzip", "If-None-Match": fast.headers["etag"]}
    )
    assert again.status_code == 304


def test_an_empty_miss_is_204_and_bad_addresses_still_get_the_routes_4xx(uncached):
    r = uncached.get("/tiles/residences/12/0/0.mvt", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 204 and r.content == b""
    r = uncached.get("/tiles/residences/3/8/0.mvt", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 400 and r.json()["type"] == "TileError"
    r = uncached.get("/tiles/nope/3/0/0.mvt", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 404


def test_a_miss_answered_early_is_logged_and_counted_as_a_tile_miss(uncached, source, caplog):
    x, y = busy_tile(source, 15)
    with caplog.at_level(logging.INFO, logger="vggeo.access"):
        r = uncached.get(f"/tiles/residences/15/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    line = json.loads(
        [rec.getMessage() for rec in caplog.records if rec.name == "vggeo.access"][-1]
    )
    assert line["route"] == "/tiles/{layer}/{z}/{x}/{y}.{fmt}" and line["cache"] == "miss"
    metrics = uncached.get("/metrics").text
    assert 'vggeo_tile_cache_requests_total{result="miss"}' in metrics


def test_a_failing_render_is_answered_by_the_application(uncached, source, monkeypatch):
    from vggeo.errors import StoreError

    service = uncached.app.state.service

    def broken(*args, **kwargs):
        raise StoreError("store unreachable")

    monkeypatch.setattr(service.source, "tile", broken)
    x, y = busy_tile(source, 15)
    r = uncached.get(f"/tiles/residences/15/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 503  # the application's answer to a StoreError
    assert r.headers["content-type"].startswith("application/")
    assert "Traceback" not in r.text


def test_the_route_is_not_involved_in_a_plain_miss(uncached, source, monkeypatch):
    import vggeo_server.routes

    def unreachable(*args, **kwargs):
        raise AssertionError("the route rendered a plain tile request")

    monkeypatch.setattr(vggeo_server.routes, "render_tile", unreachable)
    x, y = busy_tile(source, 15)
    r = uncached.get(f"/tiles/residences/15/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.content == source.tile("residences", 15, x, y)


def _run_renders(
    threads: int, n: int = 8, *, on_loop: bool = False
) -> tuple[int, list[int], list[int]]:
    """``n`` concurrent renders asked for in order on a queue of ``threads``: the most running at
    once, the order they started in, their results. ``on_loop``: every other render runs on the
    event loop (as the PostGIS backend's), the others in threads."""
    import threading
    import time

    import anyio

    from vggeo_server.render import RenderQueue

    queue = RenderQueue(threads)
    lock = threading.Lock()
    running, most, started = [0], [0], []

    def render(i: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            started.append(i)
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return i

    async def main() -> list[int]:
        done: list[int] = []

        async def render_on_loop(i: int) -> int:
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
                started.append(i)
            await anyio.sleep(0.02)
            with lock:
                running[0] -= 1
            return i

        async def ask(i: int) -> None:
            if on_loop and i % 2:
                done.append(await queue.run_on_loop(render_on_loop, i))
            else:
                done.append(await queue.run(render, i))

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(ask, i)
                await anyio.sleep(0.001)  # asked in this order
        return done

    done = anyio.run(main)
    return most[0], started, sorted(done)


def test_renders_run_at_most_threads_at_once():
    most, _, done = _run_renders(2)
    assert done == list(range(8))
    assert most == 2


def test_renders_waiting_their_turn_start_first_come_first_served():
    most, started, done = _run_renders(1)  # one at a time: the start order is exact
    assert done == list(range(8))
    assert most == 1
    assert started == list(range(8))


def test_renders_on_the_event_loop_take_the_same_places_in_the_same_order():
    most, _, done = _run_renders(2, on_loop=True)
    assert done == list(range(8))
    assert most == 2
    most, started, done = _run_renders(1, on_loop=True)
    assert (most, started, done) == (1, list(range(8)), list(range(8)))


def test_render_threads_setting_sizes_the_queue(store):
    from vggeo_server import Settings, create_app

    app = create_app(Settings(_env_file=None, store=str(store[0]), render_threads=3))
    assert app.state.render.threads == 3
    assert create_app(Settings(_env_file=None, store=str(store[0]))).state.render.threads >= 2


def test_a_postgis_backend_renders_twice_as_many_at_once():
    from types import SimpleNamespace

    from vggeo_server.render import RenderQueue, default_threads

    queue = RenderQueue()
    queue.fit(SimpleNamespace(kind="postgis"))
    assert queue.threads == 2 * default_threads()
    assert queue.loop_threads == default_threads()  # on the event loop: the cores
    queue = RenderQueue()
    queue.fit(SimpleNamespace(kind="memory"))
    assert queue.threads == queue.loop_threads == default_threads()
    queue = RenderQueue(3)  # chosen: kept, for both
    queue.fit(SimpleNamespace(kind="postgis"))
    assert queue.threads == queue.loop_threads == 3


def test_renders_on_the_event_loop_run_at_most_loop_threads_at_once():
    """Of 4 places, 2 for renders on the loop: 8 renders on the loop run 2 at a time, in order;
    mixed with renders in threads, 4 run at once and never more than 2 on the loop."""
    import threading
    import time

    import anyio

    from vggeo_server.render import RenderQueue

    async def main(kinds: str) -> tuple[int, int, list[int]]:
        queue = RenderQueue(4)
        queue.loop_threads = 2
        lock = threading.Lock()
        running, on_loop, most, most_loop, started = [0], [0], [0], [0], []

        def begin(i: int, loop: bool) -> None:
            with lock:
                running[0] += 1
                on_loop[0] += loop
                most[0], most_loop[0] = max(most[0], running[0]), max(most_loop[0], on_loop[0])
                started.append(i)

        def end(loop: bool) -> None:
            with lock:
                running[0] -= 1
                on_loop[0] -= loop

        def in_thread(i: int) -> None:
            begin(i, False)
            time.sleep(0.02)
            end(False)

        async def on_the_loop(i: int) -> None:
            begin(i, True)
            await anyio.sleep(0.02)
            end(True)

        async def ask(i: int, kind: str) -> None:
            if kind == "l":
                await queue.run_on_loop(on_the_loop, i)
            else:
                await queue.run(in_thread, i)

        async with anyio.create_task_group() as tg:
            for i, kind in enumerate(kinds):
                tg.start_soon(ask, i, kind)
                await anyio.sleep(0.001)  # asked in this order
        return most[0], most_loop[0], started

    most, most_loop, started = anyio.run(main, "llllllll")
    assert (most, most_loop, started) == (2, 2, list(range(8)))
    most, most_loop, _ = anyio.run(main, "ltltltltltlt")
    assert (most, most_loop) == (4, 2)
