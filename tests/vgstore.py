"""A real vggeo store (``vggeo.store``) for the OGC API – Features tests, from generated frames."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from vggeo.tiles.sample import generate


def make_vggeo_store(path: Path, n: int = 3000, *, seed: int = 5) -> tuple[Path, object, object]:
    """Residences loaded with ``load_residences``, provisions applied as a base extract, and one
    inskrivning table with an owner key (personal data that must never be served).

    Returns (path, residences, provisions) as written (EPSG:3006, easting first).
    """
    from vggeo.store import MemoryDelivery, open_store

    residences, provisions = generate(n, seed=seed, n_towns=12, provisions_per_town=10)
    residences["address"] = [f"Storgatan {i}" for i in range(len(residences))]  # never served
    with open_store(path, create=True) as store:
        store.load_residences(residences)
        store.apply(
            MemoryDelivery(
                product="bestammelse",
                extract_id="features-test-base",
                extract_type="base",
                produced_at=datetime(2025, 1, 6, tzinfo=UTC),
                tables={"markreglerandebestammelse": {"provisions": provisions}},
            )
        )
        store.apply(
            MemoryDelivery(
                product="inskrivning",
                extract_id="features-test-insk",
                extract_type="base",
                produced_at=datetime(2025, 1, 6, tzinfo=UTC),
                tables={
                    "agande": {
                        "agande": pd.DataFrame(
                            {"object_id": ["o1"], "property_id": ["p1"], "owner_key": ["k1"]}
                        )
                    }
                },
            )
        )
    return path, residences, provisions
