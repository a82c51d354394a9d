"""``vggeo.exports.delivery.write_delivery``: what ``vggeo read`` does, from Python."""

from __future__ import annotations

import pyogrio
import pytest

from vggeo.errors import InputError
from vggeo.exports.delivery import DeliveryWritten, write_delivery
from vggeo.lm import read_delivery


def test_streamed_geopackage_has_every_table(bestammelse_deliveries, tmp_path):
    out = tmp_path / "out.gpkg"
    seen: list[DeliveryWritten] = []
    done = write_delivery(bestammelse_deliveries[1], out, on_read=seen.append)
    whole = read_delivery(bestammelse_deliveries[1])
    assert done.product == "bestammelse" and seen == [done]
    assert done.rows == {name: len(frame) for name, frame in whole.tables.items()}
    layers = dict(pyogrio.list_layers(out))
    assert set(layers) == set(done.rows) and layers["provisions"] == "MultiPolygon"


def test_one_table_to_parquet_and_refusals(inskrivning_deliveries, tmp_path):
    out = tmp_path / "agande.parquet"
    seen: list[tuple[bool, dict]] = []

    def report(read: DeliveryWritten) -> None:  # called before the file is written
        seen.append((out.exists(), dict(read.rows)))

    done = write_delivery(inskrivning_deliveries[0], out, on_read=report)
    assert done.product == "inskrivning" and out.exists() and "agande" in done.rows
    assert seen == [(False, {})]
    with pytest.raises(InputError, match="exists"):
        write_delivery(inskrivning_deliveries[0], out, overwrite=False)
    with pytest.raises(InputError, match="no table 'nothing'"):
        write_delivery(inskrivning_deliveries[0], tmp_path / "x.parquet", table="nothing")
    assert not (tmp_path / "x.parquet").exists()
    with pytest.raises(InputError, match="extension"):
        write_delivery(inskrivning_deliveries[0], tmp_path / "x.csv")
