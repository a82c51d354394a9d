"""A test store before ``vggeo.store`` exists: the contract tables as GeoPackage layers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from exports import frames
from exports.frames import write_store


@pytest.fixture(scope="session")
def contract_tables() -> dict[str, pd.DataFrame]:
    res = frames.residences(3000)
    prov = frames.provisions(120)
    return {
        "residences": res,
        "provisions": prov,
        "affected_properties": frames.affected(prov),
        "decisions": frames.decisions(prov),
    }


@pytest.fixture(scope="session")
def store_gpkg(tmp_path_factory, contract_tables) -> Path:
    return write_store(tmp_path_factory.mktemp("store") / "store.gpkg", contract_tables)
