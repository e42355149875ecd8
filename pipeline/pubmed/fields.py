"""One pure function per PubMed field: lxml element in, typed value out (None / [] when missing).

Each function takes the element of its field (e.g. `parse_title(ArticleTitle)`,
`parse_authors(AuthorList)`), or None when the record lacks it; fields that repeat as siblings
take their parent (`parse_languages(Article)`). The caller (`pubmed.xml.parse_article`) finds
those elements with one pass over each parent's direct children, which is much cheaper than
`find()`, and never looks below MedlineCitation's own children for the PMID (so PMIDs in
CommentsCorrections/ReferenceList cannot leak in). List-valued fields: `pubmed.lists`.
"""
from __future__ import annotations

import re
from typing import Any

from lxml import etree

Element = etree._Element
MATHML = "{http://www.w3.org/1998/Math/MathML}"
_INLINE = frozenset({"b", "i", "sup", "sub", "u"})
_MATH_SKIP = frozenset({"annotation", "annotation-xml"})
_MONTHS = {m: f"{i:02d}" for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_YEAR = re.compile(r"\b(\d{4})\b")
_ASCII_WS = re.compile(r"[ \t\n\r]+")


# ---- text helpers -------------------------------------------------------------------------

def leaf_text(el: Element | None) -> str | None:
    """Stripped text of an element without markup; None when missing or blank."""
    if el is None:
        return None
    t = el.text
    if t is None:
        return None
    t = t.strip()
    return t or None


def _math_tokens(el: Element, out: list[str]) -> None:
    """Collect the text tokens of a MathML subtree (annotations skipped)."""
    tag = el.tag
    if isinstance(tag, str) and tag.rpartition("}")[2] in _MATH_SKIP:
        return
    if el.text and el.text.strip():
        out.append(el.text.strip())
    for ch in el:
        _math_tokens(ch, out)
        if ch.tail and ch.tail.strip():
            out.append(ch.tail.strip())


def _walk(el: Element, parts: list[str]) -> None:
    """Mixed content to text parts: inline markup kept as text, MathML as spaced tokens."""
    if el.text:
        parts.append(el.text)
    for ch in el:
        tag = ch.tag
        if not isinstance(tag, str):  # comment or processing instruction
            pass
        elif tag.startswith(MATHML) or tag in ("math", "mml:math"):
            tokens: list[str] = []
            _math_tokens(ch, tokens)
            parts.append(" ".join(tokens))
        elif tag in _INLINE:
            _walk(ch, parts)
        else:  # DispFormula and anything unexpected: a separate chunk, never glued to words
            parts.append(" ")
            _walk(ch, parts)
            parts.append(" ")
        if ch.tail:
            parts.append(ch.tail)


def flat_text(el: Element | None) -> str | None:
    """Text of a mixed-content element, markup flattened, runs of ASCII whitespace collapsed to
    one space (decoded Unicode spaces such as U+00A0 are kept); None if blank."""
    if el is None:
        return None
    if len(el) == 0:
        t = el.text
        if not t:
            return None
    else:
        for d in el.iterdescendants():
            if d.tag not in _INLINE:
                parts: list[str] = []
                _walk(el, parts)
                t = "".join(parts)
                break
        else:
            t = "".join(el.itertext())
    t = t.strip(" \t\n\r")
    if "  " in t or "\n" in t or "\t" in t or "\r" in t:  # cheap test; the regex is slower
        t = _ASCII_WS.sub(" ", t)
    return t or None


def parse_date(el: Element | None) -> str | None:
    """A Year/Month/Day element (DateRevised, ArticleDate, ...) -> "YYYY-MM-DD" ("YYYY-MM",
    "YYYY" when less is given); None when there is no Year."""
    if el is None:
        return None
    year = month = day = None
    for ch in el:
        tag = ch.tag
        if tag == "Year":
            year = leaf_text(ch)
        elif tag == "Month":
            month = leaf_text(ch)
        elif tag == "Day":
            day = leaf_text(ch)
    if year is None:
        return None
    if month is None:
        return year
    month = _MONTHS.get(month[:3].lower(), month.zfill(2))
    return f"{year}-{month}-{day.zfill(2)}" if day else f"{year}-{month}"


# ---- identity ----------------------------------------------------------------------------

def parse_pmid(pmid: Element | None) -> int:
    """The record's own PMID element (MedlineCitation/PMID) -> int; ValueError if absent/bad."""
    text = leaf_text(pmid)
    if text is None:
        raise ValueError("the citation has no PMID")
    if not text.isdigit():
        raise ValueError(f"non-numeric PMID {text!r}")
    return int(text)


def parse_version(pmid: Element | None) -> int:
    """PMID Version attribute (DTD-required; a PMID without one counts as version 1)."""
    v = None if pmid is None else pmid.get("Version")
    if v is None or not v.strip():
        return 1
    if not v.strip().isdigit():
        raise ValueError(f"PMID {leaf_text(pmid)} has a non-numeric Version {v!r}")
    return int(v)


def parse_citation_status(citation: Element) -> str | None:
    """MedlineCitation Status attribute (MEDLINE, In-Process, Publisher, ...)."""
    return citation.get("Status")


def parse_date_revised(date_revised: Element | None) -> str | None:
    """DateRevised as ISO date."""
    return parse_date(date_revised)


# ---- titles and abstracts ------------------------------------------------------------------

def parse_title(article_title: Element | None) -> str | None:
    """ArticleTitle, markup flattened."""
    return flat_text(article_title)


def parse_vernacular_title(vernacular_title: Element | None) -> str | None:
    """VernacularTitle (title in the original language)."""
    return flat_text(vernacular_title)


def parse_book_title(book_title: Element | None) -> str | None:
    """Book/BookTitle."""
    return flat_text(book_title)


def parse_abstract_sections(abstract: Element | None) -> list[dict[str, Any]]:
    """AbstractText children of Abstract/OtherAbstract -> [{label, category, text}]."""
    if abstract is None:
        return []
    out = []
    for at in abstract.iterchildren("AbstractText"):
        text = flat_text(at)
        if text is not None:
            out.append({"label": at.get("Label") or None, "category": at.get("NlmCategory"),
                        "text": text})
    return out


def join_sections(sections: list[dict[str, Any]]) -> str | None:
    """Flat abstract text: sections joined by a space, labelled ones as "LABEL: text"."""
    if not sections:
        return None
    return " ".join(f"{s['label']}: {s['text']}" if s["label"] else s["text"] for s in sections)


def parse_abstract(abstract: Element | None) -> str | None:
    """Flat text of an Abstract with section labels inline."""
    return join_sections(parse_abstract_sections(abstract))


def parse_other_abstracts(citation: Element) -> list[dict[str, Any]]:
    """OtherAbstract children of MedlineCitation: [{type, language, text, sections}]."""
    out = []
    for oa in citation.iterchildren("OtherAbstract"):
        sections = parse_abstract_sections(oa)
        if sections:
            out.append({"type": oa.get("Type"), "language": oa.get("Language"),
                        "text": join_sections(sections), "sections": sections})
    return out


# ---- journal / publication -------------------------------------------------------------------

def parse_languages(article: Element) -> list[str]:
    """Language children of Article/BookDocument, in order."""
    return [t for t in (leaf_text(el) for el in article.iterchildren("Language")) if t]


def parse_journal_title(title: Element | None) -> str | None:
    """Journal/Title."""
    return leaf_text(title)


def parse_journal_iso(iso_abbreviation: Element | None) -> str | None:
    """Journal/ISOAbbreviation."""
    return leaf_text(iso_abbreviation)


def parse_issn(issn: Element | None) -> str | None:
    """Journal/ISSN (print or electronic, whichever the record gives)."""
    return leaf_text(issn)


def parse_volume(volume: Element | None) -> str | None:
    """JournalIssue/Volume (or Book/Volume)."""
    return leaf_text(volume)


def parse_issue(issue: Element | None) -> str | None:
    """JournalIssue/Issue."""
    return leaf_text(issue)


def parse_pages(pagination: Element | None) -> str | None:
    """Pagination: MedlinePgn, else "StartPage-EndPage" (or StartPage)."""
    if pagination is None:
        return None
    parts = {ch.tag: leaf_text(ch) for ch in pagination}
    text = parts.get("MedlinePgn")
    if text is None:
        start, end = parts.get("StartPage"), parts.get("EndPage")
        text = f"{start}-{end}" if start and end else start
    return text


def parse_pub_date(pub_date: Element | None) -> str | None:
    """PubDate as written: "Year Month Day" (or Season), or the MedlineDate text."""
    if pub_date is None:
        return None
    return " ".join(t for t in (leaf_text(ch) for ch in pub_date) if t) or None


def parse_pub_year(pub_date: Element | None) -> int | None:
    """PubDate/Year, or the first 4-digit year in MedlineDate."""
    if pub_date is None:
        return None
    for ch in pub_date:
        if ch.tag == "Year":
            year = leaf_text(ch)
            return int(year) if year and year.isdigit() else None
        if ch.tag == "MedlineDate":
            m = _YEAR.search(leaf_text(ch) or "")
            return int(m.group(1)) if m else None
    return None


def parse_article_date(article_date: Element | None) -> str | None:
    """ArticleDate (electronic publication) as ISO date."""
    return parse_date(article_date)


def parse_publication_types(parent: Element | None) -> list[str]:
    """PublicationType children of PublicationTypeList (books: of BookDocument)."""
    if parent is None:
        return []
    return [t for t in (leaf_text(el) for el in parent.iterchildren("PublicationType")) if t]


# ---- identifiers -----------------------------------------------------------------------------

def parse_doi(article: Element, ids: Element | None = None) -> str | None:
    """First ELocationID of type doi in Article (a later non-DOI ELocationID never overrides
    it), else the doi in the ArticleIdList."""
    for el in article.iterchildren("ELocationID"):
        if el.get("EIdType") == "doi" and el.get("ValidYN") != "N":
            doi = leaf_text(el)
            if doi:
                return doi
    return _article_id(ids, "doi")


def parse_pmc_id(ids: Element | None) -> str | None:
    """PMC id ("PMC1234567") from PubmedData/ArticleIdList."""
    return _article_id(ids, "pmc")


def _article_id(ids: Element | None, id_type: str) -> str | None:
    """First ArticleId of the given IdType in an ArticleIdList."""
    if ids is None:
        return None
    for el in ids.iterchildren("ArticleId"):
        if el.get("IdType") == id_type:
            text = leaf_text(el)
            if text:
                return text
    return None
