"""Hostile input: every refusal of the XML and ZIP safety rules, proven one by one."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from vggeo.errors import DeliveryError, ParseError, UnsafeInputError
from vggeo.lm import open_delivery
from vggeo.lm.safety import (
    FileWindow,
    ZipLimits,
    check_layout,
    check_member,
    check_zip,
    open_member,
    safe_fromstring,
    safe_iterparse,
)

POINT = '<gml:Point xmlns:gml="http://www.opengis.net/gml/3.2"><gml:pos>{}</gml:pos></gml:Point>'

XXE = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>'
XXE_NETWORK = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/x">]><r>&xxe;</r>'
)
EXTERNAL_DTD = '<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>'
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]><r>&d;</r>'
)
PLAIN_DTD = '<?xml version="1.0"?><!DOCTYPE r [<!ELEMENT r ANY>]><r/>'
PARAM_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd">%p;]><r/>'
)


@pytest.mark.parametrize(
    "doc",
    [XXE, XXE_NETWORK, EXTERNAL_DTD, LAUGHS, PLAIN_DTD, PARAM_ENTITY],
    ids=["xxe-file", "xxe-network", "external-dtd", "billion-laughs", "dtd", "parameter-entity"],
)
def test_xml_with_dtd_refused(doc):
    with pytest.raises((UnsafeInputError, ParseError)) as info:
        safe_fromstring(doc)
    assert "root:" not in str(info.value)  # nothing of /etc/passwd leaked into the message
    with pytest.raises((UnsafeInputError, ParseError)):
        list(safe_iterparse(io.BytesIO(doc.encode())))


def test_streaming_refuses_dtd_before_first_element_is_used():
    seen = []
    with pytest.raises(UnsafeInputError):
        for _, el in safe_iterparse(io.BytesIO(XXE.encode()), events=("end",)):
            seen.append(el.text)
    assert seen == []


def test_undeclared_entity_is_a_parse_error():
    with pytest.raises(ParseError):
        safe_fromstring("<r>&nope;</r>")


def test_xxe_in_a_data_file_refused(tmp_path):
    f = tmp_path / "markreglerandebestammelse_1.xml"
    f.write_text(
        XXE.replace(
            "<r>&xxe;</r>",
            '<MarkreglerandeBestammelseResponse xmlns="http://namespace.'
            'lantmateriet.se/distribution/produkter/markreglerandebestammelse/v2">&xxe;'
            "</MarkreglerandeBestammelseResponse>",
        )
    )
    from vggeo.lm import read_bestammelser

    with pytest.raises(UnsafeInputError):
        read_bestammelser(f)


def test_no_network_even_for_xinclude_like_content():
    # lxml never fetches anything: an xi:include stays an ordinary element.
    root = safe_fromstring(
        '<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="http://127.0.0.1:9/x"/></r>'
    )
    assert len(root) == 1


# --- ZIP -------------------------------------------------------------------------------------------


def _zip(
    path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]], compression=zipfile.ZIP_DEFLATED
):
    with zipfile.ZipFile(path, "w", compression) as z:
        for info, data in members:
            z.writestr(info, data)
    return path


def test_zip_slip_refused(tmp_path):
    p = _zip(tmp_path / "d.zip", [("../../evil/markreglerandebestammelse_1.xml", b"<r/>")])
    with pytest.raises(UnsafeInputError, match=r"\.\."):
        open_delivery(p)
    assert not (tmp_path.parent / "evil").exists()


def test_absolute_path_refused(tmp_path):
    p = _zip(tmp_path / "d.zip", [("/etc/markreglerandebestammelse_1.xml", b"<r/>")])
    with pytest.raises(UnsafeInputError, match="absolute"):
        open_delivery(p)


def test_windows_drive_path_refused(tmp_path):
    p = _zip(tmp_path / "d.zip", [("C:\\x\\markreglerandebestammelse_1.xml", b"<r/>")])
    with pytest.raises(UnsafeInputError, match="absolute"):
        open_delivery(p)


def test_symlink_member_refused(tmp_path):
    info = zipfile.ZipInfo("markreglerandebestammelse_1.xml")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    p = _zip(tmp_path / "d.zip", [(info, b"/etc/passwd")])
    with pytest.raises(UnsafeInputError, match="symbolic link"):
        open_delivery(p)


def test_bomb_ratio_refused(tmp_path):
    p = _zip(
        tmp_path / "d.zip",
        [("markreglerandebestammelse_1.xml", b"<r>" + b" " * (20 * 1024 * 1024) + b"</r>")],
    )
    with pytest.raises(UnsafeInputError, match="ratio"):
        open_delivery(p)


def test_declared_size_limit(tmp_path):
    p = _zip(
        tmp_path / "d.zip", [("markreglerandebestammelse_1.xml", b"<r>" + b"x" * 5000 + b"</r>")]
    )
    with zipfile.ZipFile(p) as z, pytest.raises(UnsafeInputError, match="limit"):
        check_zip(z, archive=str(p), limits=ZipLimits(max_member_bytes=1000))


def test_nesting_refused(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("deeper.zip", b"PK\x05\x06" + b"\x00" * 18)
    middle = io.BytesIO()
    with zipfile.ZipFile(middle, "w") as z:
        z.writestr("markreglerandebestammelse.zip", inner.getvalue())
    p = _zip(tmp_path / "d.zip", [("Bestammelse/markreglerandebestammelse.zip", middle.getvalue())])
    with pytest.raises(UnsafeInputError, match="nested"):
        open_delivery(p)


def test_too_many_members_refused(tmp_path):
    p = _zip(tmp_path / "d.zip", [(f"f{i}.xml", b"<r/>") for i in range(20)])
    with zipfile.ZipFile(p) as z, pytest.raises(UnsafeInputError, match="members"):
        check_zip(z, archive=str(p), limits=ZipLimits(max_members=10))


def test_lying_header_stopped_while_reading(tmp_path):
    data = b"<r>" + b"y" * 4000 + b"</r>"
    p = _zip(tmp_path / "d.zip", [("a.xml", data)], compression=zipfile.ZIP_STORED)
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("a.xml")
        info.file_size = 100  # the header lies
        # Either limit may trip first; both are vggeo's errors naming the member, never zipfile's.
        with pytest.raises((UnsafeInputError, DeliveryError), match="a.xml"):
            open_member(z, info, archive=str(p)).read()


def test_truncated_zip_is_a_delivery_error(tmp_path, bestammelse_deliveries):
    from vggeo.errors import DeliveryError

    p = tmp_path / "cut.zip"
    p.write_bytes(bestammelse_deliveries[0].read_bytes()[:5000])
    with pytest.raises(DeliveryError):
        open_delivery(p)


@pytest.mark.parametrize("deflated", [False, True], ids=["stored-sets", "deflated-sets"])
def test_nothing_extracted_to_disk(tmp_path, bestammelse_deliveries, monkeypatch, deflated):
    """Not a file nor a folder appears in the temporary directory while a delivery is read.

    Stored set ZIPs (Lantmäteriet's) are read in place; deflated ones go to an anonymous
    temporary file, which has no name to leave behind.
    """
    import os
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    outer = bestammelse_deliveries[0]
    if deflated:
        outer = tmp_path / "deflated.zip"
        with (
            zipfile.ZipFile(bestammelse_deliveries[0]) as z,
            zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as o,
        ):
            for info in z.infolist():
                o.writestr(info.filename, z.read(info))
    opened = []
    real = tempfile.TemporaryFile
    monkeypatch.setattr(
        tempfile, "TemporaryFile", lambda *a, **k: opened.append(1) or real(*a, **k)
    )
    with open_delivery(outer) as d:
        d.read("markreglerandebestammelse")
        assert os.listdir(scratch) == []
    assert os.listdir(scratch) == [] and len(opened) == (1 if deflated else 0)


# --- names, layout, corrupt members -----------------------------------------------------------------


@pytest.mark.parametrize("other", ["a.xml", "A.XML", "./a.xml", ".\\a.xml", "././a.xml"])
def test_two_members_with_one_name_refused(tmp_path, other):
    import unicodedata
    import warnings

    p = tmp_path / "d.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(p, "w") as z:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate it writes
        z.writestr("a.xml", b"<r>first</r>")
        z.writestr(other, b"<r>second</r>")
    with zipfile.ZipFile(p) as z, pytest.raises(UnsafeInputError, match="twice"):
        check_zip(z, archive=str(p))
    # Unicode normal forms: 'å' composed and decomposed are one name on most file systems.
    q = tmp_path / "e.zip"
    with zipfile.ZipFile(q, "w") as z:
        z.writestr(unicodedata.normalize("NFC", "bestämmelse.xml"), b"<r/>")
        z.writestr(unicodedata.normalize("NFD", "bestämmelse.xml"), b"<r/>")
    with zipfile.ZipFile(q) as z, pytest.raises(UnsafeInputError, match="twice"):
        check_zip(z, archive=str(q))


@pytest.mark.parametrize("same", [True, False], ids=["identical", "same-size-other-bytes"])
def test_folder_holding_a_set_zip_and_its_unpacked_file(
    tmp_path, bestammelse_deliveries, unpack, same
):
    """An unpacked delivery folder may hold a set ZIP and its XML files beside it; the two copies
    of a file are one file only when they are the same bytes (the size alone was compared, and
    the copy read was whichever came first)."""
    import re

    folder = unpack(bestammelse_deliveries[0], tmp_path / "d", inner_too=False)
    set_zip = next(folder.rglob("markreglerandebestammelse.zip"))
    with zipfile.ZipFile(set_zip) as z:
        name = next(n for n in z.namelist() if n.endswith("_1.xml"))
        data = z.read(name)
    if not same:  # one digit of the first coordinate changed: the same size, another place
        m = re.search(rb"<gml:posList[^>]*>(\d)", data)
        digit = m.group(1)
        data = data[: m.start(1)] + (b"1" if digit != b"1" else b"2") + data[m.end(1) :]
    (set_zip.parent / name.rsplit("/", 1)[-1]).write_bytes(data)
    if same:
        with open_delivery(folder) as d:
            assert len([f for f in d.data_files() if f.name == name.rsplit("/", 1)[-1]]) == 1
    else:
        with pytest.raises(DeliveryError, match="two different copies"):
            open_delivery(folder)


@pytest.mark.parametrize(
    "ch", ["\n", "\r", "\t", "\x1b", "\u202e", "\u200b", "\u2028", "\ufeff", "\udcff"]
)
def test_control_and_formatting_characters_in_names_refused(tmp_path, ch):
    info = zipfile.ZipInfo(f"set{ch}_1.xml")
    with pytest.raises(UnsafeInputError, match=f"U\\+{ord(ch):04X}") as err:
        check_member(info, archive="d.zip")
    assert "\n" not in str(err.value) and "\u202e" not in str(err.value)


def test_ordinary_swedish_names_pass(tmp_path):
    for name in (
        "Markreglerande bestämmelse/markreglerandebestammelse.zip",
        "Inskrivning/ägare_1.xml",
    ):
        check_member(zipfile.ZipInfo(name), archive="d.zip")


def _zip_bytes(members, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def _layout_error(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as z, pytest.raises(DeliveryError) as err:
        check_layout(z, archive="d.zip")
    return str(err.value)


def test_layout_of_a_normal_archive_passes():
    data = _zip_bytes([("a.xml", b"<a/>" * 100), ("dir/b.xml", b"<b/>"), ("c.xml", b"")])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        check_layout(z, archive="d.zip")
    # Written as a stream (sizes in a data descriptor after each member), as some tools do.
    unseekable = io.BytesIO()

    class Stream(io.RawIOBase):  # not seekable: zipfile writes data descriptors
        def writable(self):
            return True

        def write(self, b):
            return unseekable.write(b)

    with zipfile.ZipFile(Stream(), "w", zipfile.ZIP_DEFLATED) as z:
        for name in ("a.xml", "b.xml"):
            z.writestr(name, b"<r>" + b"x" * 5000 + b"</r>")
    with zipfile.ZipFile(io.BytesIO(unseekable.getvalue())) as z:
        assert all(i.flag_bits & 0x08 for i in z.infolist())
        check_layout(z, archive="d.zip")


def test_layout_refuses_data_before_the_archive():
    assert "preceded by 4 bytes" in _layout_error(b"JUNK" + _zip_bytes([("a.xml", b"<a/>")]))


def test_layout_refuses_data_between_members():
    data = _zip_bytes([("a.xml", b"<a/>"), ("b.xml", b"<b/>")])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        b_at = z.getinfo("b.xml").header_offset
    hidden = data[:b_at] + b"HIDDEN" + data[b_at:]
    # Shift every later offset by 6 so the directory is still found (the archive is well formed).
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
    buf = bytearray(hidden)
    cd = hidden.find(b"PK\x01\x02", b_at + 6)
    for _ in infos:
        off = struct.unpack_from("<I", buf, cd + 42)[0]
        if off >= b_at:
            struct.pack_into("<I", buf, cd + 42, off + 6)
        n, m, k = struct.unpack_from("<HHH", buf, cd + 28)
        cd += 46 + n + m + k
    eocd = hidden.rfind(b"PK\x05\x06")
    struct.pack_into("<I", buf, eocd + 16, struct.unpack_from("<I", buf, eocd + 16)[0] + 6)
    assert "6 bytes after the end" in _layout_error(bytes(buf))


def test_layout_refuses_overlapping_members():
    """Two directory entries for one local header (the overlapping-files bomb)."""
    data = _zip_bytes([("a.xml", b"<a/>" * 50), ("b.xml", b"<b/>" * 50)])
    cd = data.find(b"PK\x01\x02")
    second = data.find(b"PK\x01\x02", cd + 4)
    buf = bytearray(data)
    struct.pack_into("<I", buf, second + 42, 0)  # b.xml's entry points at a.xml's header
    assert "overlaps" in _layout_error(bytes(buf))


def test_layout_refuses_a_local_header_that_disagrees():
    data = _zip_bytes([("a.xml", b"<a/>" * 50)])
    assert "names 'b.xml'" in _layout_error(data.replace(b"a.xml", b"b.xml", 1))
    buf = bytearray(data)
    struct.pack_into("<I", buf, 22, 9999)  # the local header's uncompressed size
    assert "sizes or CRC-32" in _layout_error(bytes(buf))


def test_corrupt_members_are_delivery_errors_naming_them(tmp_path):
    text = b"<r>" + bytes(range(256)) * 40 + b"</r>"
    data = bytearray(_zip_bytes([("a.xml", text)]))
    data[60:64] = b"\xff\xff\xff\xff"  # inside the deflate stream
    p = tmp_path / "d.zip"
    p.write_bytes(bytes(data))
    with (
        zipfile.ZipFile(p) as z,
        pytest.raises(DeliveryError, match=r"d\.zip!a\.xml: corrupt ZIP member"),
    ):
        open_member(z, z.getinfo("a.xml"), archive=str(p)).read()


def test_file_window_reads_only_its_window(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(bytes(range(100)))
    with FileWindow(f, 10, 20, name="w") as w:
        assert w.read() == bytes(range(10, 30))
        assert w.seek(-5, io.SEEK_END) == 15 and w.read(100) == bytes(range(25, 30))
        assert w.seek(3) == 3 and w.read(2) == bytes([13, 14]) and w.tell() == 5
        with pytest.raises(ValueError):
            w.seek(-1)
    with pytest.raises(DeliveryError, match="past the end"):
        FileWindow(f, 90, 20, name="w")
