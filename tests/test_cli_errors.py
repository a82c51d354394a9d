"""Every bad input: exit code 2, one line on stderr naming it, no traceback, every store untouched.

The hostile deliveries are built here, from a good one, by :mod:`zipfile` and byte surgery
(``tests/hostile.py``); each is fed to the real ``vggeo`` command. A store that held data before
holds exactly the same bytes after; a store that did not exist still does not — GeoPackage and
PostGIS alike. Unexpected exceptions (bugs) get the same treatment from the CLI's guard, and
Ctrl-C exits with 130; a SIGKILL mid-ingest leaves no temporary file or folder behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from hostile import (
    SET,
    central_entry_offset,
    circle_by_centre,
    data_file,
    delivery,
    ident,
    inner_set_zip,
    local_header_offset,
    member_data_offset,
    one_file_delivery,
    patch_bytes,
    polygon,
    provision,
    replace_inner,
    zip_bytes,
)

from vggeo._version import __version__
from vggeo.cli import cli

XML = f"{SET}_1.xml"
T0 = datetime(2026, 1, 5, 4, 30, tzinfo=timezone(timedelta(hours=1)))
WHEN = {"base": T0, "change": T0 + timedelta(days=7)}
VGGEO = Path(sys.executable).with_name("vggeo")


def _members(n: int = 20, start: int = 0) -> list[str]:
    return [provision(ident(i), polygon()) for i in range(start, start + n)]


def _good(tmp: Path, kind: str, name: str = "good.zip") -> Path:
    return one_file_delivery(tmp / name, _members(), extract_type=kind, produced=WHEN[kind])


def _xml_delivery(members: list[str] | bytes):
    def build(tmp: Path, kind: str) -> Path:
        data = members if isinstance(members, bytes) else data_file(members)
        return delivery(tmp / "bad.zip", [(XML, data, 20)], extract_type=kind, produced=WHEN[kind])

    return build


def _inner_surgery(edit):
    """A delivery whose set ZIP is ``edit(set ZIP bytes)``; the metadata left true to the data."""

    def build(tmp: Path, kind: str) -> Path:
        good = _good(tmp, kind)
        _, inner = inner_set_zip(good)
        return replace_inner(good, tmp / "bad.zip", edit(inner))

    return build


def _outer_surgery(edit):
    def build(tmp: Path, kind: str) -> Path:
        bad = tmp / "bad.zip"
        bad.write_bytes(edit(_good(tmp, kind).read_bytes()))
        return bad

    return build


def _crc_lie(inner: bytes) -> bytes:
    """CRC-32 changed in both the local header and the central directory: the data disagree."""
    with zipfile.ZipFile(io.BytesIO(inner)) as z:
        crc = z.getinfo(XML).CRC
    wrong = struct.pack("<I", crc ^ 0x5A5A)
    out = patch_bytes(inner, local_header_offset(inner, XML) + 14, wrong)
    return patch_bytes(out, central_entry_offset(out, XML) + 16, wrong)


def _size_lie(inner: bytes) -> bytes:
    """The uncompressed size declared 100 bytes short, in both headers."""
    with zipfile.ZipFile(io.BytesIO(inner)) as z:
        size = z.getinfo(XML).file_size
    short = struct.pack("<I", size - 100)
    out = patch_bytes(inner, local_header_offset(inner, XML) + 22, short)
    return patch_bytes(out, central_entry_offset(out, XML) + 24, short)


def _broken_deflate(inner: bytes) -> bytes:
    at = member_data_offset(inner, XML) + 7
    return patch_bytes(inner, at, bytes(b ^ 0xFF for b in inner[at : at + 3]))


def _local_name_differs(inner: bytes) -> bytes:
    return patch_bytes(inner, local_header_offset(inner, XML) + 30, b"X")


def _local_size_differs(inner: bytes) -> bytes:
    at = local_header_offset(inner, XML) + 18
    (csize,) = struct.unpack_from("<I", inner, at)
    return patch_bytes(inner, at, struct.pack("<I", csize + 1))


def _method_99(inner: bytes) -> bytes:
    """Compression method 99 (AES) in both headers: zipfile cannot inflate it."""
    out = patch_bytes(inner, local_header_offset(inner, XML) + 8, struct.pack("<H", 99))
    return patch_bytes(out, central_entry_offset(out, XML) + 10, struct.pack("<H", 99))


def _twice(names: tuple[str, str]):
    def edit(inner: bytes) -> bytes:
        with zipfile.ZipFile(io.BytesIO(inner)) as z:
            data = z.read(XML)
        with pytest.warns(UserWarning) if names[0] == names[1] else _nothing():
            return zip_bytes([(names[0], data_file(_members(20, 100))), (names[1], data)])

    return edit


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _named(name: str):
    def edit(inner: bytes) -> bytes:
        with zipfile.ZipFile(io.BytesIO(inner)) as z:
            return zip_bytes([(name, z.read(XML))])

    return edit


def _bad_utf8_name(inner: bytes) -> bytes:
    """A name flagged UTF-8 (bit 11) whose bytes are not UTF-8 (same length: a valid layout)."""
    central = central_entry_offset(inner, XML)
    out = inner.replace(XML.encode(), XML.replace("k", "\xff", 1).encode("latin-1"))
    for at in (local_header_offset(inner, XML) + 6, central + 8):
        (flags,) = struct.unpack_from("<H", out, at)
        out = patch_bytes(out, at, struct.pack("<H", flags | 0x800))
    return out


def _prepended(data: bytes) -> bytes:
    return b"MZ" + b"\0" * 510 + data  # a self-extractor's stub before the archive


#: (case, builder(tmp, kind) -> delivery path, text the error line must hold)
CASES = [
    ("crc-lie", _inner_surgery(_crc_lie), "Bad CRC-32"),
    ("size-lie", _inner_surgery(_size_lie), XML),
    ("broken-deflate", _inner_surgery(_broken_deflate), "deflate"),
    ("local-name-differs", _inner_surgery(_local_name_differs), "central directory"),
    ("local-size-differs", _inner_surgery(_local_size_differs), "central directory"),
    ("method-99", _inner_surgery(_method_99), XML),
    ("inner-truncated", _inner_surgery(lambda b: b[: len(b) - 40]), f"{SET}.zip"),
    ("inner-cut-in-half", _inner_surgery(lambda b: b[: len(b) // 2]), f"{SET}.zip"),
    ("outer-truncated", _outer_surgery(lambda b: b[: len(b) // 2]), "bad.zip"),
    ("outer-last-bytes-missing", _outer_surgery(lambda b: b[:-10]), "bad.zip"),
    (
        "outer-stored-set-damaged",
        _outer_surgery(lambda b: patch_bytes(b, len(b) // 3, b"\0\0\0\0")),
        "bad.zip",
    ),
    ("prepended-stub", _outer_surgery(_prepended), "bad.zip"),
    ("not-a-zip", _outer_surgery(lambda b: os.urandom(len(b))), "bad.zip"),
    ("empty-file", _outer_surgery(lambda b: b""), "bad.zip"),
    ("duplicate-member", _inner_surgery(_twice((XML, XML))), XML),
    ("duplicate-member-other-case", _inner_surgery(_twice((XML.upper(), XML))), XML),
    ("duplicate-member-other-normal-form", _inner_surgery(_twice(("./" + XML, XML))), XML),
    ("newline-in-name", _inner_surgery(_named(f"{SET}_1\n.xml")), "U+000A"),
    ("right-to-left-override-in-name", _inner_surgery(_named(f"{SET}_\u202e1.xml")), "U+202E"),
    ("zero-width-space-in-name", _inner_surgery(_named(f"{SET}\u200b_1.xml")), "U+200B"),
    ("invalid-utf8-name", _inner_surgery(_bad_utf8_name), f"{SET}.zip"),
    ("malformed-xml", _xml_delivery(_members(19) + ["<Broken attr=>"]), XML),
    ("xml-truncated", _xml_delivery(data_file(_members())[:-200]), XML),
    (
        "invalid-utf8-text",
        _xml_delivery(data_file(_members()).replace(b"0180-P", b"0180-\xff", 1)),
        XML,
    ),
    (
        "dtd",
        _xml_delivery(
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "b">]>' + data_file(_members())[38:]
        ),
        "DTD",
    ),
    ("identity-twice", _xml_delivery(_members(19) + _members(1, 7)), ident(7)),
    (
        "odd-poslist",
        _xml_delivery(
            _members(19) + [provision(ident(99), polygon("6580000 674000 1 2 3 4 5 6 7"))]
        ),
        ident(99),
    ),
    (
        "circle-of-1e15-m",
        _xml_delivery(
            _members(19) + [provision(ident(99), circle_by_centre(6580000, 674000, "1e15"))]
        ),
        "VGGEO_MAX_ARC_VERTICES",
    ),
]
IDS = [c[0] for c in CASES]


def _metadata_broken(tmp: Path, kind: str) -> Path:
    good = _good(tmp, kind)
    bad = tmp / "bad.zip"
    with zipfile.ZipFile(good) as z, zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as out:
        for info in z.infolist():
            data = z.read(info)
            out.writestr(
                info.filename,
                data.replace(b"</Metadata>", b"")
                if info.filename.endswith("_metadata.xml")
                else data,
            )
    return bad


def _deletions_broken(tmp: Path, kind: str) -> Path:
    good = _good(tmp, "change")
    _, inner = inner_set_zip(good)
    with zipfile.ZipFile(io.BytesIO(inner)) as z:
        members = [
            (n, z.read(n) if not n.endswith("_borttag.xml") else b"<BorttagResponse><Borttag")
            for n in z.namelist()
        ]
    return replace_inner(good, tmp / "bad.zip", zip_bytes(members))


CASES += [
    ("malformed-metadata", _metadata_broken, "_metadata.xml"),
    ("malformed-deletion-file", _deletions_broken, "_borttag.xml"),
]
IDS += ["malformed-metadata", "malformed-deletion-file"]


def _one_error_line(stderr: str, must_name: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("vggeo: error: ") and must_name in lines[0], lines[0]
    return lines[0]


def _vggeo(*args, env=None, timeout=300, stdin=None) -> subprocess.CompletedProcess:
    cmd = [str(VGGEO)] if VGGEO.exists() else [sys.executable, "-m", "vggeo"]
    return subprocess.run(
        [*cmd, *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory) -> Path:
    """A GeoPackage store holding a base delivery, ready for a change."""
    tmp = tmp_path_factory.mktemp("filled")
    store = tmp / "store.gpkg"
    r = CliRunner().invoke(
        cli, ["ingest", str(_good(tmp, "base", "base.zip")), "--store", str(store), "--no-progress"]
    )
    assert r.exit_code == 0, r.output
    return store


@pytest.mark.parametrize(("case", "build", "must_name"), CASES, ids=IDS)
def test_bad_change_leaves_the_store_byte_for_byte(case, build, must_name, filled_store, tmp_path):
    before = _digest(filled_store)
    r = CliRunner().invoke(
        cli, ["ingest", str(build(tmp_path, "change")), "--store", str(filled_store)]
    )
    assert r.exit_code == 2
    _one_error_line(r.stderr, must_name)
    assert _digest(filled_store) == before
    assert not list(filled_store.parent.glob("store.gpkg-*"))  # no journal left


#: One case of each kind, run as a user runs them: the installed command in its own process, so
#: that a warning, a log line or a progress bar on stderr would show.
IN_A_PROCESS = (
    "crc-lie",
    "broken-deflate",
    "local-name-differs",
    "outer-truncated",
    "duplicate-member",
    "newline-in-name",
    "malformed-xml",
    "identity-twice",
    "odd-poslist",
    "circle-of-1e15-m",
    "malformed-metadata",
    "malformed-deletion-file",
)


@pytest.mark.parametrize(
    ("case", "build", "must_name"),
    [c for c in CASES if c[0] in IN_A_PROCESS],
    ids=list(IN_A_PROCESS),
)
def test_bad_change_in_a_real_process(case, build, must_name, filled_store, tmp_path):
    before = _digest(filled_store)
    r = _vggeo("ingest", build(tmp_path, "change"), "--store", filled_store)
    assert r.returncode == 2, r.stderr
    _one_error_line(r.stderr, must_name)
    assert _digest(filled_store) == before


BASE_CASES = [c for c in CASES if c[0] != "malformed-deletion-file"]  # a base has no deletions


@pytest.mark.parametrize(("case", "build", "must_name"), BASE_CASES, ids=[c[0] for c in BASE_CASES])
def test_bad_first_delivery_leaves_no_store(case, build, must_name, tmp_path):
    store = tmp_path / "new" / "store.gpkg"
    store.parent.mkdir()
    r = CliRunner().invoke(
        cli, ["ingest", str(build(tmp_path, "base")), "--store", str(store), "--no-progress"]
    )
    assert r.exit_code == 2
    _one_error_line(r.stderr, must_name)
    assert list(store.parent.iterdir()) == []


#: The cases whose damage is inside the set ZIP: also met in an unpacked delivery folder, where
#: the set ZIP is opened from the folder rather than from inside the outer ZIP.
INNER_CASES = [
    c
    for c in CASES
    if c[0]
    in (
        "crc-lie",
        "size-lie",
        "broken-deflate",
        "local-name-differs",
        "local-size-differs",
        "method-99",
        "inner-truncated",
        "inner-cut-in-half",
        "duplicate-member",
        "duplicate-member-other-case",
        "duplicate-member-other-normal-form",
        "newline-in-name",
        "invalid-utf8-name",
    )
]


@pytest.mark.parametrize(
    ("case", "build", "must_name"), INNER_CASES, ids=[c[0] for c in INNER_CASES]
)
def test_bad_set_zip_in_a_delivery_folder(case, build, must_name, filled_store, tmp_path):
    """Outer ZIP unpacked by the user → folder → damaged set ZIP: one line naming the set ZIP
    and the member, exit 2, the store byte for byte as it was."""
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(build(tmp_path, "change")) as z:
        z.extractall(folder)
    before = _digest(filled_store)
    r = CliRunner().invoke(
        cli, ["ingest", str(folder), "--store", str(filled_store), "--no-progress"]
    )
    assert r.exit_code == 2, r.output
    line = _one_error_line(r.stderr, must_name)
    assert str(folder) in line and f"{SET}.zip" in line
    assert _digest(filled_store) == before


@pytest.mark.parametrize(("case", "build", "must_name"), CASES, ids=IDS)
def test_bad_delivery_read_writes_nothing(case, build, must_name, tmp_path):
    out = tmp_path / "out" / "o.gpkg"
    out.parent.mkdir()
    r = CliRunner().invoke(
        cli, ["read", str(build(tmp_path, "base")), "-o", str(out), "--no-progress"]
    )
    assert r.exit_code == 2
    _one_error_line(r.stderr, must_name)
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize(
    ("case", "build", "must_name"),
    [c for c in CASES if c[0] not in ("identity-twice", "odd-poslist", "circle-of-1e15-m")],
    ids=[i for i in IDS if i not in ("identity-twice", "odd-poslist", "circle-of-1e15-m")],
)
def test_bad_delivery_inspected_names_the_problem(case, build, must_name, tmp_path):
    r = CliRunner().invoke(cli, ["inspect", str(build(tmp_path, "base"))])
    assert r.exit_code == 2
    _one_error_line(r.stderr, must_name)


def test_a_good_delivery_passes_all_the_checks(tmp_path):
    """The control: the same builders without the damage give a delivery that is applied."""
    store = tmp_path / "s.gpkg"
    r = CliRunner().invoke(
        cli, ["ingest", str(_good(tmp_path, "base")), "--store", str(store), "--no-progress"]
    )
    assert r.exit_code == 0 and r.stderr == ""


# --- PostGIS: a refused first delivery creates nothing; a refused change changes nothing ---------


def _pg_objects(url: str, schema: str) -> tuple:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        schemas = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = %s", (schema,)
        ).fetchall()
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_name LIKE 'vggeo%%'"
        ).fetchall()
    return schemas, sorted(tables)


@pytest.mark.postgis
@pytest.mark.parametrize("case", ["crc-lie", "identity-twice", "odd-poslist", "malformed-metadata"])
def test_postgis_refused_first_delivery_creates_nothing(case, postgis_url, tmp_path):
    import uuid

    [(_, build, must_name)] = [c for c in CASES if c[0] == case]
    schema = "t_" + uuid.uuid4().hex[:12]
    before = _pg_objects(postgis_url, schema)
    r = CliRunner().invoke(
        cli,
        [
            "ingest",
            str(build(tmp_path, "base")),
            "--store",
            postgis_url,
            "--schema",
            schema,
            "--no-progress",
        ],
    )
    assert r.exit_code == 2
    _one_error_line(r.stderr, must_name)
    assert _pg_objects(postgis_url, schema) == before == ([], before[1])


@pytest.mark.postgis
def test_postgis_refused_change_changes_nothing(postgis_url, tmp_path):
    import uuid

    from vggeo.store import open_store

    schema = "t_" + uuid.uuid4().hex[:12]
    r = CliRunner().invoke(
        cli,
        [
            "ingest",
            str(_good(tmp_path, "base", "base.zip")),
            "--store",
            postgis_url,
            "--schema",
            schema,
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    with open_store(postgis_url, schema=schema) as s:
        before = (s.counts(), s.ledger()["extract_id"].tolist(), s.data_version)
    for case in ("identity-twice", "odd-poslist", "size-lie"):
        [(_, build, must_name)] = [c for c in CASES if c[0] == case]
        r = CliRunner().invoke(
            cli,
            [
                "ingest",
                str(build(tmp_path, "change")),
                "--store",
                postgis_url,
                "--schema",
                schema,
                "--no-progress",
            ],
        )
        assert r.exit_code == 2
        _one_error_line(r.stderr, must_name)
        with open_store(postgis_url, schema=schema) as s:
            assert (s.counts(), s.ledger()["extract_id"].tolist(), s.data_version) == before


# --- the guard: bugs, --debug, Ctrl-C ------------------------------------------------------------


def _explode(*args, **kwargs):
    raise ZeroDivisionError("float division by zero")


def test_unexpected_exception_is_one_line_naming_the_file_and_asking_for_a_report(
    tmp_path, monkeypatch
):
    import vggeo.lm._records as records

    monkeypatch.setattr(records.Extractor, "feed_member", _explode)
    good = _good(tmp_path, "base")
    r = CliRunner().invoke(cli, ["read", str(good), "-o", str(tmp_path / "o.gpkg")])
    assert r.exit_code == 2
    line = _one_error_line(r.stderr, f"{good}!")
    assert XML in line and "ZeroDivisionError" in line and "bug" in line and __version__ in line
    assert "--debug" in line and "`vggeo read`" in line  # the command, as typed, options left out
    r = CliRunner().invoke(cli, ["--debug", "read", str(good), "-o", str(tmp_path / "o.gpkg")])
    assert r.exit_code == 2 and "Traceback" in r.stderr and "_explode" in r.stderr
    assert r.stderr.splitlines()[-1].startswith("vggeo: error: unexpected ZeroDivisionError")
    assert not (tmp_path / "o.gpkg").exists()


def test_unexpected_exception_in_a_store_names_the_delivery(tmp_path, monkeypatch):
    from vggeo.store.base import Store

    monkeypatch.setattr(Store, "_cleanup_owners", _explode)
    monkeypatch.setattr(Store, "_new_version", _explode)
    good = _good(tmp_path, "base")
    store = tmp_path / "s.gpkg"
    r = CliRunner().invoke(cli, ["-v", "ingest", str(good), "--store", str(store), "--no-progress"])
    assert r.exit_code == 2
    assert "`vggeo ingest`" in _one_error_line(r.stderr, str(good))
    assert not store.exists()


def test_guard_in_a_real_process_names_the_input(tmp_path):
    """A bug met in a subprocess (a sitecustomize that breaks the reader): one line, exit 2."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import vggeo.lm._records as r\n"
        "def boom(*a, **k):\n    raise KeyError('no such thing')\n"
        "r.Extractor.feed_member = boom\n"
    )
    good = _good(tmp_path, "base")
    r = _vggeo("read", good, "-o", tmp_path / "o.parquet", env={"PYTHONPATH": str(hook)})
    assert r.returncode == 2
    line = _one_error_line(r.stderr, XML)
    assert "KeyError" in line and __version__ in line
    r = _vggeo(
        "read",
        good,
        "-o",
        tmp_path / "o.parquet",
        env={"PYTHONPATH": str(hook), "VGGEO_DEBUG": "1"},
    )
    assert r.returncode == 2 and "Traceback" in r.stderr


def test_interrupt_exits_130_and_keeps_the_store(tmp_path, monkeypatch, filled_store):
    import shutil

    from vggeo.store.base import Store

    store = tmp_path / "s.gpkg"
    shutil.copy(filled_store, store)
    before = _digest(store)
    insert = Store._insert

    def interrupted(self, name, *a, **k):
        insert(self, name, *a, **k)  # some rows are written inside the transaction …
        raise KeyboardInterrupt  # … then Ctrl-C

    monkeypatch.setattr(Store, "_insert", interrupted)
    r = CliRunner().invoke(
        cli, ["ingest", str(_good(tmp_path, "change")), "--store", str(store), "--no-progress"]
    )
    assert r.exit_code == 130 and "interrupted" in r.stderr and "Traceback" not in r.stderr
    assert _digest(store) == before
    new = tmp_path / "new.gpkg"
    r = CliRunner().invoke(
        cli, ["ingest", str(_good(tmp_path, "base", "b.zip")), "--store", str(new), "--no-progress"]
    )
    assert r.exit_code == 130 and not new.exists()


def test_interrupted_sample_delivery_leaves_no_folder_it_made(tmp_path, monkeypatch):
    """Ctrl-C before the first ZIP is whole: exit 130, and the output folder the command made is
    gone (each ZIP is atomic; an empty folder was left behind before). A folder that existed
    stays."""
    import vggeo.sample.delivery as delivery

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(delivery, "_bestammelse", interrupted)
    for out in (tmp_path / "new" / "deliveries", tmp_path):
        args = ["sample", "delivery", "--product", "bestammelse", "--n", "10", "-o", str(out)]
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 130 and "interrupted" in r.stderr, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]  # made by the test's first call


def test_settings_error_is_one_line(tmp_path):
    r = _vggeo(
        "read",
        _xml_delivery(_members(19) + [provision(ident(99), circle_by_centre(6580000, 674000, 10))])(
            tmp_path, "base"
        ),
        "-o",
        tmp_path / "o.gpkg",
        env={"VGGEO_MAX_ARC_VERTICES": "lots"},
    )
    assert r.returncode == 2
    _one_error_line(r.stderr, "VGGEO_MAX_ARC_VERTICES")


# --- SIGKILL: nothing left behind ----------------------------------------------------------------


def _large_delivery(tmp: Path, *, compress_sets: bool) -> Path:
    """A base of 2 000 provisions, its set ZIP stored or deflated."""
    members = [provision(ident(i), polygon()) for i in range(2_000)]
    path = one_file_delivery(tmp / "big.zip", members)
    if not compress_sets:
        return path
    out = tmp / "big-deflated.zip"
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as o:
        for info in z.infolist():
            o.writestr(info.filename, z.read(info))
    return out


#: A sitecustomize for the killed process: once the store has written its first rows of the
#: delivery (inside the delivery's transaction), it says so in a file and waits to be killed —
#: so the kill always lands mid-write, however fast or loaded the machine.
_PAUSE_MID_WRITE = """\
import os, time
from vggeo.store.base import Store
_insert = Store._insert
def _paused(self, *a, **k):
    out = _insert(self, *a, **k)
    if not os.environ.get("VGGEO_TEST_ONCE"):
        os.environ["VGGEO_TEST_ONCE"] = "1"
        open(os.environ["VGGEO_TEST_MARK"], "w").close()
        time.sleep(120)
    return out
Store._insert = _paused
"""


@pytest.mark.slow
@pytest.mark.parametrize("compress_sets", [False, True], ids=["stored-sets", "deflated-sets"])
def test_sigkill_mid_ingest_leaves_no_temporary_files(compress_sets, tmp_path):
    """Killed while it writes, the ingest leaves no folder or file in TMPDIR; a re-run completes."""
    big = _large_delivery(tmp_path, compress_sets=compress_sets)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    store = tmp_path / "store.gpkg"
    hook, mark = tmp_path / "hook", tmp_path / "mid-write"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_PAUSE_MID_WRITE)
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH")) if p)
    env = {"TMPDIR": str(scratch)}
    cmd = [str(VGGEO)] if VGGEO.exists() else [sys.executable, "-m", "vggeo"]
    proc = subprocess.Popen(
        [*cmd, "ingest", str(big), "--store", str(store), "--no-progress"],
        env={**os.environ, **env, "PYTHONPATH": path, "VGGEO_TEST_MARK": str(mark)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not mark.exists():
            time.sleep(0.01)
        assert proc.poll() is None, "the ingest ended before it could be killed"
        assert mark.exists(), "the ingest never wrote a row"
        assert store.with_name(
            store.name + "-journal"
        ).exists()  # inside the delivery's transaction
        assert _reading(proc.pid, big)  # the delivery is open, its set ZIP being read
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert list(scratch.iterdir()) == []  # no vggeo-delivery-* folder, no copy of a set ZIP
    r = _vggeo("ingest", big, "--store", store, "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    from vggeo.store import open_store

    with open_store(store) as s:
        assert len(s.read_table("provisions")) == 2_000 and len(s.ledger()) == 1
    assert list(scratch.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("new_store", [True, False], ids=["new-store", "filled-store"])
def test_ctrl_c_mid_ingest_in_a_real_process(new_store, filled_store, tmp_path):
    """SIGINT while the delivery's rows are being written: exit 130, one line, no traceback; a
    store made for the delivery is gone, an existing one is byte for byte as it was."""
    import shutil

    store = tmp_path / "store.gpkg"
    if not new_store:
        shutil.copy(filled_store, store)
        before = _digest(store)
    hook, mark = tmp_path / "hook", tmp_path / "mid-write"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_PAUSE_MID_WRITE)
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH")) if p)
    cmd = [str(VGGEO)] if VGGEO.exists() else [sys.executable, "-m", "vggeo"]
    delivery_ = _good(tmp_path, "base" if new_store else "change")
    proc = subprocess.Popen(
        [*cmd, "ingest", str(delivery_), "--store", str(store), "--no-progress"],
        env={**os.environ, "PYTHONPATH": path, "VGGEO_TEST_MARK": str(mark)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not mark.exists():
            time.sleep(0.01)
        assert mark.exists(), "the ingest never wrote a row"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "interrupted" in err
    if new_store:
        assert list(tmp_path.glob("store.gpkg*")) == []
    else:
        assert _digest(store) == before and list(tmp_path.glob("store.gpkg*")) == [store]


#: A sitecustomize for the killed process: its output is written completely under the temporary
#: name, then the process says so in a file and waits to be killed before the rename.
_PAUSE_BEFORE_RENAME = """\
import os, time
from contextlib import contextmanager
import vggeo.atomic as a
_atomic_path = a.atomic_path
@contextmanager
def _paused(path, **k):
    with _atomic_path(path, **k) as tmp:
        yield tmp
        open(os.environ["VGGEO_TEST_MARK"], "w").close()
        time.sleep(120)
a.atomic_path = _paused
"""


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".gpkg", ".parquet"])
def test_sigkill_before_an_output_is_renamed_leaves_nothing_after_the_next_run(suffix, tmp_path):
    """A killed ``vggeo read -o`` leaves its half of the output beside it; the next write of the
    same output removes it once its process is gone and it has gone stale, and keeps others'."""
    from vggeo.atomic import STALE_AFTER_SECONDS

    good = _good(tmp_path, "base")
    work = tmp_path / "work"
    work.mkdir()
    out = work / f"out{suffix}"
    hook, mark = tmp_path / "hook", tmp_path / "written"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_PAUSE_BEFORE_RENAME)
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH")) if p)
    cmd = [str(VGGEO)] if VGGEO.exists() else [sys.executable, "-m", "vggeo"]
    proc = subprocess.Popen(
        [*cmd, "read", str(good), "-o", str(out)],
        env={**os.environ, "PYTHONPATH": path, "VGGEO_TEST_MARK": str(mark)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not mark.exists():
            time.sleep(0.01)
        assert mark.exists(), "the read never wrote its output"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = sorted(work.iterdir())
    assert left and not out.exists() and all(f".{proc.pid}-" in p.name for p in left), left
    # Another output in the same folder, and a recent leftover: neither is touched.
    other = work / f".other.{proc.pid}-0123abcd.part{suffix}"
    other.write_bytes(b"x")
    old = time.time() - STALE_AFTER_SECONDS - 60
    r = _vggeo("read", good, "-o", out)
    assert r.returncode == 0, r.stderr
    assert set(left) <= set(work.iterdir())  # recent: perhaps a writer on another machine
    for p in left:
        os.utime(p, (old, old))
    os.utime(other, (old, old))
    r = _vggeo("read", good, "-o", out, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert sorted(work.iterdir()) == sorted([out, other])


def test_sweep_keeps_the_files_of_a_live_process(tmp_path):
    from vggeo.atomic import STALE_AFTER_SECONDS, sweep_stale

    target = tmp_path / "o.gpkg"
    mine = tmp_path / f".o.{os.getpid()}-0123abcd.part.gpkg"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    gone = [tmp_path / f".o.{dead}-89abcdef.part.gpkg{side}" for side in ("", "-journal", "-wal")]
    for p in (mine, *gone):
        p.write_bytes(b"x")
        old = time.time() - STALE_AFTER_SECONDS - 1
        os.utime(p, (old, old))
    assert sorted(sweep_stale(target)) == sorted(gone)
    assert mine.exists()


def test_legacy_delivery_folders_swept_on_start(tmp_path):
    """Older versions unpacked set ZIPs into TMPDIR/vggeo-delivery-*, left there by every killed
    ingest; the first delivery opened sweeps the old ones, and only those."""
    from vggeo.lm.package import LEGACY_TEMP_AGE_SECONDS

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    old = time.time() - LEGACY_TEMP_AGE_SECONDS - 60
    stale = scratch / "vggeo-delivery-k1ll3d"
    (stale / "Markreglerande bestammelse").mkdir(parents=True)
    (stale / "Markreglerande bestammelse" / f"{XML}").write_bytes(b"<r/>")
    recent = scratch / "vggeo-delivery-running"
    recent.mkdir()
    keep = tmp_path / "not-ours"
    keep.mkdir()
    (keep / "precious").write_bytes(b"x")
    link = scratch / "vggeo-delivery-link"
    link.symlink_to(keep, target_is_directory=True)
    other = scratch / "other-tool-dir"
    other.mkdir()
    for p in (stale, stale / "Markreglerande bestammelse", other):
        os.utime(p, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)
    r = _vggeo("inspect", _good(tmp_path, "base"), env={"TMPDIR": str(scratch)})
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in scratch.iterdir()) == sorted([recent.name, link.name, other.name])
    assert (keep / "precious").exists()


def _reading(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (Linux: /proc/PID/fd)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False


# --- the pieces the one line is made of ------------------------------------------------------------


def test_printable_escapes_what_would_break_or_disguise_a_line():
    from vggeo.errors import printable

    assert printable("bestämmelse_1.xml") == "bestämmelse_1.xml"
    assert printable("a\nb\rc\x00d") == "a\\x0ab\\x0dc\\x00d"
    assert printable("x\u202ey\u200bz") == "x\\u202ey\\u200bz"
    assert printable("no\u00a0break") == "no\u00a0break"


def test_where_fills_in_only_what_is_missing():
    from vggeo.errors import GeometryError

    err = GeometryError("bad ring", element="posList", feature="f1")
    more = err.where(file="d.zip", element="other")
    assert type(more) is GeometryError and more.context["feature"] == "f1"
    assert str(more) == "d.zip, element posList: bad ring"


# --- found by an audit of bad inputs: each was a "bug" line (unexpected …) or a silent loss


def _single_error_line(r) -> str:
    """Exit 2 and one error line (warnings of the command, if any, may precede it)."""
    assert r.returncode == 2, r.stderr
    stderr = "\n".join(x for x in r.stderr.splitlines() if not x.startswith("vggeo: warning:"))
    line = _one_error_line(stderr, "")
    assert "unexpected" not in line, line
    return line


def test_registry_text_that_is_not_utf8_names_its_line(tmp_path):
    f = tmp_path / "r.jsonl"
    f.write_bytes(b'{"id": 1}\n{"id": 2, "street": "Syr\xe9n"}\n')
    line = _single_error_line(
        _vggeo("registry", "load", "--no-progress", str(f), "-o", str(tmp_path / "o.parquet"))
    )
    assert "r.jsonl:2" in line and "not UTF-8" in line and "0xe9" in line
    assert not (tmp_path / "o.parquet").exists()
    # a line longer than the 1 MiB blocks the file is checked in: its byte counted from its start
    long = b'{"id": 2, "street": "' + b"a" * (3 << 19) + b'\xe9"}\n'
    f.write_bytes(b'{"id": 1}\n' + long)
    line = _single_error_line(
        _vggeo("registry", "load", "--no-progress", str(f), "-o", str(tmp_path / "o.parquet"))
    )
    byte = long.index(b"\xe9") + 1
    assert "r.jsonl:2" in line and f"the line's byte {byte} " in line


def test_registry_lone_surrogate_names_row_and_field(tmp_path):
    f = tmp_path / "r.jsonl"
    f.write_text('{"id": 1, "street": "a\\ud800b"}\n', encoding="ascii")
    line = _single_error_line(
        _vggeo("registry", "load", "--no-progress", str(f), "-o", str(tmp_path / "o.parquet"))
    )
    assert "r.jsonl:1" in line and "'street'" in line and "surrogate" in line


@pytest.mark.parametrize("name", ["r.parquet", "r.gpkg"])
def test_registry_file_that_is_not_its_format_is_refused(tmp_path, name):
    f = tmp_path / name
    f.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    r = _vggeo("registry", "load", "--no-progress", str(f), "-o", str(tmp_path / "o.jsonl"))
    line = _single_error_line(r)
    assert name in line and "not a readable" in line
    assert r.stderr.splitlines() == [line]  # GDAL's warnings on the way are not shown


def test_gdal_warnings_of_a_file_that_was_read_are_shown(tmp_path):
    """A GeoPackage GDAL reads with a warning (a foreign application_id): the warning is shown
    (after the read, as one line) and the load succeeds."""
    import sqlite3

    from vggeo.registry import write_registry
    from vggeo.sample.registry import generate_registry

    f = tmp_path / "r.gpkg"
    write_registry(generate_registry(50, seed=1), f)
    with sqlite3.connect(f) as db:
        db.execute("PRAGMA application_id = 1")
    db.close()
    r = _vggeo("registry", "load", "--no-progress", str(f), "-o", str(tmp_path / "o.jsonl"))
    assert r.returncode == 0, r.stderr
    assert any(
        x.startswith("vggeo: warning:") and "application_id" in x for x in r.stderr.splitlines()
    ), r.stderr


def test_unwritable_output_is_refused_before_reading(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = _vggeo(
        "registry", "load", str(tmp_path / "missing.jsonl"), "-o", str(blocker / "o.parquet")
    )
    assert r.returncode == 2  # click's missing-file check comes first; then the folder's
    f = tmp_path / "r.jsonl"
    f.write_text('{"id": 1}\n')
    line = _single_error_line(
        _vggeo("registry", "load", "--no-progress", str(f), "-o", str(blocker / "o.parquet"))
    )
    assert "cannot write" in line and "is not a folder" in line


def test_usage_errors_are_one_line_with_the_help_named():
    line = _single_error_line(_vggeo("read", "--workers", "-3", "x.zip"))
    assert "--workers" in line and "vggeo read --help" in line
    line = _single_error_line(_vggeo("sample", "delivery", "-o", "x"))
    assert "Choose from: bestammelse, inskrivning (see" in line and "\\x0a" not in line
    assert "vggeo --help" in _single_error_line(_vggeo("no-such-command"))


def test_tiles_export_unknown_layer_is_a_usage_error(tmp_path):
    line = _single_error_line(
        _vggeo(
            "tiles",
            "export",
            "--store",
            str(tmp_path / "s.gpkg"),
            "-o",
            str(tmp_path / "t.pmtiles"),
            "--layer",
            "nope",
        )
    )
    assert "'nope'" in line and "residences" in line


@pytest.mark.parametrize("text", ["nan,6600000\n", "inf,600000\n", "6600000,1e999\n"])
def test_transform_refuses_half_pairs_and_infinities(text):
    r = _vggeo("transform", "--from", "3006", "--to", "4326", "--no-check", stdin=text)
    assert "finite" in _single_error_line(r) and r.stdout == ""


def test_damaged_store_is_named_and_left_as_it_was(filled_store, tmp_path):
    """A store file cut short (a full disk, a copy interrupted): every command that reads it says
    which file is damaged in one line — before, "unexpected DatabaseError … a bug" — and writes
    nothing, to the store or to an output."""
    data = filled_store.read_bytes()
    store = tmp_path / "cut.gpkg"
    store.write_bytes(data[: len(data) // 2])
    before = _digest(store)
    runs = {
        "export gpkg": ["export", "gpkg", "--store", str(store), "-o", str(tmp_path / "o.gpkg")],
        "export parquet": [
            "export",
            "parquet",
            f"--store={store}",
            "-o",
            str(tmp_path / "o.parquet"),
        ],
        "join": ["join", "--store", str(store), "-o", str(tmp_path / "j.parquet")],
        "ingest": ["ingest", str(_good(tmp_path, "change")), "--store", str(store)],
    }
    for name, args in runs.items():
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 2, (name, r.output)
        line = _one_error_line(r.stderr, f"{store}: the SQLite file is damaged")
        assert "unexpected" not in line, (name, line)
    r = _vggeo("export", "parquet", "--store", store, "-o", tmp_path / "o.parquet")
    assert "damaged" in _single_error_line(r)
    assert _digest(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.gpkg", "good.zip"]
