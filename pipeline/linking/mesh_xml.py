"""NLM MeSH XML (desc*.xml / supp*.xml, gzipped or not) -> lexicon entries, streamed.

Descriptors: tree D -> Chemical, trees C and F03 -> Disease, others skipped. Supplementary
concept records: SCRClass 1 -> Chemical, 3 -> Disease, others skipped; their
HeadingMappedTo descriptor UIs (leading `*` stripped) are kept as `mapped_to`. Every
Term/String of a record is a synonym; the record's preferred term weighs 1, entry terms 0.5.
Only the record's own UI (the direct child) is read: UIs nested in SeeRelatedList,
PharmacologicalActionList and the like belong to other records.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from pipeline.linking.lexicon import CHEMICAL, DISEASE, Entry
from pipeline.pubmed.xml import open_xml

log = logging.getLogger(__name__)

RECORDS = ("DescriptorRecord", "SupplementalRecord")
SCR_TYPES = {"1": CHEMICAL, "3": DISEASE}


def descriptor_type(tree_numbers: list[str]) -> str | None:
    """Chemical (D tree), Disease (C or F03 trees) or None."""
    if any(t.startswith("C") or t.startswith("F03") for t in tree_numbers):
        return DISEASE
    if any(t.startswith("D") for t in tree_numbers):
        return CHEMICAL
    return None


def _text(el: etree._Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _terms(record: etree._Element) -> Iterator[tuple[str, bool]]:
    """(term string, is the record's preferred term) for every Term of every Concept."""
    for term in record.iterfind("ConceptList/Concept/TermList/Term"):
        text = _text(term.find("String"))
        if text:
            yield text, term.get("RecordPreferredTermYN") == "Y"


def record_entries(record: etree._Element, where: str) -> list[Entry]:
    """The entries of one DescriptorRecord or SupplementalRecord element."""
    if record.tag == "DescriptorRecord":
        ui = _text(record.find("DescriptorUI"))
        name = _text(record.find("DescriptorName/String"))
        type_ = descriptor_type([_text(t) for t in record.iterfind("TreeNumberList/TreeNumber")])
        mapped = None
    else:
        ui = _text(record.find("SupplementalRecordUI"))
        name = _text(record.find("SupplementalRecordName/String"))
        type_ = SCR_TYPES.get(record.get("SCRClass", ""))
        heads = [_text(d).lstrip("*") for d in
                 record.iterfind("HeadingMappedToList/HeadingMappedTo/DescriptorReferredTo/DescriptorUI")]
        mapped = "|".join(h for h in heads if h) or None
    if not ui:
        raise ValueError(f"{where}: <{record.tag}> without its UI")
    if type_ is None:
        return []
    out = [Entry(name, ui, type_, "mesh", 1.0, mapped)] if name else []
    for text, preferred in _terms(record):
        if not (preferred and text == name):
            out.append(Entry(text, ui, type_, "mesh", 1.0 if preferred else 0.5, mapped))
    return out


def read_mesh_xml(path: str | Path) -> Iterator[Entry]:
    """Stream a desc/supp XML file's entries (iterparse; each record cleared after use)."""
    path = str(path)
    if not Path(path).is_file() and "://" not in path:
        raise FileNotFoundError(f"MeSH file not found: {path}")
    kept = skipped = 0
    with open_xml(path) as stream:
        context = etree.iterparse(stream, events=("end",), tag=RECORDS, resolve_entities=False,
                                  load_dtd=False, no_network=True, huge_tree=True)
        try:
            for _, record in context:
                entries = record_entries(record, f"{path}:{record.sourceline}")
                kept, skipped = kept + bool(entries), skipped + (not entries)
                yield from entries
                record.clear()
                while record.getprevious() is not None:
                    del record.getparent()[0]
        except etree.XMLSyntaxError as exc:
            raise ValueError(f"{path}: line {exc.lineno}: not MeSH XML: {exc.msg}") from None
    if kept + skipped == 0:
        raise ValueError(f"{path}: no DescriptorRecord or SupplementalRecord found: "
                         "expected NLM's desc*.xml or supp*.xml")
    log.info("%s: %d records kept (Chemical/Disease), %d of other categories skipped",
             path, kept, skipped)
