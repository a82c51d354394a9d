"""``vggeo.lm.inspect`` and ``vggeo.lm.read_delivery``: what ``vggeo inspect`` / ``vggeo read``
print, for a Python user. Oracles: the delivery's own metadata and members read with lxml and
zipfile (not vggeo's reader), and the CLI's output of the same delivery."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from click.testing import CliRunner
from lxml import etree

from vggeo.cli import cli
from vggeo.errors import IntegrityError
from vggeo.lm import DeliveryTables, InspectReport, inspect, open_delivery, read_delivery


def _members(outer) -> dict[str, bytes]:
    """Every XML file of an outer delivery ZIP (set ZIPs opened), by file name."""
    out = {}
    with zipfile.ZipFile(outer) as z:
        for name in z.namelist():
            if name.endswith(".zip"):
                with zipfile.ZipFile(io.BytesIO(z.read(name))) as inner:
                    out |= {n.rsplit("/", 1)[-1]: inner.read(n) for n in inner.namelist()}
            elif name.endswith(".xml"):
                out[name.rsplit("/", 1)[-1]] = z.read(name)
    return out


def _root_children(xml: bytes) -> int:
    return len(etree.fromstring(xml))


def test_inspect_reports_files_and_counts_as_the_members_hold(bestammelse_deliveries):
    report = inspect(bestammelse_deliveries[0])
    assert isinstance(report, InspectReport) and report.ok and report.integrity == "ok"
    assert report.product == "bestammelse" and report.crs == 3006
    members = _members(bestammelse_deliveries[0])
    (set_report,) = report.sets.values()
    data = {n: f for n, f in set_report.files.items() if f.kind == "data"}
    assert len(data) == 3
    for name, f in data.items():
        assert f.objects == _root_children(members[name])
    assert set_report.tables["provisions"] == sum(f.objects for f in data.values())
    assert set_report.geometry_errors == [] and report.unmapped_elements == {}


def test_inspect_is_what_the_cli_prints(inskrivning_deliveries):
    report = inspect(inskrivning_deliveries[2])
    r = CliRunner().invoke(cli, ["inspect", "--json", str(inskrivning_deliveries[2])])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == report.to_dict()
    r = CliRunner().invoke(cli, ["inspect", str(inskrivning_deliveries[2])])
    assert r.output == report.to_text() + "\n"


def test_inspect_reports_a_mismatch_instead_of_raising(bestammelse_deliveries, tmp_path, unpack):
    folder = unpack(bestammelse_deliveries[0], tmp_path / "f")
    next(folder.rglob("markreglerandebestammelse_2.xml")).unlink()
    report = inspect(folder)
    assert not report.ok and isinstance(report.problem, IntegrityError)
    assert report.integrity.startswith("FAILED: ") and "missing" in str(report.problem)


def test_inspect_leaves_a_given_delivery_open(bestammelse_deliveries):
    with open_delivery(bestammelse_deliveries[1]) as d:
        report = inspect(d)
        assert report.path == str(d.path)
        assert d.data_files()  # still readable


@pytest.mark.parametrize("which", [0, 2])
def test_read_delivery_tables_and_deletions(inskrivning_deliveries, which):
    out = read_delivery(inskrivning_deliveries[which])
    assert isinstance(out, DeliveryTables) and out.product == "inskrivning"
    assert out.default_table == "agande" and "agande" in out.tables
    members = _members(inskrivning_deliveries[which])
    deletions = [
        etree.fromstring(xml) for name, xml in members.items() if name.endswith("_borttag.xml")
    ]
    if which == 0:
        assert "deletions" not in out.tables and not deletions
    else:
        listed = sum(len(root) for root in deletions)
        assert len(out.tables["deletions"]) == listed > 0
    # personal data redacted by default
    assert out.tables["persons"]["last_name"].isna().all()


def test_application_key_orders_deliveries_as_their_names_do(bestammelse_deliveries):
    # The generator names its ZIPs 000_base_…, 001_change_… in the order they must be applied.
    from vggeo.store.ledger import application_key

    opened = [open_delivery(p) for p in reversed(bestammelse_deliveries)]
    try:
        order = sorted(opened, key=application_key)
        assert [d.path.name for d in order] == sorted(p.name for p in bestammelse_deliveries)
    finally:
        for d in opened:
            d.close()
