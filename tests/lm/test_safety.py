"""Hostile input: every refusal of the XML and ZIP safety rules, proven one by one."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from vggeo.errors import ParseError, UnsafeInputError
from vggeo.lm import open_delivery
from vggeo.lm.safety import ZipLimits, check_zip, open_member, safe_fromstring, safe_iterparse

POINT = '<gml:Point xmlns:gml="http://www.opengis.net/gml/3.2"><gml:pos>{}</gml:pos></gml:Point>'

XXE = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       "<r>&xxe;</r>")  # fmt: skip
XXE_NETWORK = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/x">]>'
               "<r>&xxe;</r>")  # fmt: skip
EXTERNAL_DTD = '<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>'
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
          '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]><r>&d;</r>')  # fmt: skip
PLAIN_DTD = '<?xml version="1.0"?><!DOCTYPE r [<!ELEMENT r ANY>]><r/>'
PARAM_ENTITY = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd">%p;]>'
                "<r/>")  # fmt: skip


@pytest.mark.parametrize("doc", [XXE, XXE_NETWORK, EXTERNAL_DTD, LAUGHS, PLAIN_DTD, PARAM_ENTITY],
                         ids=["xxe-file", "xxe-network", "external-dtd", "billion-laughs", "dtd",
                              "parameter-entity"])  # fmt: skip
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
    f.write_text(XXE.replace("<r>&xxe;</r>", '<MarkreglerandeBestammelseResponse xmlns="http://namespace.'
                 'lantmateriet.se/distribution/produkter/markreglerandebestammelse/v2">&xxe;'
                 "</MarkreglerandeBestammelseResponse>"))  # fmt: skip
    from vggeo.lm import read_bestammelser

    with pytest.raises(UnsafeInputError):
        read_bestammelser(f)


def test_no_network_even_for_xinclude_like_content():
    # lxml never fetches anything: an xi:include stays an ordinary element.
    root = safe_fromstring('<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="http://127.0.0.1:9/x"/></r>')
    assert len(root) == 1


# --- ZIP -------------------------------------------------------------------------------------------


def _zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]], compression=zipfile.ZIP_DEFLATED):
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
    p = _zip(tmp_path / "d.zip", [("markreglerandebestammelse_1.xml", b"<r>" + b" " * (20 * 1024 * 1024) + b"</r>")])
    with pytest.raises(UnsafeInputError, match="ratio"):
        open_delivery(p)


def test_declared_size_limit(tmp_path):
    p = _zip(tmp_path / "d.zip", [("markreglerandebestammelse_1.xml", b"<r>" + b"x" * 5000 + b"</r>")])
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
        with pytest.raises((UnsafeInputError, zipfile.BadZipFile)):
            open_member(z, info, archive=str(p)).read()


def test_truncated_zip_is_a_delivery_error(tmp_path, bestammelse_deliveries):
    from vggeo.errors import DeliveryError

    p = tmp_path / "cut.zip"
    p.write_bytes(bestammelse_deliveries[0].read_bytes()[:5000])
    with pytest.raises(DeliveryError):
        open_delivery(p)


def test_nothing_extracted_to_disk(tmp_path, bestammelse_deliveries):
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("vggeo-delivery-*"))
    with open_delivery(bestammelse_deliveries[0]) as d:
        d.read("markreglerandebestammelse")
    assert set(Path(tempfile.gettempdir()).glob("vggeo-delivery-*")) == before
