"""The bundled registry slice is what its README's command generates, and it loads cleanly."""

from __future__ import annotations

import numpy as np

from vggeo.registry.checks import check_registry
from vggeo.registry.readers import read_registry
from vggeo.sample.registry import generate_registry


def test_registry_slice_matches_its_command(sample_data):
    bundled = read_registry(sample_data / "registry" / "registry.parquet")
    fresh = generate_registry(20000, seed=42)
    assert len(bundled) == 20000
    assert check_registry(bundled).ok
    # GeoParquet rows are written in Hilbert order: the same homes, matched by id.
    assert sorted(bundled["id"]) == sorted(fresh["id"])
    bundled = bundled.set_index("id").loc[fresh["id"]].reset_index()
    assert np.array_equal(bundled["id"].to_numpy(), fresh["id"].to_numpy())
    assert np.array_equal(bundled["sweref99x"].to_numpy(), fresh["sweref99x"].to_numpy())


def test_defects_slice_reports_its_defects(sample_data):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = read_registry(sample_data / "registry" / "registry_with_defects.jsonl")
    rep = check_registry(g)
    assert len(g) == 1000
    assert (
        sum(
            rep.summary[k]
            for k in ("conflicting_coordinates", "bad_apartment_numbers", "unknown_codes")
        )
        == 10
    )
