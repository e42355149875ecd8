"""PubTator format: a strict reader for gold/predicted files and a writer for our relation/entity rows.

A document is `PMID|t|title`, `PMID|a|abstract`, then tab-separated annotation lines:
mentions `PMID start end text type id [extra]` (offsets into `title + " " + abstract`) and
relations `PMID type id1 id2 [score]`; documents are separated by blank lines.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_TEXT_LINE = re.compile(r"^([^|\t]+)\|([ta])\|(.*)$")


@dataclass(frozen=True)
class Mention:
    """One entity mention; `start`/`end` index `title + " " + abstract`."""

    pmid: str
    start: int
    end: int
    text: str
    type: str
    concept_id: str = "-1"  # may be composite "D1|D2"; "-1" when unknown
    score: float | None = None


@dataclass(frozen=True)
class Relation:
    """One document-level relation line (e.g. CID chemical -> disease)."""

    pmid: str
    type: str
    id1: str
    id2: str
    score: float | None = None


@dataclass
class Document:
    """A PubTator document: title, abstract, mentions and relations."""

    pmid: str
    title: str = ""
    abstract: str = ""
    mentions: list[Mention] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The text mention offsets refer to: title + " " + abstract."""
        return f"{self.title} {self.abstract}"


def _parse_score(value: str) -> float | None:
    if value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return None  # a 7th mention column may be composite surface forms, not a score


def parse_pubtator(lines: Iterable[str], source: str = "<input>") -> list[Document]:
    """Parse PubTator lines into documents (in file order); bad lines raise ValueError."""
    docs: dict[str, Document] = {}
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n").replace("\x00", "")
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        m = _TEXT_LINE.match(line)
        if m:
            doc = docs.setdefault(m[1], Document(m[1]))
            if m[2] == "t":
                doc.title = m[3]
            else:
                doc.abstract = m[3]
            continue
        cols = line.split("\t")
        if len(cols) < 4:
            raise ValueError(f"{where}: expected a '|t|'/'|a|' line or a tab-separated annotation, "
                             f"got {line[:80]!r}")
        doc = docs.setdefault(cols[0], Document(cols[0]))
        if cols[1].isdigit():
            if len(cols) < 5 or not cols[2].isdigit():
                raise ValueError(f"{where}: mention line needs PMID, start, end, text, type[, id]")
            start, end = int(cols[1]), int(cols[2])
            if end < start:
                raise ValueError(f"{where}: mention end {end} is before start {start}")
            concept = cols[5] if len(cols) > 5 and cols[5] != "" else "-1"
            score = _parse_score(cols[6]) if len(cols) > 6 else None
            doc.mentions.append(Mention(cols[0], start, end, cols[3], cols[4], concept, score))
        else:
            score = _parse_score(cols[4]) if len(cols) > 4 else None
            doc.relations.append(Relation(cols[0], cols[1], cols[2], cols[3], score))
    return list(docs.values())


def read_pubtator(path: str | Path) -> list[Document]:
    """Read a PubTator file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PubTator file not found: {path}")
    with path.open(encoding="utf-8") as fh:
        return parse_pubtator(fh, str(path))


def format_document(doc: Document) -> str:
    """One document as PubTator text (ending in a blank line)."""
    out = [f"{doc.pmid}|t|{doc.title}", f"{doc.pmid}|a|{doc.abstract}"]
    for m in doc.mentions:
        cols = [m.pmid, str(m.start), str(m.end), m.text, m.type, m.concept_id]
        if m.score is not None:
            cols.append(f"{m.score:.6g}")
        out.append("\t".join(cols))
    for r in doc.relations:
        cols = [r.pmid, r.type, r.id1, r.id2]
        if r.score is not None:
            cols.append(f"{r.score:.6g}")
        out.append("\t".join(cols))
    return "\n".join(out) + "\n\n"


def write_pubtator(path: str | Path, docs: Iterable[Document]) -> int:
    """Write documents to a PubTator file; returns the number written."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(format_document(doc))
            n += 1
    return n


def _clean(value: Any) -> str:
    text = "" if value is None else str(value)
    return re.sub(r"[\t\r\n]", " ", text)  # PubTator is line/tab based; keep lengths


def _doc_for(docs: dict[str, Document], pmid: Any,
             articles: Mapping[str, Mapping[str, Any]]) -> Document:
    key = str(pmid)
    if key not in docs:
        art = articles.get(key, {})
        docs[key] = Document(key, _clean(art.get("title")),
                             _clean(art.get("abstract")))
    return docs[key]


def _article_index(articles: Iterable[Mapping[str, Any]] | None) -> dict[str, Mapping[str, Any]]:
    return {str(a["pmid"]): a for a in (articles or ())}


def relation_rows_to_documents(rows: Iterable[Mapping[str, Any]],
                               articles: Iterable[Mapping[str, Any]] | None = None,
                               ) -> list[Document]:
    """Relation rows -> documents with relation lines `PMID type head_id tail_id`.

    An unlinked entity (null id) is written as "-1", as BioGPT's postprocess does; the row's
    evidence spans become mention lines so a curator sees where each name occurs.
    """
    index = _article_index(articles)
    docs: dict[str, Document] = {key: Document(key, _clean(a.get("title")),
                                               _clean(a.get("abstract")))
                                 for key, a in index.items()}
    seen: set[tuple[str, str, str, str]] = set()
    for row in rows:
        doc = _doc_for(docs, row["pmid"], index)
        head_id = row.get("head_id") or "-1"
        tail_id = row.get("tail_id") or "-1"
        key = (doc.pmid, str(row["relation"]), head_id, tail_id)
        if key in seen:
            continue
        seen.add(key)
        offset = len(doc.title) + 1
        for side in ("head", "tail"):
            for span in row.get(f"{side}_spans") or ():
                shift = 0 if span["section"] == "title" else offset
                start, end = span["start"] + shift, span["end"] + shift
                mention = Mention(doc.pmid, start, end, doc.text[start:end],
                                  str(row[f"{side}_type"]), row.get(f"{side}_id") or "-1")
                if mention not in doc.mentions:
                    doc.mentions.append(mention)
        doc.relations.append(Relation(doc.pmid, str(row["relation"]), head_id, tail_id))
    for doc in docs.values():
        doc.mentions.sort(key=lambda m: (m.start, m.end, m.type))
    return list(docs.values())


def entity_rows_to_documents(rows: Iterable[Mapping[str, Any]],
                             articles: Iterable[Mapping[str, Any]] | None = None,
                             ) -> list[Document]:
    """Entity rows (section-relative offsets) -> documents with mention lines (document offsets)."""
    index = _article_index(articles)
    docs: dict[str, Document] = {key: Document(key, _clean(a.get("title")),
                                               _clean(a.get("abstract")))
                                 for key, a in index.items()}
    for row in rows:
        doc = _doc_for(docs, row["pmid"], index)
        section = row["section"]
        if section not in ("title", "abstract"):
            raise ValueError(f"entity row for PMID {doc.pmid}: section must be 'title' or "
                             f"'abstract', got {section!r}")
        shift = 0 if section == "title" else len(doc.title) + 1
        start, end = int(row["start"]) + shift, int(row["end"]) + shift
        text = _clean(row.get("text"))
        if doc.title or doc.abstract:
            if doc.text[start:end] != text:
                raise ValueError(f"entity row for PMID {doc.pmid}: text {text!r} is not at "
                                 f"{section} [{row['start']}, {row['end']})")
        doc.mentions.append(Mention(doc.pmid, start, end, text, str(row["type"]),
                                    row.get("id") or row.get("concept_id") or "-1", row.get("score")))
    for doc in docs.values():
        doc.mentions.sort(key=lambda m: (m.start, m.end, m.type))
    return list(docs.values())
