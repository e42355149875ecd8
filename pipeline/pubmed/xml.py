"""Streaming PubMed/MEDLINE XML reader (.xml, .xml.gz): records as dicts, or Arrow tables.

Records are plain dicts keyed by the column names of `pipeline.pubmed.schema` plus "record_type"
("article" | "deletion" | "error"). Memory stays flat: every record element is cleared after
use and the already-read siblings before it are deleted. No DTD is loaded, nothing is fetched.
"""
from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import pyarrow as pa
from lxml import etree

from pipeline.pubmed import fields as F
from pipeline.pubmed import lists as L
from pipeline.pubmed.schema import file_seq_of, to_table

Record = dict[str, Any]
RECORD_TAGS = ("PubmedArticle", "PubmedBookArticle", "DeleteCitation", "MedlineCitation")
ROOT_TAGS = frozenset({"PubmedArticleSet", "MedlineCitationSet"})
_KIND_OF = {"article": "articles", "deletion": "deletions", "error": "errors"}
# What a broken stream raises through lxml: bad XML, truncated/corrupt gzip, I/O failures.
_STREAM_ERRORS = (etree.XMLSyntaxError, OSError, EOFError, zlib.error)


class PubmedParseError(ValueError):
    """A PubMed file or record could not be parsed (raised in strict mode)."""


# an entity reference other than the five predefined ones or a character reference
_ENTITY_REF = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos);|#)")


class _CountingReader:
    """File-like wrapper that counts the decompressed bytes handed to the parser, and notes
    whether any entity reference that the parser leaves unexpanded went by (cheap: one regex
    per chunk; the per-record entity check runs only after one was seen)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.count, self.entities = raw, 0, False

    def read(self, n: int = -1) -> bytes:
        """Read up to n bytes and count them."""
        data = self.raw.read(n)
        self.count += len(data)
        if not self.entities and b"&" in data and _ENTITY_REF.search(data):
            self.entities = True
        return data


GZIP_MAGIC = b"\x1f\x8b"


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


def decompressed(raw: IO[bytes]) -> IO[bytes]:
    """A raw byte stream (seekable or not) as XML bytes: gunzipped when its content starts with
    the gzip magic, whatever the file is named (mirrors rename and re-compress dumps)."""
    head = b""
    while len(head) < len(GZIP_MAGIC):
        chunk = raw.read(len(GZIP_MAGIC) - len(head))
        if not chunk:
            break
        head += chunk
    stream: Any = _Replay(head, raw)
    if head == GZIP_MAGIC:
        return _Gunzip(fileobj=stream, mode="rb")  # type: ignore[return-value]
    return stream


def open_xml(path: str) -> IO[bytes]:
    """Open a local path or a URI (s3://, gs://, any pyarrow filesystem) as a binary XML stream,
    gunzipped when its content starts with the gzip magic bytes (the name does not matter)."""
    if "://" in path:
        import pyarrow.fs as pafs

        fs, base = pafs.FileSystem.from_uri(path)
        raw: Any = fs.open_input_stream(base)
    else:
        raw = open(path, "rb")
    return decompressed(raw)


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


def _error(source_file: str, file_seq: int | None, record_index: int, stage: str, what: str,
           *, line: int | None = None, column: int | None = None,
           byte_offset: int | None = None, pmid: int | None = None) -> Record:
    """An error dict whose message names the file, the place and what was wrong."""
    if line is not None:
        position = f"line {line}" + (f", column {column}" if column is not None else "")
    elif byte_offset is not None:
        position = f"byte {byte_offset} of the XML"
    else:
        position = f"record {record_index}"
    return {"record_type": "error", "source_file": source_file, "file_seq": file_seq,
            "pmid": pmid, "record_index": record_index, "position": position, "line": line,
            "byte_offset": byte_offset, "stage": stage,
            "message": f"{source_file}: {position} (record {record_index}): {what}"}


def _pmid_of(el: etree._Element) -> tuple[str | None, int | None]:
    """PMID text and number of a record element (None where absent or malformed)."""
    citation = el if el.tag == "MedlineCitation" else el.find("MedlineCitation")
    if citation is None and el.tag == "PubmedBookArticle":
        citation = el.find("BookDocument")
    text = None if citation is None else F.leaf_text(citation.find("PMID"))
    return text, int(text) if text and text.isdigit() else None


def scan_records(stream: IO[bytes], name: str, *, strict: bool = False,
                 handler: Callable[..., list[Record]] = _full_rows,
                 entity_errors: bool = True) -> Iterator[Record]:
    """Core loop over an open decompressed XML stream; `name` gives source_file/file_seq.

    Entities are never expanded (no DTD, nothing fetched): a record holding an entity
    reference other than the predefined ones keeps its text without it, and (entity_errors)
    gets an error row saying so, stage "entity".
    """
    source_file = os.path.basename(name)
    file_seq = file_seq_of(source_file)
    reader = _CountingReader(stream)
    ctx = etree.iterparse(reader, events=("end",), tag=RECORD_TAGS, huge_tree=True,
                          resolve_entities=False, load_dtd=False, no_network=True)
    position = 0
    last_line: int | None = None

    def fail(err: Record, exc: BaseException | None = None) -> Record:
        if strict:
            raise PubmedParseError(err["message"]) from exc
        return err

    while True:
        try:
            _, el = next(ctx)
        except StopIteration:
            break
        except _STREAM_ERRORS as exc:  # the file broke here: keep what was read, report once
            line, column = getattr(exc, "position", (None, None))
            what = f"{type(exc).__name__}: {exc}"
            if line is not None and last_line is not None and line < last_line:
                # libxml2 counts lines inside an entity's replacement text (an entity bomb,
                # say): name the real place, the record after the last one read
                what += f" (inside an entity's text, in the record after the one at line {last_line})"
                line, column = last_line, None
            yield fail(_error(source_file, file_seq, position, "xml", what, line=line,
                              column=column, byte_offset=reader.count), exc)
            return
        parent = el.getparent()
        if el.tag == "MedlineCitation" and parent is not None and parent.tag == "PubmedArticle":
            continue  # the inner citation of a PubmedArticle: handled at the article's end
        if parent is not None:
            while el.getprevious() is not None:  # read records and anything stray before them
                stray = parent[0]
                if isinstance(stray.tag, str) and stray.tag not in RECORD_TAGS:
                    yield fail(_unexpected(source_file, file_seq, position, stray))
                del parent[0]
        last_line = el.sourceline
        try:
            yield from handler(el, source_file, file_seq, position)
        except Exception as exc:  # noqa: BLE001 - one bad record becomes an error row, run goes on
            pmid_text, pmid = _pmid_of(el)
            yield fail(_error(source_file, file_seq, position, "record",
                              f"<{el.tag}> PMID {pmid_text}: {type(exc).__name__}: {exc}",
                              line=el.sourceline, column=0, pmid=pmid), exc)
        else:
            if entity_errors and reader.entities:
                names = sorted({f"&{e.name};" for e in el.iter(etree.Entity)})
                if names:
                    pmid_text, pmid = _pmid_of(el)
                    yield fail(_error(source_file, file_seq, position, "entity",
                                      f"<{el.tag}> PMID {pmid_text}: entity reference(s) {', '.join(names)} "
                                      "not expanded (entities are never loaded); dropped from the text",
                                      line=el.sourceline, column=0, pmid=pmid))
        position += 1
        el.clear(keep_tail=True)  # deleted from its parent when the next record ends
    root = ctx.root
    if root is not None and root.tag not in ROOT_TAGS:
        yield fail(_error(source_file, file_seq, position, "root",
                          f"unexpected root element <{root.tag}>; expected one of "
                          f"{sorted(ROOT_TAGS)}", line=root.sourceline, column=0))
    elif root is not None:
        for stray in root:  # after the last record
            if isinstance(stray.tag, str) and stray.tag not in RECORD_TAGS:
                yield fail(_unexpected(source_file, file_seq, position, stray))


def _unexpected(source_file: str, file_seq: int | None, position: int,
                el: etree._Element) -> Record:
    """Error row for a stray top-level element (skipped)."""
    return _error(source_file, file_seq, position, "element",
                  f"unexpected element <{el.tag}> at top level, skipped",
                  line=el.sourceline, column=0)


def iter_records(path: str, *, strict: bool = False) -> Iterator[Record]:
    """Article, deletion and error dicts of one file, in file order.

    A broken file yields the records read before the break, then one error dict (file,
    line/byte position, message); with strict=True a PubmedParseError with that message.
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
