"""Streaming PubMed/MEDLINE XML reader (.xml, .xml.gz): records as dicts, or Arrow tables.

Records are plain dicts keyed by the column names of `pipeline.pubmed.schema` plus "record_type"
("article" | "deletion" | "error"). The record loop is `pipeline.pubmed.scan`: runs of whole
records are parsed at a time, so memory stays flat, and a broken record costs only itself.
No DTD is loaded, nothing is fetched.
"""
from __future__ import annotations

import gzip
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import pyarrow as pa
from lxml import etree

from pipeline.pubmed import fields as F
from pipeline.pubmed import lists as L
from pipeline.pubmed.records import CHUNK_SIZE
from pipeline.pubmed.scan import PubmedParseError, scan_stream
from pipeline.pubmed.schema import to_table

__all__ = ["PubmedParseError", "decompressed", "iter_index", "iter_records", "iter_tables",
           "open_xml", "parse_article", "parse_deletions", "scan_records"]

Record = dict[str, Any]
_KIND_OF = {"article": "articles", "deletion": "deletions", "error": "errors"}
log = logging.getLogger(__name__)
GZIP_MAGIC = b"\x1f\x8b"
MAX_GZIP_LAYERS = 3  # gzip inside gzip is read through, up to this depth


class _Replay:
    """A forward-only stream with its first bytes (already read to sniff them) put back."""

    def __init__(self, head: bytes, raw: IO[bytes]) -> None:
        self.head, self.raw = head, raw

    def read(self, n: int = -1) -> bytes:
        """Read up to n bytes (all when n < 0), the sniffed head first."""
        if not self.head:
            return self.raw.read(n)
        if n is None or n < 0:
            data, self.head = self.head + self.raw.read(), b""
            return data
        data, self.head = self.head[:n], self.head[n:]
        if len(data) < n:
            data += self.raw.read(n - len(data))
        return data

    def close(self) -> None:
        """Close the underlying stream."""
        self.raw.close()

    def __enter__(self) -> "_Replay":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Gunzip(gzip.GzipFile):
    """GzipFile that also closes the stream it reads from."""

    def close(self) -> None:
        """Close the gzip reader, then the underlying stream."""
        inner = self.fileobj
        super().close()
        if inner is not None:
            inner.close()


def _peek(raw: IO[bytes], n: int) -> bytes:
    head = b""
    while len(head) < n:
        chunk = raw.read(n - len(head))
        if not chunk:
            break
        head += chunk
    return head


def decompressed(raw: IO[bytes], name: str = "") -> IO[bytes]:
    """A raw byte stream (seekable or not) as XML bytes: gunzipped when its content starts with
    the gzip magic, whatever the file is named (mirrors rename and re-compress dumps), and again
    while the content is still gzip (a `.gz` uploaded through a stream that compressed it once
    more), with a warning naming the file."""
    stream: Any = raw
    for layer in range(MAX_GZIP_LAYERS + 1):
        head = _peek(stream, len(GZIP_MAGIC))
        stream = _Replay(head, stream)
        if head != GZIP_MAGIC:
            break
        if layer == MAX_GZIP_LAYERS:
            raise ValueError(f"{name or 'input'}: still gzip after {MAX_GZIP_LAYERS} gunzips; not PubMed XML")
        if layer == 1:
            log.warning("%s is gzip-compressed twice (an upload that compressed a .gz again?); "
                        "read through both layers", name or "input")
        stream = _Gunzip(fileobj=stream, mode="rb")
    return stream


def open_xml(path: str) -> IO[bytes]:
    """Open a local path or a URI (s3://, gs://, any pyarrow filesystem) as a binary XML stream,
    gunzipped by content (`decompressed`), never by the file name."""
    if "://" in path:
        from pipeline.storage import Location

        raw: Any = Location.open(path).open_input("")
    else:
        raw = open(path, "rb")
    return decompressed(raw, path)


def _children(el: etree._Element | None) -> dict[Any, etree._Element]:
    """Direct children by tag (for a repeated tag the last one; repeated fields iterate)."""
    return {} if el is None else {ch.tag: ch for ch in el}


def _book_author_list(doc: etree._Element) -> etree._Element | None:
    """A BookDocument's AuthorList of authors (not the editors' one)."""
    for al in doc.iterchildren("AuthorList"):
        if al.get("Type") in (None, "authors"):
            return al
    return None


def parse_article(el: etree._Element, source_file: str | None = None,
                  file_seq: int | None = None, position: int | None = None) -> Record:
    """A PubmedArticle, PubmedBookArticle or bare MedlineCitation element -> article dict."""
    tag = el.tag
    is_book = tag == "PubmedBookArticle"
    top = _children(el)
    if is_book:
        citation = top.get("BookDocument")
        if citation is None:
            raise ValueError("<PubmedBookArticle> has no <BookDocument>")
        cm = am = _children(citation)
        article = citation
        book = am.get("Book")
        im = _children(book)
        jm: dict[Any, etree._Element] = {}
        ids = am.get("ArticleIdList")
        data = top.get("PubmedBookData")
        author_list = _book_author_list(citation)
        pub_types = citation
    else:
        citation = el if tag == "MedlineCitation" else top.get("MedlineCitation")
        if citation is None:
            raise ValueError(f"<{tag}> has no <MedlineCitation>")
        cm = _children(citation)
        article = cm.get("Article")
        if article is None:
            raise ValueError(f"PMID {F.leaf_text(cm.get('PMID'))}: no <Article>")
        am = _children(article)
        jm = _children(am.get("Journal"))
        im = _children(jm.get("JournalIssue"))
        ids = None
        data = top.get("PubmedData")
        author_list = am.get("AuthorList")
        pub_types = am.get("PublicationTypeList")
    if ids is None and data is not None:
        ids = data.find("ArticleIdList")
    pmid_el = cm.get("PMID")
    sections = F.parse_abstract_sections(am.get("Abstract"))
    title = F.parse_title(am.get("ArticleTitle"))
    book_title = F.parse_book_title(im.get("BookTitle")) if is_book else None
    return {
        "record_type": "article",
        "pmid": F.parse_pmid(pmid_el),
        "version": F.parse_version(pmid_el),
        "title": title if title is not None or not is_book else book_title,
        "vernacular_title": F.parse_vernacular_title(am.get("VernacularTitle")),
        "book_title": book_title,
        "abstract": F.join_sections(sections),
        "abstract_sections": sections,
        "other_abstracts": F.parse_other_abstracts(citation) if "OtherAbstract" in cm else [],
        "languages": F.parse_languages(article),
        "journal_title": F.parse_journal_title(jm.get("Title")),
        "journal_iso": F.parse_journal_iso(jm.get("ISOAbbreviation")),
        "issn": F.parse_issn(jm.get("ISSN")),
        "volume": F.parse_volume(im.get("Volume")),
        "issue": F.parse_issue(im.get("Issue")),
        "pages": F.parse_pages(am.get("Pagination")),
        "pub_year": F.parse_pub_year(im.get("PubDate")),
        "pub_date": F.parse_pub_date(im.get("PubDate")),
        "article_date": F.parse_article_date(am.get("ArticleDate")),
        "authors": L.parse_authors(author_list),
        "mesh_headings": L.parse_mesh_headings(cm.get("MeshHeadingList")),
        "chemicals": L.parse_chemicals(cm.get("ChemicalList")),
        "keywords": L.parse_keywords(citation) if "KeywordList" in cm else [],
        "publication_types": F.parse_publication_types(pub_types),
        "grants": L.parse_grants(am.get("GrantList")),
        "doi": F.parse_doi(article, ids),
        "pmc_id": F.parse_pmc_id(ids),
        "citation_status": F.parse_citation_status(citation),
        "date_revised": F.parse_date_revised(cm.get("DateRevised")),
        "is_book": is_book,
        "source_file": source_file,
        "file_seq": file_seq,
        "position": position,
    }


def parse_deletions(el: etree._Element, source_file: str | None = None,
                    file_seq: int | None = None, position: int | None = None) -> list[Record]:
    """A DeleteCitation element -> one deletion dict per listed PMID."""
    out = []
    for p in el.iterchildren("PMID"):
        text = F.leaf_text(p)
        if text is None or not text.isdigit():
            raise ValueError(f"<DeleteCitation> lists a bad PMID {text!r}")
        v = p.get("Version")
        out.append({"record_type": "deletion", "pmid": int(text),
                    "version": int(v) if v and v.strip().isdigit() else None,
                    "source_file": source_file, "file_seq": file_seq, "position": position})
    return out


def _index_rows(el: etree._Element, source_file: str | None, file_seq: int | None,
                position: int) -> list[Record]:
    """Light per-record handler for scan_index: identity columns only."""
    if el.tag == "DeleteCitation":
        return parse_deletions(el, source_file, file_seq, position)
    citation = el.find("BookDocument") if el.tag == "PubmedBookArticle" else (
        el if el.tag == "MedlineCitation" else el.find("MedlineCitation"))
    if citation is None:
        raise ValueError(f"<{el.tag}> has no citation element")
    pmid = citation.find("PMID")
    return [{"record_type": "article", "pmid": F.parse_pmid(pmid),
             "version": F.parse_version(pmid), "file_seq": file_seq, "position": position}]


def _full_rows(el: etree._Element, source_file: str | None, file_seq: int | None,
               position: int) -> list[Record]:
    """Full per-record handler: article dict or deletion dicts."""
    if el.tag == "DeleteCitation":
        return parse_deletions(el, source_file, file_seq, position)
    return [parse_article(el, source_file, file_seq, position)]


def scan_records(stream: IO[bytes], name: str, *, strict: bool = False,
                 handler: Callable[..., list[Record]] = _full_rows, entity_errors: bool = True,
                 chunk_size: int = CHUNK_SIZE) -> Iterator[Record]:
    """Rows of an open decompressed XML stream; `name` gives source_file/file_seq.

    Entities are never expanded (no DTD, nothing fetched): a record holding an entity
    reference other than the predefined ones keeps its text without it, and (entity_errors)
    gets an error row saying so, stage "entity". A record lxml cannot parse gives one error
    row (stage "xml": record index, PMID when readable, line, byte) and reading goes on at
    the next record; `chunk_size` is the size of the runs of records parsed at once.
    """
    return scan_stream(stream, name, handler, strict=strict, entity_errors=entity_errors,
                       chunk_size=chunk_size)


def iter_records(path: str, *, strict: bool = False) -> Iterator[Record]:
    """Article, deletion and error dicts of one file, in file order.

    A record lxml cannot parse yields one error dict (file, record index, PMID when readable,
    line, byte) in its place and reading goes on at the next record; a file cut short yields
    its complete records, then one error dict. With strict=True the first error raises
    PubmedParseError with that message.
    """
    with open_xml(path) as f:
        yield from scan_records(f, path, strict=strict)


def batch_tables(records: Iterable[Record], batch_rows: int = 2000) -> Iterator[tuple[str, pa.Table]]:
    """Group record dicts into ("articles" | "deletions" | "errors", table) batches."""
    pending: dict[str, list[Record]] = {"articles": [], "deletions": [], "errors": []}
    for rec in records:
        kind = _KIND_OF[rec["record_type"]]
        rows = pending[kind]
        rows.append(rec)
        if len(rows) >= batch_rows:
            yield kind, to_table(rows, kind)
            pending[kind] = []
    for kind, rows in pending.items():
        if rows:
            yield kind, to_table(rows, kind)


def iter_tables(path: str, *, batch_rows: int = 2000,
                strict: bool = False) -> Iterator[tuple[str, pa.Table]]:
    """Tables of one file: ("articles" | "deletions" | "errors", table), batch_rows at most."""
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    yield from batch_tables(iter_records(path, strict=strict), batch_rows)


def iter_index(path: str, *, strict: bool = False) -> Iterator[Record]:
    """Identity rows (record_type, pmid, version, file_seq, position) of one file, and errors."""
    with open_xml(path) as f:
        yield from scan_records(f, path, strict=strict, handler=_index_rows)
