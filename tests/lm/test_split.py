"""Cutting a data file into chunks of whole members (vggeo.lm._parallel.split_members).

Checked against the file itself: the chunks' bodies put back together are the file's body, each
chunk parses on its own, holds whole members and knows its first line, whatever the chunk size,
the stream's read method or a member nearly as large as a chunk.
"""

from __future__ import annotations

import io

import pytest
from foreign_writer import Style, make_truth, write_data
from lxml import etree

from vggeo.lm._parallel import ChunkingUnsupported, split_members

ROOT_END = b"</mb:FeatureCollection>"


class _ReadOnly:
    """A stream with ``read`` only (no ``readinto``), as some wrappers are."""

    def __init__(self, data: bytes) -> None:
        self._b = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._b.read(n)


def _file(pretty: bool = True, crlf: bool = False, pad: int = 0) -> bytes:
    data = write_data(make_truth(30, seed=5), Style(pretty=pretty, crlf=crlf))
    if pad:  # one member made nearly as large as a chunk
        data = data.replace(b"</mb:objektidentitet>", b"</mb:objektidentitet>" + b" " * pad, 1)
    return data


def _body(data: bytes) -> tuple[bytes, bytes, int]:
    """(root start tag, the members with what lies between them, lines before the body)."""
    start = data.index(b"<mb:FeatureCollection")
    body_start = data.index(b">", start) + 1
    body_end = data.rindex(b"</mb:member>") + len(b"</mb:member>")
    return data[start:body_start], data[body_start:body_end], data.count(b"\n", 0, body_start)


@pytest.mark.parametrize("chunk", [4096, 10_000, 1 << 16, 6 << 20])
@pytest.mark.parametrize("layout", ["pretty", "single-line-crlf", "large-member"])
@pytest.mark.parametrize("stream", [io.BytesIO, _ReadOnly])
def test_chunks_put_back_together_are_the_file(chunk, layout, stream):
    data = {
        "pretty": lambda: _file(),
        "single-line-crlf": lambda: _file(pretty=False, crlf=True),
        "large-member": lambda: _file(pad=min(chunk - 4000, 1 << 20)),
    }[layout]()
    root, body, lines = _body(data)
    prefix = root.replace(b"\r", b" ").replace(b"\n", b" ")
    pieces = list(split_members(stream(data), chunk_bytes=chunk, first_chunk_bytes=chunk))
    bodies = []
    members = 0
    for piece, first_line in pieces:
        assert piece.startswith(prefix) and piece.endswith(ROOT_END)
        part = piece[len(prefix) : -len(ROOT_END)]
        assert part.rstrip().endswith(b"</mb:member>")
        # Line numbers of a chunk are the file's: its first body line is the file's line.
        assert first_line == lines + b"".join(bodies).count(b"\n")
        bodies.append(part)
        members += len(etree.fromstring(piece))
    assert b"".join(bodies) == body
    assert members == body.count(b"</mb:member>") == 30
    if chunk >= len(data):
        assert len(pieces) == 1


@pytest.mark.parametrize("stream", [io.BytesIO, _ReadOnly])
def test_a_member_larger_than_a_chunk_is_not_split(stream):
    data = _file(pad=50_000)
    with pytest.raises(ChunkingUnsupported, match="larger than the chunk limit"):
        list(split_members(stream(data), chunk_bytes=5000))


@pytest.mark.parametrize(
    "tail, reason",
    [(b"<x/>" + ROOT_END, "after the last member"), (b"", "after the last member")],
)
def test_content_after_the_last_member_is_not_split(tail, reason):
    data = _file()
    cut = data.rindex(ROOT_END)
    with pytest.raises(ChunkingUnsupported, match=reason):
        list(split_members(io.BytesIO(data[:cut] + tail), chunk_bytes=10_000))
