"""Real delivery files (ZIPs from vggeo's generator, read by vggeo.lm) through the store and the CLI.

Also the bad ones: malformed XML halfway through a data file, a ZIP that escapes its folder, a ZIP
bomb — each leaves the store as it was (byte for byte for a GeoPackage) with a clear message.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from deliveries import Model, snapshot
from test_property import assert_same

from vggeo.cli import cli
from vggeo.errors import ParseError, UnsafeInputError
from vggeo.lm import open_delivery
from vggeo.sample.delivery import generate_deliveries
from vggeo.store import open_store


@pytest.fixture(scope="module")
def bestammelse_files(tmp_path_factory) -> list[Path]:
    return generate_deliveries(
        tmp_path_factory.mktemp("best"), product="bestammelse", n=60, changes=2, seed=11
    )


@pytest.fixture(scope="module")
def inskrivning_files(tmp_path_factory) -> list[Path]:
    return generate_deliveries(
        tmp_path_factory.mktemp("insk"), product="inskrivning", n=40, changes=2, seed=12
    )


def fingerprint(store) -> object:
    if store.backend == "gpkg":
        return hashlib.sha256(Path(store.location).read_bytes()).hexdigest()
    return snapshot(store)


def test_bestammelse_chain_matches_the_model(store, bestammelse_files):
    model = Model()
    for path in bestammelse_files:
        with open_delivery(path) as d:
            model.apply(d)
            result = store.apply(d)
            assert result.applied
            assert_same(store, model, path.name)
    # a change that names its predecessor: replaying the first change after the second is refused
    with open_delivery(bestammelse_files[1]) as d:
        assert not store.apply(d).applied


def _keyed_as(store, d):
    """The model reads owner keys under the store's secret (the reader's per-delivery secret)."""
    from vggeo.store.base import OWNER_SECRET_META

    d.run_owner_secret = store._get_meta(OWNER_SECRET_META)
    return d


def test_inskrivning_base_matches_the_model(store, inskrivning_files):
    model = Model()
    with open_delivery(inskrivning_files[0]) as d:
        model.apply(_keyed_as(store, d))
        store.apply(d)
    assert_same(store, model, inskrivning_files[0].name)
    assert store.counts()["persons"] > 0 and store.counts()["agande"] > 0


def test_inskrivning_chain_matches_the_model(store, inskrivning_files):
    """Base and changes as vggeo.lm reads them: deletions, owners, protected persons, orphans."""
    model = Model()
    for path in inskrivning_files:
        with open_delivery(path) as d:
            model.apply(_keyed_as(store, d))
            assert store.apply(d).applied
            assert_same(store, model, path.name)
    assert store.ledger().extract_type.tolist() == ["base", "change", "change"]


# --- bad deliveries --------------------------------------------------------------------------


def _rewrite(src: Path, dst: Path, change) -> Path:
    """Copy a delivery ZIP, passing every data member of every inner set ZIP through ``change``."""
    with zipfile.ZipFile(src) as outer, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as out:
        for info in outer.infolist():
            data = outer.read(info)
            if info.filename.endswith(".zip"):
                buf = io.BytesIO()
                with (
                    zipfile.ZipFile(io.BytesIO(data)) as inner,
                    zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as new,
                ):
                    for member in inner.infolist():
                        new.writestr(member.filename, change(member.filename, inner.read(member)))
                data = buf.getvalue()
            out.writestr(info.filename, data)
    return dst


def _malformed(name: str, data: bytes) -> bytes:
    if name.endswith("_1.xml"):
        cut = len(data) // 2  # same size, so only the XML itself can give it away
        junk = b"<broken attr='>"
        return data[:cut] + junk + data[cut + len(junk) :]
    return data


def test_malformed_xml_halfway_leaves_store_unchanged(store, bestammelse_files, tmp_path):
    with open_delivery(bestammelse_files[0]) as d:
        store.apply(d)
    bad = _rewrite(bestammelse_files[1], tmp_path / "bad.zip", _malformed)
    before, version = fingerprint(store), store.data_version
    with (
        open_delivery(bad) as d,
        pytest.raises(ParseError, match=r"markreglerandebestammelse_1\.xml"),
    ):
        store.apply(d)
    assert fingerprint(store) == before and store.data_version == version
    with open_delivery(bestammelse_files[1]) as d:  # the good file still applies afterwards
        assert store.apply(d).applied


def _zip_slip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("../../outside/markreglerandebestammelse_metadata.xml", "<x/>")
    return path


def _zip_bomb(path: Path) -> Path:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("markreglerandebestammelse_1.xml", b"<a>" + b" " * (300 << 20) + b"</a>")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("Markreglerande bestammelse/markreglerandebestammelse.zip", inner.getvalue())
        z.writestr("Markreglerande bestammelse/markreglerandebestammelse_metadata.xml", "<m/>")
    return path


@pytest.mark.parametrize("make", [_zip_slip, _zip_bomb], ids=["zip-slip", "zip-bomb"])
def test_hostile_zip_is_refused_by_ingest_and_store_unchanged(
    store_location, backend, tmp_path, bestammelse_files, make
):
    location, schema = store_location
    runner = CliRunner()
    ok = runner.invoke(
        cli,
        [
            "ingest",
            str(bestammelse_files[0]),
            "--store",
            location,
            "--schema",
            schema,
            "--no-progress",
        ],
    )
    assert ok.exit_code == 0, ok.output
    with open_store(location, schema=schema) as s:
        before = fingerprint(s)
    hostile = make(tmp_path / "hostile.zip")
    with pytest.raises(UnsafeInputError):
        open_delivery(hostile)
    r = runner.invoke(cli, ["ingest", str(hostile), "--store", location, "--schema", schema])
    assert r.exit_code == 2
    assert "vggeo: error:" in r.output and "hostile.zip" in r.output
    with open_store(location, schema=schema) as s:
        assert fingerprint(s) == before


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_ingest_and_status(store_location, bestammelse_files):
    location, schema = store_location
    runner = CliRunner()
    args = ["--store", location, "--schema", schema]
    missing = runner.invoke(cli, ["store", "status", *args])
    assert missing.exit_code == 2
    assert "not a vggeo store" in missing.output or "no store at" in missing.output

    early = runner.invoke(cli, ["ingest", str(bestammelse_files[1]), *args, "--no-progress"])
    assert early.exit_code == 2
    assert "no base extract of bestammelse" in early.output

    r = runner.invoke(cli, ["ingest", *map(str, reversed(bestammelse_files)), *args])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    applied = [ln for ln in lines if ": applied " in ln]
    # applied in production order whatever the order on the command line
    assert [ln.split(":")[0] for ln in applied] == [p.name for p in bestammelse_files]
    assert any(ln.strip().startswith("markreglerandebestammelse: deleted") for ln in lines)

    again = runner.invoke(cli, ["ingest", str(bestammelse_files[-1]), *args])
    assert again.exit_code == 0 and "already applied" in again.stdout

    status = runner.invoke(cli, ["store", "status", *args])
    assert status.exit_code == 0, status.output
    with open_store(location, schema=schema) as s:
        counts, ledger = s.counts(), s.ledger()
    assert "provisions" in status.stdout and str(counts["provisions"]) in status.stdout
    for eid in ledger.extract_id:
        assert eid in status.stdout
    doc = json.loads(runner.invoke(cli, ["store", "status", *args, "--json"]).stdout)
    assert doc["counts"] == counts
    assert doc["last_extract"]["bestammelse"]["extract_id"] == ledger.extract_id.iloc[-1]
    assert [e["extract_id"] for e in doc["ledger"]] == ledger.extract_id.tolist()
