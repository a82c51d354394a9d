"""Apply one phase of a large, deterministic provisions subscription to a store, in its own process.

``python crash_worker.py LOCATION SCHEMA SEED base|change`` — the crash test kills this process
with SIGKILL at random points while it applies the change. It prints ``applying`` just before the
transaction starts, ``writing`` just before its first write (so the test can aim its kills at
the writes, whatever the machine's load does to the reading before them) and ``done`` after it
committed.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from deliveries import bestammelse, pid  # noqa: E402

N_BASE = 20_000
N_CHANGED = 5_000
N_REMOVED = 1_000


def delivery(phase: str, seed: int):
    rng = np.random.default_rng(seed)
    if phase == "base":
        return bestammelse("crash-base", "base", datetime(2025, 3, 3, 4), range_ids(0, N_BASE), rng)
    pick = np.random.default_rng(seed + 1)
    changed = [pid(int(i)) for i in pick.choice(N_BASE + N_CHANGED, N_CHANGED, replace=False)]
    removed = [pid(int(i)) for i in pick.choice(N_BASE, N_REMOVED, replace=False)]
    options = [{"basinformation"}, {"berorkrets"}, {"basinformation", "berorkrets"}]
    subsets = {
        p: options[int(k)] for p, k in zip(changed, pick.integers(0, 3, len(changed)), strict=True)
    }
    return bestammelse(
        "crash-change",
        "change",
        datetime(2025, 3, 10, 4),
        changed,
        rng,
        removed=removed,
        subsets=subsets,
        version=3,
    )


def range_ids(a: int, b: int) -> list[str]:
    return [pid(i) for i in range(a, b)]


def main() -> None:
    location, schema, seed, phase = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    from vggeo.store import open_store

    d = delivery(phase, seed)
    with open_store(location, create=True, schema=schema) as store:
        print("applying", flush=True)
        delete = store._delete_keys

        def announced(*args, **kwargs):  # the first write of the transaction: say so, once
            if not getattr(announced, "said", False):
                announced.said = True
                print("writing", flush=True)
            return delete(*args, **kwargs)

        store._delete_keys = announced
        result = store.apply(d)
        print("done" if result.applied else "noop", flush=True)


if __name__ == "__main__":
    main()
