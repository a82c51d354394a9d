"""The export's read-ahead: order kept, bounded, errors raised as themselves, the source closed."""

from __future__ import annotations

import threading
import time

import pytest

from vggeo.exports.gpkg import read_ahead


def test_items_arrive_in_order_and_the_worker_stays_at_most_depth_ahead():
    produced = []

    def items():
        for i in range(20):
            produced.append(i)
            yield i

    seen = []
    for item in read_ahead(items(), depth=2):
        time.sleep(0.01)
        # the worker may hold `depth` items in the queue plus the one it is putting
        assert len(produced) - len(seen) <= 2 + 2
        seen.append(item)
    assert seen == list(range(20))


def test_an_error_in_the_worker_is_raised_in_the_consumer_as_itself():
    def items():
        yield 1
        raise KeyError("batch 2")

    got = []
    with pytest.raises(KeyError, match="batch 2"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1]


def test_a_consumer_that_stops_early_stops_the_worker_and_closes_the_source():
    closed = threading.Event()

    def items():
        try:
            yield from range(10_000)
        finally:
            closed.set()

    gen = read_ahead(items(), depth=1)
    assert next(gen) == 0
    gen.close()
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "vggeo-read-ahead"]
