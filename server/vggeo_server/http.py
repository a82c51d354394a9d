"""HTTP semantics the routes and the fast path share: content codings and conditional requests.

RFC 9110 is followed where the easy reading is wrong:

* ``Accept-Encoding`` carries q-values (§12.5.3): ``gzip;q=0`` forbids gzip, ``*`` covers codings
  not named, and ``identity`` is acceptable unless ``identity;q=0`` (or ``*;q=0`` without an
  ``identity`` entry) says otherwise. No header at all means "anything", and we then answer
  uncompressed: a client that does not ask for gzip may not be able to decode it.
* ``If-None-Match`` (§13.1.2) is ``*`` or a comma-separated list of entity tags compared with
  the *weak* comparison (``W/"a"`` matches ``"a"``).
* The gzip and the identity body are different representations, so they carry different ETags
  (§8.8.3): a cache that stored one must not answer a request for the other with a 304.

No library does these on raw header bytes for an ASGI middleware (Starlette parses neither
q-values nor ETag lists), hence the small parsers here.
"""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from vggeo.tiles.cache import CachedTile

__all__ = [
    "choose_encoding",
    "none_match",
    "etag_for",
    "tile_answer",
    "Encoding",
    "CacheControlPolicy",
    "MVT_MEDIA_TYPE",
]

Encoding = Literal["gzip", "identity"]
MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
_MVT = MVT_MEDIA_TYPE.encode("latin-1")


def _codings(header: str) -> dict[str, float]:
    """Coding → q-value of an ``Accept-Encoding`` value (malformed q-values count as 0)."""
    out: dict[str, float] = {}
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        for p in params.split(";"):
            key, _, value = p.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0 or q != q:  # out of range or NaN: not acceptable
                    q = 0.0
        out[name] = max(q, out.get(name, 0.0)) if name in out else q
    return out


def choose_encoding(header: str | None) -> Encoding | None:
    """The coding to answer with: ``"gzip"``, ``"identity"``, or ``None`` when neither is
    acceptable (the caller answers 406).

    Parameters
    ----------
    header
        The request's ``Accept-Encoding`` value, or ``None`` when absent.
    """
    if header is None:
        return "identity"
    codings = _codings(header)
    if not codings:  # an empty header asks for no coding at all (RFC 9110 §12.5.3)
        return "identity"
    star = codings.get("*")
    gzip_q = codings.get("gzip", codings.get("x-gzip", star if star is not None else 0.0))
    identity_q = codings.get("identity", star if star is not None else 1.0)
    if gzip_q > 0 and gzip_q >= identity_q:
        return "gzip"
    if identity_q > 0:
        return "identity"
    return None


def _tags(header: str) -> list[str]:
    """Opaque tags of an ``If-None-Match`` list, ``W/`` prefixes removed (weak comparison)."""
    out = []
    for item in header.split(","):
        tag = item.strip()
        if tag[:2] in ("W/", "w/"):
            tag = tag[2:]
        if tag:
            out.append(tag)
    return out


def none_match(header: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` matches ``etag`` (the response is then a 304).

    ``*`` matches any current representation; otherwise any listed tag that equals ``etag`` by
    the weak comparison.
    """
    if not header:
        return False
    tags = _tags(header)
    if "*" in tags:
        return True
    strong = etag[2:] if etag.startswith("W/") else etag
    return strong in tags


def etag_for(etag: str, encoding: Encoding) -> str:
    """The ETag of one encoding of a body whose gzip form has ``etag`` (quoted, strong)."""
    if encoding == "gzip":
        return etag
    return etag[:-1] + '-identity"' if etag.endswith('"') else etag + "-identity"


def tile_answer(
    tile: CachedTile, encoding: Encoding, cache_control: bytes, if_none_match: str | None
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, ASGI headers and body of the answer with a finished tile, for the routes and the
    fast path alike: 304 when ``If-None-Match`` matches the ETag of this encoding, 204 for an
    empty tile, else 200 with the gzip body as stored or, for identity, decompressed.

    Every answer carries ``Cache-Control``, the encoding's ``ETag`` and ``Vary: Accept-Encoding``;
    a 200 also ``Content-Type``, ``Content-Encoding: gzip`` when gzip, and ``Content-Length``.
    """
    etag = etag_for(tile.etag, encoding)
    headers = [
        (b"cache-control", cache_control),
        (b"etag", etag.encode("latin-1")),
        (b"vary", b"Accept-Encoding"),
    ]
    if none_match(if_none_match, etag):
        return 304, headers, b""
    if tile.empty:
        return 204, headers, b""
    if encoding == "gzip":
        body = tile.body
        headers.append((b"content-encoding", b"gzip"))
    else:
        body = gzip.decompress(tile.body)
    headers += [(b"content-type", _MVT), (b"content-length", str(len(body)).encode())]
    return 200, headers, body


class CacheControlPolicy:
    """``Cache-Control`` of a tile by zoom: a default and inclusive ranges (``"0-8"``, ``"14"``).

    Low zooms change rarely in a weekly update and are the most requested; high zooms are many
    and each changes with its neighbourhood. Operators want a CDN to keep the former longer and
    revalidate the latter (with the version-derived ETag a revalidation is a cheap 304).

    Raises
    ------
    ValueError
        A range that is not ``LO-HI`` or ``Z`` within 0…30, or ranges that overlap.
    """

    def __init__(self, default: str, by_zoom: dict[str, str] | None = None) -> None:
        self.default = default
        values = [default] * 31
        seen: dict[int, str] = {}
        for spec, value in (by_zoom or {}).items():
            lo, hi = _zoom_range(spec)
            for z in range(lo, hi + 1):
                if z in seen:
                    raise ValueError(
                        f"cache_control_zooms: zoom {z} is in both {seen[z]!r} and {spec!r}"
                    )
                seen[z] = spec
                values[z] = value
        self._values = values
        self._encoded = [v.encode("latin-1") for v in values]

    def for_zoom(self, z: int) -> str:
        return self._values[z] if 0 <= z < len(self._values) else self.default

    def encoded(self, z: int) -> bytes:
        return self._encoded[z] if 0 <= z < len(self._encoded) else self.default.encode("latin-1")


def _zoom_range(spec: str) -> tuple[int, int]:
    lo, sep, hi = spec.strip().partition("-")
    try:
        a, b = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise ValueError(f"cache_control_zooms: {spec!r} is not a zoom or a range LO-HI") from None
    if not 0 <= a <= b <= 30:
        raise ValueError(f"cache_control_zooms: {spec!r} must satisfy 0 <= LO <= HI <= 30")
    return a, b
