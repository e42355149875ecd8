"""The record loop of the XML reader: lxml parses runs of whole records (cut by
`pipeline.pubmed.records`); a run that fails is parsed again record by record, so a syntax
error, an entity bomb or an undefined entity costs only the record it is in, and reading goes
on at the next record boundary. Nothing from a failed run is emitted before its retry, so no
record is counted twice, and the result does not depend on lxml's buffering.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from typing import IO, Any

from lxml import etree

from pipeline.pubmed import fields as F
from pipeline.pubmed.records import CHUNK_SIZE, Piece, Splitter, is_article, names_for, pieces, pmid_in
from pipeline.pubmed.schema import file_seq_of

log = logging.getLogger(__name__)
Record = dict[str, Any]
RECORD_TAGS = ("PubmedArticle", "PubmedBookArticle", "DeleteCitation", "MedlineCitation")
ROOT_TAGS = frozenset({"PubmedArticleSet", "MedlineCitationSet"})
# no DTD, nothing fetched, entities left unexpanded (libxml2 still refuses an entity bomb)
PARSER_OPTIONS = dict(huge_tree=True, resolve_entities=False, load_dtd=False, no_network=True)
# an entity reference other than the five predefined ones or a character reference
_ENTITY_REF = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos);|#)")
_START_TAG = re.compile(rb"<([A-Za-z_][\w.:-]*)(?=[\s>/])")
_LXML_PLACE = re.compile(r", line \d+, column \d+$")  # lxml's place in the parsed run, not the file


class PubmedParseError(ValueError):
    """A PubMed file or record could not be parsed (raised in strict mode)."""


def error_row(source_file: str, file_seq: int | None, record_index: int, stage: str, what: str,
              *, line: int | None = None, column: int | None = None,
              byte_offset: int | None = None, pmid: int | None = None) -> Record:
    """An error dict whose message names the file, the place, the record and what was wrong."""
    if line is not None:
        position = f"line {line}" + (f", column {column}" if column is not None else "")
    elif byte_offset is not None:
        position = f"byte {byte_offset} of the XML"
    else:
        position = f"record {record_index}"
    record = f"record {record_index}" + (f", PMID {pmid}" if pmid is not None else "")
    if byte_offset is not None and line is not None:
        record += f", byte {byte_offset}"
    return {"record_type": "error", "source_file": source_file, "file_seq": file_seq,
            "pmid": pmid, "record_index": record_index, "position": position, "line": line,
            "byte_offset": byte_offset, "stage": stage,
            "message": f"{source_file}: {position} ({record}): {what}"}


def pmid_of(el: etree._Element) -> tuple[str | None, int | None]:
    """PMID text and number of a record element (None where absent or malformed)."""
    citation = el if el.tag == "MedlineCitation" else el.find("MedlineCitation")
    if citation is None and el.tag == "PubmedBookArticle":
        citation = el.find("BookDocument")
    text = None if citation is None else F.leaf_text(citation.find("PMID"))
    return text, int(text) if text and text.isdigit() else None


class _Scan:
    """State of one file's scan: the header every run is parsed under, position, line map."""

    def __init__(self, name: str, strict: bool, handler: Callable[..., list[Record]],
                 entity_errors: bool) -> None:
        self.source_file = os.path.basename(name)
        self.file_seq = file_seq_of(self.source_file)
        self.strict, self.handler, self.entity_errors = strict, handler, entity_errors
        self.parser = etree.XMLParser(**PARSER_OPTIONS)
        self.position, self.errors = 0, 0
        self.last_line: int | None = None  # line of the last record read
        self.set_header(b"", "")
        self.root_line: int | None = None
        self.header_broken = False

    def set_header(self, header: bytes, root: str) -> None:
        """The bytes put before every run (declaration, DOCTYPE, root start tag) and the root."""
        self.header, self.root = header, root
        self.close = f"</{root}>".encode() if root else b""
        self.header_lines = header.count(b"\n")
        self.header_col = len(header) - header.rfind(b"\n") - 1  # bytes on its last line

    def error(self, stage: str, what: str, exc: BaseException | None = None, lost: bool = False,
              **where: Any) -> Record:
        """An error row at the current record (raised instead in strict mode); `lost`: an
        article that could not be read at all (record_lost, counted as rejected by a run)."""
        self.errors += 1
        err = error_row(self.source_file, self.file_seq, self.position, stage, what, **where)
        if lost:
            err["record_lost"] = True
        if self.strict:
            raise PubmedParseError(err["message"]) from exc
        return err

    def line_of(self, piece: Piece, doc_line: int) -> int:
        """A line of the parsed document (header + piece) as a line of the file."""
        return piece.line + doc_line - (self.header_lines + 1)

    def parse(self, piece: Piece) -> etree._Element:
        """The piece parsed under the header (raises XMLSyntaxError)."""
        return etree.fromstring(self.header + piece.data + self.close, self.parser)

    def start(self, split: Splitter, first: int) -> Iterator[Record]:
        """Find the root start tag before the first record; it heads every parsed run."""
        head = split.buf[:first]
        for n, m in enumerate(_START_TAG.finditer(head)):
            gt = head.find(b">", m.end())
            if gt < 0 or n >= 64:
                break
            root = m.group(1).decode("ascii", "replace")
            try:
                etree.fromstring(head[:gt + 1] + f"</{root}>".encode(), self.parser)
            except etree.XMLSyntaxError:
                continue
            self.root_line = head.count(b"\n", 0, m.start()) + 1
            self.set_header(split.take(gt + 1).data, root)  # what follows it is read as a gap
            split.names = names_for(root)
            return
        root = "MedlineCitationSet" if split.buf.startswith(b"<MedlineCitation", first) else "PubmedArticleSet"
        piece = split.take(first, record=False)
        self.header_broken = True
        self.set_header(f"<{root}>".encode(), root)
        split.names = names_for(root)
        yield self.error("xml", f"no well-formed root start tag before the first record; read as <{root}>",
                         line=piece.line, byte_offset=piece.offset)

    def run(self, piece: Piece) -> Iterator[Record]:
        """Records of a run: parsed at once, or record by record when that fails."""
        try:
            root = self.parse(piece)
        except etree.XMLSyntaxError as exc:
            log.debug("%s: run at byte %d failed (%s); reading its records one by one",
                      self.source_file, piece.offset, exc)
            for part in pieces(piece, names_for(self.root)):
                yield from self.one(part)
            return
        yield from self.children(root, piece)

    def one(self, piece: Piece) -> Iterator[Record]:
        """One record (or the bytes between two) parsed alone; a syntax error costs the record."""
        try:
            root = self.parse(piece)
        except etree.XMLSyntaxError as exc:
            yield self.syntax_error(piece, exc)
            if piece.record:
                self.last_line = piece.line
                self.position += 1
            return
        yield from self.children(root, piece)

    def syntax_error(self, piece: Piece, exc: etree.XMLSyntaxError) -> Record:
        """Error row of a piece lxml could not parse, placed at its line and byte in the file."""
        doc_line, column = getattr(exc, "position", None) or (None, None)
        what = f"{type(exc).__name__}: {_LXML_PLACE.sub('', exc.msg or str(exc))}"
        line = None if doc_line is None else self.line_of(piece, doc_line)
        byte = piece.offset
        if line is not None and line < piece.line:
            # libxml2 counts lines inside an entity's replacement text (an entity bomb, say)
            where = (f"the record after the one at line {self.last_line}" if self.last_line is not None
                     else f"the record at line {piece.line}")
            what += f" (inside an entity's text, in {where})"
            line, column = self.last_line or piece.line, None
        elif line is not None:
            byte, column = self.place(piece, doc_line - self.header_lines - 1, column or 1)
        pmid = pmid_in(piece.data) if piece.record else None
        return self.error("xml", what, exc, piece.record and is_article(piece.data), line=line,
                          column=column, byte_offset=byte, pmid=pmid)

    def place(self, piece: Piece, k: int, column: int) -> tuple[int, int]:
        """Byte offset in the file and column of (k-th line of the piece, parser column)."""
        if k == 0:
            within = column - 1 - self.header_col
        else:
            at = -1
            for _ in range(k):
                at = piece.data.find(b"\n", at + 1)
                if at < 0:
                    return piece.offset + len(piece.data), column
            within = at + 1 + column - 1
        within = max(0, min(within, len(piece.data)))
        if k == 0:
            column = piece.col + within + 1
        return piece.offset + within, column

    def children(self, root: etree._Element, piece: Piece) -> Iterator[Record]:
        """Rows of the records under a parsed run's root; stray elements become error rows."""
        entities = self.entity_errors and b"&" in piece.data and _ENTITY_REF.search(piece.data)
        for el in root:
            tag = el.tag
            if not isinstance(tag, str):
                continue  # comments, processing instructions
            line = self.line_of(piece, el.sourceline)
            if tag not in RECORD_TAGS:
                yield self.error("element", f"unexpected element <{tag}> at top level, skipped",
                                 line=line, column=0)
                continue
            self.last_line = line
            try:
                rows = self.handler(el, self.source_file, self.file_seq, self.position)
            except Exception as exc:  # noqa: BLE001 - one bad record becomes an error row
                text, pmid = pmid_of(el)
                yield self.error("record", f"<{tag}> PMID {text}: {type(exc).__name__}: {exc}",
                                 exc, line=line, column=0, pmid=pmid)
            else:
                yield from rows
                names = sorted({f"&{e.name};" for e in el.iter(etree.Entity)}) if entities else []
                if names:
                    text, pmid = pmid_of(el)
                    yield self.error("entity", f"<{tag}> PMID {text}: entity reference(s) {', '.join(names)} "
                                     "not expanded (entities are never loaded); dropped from the text",
                                     line=line, column=0, pmid=pmid)
            self.position += 1
            el.clear()

    def finish(self, split: Splitter) -> Iterator[Record]:
        """The tail: last records, the root end tag, a read error that ended the stream."""
        tail = split.tail()
        at = tail.data.rfind(self.close) if self.close else -1
        body = tail if at < 0 else tail.sub(0, at, True)
        before = self.errors
        if split.error is None:
            yield from self.run(body)
        else:  # complete records first, then one row for the read error at the record it hit
            parts = pieces(body, names_for(self.root))
            for part in parts[:-1]:
                yield from self.one(part)
            pmid, lost = None, False
            if parts:
                try:
                    root = self.parse(parts[-1])
                except etree.XMLSyntaxError:  # the record the stream broke in
                    if parts[-1].record:
                        pmid, lost = pmid_in(parts[-1].data), is_article(parts[-1].data)
                else:
                    yield from self.children(root, parts[-1])
            exc = split.error
            yield self.error("xml", f"{type(exc).__name__}: {exc}", exc, lost,
                             byte_offset=split.read_bytes, pmid=pmid)
        if at >= 0:
            suffix = tail.sub(at, len(tail.data), False)
            try:
                etree.fromstring(self.header + suffix.data, self.parser)
            except etree.XMLSyntaxError as exc:
                yield self.syntax_error(suffix, exc)
        elif split.error is None and self.errors == before and not self.header_broken:
            yield self.error("xml", f"the file ends without </{self.root}> (truncated?)",
                             line=tail.line + tail.data.count(b"\n"), byte_offset=split.read_bytes)
        if self.root not in ROOT_TAGS and not self.header_broken:
            yield self.unexpected_root(self.root, self.root_line)

    def whole(self, split: Splitter) -> Iterator[Record]:
        """A file without any record start tag, parsed as one document."""
        piece = split.tail(record=False)
        if split.error is not None:
            exc = split.error
            yield self.error("xml", f"{type(exc).__name__}: {exc}", exc, byte_offset=split.read_bytes)
            return
        try:
            root = etree.fromstring(piece.data, self.parser)
        except etree.XMLSyntaxError as exc:
            yield self.syntax_error(piece, exc)
            return
        if root.tag not in ROOT_TAGS:
            yield self.unexpected_root(root.tag, root.sourceline)
        else:
            yield from self.children(root, piece)

    def unexpected_root(self, tag: Any, line: int | None) -> Record:
        """Error row for a root other than PubmedArticleSet / MedlineCitationSet."""
        return self.error("root", f"unexpected root element <{tag}>; expected one of {sorted(ROOT_TAGS)}",
                          line=line, column=0)


def scan_stream(stream: IO[bytes], name: str, handler: Callable[..., list[Record]], *,
                strict: bool = False, entity_errors: bool = True,
                chunk_size: int = CHUNK_SIZE) -> Iterator[Record]:
    """Rows of an open decompressed XML stream, each record through `handler` (see
    `pipeline.pubmed.xml.scan_records`); `name` gives source_file/file_seq."""
    scan = _Scan(name, strict, handler, entity_errors)
    split = Splitter(stream, chunk_size)
    first = split.first_record()
    if first < 0:
        yield from scan.whole(split)
        return
    yield from scan.start(split, first)
    for run in split.runs():
        yield from scan.run(run)
    yield from scan.finish(split)
