"""BioC XML input for the CDR scorer, read the way the official kit's `loadBioC` reads it.

Per document (`<id>`): passage annotations give mentions (`type` infon, first `<location>`;
`CompositeRole` "IndividualMention" parts are skipped for mention scoring, and a mention with
more than one location is an error) and ids (`MESH`, else `OMIM` infon, split on "|");
document-level annotations and relations with a `relation` infon give relations
(`Chemical`, `Disease` infons). Keys are those of `pipeline.evaluate.cdr`.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lxml import etree

from pipeline.evaluate.cdr import KINDS, Items, concept_key


def _infons(node: etree._Element) -> dict[str, str]:
    return {i.get("key"): (i.text or "") for i in node.findall("infon")}


def _passage_items(doc_id: str, passage: etree._Element, kind: str, wanted: set[str],
                   out: Items, where: str) -> None:
    for ann in passage.findall("annotation"):
        info = _infons(ann)
        kind_of, locations = info.get("type"), ann.findall("location")
        if kind_of not in wanted or not locations:
            continue
        text = ann.findtext("text") or ""
        if kind == "mention":
            role = info.get("CompositeRole")
            if role is not None and role != "CompositeMention":
                continue  # an IndividualMention part of a composite
            if len(locations) > 1:
                raise ValueError(f"{where}: document {doc_id}: annotation {ann.get('id')} has "
                                 f"{len(locations)} locations; only IndividualMentions may")
            try:
                start = int(locations[0].get("offset"))
                end = start + int(locations[0].get("length"))
            except (TypeError, ValueError):
                raise ValueError(f"{where}: document {doc_id}: annotation {ann.get('id')} needs "
                                 f"integer location offset and length") from None
            out.setdefault((doc_id, start, end, kind_of), text)
        else:
            ids = info.get("MESH", info.get("OMIM"))
            for part in (ids or "").strip().split("|") if ids is not None else ():
                key = concept_key(part)
                if key is not None:
                    out.setdefault((doc_id, kind_of, key), text)


def _relation_items(doc_id: str, doc: etree._Element, wanted: set[str], out: Items) -> None:
    for node in [*doc.findall("annotation"), *doc.findall("relation")]:
        info = _infons(node)
        rel = info.get("relation")
        if rel in wanted:
            key = (doc_id, rel, concept_key(info.get("Chemical")), concept_key(info.get("Disease")))
            out.setdefault(key, "")


def read_bioc_items(path: str | Path, kind: str, types: Iterable[str]) -> Items:
    """The kit's keys of one kind ("relation" | "mention" | "id") in a BioC file."""
    if kind not in KINDS:
        raise ValueError(f"unknown CDR evaluation {kind!r}; expected one of {list(KINDS)}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BioC file not found: {path}")
    wanted, out = set(types), {}
    try:
        for _, doc in etree.iterparse(str(path), tag="document", load_dtd=False, no_network=True,
                                      resolve_entities=False, huge_tree=True):
            doc_id = (doc.findtext("id") or "").strip()
            if kind == "relation":
                _relation_items(doc_id, doc, wanted, out)
            else:
                for passage in doc.findall("passage"):
                    _passage_items(doc_id, passage, kind, wanted, out, str(path))
            doc.clear()
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"{path}: not BioC XML ({exc})") from None
    return out


def bioc_types(path: str | Path) -> set[str]:
    """Annotation `type` infons found in a BioC file's passages."""
    found: set[str] = set()
    for _, ann in etree.iterparse(str(path), tag="annotation", load_dtd=False, no_network=True,
                                  resolve_entities=False, huge_tree=True):
        t = _infons(ann).get("type")
        if t:
            found.add(t)
        ann.clear()
    return found
