"""Hostile and odd deliveries, built byte by byte for the tests (no stored fixtures).

A *provision* here is one ``MarkreglerandeBestammelseMember`` with an identity and a ``Yta``
geometry; :func:`data_file` wraps members into a data file and :func:`delivery` packs data files
into an outer delivery ZIP whose metadata matches them (counts and sizes), written by the
sample generator's own set writer so the packaging is the one every other test uses.
ZIP surgery (:func:`patch_bytes`, :func:`local_header_offset`) edits the archive's bytes after
:mod:`zipfile` wrote them, the way a broken or malicious producer would.
"""

from __future__ import annotations

import io
import struct
import uuid
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from vggeo.sample.delivery import GML, NS_MB, _write_set

SET = "markreglerandebestammelse"
FOLDER = "Markreglerande bestammelse"
SRS = "urn:ogc:def:crs:EPSG::3006"
#: A small square around Stockholm, northing first (the URN form's axis order).
SQUARE = "6580000 674000 6580000 674100 6580100 674100 6580100 674000 6580000 674000"


def polygon(pos_list: str = SQUARE, srs: str = SRS) -> str:
    return (
        f'<gml:Polygon srsName="{srs}"><gml:exterior><gml:LinearRing>'
        f"<gml:posList>{pos_list}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>"
    )


def circle_by_centre(northing: float, easting: float, radius, srs: str = SRS) -> str:
    """A polygon bounded by one CircleByCenterPoint (radius in metres, as text or number)."""
    return (
        f'<gml:Polygon srsName="{srs}"><gml:exterior><gml:Ring><gml:curveMember><gml:Curve>'
        f'<gml:segments><gml:CircleByCenterPoint numArc="1"><gml:pos>{northing} {easting}</gml:pos>'
        f'<gml:radius uom="m">{radius}</gml:radius></gml:CircleByCenterPoint></gml:segments>'
        "</gml:Curve></gml:curveMember></gml:Ring></gml:exterior></gml:Polygon>"
    )


def provision(ident: str, yta: str, *, name: str = "Plan") -> str:
    """One member: a provision of element ``name`` with identity, a few attributes and ``yta``."""
    return (
        f'<MarkreglerandeBestammelseMember><{name} gml:id="ID_{ident}">'
        f"<objektidentitet>{ident}</objektidentitet><Planattribut><objektversion>1</objektversion>"
        f"<kommun>0180</kommun><aktbeteckning>0180-P{ident[:4]}</aktbeteckning>"
        f"<status>gällande</status><plantyp>detaljplan</plantyp></Planattribut>"
        f"<Yta>{yta}</Yta></{name}></MarkreglerandeBestammelseMember>\n"
    )


def ident(i: int) -> str:
    """A stable provision identity for member number ``i``."""
    return str(uuid.UUID(int=0xC0FFEE << 96 | i))


def data_file(members: list[str]) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<MarkreglerandeBestammelseResponse '
        f'xmlns="{NS_MB}" xmlns:gml="{GML}">\n{"".join(members)}'
        "</MarkreglerandeBestammelseResponse>\n"
    ).encode()


def delivery(
    path: Path,
    files: list[tuple[str, bytes, int]],
    *,
    extract_type: str = "base",
    deletions: list[str] | None = None,
    extract_id: str | None = None,
    produced: datetime | None = None,
) -> Path:
    """An outer delivery ZIP holding ``files`` (name, bytes, object count) with true metadata."""
    if extract_type == "change" and deletions is None:
        deletions = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as outer:
        _write_set(
            FOLDER,
            SET,
            files,
            deletions,
            dict(
                info_type="Markreglerande bestämmelse",
                subsets=("Basinformation", "Berörkrets"),
                extract_id=extract_id or str(uuid.uuid4()),
                previous=None,
                produced=produced
                or datetime(2026, 1, 5, 4, 30, tzinfo=timezone(timedelta(hours=1))),
                extract_type=extract_type,
                crs=3006,
                kommuner=["0180"],
            ),
            outer,
        )
    return path


def one_file_delivery(path: Path, members: list[str], **kw) -> Path:
    """A delivery of one data file holding ``members``."""
    return delivery(path, [(f"{SET}_1.xml", data_file(members), len(members))], **kw)


# --- ZIP surgery -----------------------------------------------------------------------------------


def zip_bytes(members: list[tuple[str, bytes]], *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def local_header_offset(data: bytes, name: str) -> int:
    """Where the local file header of member ``name`` starts (from the central directory)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return z.getinfo(name).header_offset


def central_entry_offset(data: bytes, name: str) -> int:
    """Where the central directory entry of member ``name`` starts."""
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        (n,) = struct.unpack_from("<H", data, at + 28)
        if data[at + 46 : at + 46 + n] == name.encode():
            return at
        at = data.find(b"PK\x01\x02", at + 4)
    raise KeyError(name)


def member_data_offset(data: bytes, name: str) -> int:
    """Where the (compressed) data of member ``name`` starts."""
    at = local_header_offset(data, name)
    n, m = struct.unpack_from("<HH", data, at + 26)
    return at + 30 + n + m


def patch_bytes(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


def inner_set_zip(outer: Path) -> tuple[str, bytes]:
    """(member name, bytes) of the set ZIP inside an outer delivery ZIP."""
    with zipfile.ZipFile(outer) as z:
        name = next(n for n in z.namelist() if n.endswith(f"{SET}.zip"))
        return name, z.read(name)


def replace_inner(outer: Path, dest: Path, inner: bytes) -> Path:
    """A copy of ``outer`` whose set ZIP is ``inner`` (the metadata left as it was)."""
    with zipfile.ZipFile(outer) as z, zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as out:
        for info in z.infolist():
            out.writestr(
                info.filename, inner if info.filename.endswith(f"{SET}.zip") else z.read(info)
            )
    return dest
