"""Record boundaries in a decompressed PubMed XML byte stream, found without an XML parser.

The stream is cut into a header (XML declaration, DOCTYPE, root start tag), runs of whole
records (each about `chunk_size` bytes, cut just before a record start tag) and a tail (the
last records and the root end tag). Each piece keeps its byte offset and line in the file, so
a parser error inside it can be placed; `pieces` splits a run into single records for the
slow path that localises an error to its record.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

CHUNK_SIZE = 1 << 20  # the size of a run of records parsed at once
READ_SIZE = 1 << 16  # bytes read at a time (a gzip read that fails loses what it had decoded)
# what a broken stream raises while reading: truncated/corrupt gzip, I/O failures
STREAM_ERRORS = (OSError, EOFError, zlib.error)
ARTICLE_SET_NAMES = (b"PubmedArticle", b"PubmedBookArticle", b"DeleteCitation")
MEDLINE_SET_NAMES = (b"MedlineCitation", b"DeleteCitation")
_FIRST_RECORD = re.compile(rb"<(?:PubmedArticle|PubmedBookArticle|DeleteCitation|MedlineCitation)[\s>/]")
_TAG_END = re.compile(rb"\s*>")
_PMID = re.compile(rb"<PMID\b[^>]*>\s*(\d+)\s*</PMID>")
_WS = b" \t\r\n"


@dataclass(frozen=True)
class Piece:
    """Bytes of the file with where they start (byte offset, 1-based line); record or not."""

    data: bytes
    offset: int
    line: int
    col: int = 0  # bytes before data[0] on its line
    record: bool = True

    def sub(self, start: int, end: int, record: bool) -> "Piece":
        """The piece's bytes [start, end) as a piece of their own."""
        nl = self.data.rfind(b"\n", 0, start)
        col = self.col + start if nl < 0 else start - nl - 1
        return Piece(self.data[start:end], self.offset + start,
                     self.line + self.data.count(b"\n", 0, start), col, record)


def names_for(root: str) -> tuple[bytes, ...]:
    """The record element names under a root element."""
    return MEDLINE_SET_NAMES if root == "MedlineCitationSet" else ARTICLE_SET_NAMES


def pmid_in(data: bytes) -> int | None:
    """The PMID of a record's raw bytes: its citation's first one (None when unreadable, and
    for a DeleteCitation, whose PMIDs are the deleted ones)."""
    at = data.find(b"<PMID")
    if at < 0 or (data.find(b"<MedlineCitation", 0, at) < 0 and data.find(b"<BookDocument", 0, at) < 0):
        return None
    m = _PMID.match(data, at)  # the first PMID only: later ones are cited articles
    return int(m.group(1)) if m else None


def is_article(data: bytes) -> bool:
    """Whether a record's raw bytes hold a citation (an article, not a DeleteCitation)."""
    return b"<MedlineCitation" in data or b"<BookDocument" in data


def pieces(run: Piece, names: tuple[bytes, ...]) -> list[Piece]:
    """A run split into records (start tag to the end of their end tag) and the bytes between
    them; an end tag whose start tag is damaged ends a record that began after the last one."""
    pattern = re.compile(rb"<(/?)(?:" + b"|".join(names) + rb")(?=[\s>/])")
    out: list[Piece] = []
    data, start, inside = run.data, 0, False
    for m in pattern.finditer(data):
        if m.start() < start:
            continue
        if m.group(1):  # an end tag: the record ends after its ">"
            gt = _TAG_END.match(data, m.end())
            end = gt.end() if gt else m.end()
            out.append(run.sub(start, end, True))
            start, inside = end, False
        else:
            if m.start() > start:
                out.append(run.sub(start, m.start(), inside))
            start, inside = m.start(), True
    if start < len(data):
        out.append(run.sub(start, len(data), inside))
    return [p for p in out if p.record or p.data.strip(_WS)]


class Splitter:
    """Reads a stream in chunks and hands out its header, runs of whole records and tail."""

    def __init__(self, stream: IO[bytes], chunk_size: int = CHUNK_SIZE) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.stream, self.chunk_size = stream, chunk_size
        self.read_size = min(chunk_size, READ_SIZE)
        self.buf, self.offset, self.line, self.col = bytearray(), 0, 1, 0  # where buf[0] is
        self.eof = False
        self.error: BaseException | None = None  # the read error that ended the stream
        self.names = ARTICLE_SET_NAMES

    @property
    def read_bytes(self) -> int:
        """Decompressed bytes read so far."""
        return self.offset + len(self.buf)

    def _fill(self) -> bool:
        """Append one chunk to the buffer; False at the end of the stream or a read error."""
        if self.eof:
            return False
        try:
            data = self.stream.read(self.read_size)
        except STREAM_ERRORS as exc:
            self.error, self.eof = exc, True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def take(self, n: int, record: bool = True) -> Piece:
        """The next n buffered bytes as a piece, removed from the buffer."""
        piece = Piece(bytes(self.buf[:n]), self.offset, self.line, self.col, record)
        del self.buf[:n]
        self.offset += n
        lines = piece.data.count(b"\n")
        self.line += lines
        self.col = n - piece.data.rfind(b"\n") - 1 if lines else self.col + n
        return piece

    def first_record(self) -> int:
        """Offset of the first record start tag, read into the buffer (-1: the stream has none,
        and all of it is buffered)."""
        searched = 0
        while True:
            m = _FIRST_RECORD.search(self.buf, searched)
            if m:
                return m.start()
            searched = max(0, len(self.buf) - 32)
            if not self._fill():
                return -1

    def _last_start(self) -> int:
        """Offset (> 0) of the last record start tag in the buffer; -1 when there is none."""
        best = -1
        for name in self.names:
            tag, end = b"<" + name, len(self.buf)
            while True:
                i = self.buf.rfind(tag, 1, end)
                if i <= best:
                    break
                if self.buf[i + len(tag):i + len(tag) + 1] in (b">", b" ", b"\t", b"\n", b"\r", b"/"):
                    best = i
                    break
                end = i
        return best

    def runs(self) -> Iterator[Piece]:
        """Runs of whole records of about chunk_size bytes, until the stream ends (then the
        buffer holds the tail)."""
        while True:
            if len(self.buf) >= self.chunk_size:
                cut = self._last_start()
                if cut > 0:
                    yield self.take(cut)
                    continue
            if not self._fill():
                return

    def tail(self, record: bool = True) -> Piece:
        """What is left after the runs: the last records and the root end tag."""
        return self.take(len(self.buf), record)
