"""Safe XML parsing and safe ZIP reading for Lantmäteriet deliveries.

A delivery is a file from outside: it is parsed as if it were hostile.

XML
    lxml with ``resolve_entities=False``, ``no_network=True``, ``load_dtd=False`` and
    ``huge_tree=False``, and any document that carries a DTD (``<!DOCTYPE …>``, hence any entity
    declaration) is refused outright at its first element, before a single entity could be used.
    Lantmäteriet's delivery schemas need no DTD, so refusing costs a real delivery nothing, and it
    closes XXE, external DTDs, parameter entities and billion-laughs in one rule.

ZIP
    Every member of every archive is checked *before* anything is read from it: absolute paths,
    drive letters, ``..`` components, symbolic links (Unix mode in ``external_attr``), encrypted
    members, a declared size above the per-member limit, a compression ratio above the limit,
    too many members, archives nested deeper than a delivery needs (outer ZIP → set ZIP → XML),
    names holding control or formatting characters (a newline, a right-to-left override), and
    two members whose names are the same once case, Unicode normal form and separators are set
    aside (other unzip tools keep the last copy, Python's the first: neither may be chosen
    silently). The archive's layout is checked too (:func:`check_layout`): every member's local
    header where the central directory says, naming the same file with the same sizes, the
    members back to back from the first byte to the central directory — so a truncated or
    concatenated archive, overlapping members (a known ZIP-bomb form) or a local header that
    disagrees with the directory is refused before a byte is inflated. Reading is bounded as
    well: :class:`BoundedReader` stops a member that inflates beyond its declared size (a lying
    header), and turns the errors of a corrupt member (bad CRC-32, a broken deflate stream, an
    early end) into :class:`~vggeo.errors.DeliveryError` naming it.

Geometry
    :class:`GeometryLimits`: how many vertices the linearisation of arcs may produce, per arc, per
    feature and per KiB of a data file, so that a few bytes of GML cannot ask for gigabytes.

Nothing is ever extracted to disk under a member's own name; members are streamed. Inner set ZIPs
stored uncompressed in the outer ZIP (as Lantmäteriet's are) are read in place
(:class:`FileWindow`); compressed ones are copied to anonymous temporary files, which have no
name and vanish with the process, however it ends.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, TYPE_CHECKING, Any, TypedDict, Unpack

from lxml import etree

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

from vggeo.errors import DeliveryError, ParseError, SettingsError, UnsafeInputError, printable

__all__ = [
    "GeometryLimits",
    "geometry_limits",
    "ZipLimits",
    "DEFAULT_LIMITS",
    "XML_PARSER_OPTIONS",
    "safe_iterparse",
    "safe_fromstring",
    "check_zip",
    "check_member",
    "check_layout",
    "open_member",
    "member_data_offset",
    "BoundedReader",
    "FileWindow",
    "ZIP_READ_ERRORS",
]

#: The lxml options every XML parse in vggeo.lm uses.
XML_PARSER_OPTIONS: dict[str, Any] = dict(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


@dataclass(frozen=True)
class ZipLimits:
    """Limits applied to every ZIP archive of a delivery.

    Attributes
    ----------
    max_member_bytes
        Largest declared uncompressed size of one member. Lantmäteriet files hold at most
        50 000 objects; even geometry-heavy ones stay well below 2 GiB.
    max_total_bytes
        Largest sum of declared uncompressed sizes in one archive.
    max_ratio
        Largest uncompressed/compressed ratio of a member (XML compresses ~10–30×; a bomb
        compresses ~1000×).
    max_members
        Most members in one archive.
    max_depth
        Deepest nesting: 1 = this archive, 2 = a ZIP inside it (outer delivery → set ZIP).
    """

    max_member_bytes: int = 2 * 1024**3
    max_total_bytes: int = 16 * 1024**3
    max_ratio: float = 200.0
    max_members: int = 10_000
    max_depth: int = 2
    # A ratio is only meaningful above some size: a 1 kB file of spaces may compress 100×.
    ratio_min_bytes: int = 1024 * 1024


DEFAULT_LIMITS = ZipLimits()


@dataclass(frozen=True)
class GeometryLimits:
    """Caps on the vertices that linearising arcs may produce (environment: ``VGGEO_<NAME>``).

    A circle costs a few dozen bytes of GML whatever its radius, but the vertices needed to stay
    within the arc tolerance grow with the square root of the radius over the tolerance: a full
    circle needs about ``pi * sqrt(radius / (2 * tolerance))`` of them. Without caps, 1 000
    circles of 300 km in a 10 KB delivery became 27 million stored vertices (2.6 GiB of memory).

    Attributes
    ----------
    max_arc_vertices
        Per arc (an Arc, each arc of an ArcString, a Circle, ArcByCenterPoint,
        CircleByCenterPoint). 10 000 vertices keep a full circle of 40 km radius within the
        default 2 mm tolerance. Lantmäteriet's provision areas are polygons; arcs appear only as
        short curved boundaries and small circles (a protection zone of a few hundred metres
        needs about 1 000 vertices), and the largest nature reserve in Sweden (Vindelfjällen,
        5 500 km²) would fit inside a circle of 42 km. At least 4.
    max_feature_arc_vertices
        Per feature (one provision's area, all its arcs): ten arcs at the per-arc cap. At least 4.
    max_arc_vertices_per_kib
        Per data file: ``max_arc_vertices_per_kib`` vertices per KiB of the file's XML (at least
        ``max_feature_arc_vertices``), so the memory arcs take stays proportional to the input
        (16 bytes per vertex: at most about 16 times the file's size). A file made only of small
        circles — half the generator's fornlämningar are circles of 15–80 m, about 300
        vertices in a member of about 1 KiB — stays well inside it. At least 0.

    Build it with :func:`geometry_limits` (defaults, then the environment, then overrides); the
    constructor checks each value.

    Three integers read by hand rather than by pydantic-settings (which the server's settings
    use): importing it, and tearing it down at exit, cost every read ≈ 0.1 s, 5 % of reading
    50 000 provisions in a fresh process (``benchmarks/lm.md``, seventh pass).
    """

    max_arc_vertices: int = 10_000
    max_feature_arc_vertices: int = 100_000
    max_arc_vertices_per_kib: int = 1_000

    def __post_init__(self) -> None:
        for name, least in _LEAST.items():
            value = getattr(self, name)
            if type(value) is not int:  # bool is an int subclass, and not a count
                raise SettingsError(
                    f"{self.setting(name)}: not a whole number: {printable(repr(value))}",
                    value=value,
                )
            if value < least:
                raise SettingsError(
                    f"{self.setting(name)}: must be at least {least}, not {value}", value=value
                )

    @staticmethod
    def setting(name: str) -> str:
        """The environment variable that sets field ``name``."""
        return f"VGGEO_{name.upper()}"


#: The smallest value of each limit.
_LEAST = {"max_arc_vertices": 4, "max_feature_arc_vertices": 4, "max_arc_vertices_per_kib": 0}

#: A whole number as the environment may spell it: ASCII digits, an optional sign, no separators.
_WHOLE = re.compile(r"[+-]?[0-9]+")


class LimitOverrides(TypedDict, total=False):
    """The fields of :class:`GeometryLimits` a caller may set (:func:`geometry_limits`)."""

    max_arc_vertices: int
    max_feature_arc_vertices: int
    max_arc_vertices_per_kib: int


def geometry_limits(**overrides: Unpack[LimitOverrides]) -> GeometryLimits:
    """The geometry limits in effect: defaults, then the environment, then ``overrides``.

    The environment's names are matched without regard to case (``VGGEO_MAX_ARC_VERTICES``); a
    value is a whole number in ASCII digits, surrounding spaces allowed.

    Raises
    ------
    SettingsError
        An environment variable or override holds a value that is not a valid limit (named, with
        the value).
    """
    unknown = set(overrides) - set(_LEAST)
    if unknown:
        raise TypeError(f"geometry_limits() got unknown limits: {', '.join(sorted(unknown))}")
    wanted = {GeometryLimits.setting(name): name for name in _LEAST}
    values: dict[str, Any] = {}
    for key, text in os.environ.items():
        name = wanted.get(key.upper())
        if name is None or name in overrides:
            continue
        if not _WHOLE.fullmatch(text.strip()):
            raise SettingsError(
                f"{key}: not a whole number: {printable(repr(text[:60]))}", value=text
            )
        values[name] = int(text)
    values.update(overrides)
    return GeometryLimits(**values)


# --- XML ------------------------------------------------------------------------------------------


def _refuse_dtd(element: etree._Element, source: str) -> None:
    info = element.getroottree().docinfo
    doctype = info.doctype  # type: ignore[attr-defined]  # lxml has it; lxml-stubs 0.5 lack it
    if doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise UnsafeInputError(
            "XML document declares a DTD (<!DOCTYPE …>); DTDs and entity declarations are "
            "refused (XXE / entity-expansion protection)",
            file=source,
            value=doctype or None,
        )


def safe_iterparse(
    source: IO[bytes] | str,
    *,
    events: tuple[str, ...] = ("end",),
    tag: str | Sequence[str] | None = None,
    name: str | None = None,
) -> Iterator[tuple[str, etree._Element]]:
    """``lxml.etree.iterparse`` with vggeo's safe settings; refuses any DTD.

    Parameters
    ----------
    source
        A binary file object or a path.
    events, tag
        As for :func:`lxml.etree.iterparse`. A ``"start"`` event is always requested internally
        so that the DTD check runs at the first element.
    name
        How to name the source in errors (default: the path or ``<stream>``).

    Raises
    ------
    UnsafeInputError
        When the document has a DOCTYPE.
    ParseError
        When it is not well-formed XML (translated from lxml's error, with line number).
    """
    label = name or (source if isinstance(source, str) else getattr(source, "name", "<stream>"))
    want_start = "start" in events
    evs = tuple(dict.fromkeys(("start", *events)))
    it = etree.iterparse(source, events=evs, tag=tag, **XML_PARSER_OPTIONS)
    checked = False
    try:
        for event, element in it:
            if not checked:
                _refuse_dtd(element, str(label))
                checked = True
            if event == "start" and not want_start:
                continue
            yield event, element
    except etree.XMLSyntaxError as err:
        line = err.lineno if getattr(err, "lineno", None) else None
        raise ParseError(f"malformed XML: {err.msg}", file=str(label), row=line) from err
    if not checked:
        raise ParseError("empty XML document", file=str(label))


def safe_fromstring(text: str | bytes, *, name: str = "<string>") -> etree._Element:
    """Parse a whole (small) XML document with the safe settings; refuses any DTD."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    parser = etree.XMLParser(**XML_PARSER_OPTIONS)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as err:
        raise ParseError(f"malformed XML: {err.msg}", file=name, row=err.lineno) from err
    _refuse_dtd(root, name)
    return root


# --- ZIP ------------------------------------------------------------------------------------------


#: What :mod:`zipfile` raises, opening or reading, for an archive that is corrupt or lies.
ZIP_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    struct.error,
    ValueError,
    NotImplementedError,
    zipfile.LargeZipFile,
)

#: Unicode categories refused in member names: controls (a newline would split the one-line
#: error, and hide the rest of a name in a terminal), formatting (right-to-left overrides,
#: zero-width characters: a name that reads as another), separators, surrogates, private use and
#: unassigned code points. Lantmäteriet's names are plain ASCII.
_ODD_NAME_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _odd_character(name: str) -> str | None:
    for ch in name:
        if unicodedata.category(ch) in _ODD_NAME_CATEGORIES:
            return f"U+{ord(ch):04X}"
    return None


def _name_key(name: str) -> str:
    """A member name as a file system could see it: separators, ``./``, normal form and case."""
    norm = unicodedata.normalize("NFC", name.replace("\\", "/")).casefold()
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    return "/".join(parts)


def check_member(
    info: zipfile.ZipInfo, *, archive: str, limits: ZipLimits = DEFAULT_LIMITS
) -> None:
    """Refuse one member before reading it (name, path, link, encryption, size, ratio)."""
    name = info.filename
    where = f"{archive}!{printable(name)}"
    if "\x00" in name:
        raise UnsafeInputError("ZIP member name contains a NUL byte", file=where)
    odd = _odd_character(name)
    if odd is not None:
        raise UnsafeInputError(
            f"ZIP member name contains a control or formatting character ({odd}); refused",
            file=where,
        )
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise UnsafeInputError("ZIP member has an absolute path (refused)", file=where)
    if ".." in PurePosixPath(norm).parts:
        raise UnsafeInputError("ZIP member path contains '..' (ZIP slip; refused)", file=where)
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_ISLNK(mode):
        raise UnsafeInputError("ZIP member is a symbolic link (refused)", file=where)
    if info.flag_bits & 0x1:
        raise UnsafeInputError("ZIP member is encrypted (refused)", file=where)
    if info.file_size > limits.max_member_bytes:
        raise UnsafeInputError(
            f"ZIP member declares {info.file_size} bytes, above the limit of "
            f"{limits.max_member_bytes}",
            file=where,
        )
    if info.file_size >= limits.ratio_min_bytes:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            raise UnsafeInputError(
                f"ZIP member compression ratio {ratio:.0f}:1 exceeds {limits.max_ratio:.0f}:1 "
                "(ZIP bomb?)",
                file=where,
            )


def check_zip(
    zf: zipfile.ZipFile, *, archive: str, depth: int = 1, limits: ZipLimits = DEFAULT_LIMITS
) -> list[zipfile.ZipInfo]:
    """Check every member of an open archive; return the file members (directories dropped).

    ``depth`` is this archive's nesting level (1 = the file the user gave). Members that are
    themselves ZIPs are refused when they would exceed ``limits.max_depth``.
    """
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise UnsafeInputError(
            f"ZIP holds {len(infos)} members, above the limit of {limits.max_members}",
            file=archive,
        )
    total = 0
    files = []
    seen: dict[str, str] = {}
    for info in infos:
        check_member(info, archive=archive, limits=limits)
        key = _name_key(info.filename)
        if key in seen:
            same = (
                "twice"
                if seen[key] == info.filename
                else f"twice (also as {printable(seen[key])!r})"
            )
            raise UnsafeInputError(
                f"ZIP holds member {printable(info.filename)!r} {same}; unzip tools "
                "disagree on which copy is the file, so neither is read",
                file=archive,
            )
        seen[key] = info.filename
        total += info.file_size
        if info.is_dir():
            continue
        if info.filename.lower().endswith(".zip") and depth + 1 > limits.max_depth:
            raise UnsafeInputError(
                f"ZIP nested deeper than {limits.max_depth} levels (refused)",
                file=f"{archive}!{info.filename}",
            )
        files.append(info)
    if total > limits.max_total_bytes:
        raise UnsafeInputError(
            f"ZIP declares {total} bytes uncompressed in total, above the limit of "
            f"{limits.max_total_bytes}",
            file=archive,
        )
    check_layout(zf, archive=archive)
    return files


_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # the 30-byte local file header


def _local_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> tuple:
    fp = zf.fp
    if fp is None:  # a closed archive: the caller's mistake, not the archive's
        raise ValueError(f"{where}: the archive is closed")
    fp.seek(info.header_offset)
    head = fp.read(_LOCAL.size)
    if len(head) < _LOCAL.size or head[:4] != b"PK\x03\x04":
        raise DeliveryError(
            "no local file header where the central directory puts the member "
            "(a truncated or damaged archive)",
            file=where,
        )
    fields = _LOCAL.unpack(head)
    name = fp.read(fields[9])
    return fields, name


def member_data_offset(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    """Where a member's (compressed) bytes start in the archive file."""
    fields, _ = _local_header(zf, info, info.filename)
    return info.header_offset + _LOCAL.size + fields[9] + fields[10]


def check_layout(zf: zipfile.ZipFile, *, archive: str) -> None:
    """Refuse an archive whose bytes are not what its central directory describes.

    The members must lie back to back from the archive's first byte up to the central directory,
    each local header naming the member the directory names, with the same compression, sizes
    and CRC (unless a data descriptor follows the data). Python's zipfile forgives data before
    the archive (it reads a truncated outer delivery as the set ZIP inside it), gaps and
    overlapping members; a delivery has none of them.
    """
    if zf.fp is None:  # pragma: no cover - a closed archive
        return
    pos = 0
    for info in sorted(zf.infolist(), key=lambda i: i.header_offset):
        where = f"{archive}!{printable(info.filename)}"
        if info.header_offset != pos:
            what = (
                "overlaps the member before it"
                if info.header_offset < pos
                else f"starts {info.header_offset - pos} bytes after the end of the one before it"
                if pos
                else f"is preceded by {info.header_offset} bytes that are not a member"
            )
            raise DeliveryError(
                f"ZIP member {what} (a truncated, concatenated or crafted archive)", file=where
            )
        fields, name = _local_header(zf, info, where)
        _, _, flags, method, _, _, crc, csize, usize, nlen, xlen = fields
        wanted = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
        if name != wanted:
            raise DeliveryError(
                f"the local header names {printable(name.decode('utf-8', 'replace'))!r}, "
                "the central directory another file",
                file=where,
            )
        if method != info.compress_type:
            raise DeliveryError(
                "the local header and the central directory give different compression methods",
                file=where,
            )
        if not flags & 0x08 and 0xFFFFFFFF not in (csize, usize):
            if (csize, usize, crc) != (info.compress_size, info.file_size, info.CRC):
                raise DeliveryError(
                    "the local header and the central directory give different sizes or CRC-32",
                    file=where,
                )
        pos = info.header_offset + _LOCAL.size + nlen + xlen + info.compress_size
        if flags & 0x08:  # a data descriptor follows: optional signature, CRC, two sizes
            zf.fp.seek(pos)
            signed = zf.fp.read(4) == b"PK\x07\x08"
            wide = info.compress_size >= 0xFFFFFFFF or info.file_size >= 0xFFFFFFFF
            pos += (4 if signed else 0) + (20 if wide else 12)
    if pos != zf.start_dir:
        what = (
            f"{zf.start_dir - pos} bytes lie between the last member and the central directory"
            if pos < zf.start_dir
            else "the last member runs into the central directory"
        )
        raise DeliveryError(f"{what} (a truncated, concatenated or crafted archive)", file=archive)


class BoundedReader(io.RawIOBase):
    """A read-only stream that refuses to deliver more than ``limit`` bytes.

    zipfile already stops at a member's declared size; this guards the total actually inflated
    (and any stream whose size is not declared) so a lying header cannot exhaust memory or disk.
    """

    def __init__(self, raw: IO[bytes], limit: int, *, name: str) -> None:
        self._raw = raw
        self._left = limit
        self._limit = limit
        self.name = name

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        try:
            n = self._raw.readinto(b) if hasattr(self._raw, "readinto") else None
            if n is None:
                buf = memoryview(b)
                data = self._raw.read(len(buf))
                n = len(data)
                buf[:n] = data
        except ZIP_READ_ERRORS as err:
            # zipfile checks the CRC-32 at the member's end and inflates as it goes: a member
            # whose sizes lie or whose deflate stream is broken fails here, mid-read.
            raise DeliveryError(f"corrupt ZIP member: {_reason(err)}", file=self.name) from None
        self._left -= n
        if self._left < 0:
            raise UnsafeInputError(
                f"stream inflates beyond {self._limit} bytes (refused)", file=self.name
            )
        return n

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def _reason(err: BaseException) -> str:
    text = printable(err) or type(err).__name__
    if isinstance(err, zlib.error):
        return f"broken deflate stream ({text})"
    return f"ends early ({text})" if isinstance(err, EOFError) else text


def open_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, archive: str, limits: ZipLimits = DEFAULT_LIMITS
) -> IO[bytes]:
    """Open a checked member as a bounded, buffered binary stream.

    Raises
    ------
    UnsafeInputError
        The member fails :func:`check_member`, or inflates beyond its declared size.
    DeliveryError
        The member cannot be opened or read as the archive describes it (corrupt or lying).
    """
    check_member(info, archive=archive, limits=limits)
    where = f"{archive}!{printable(info.filename)}"
    try:
        raw = zf.open(info, "r")
    except ZIP_READ_ERRORS as err:
        raise DeliveryError(f"cannot open ZIP member: {_reason(err)}", file=where) from None
    bounded = BoundedReader(raw, min(info.file_size, limits.max_member_bytes), name=where)
    return io.BufferedReader(bounded, buffer_size=1024 * 1024)


class FileWindow(io.RawIOBase):
    """Bytes ``[start, start + size)`` of a file as a seekable read-only stream.

    A set ZIP stored uncompressed inside the outer delivery ZIP is read where it lies: no copy,
    so nothing to clean up when the process is killed. Reads use ``os.pread``: the window's
    position is its own, whatever else reads the same file.
    """

    def __init__(self, path: str | os.PathLike, start: int, size: int, *, name: str) -> None:
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self._start, self._size, self._pos = start, size, 0
        self.name = name
        if os.fstat(self._fd).st_size < start + size:
            os.close(self._fd)
            raise DeliveryError(
                "ZIP member runs past the end of the archive (truncated)", file=name
            )

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, b: WriteableBuffer) -> int:
        buf = memoryview(b)
        n = max(0, min(len(buf), self._size - self._pos))
        if not n:
            return 0
        data = os.pread(self._fd, n, self._start + self._pos)
        buf[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()
