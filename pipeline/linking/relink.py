"""`biomine link`: rewrite the concept id of every mention of a PubTator or BioC file.

Each document's abbreviations come from its own text. Unlinked mentions get "-1". Relation
lines and everything else are kept as they are.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from lxml import etree

from pipeline.evaluate.cdr_files import file_format
from pipeline.linking.linker import ArticleContext, Linker


def _count(stats: Counter, type_: str, linked: bool) -> None:
    stats[f"{type_}:mentions"] += 1
    stats[f"{type_}:linked"] += linked


def link_pubtator(linker: Linker, source: str | Path, target: str | Path) -> Counter:
    """Relink a PubTator file into `target`; returns mention and linked counts per type."""
    from pipeline.tasks.pubtator import read_pubtator, write_pubtator

    docs, stats = read_pubtator(source), Counter()
    for doc in docs:
        context = ArticleContext.of(doc.title, doc.abstract)
        mentions = []
        for m in doc.mentions:
            link = linker.link(m.text, m.type, context)
            _count(stats, m.type, link is not None)
            mentions.append(replace(m, concept_id=link.id if link else "-1", score=None))
        doc.mentions = mentions
    write_pubtator(target, docs)
    return stats


def _set_infon(ann: Any, key: str, value: str) -> None:
    node = next((i for i in ann.findall("infon") if i.get("key") == key), None)
    if node is None:
        node = etree.SubElement(ann, "infon", key=key)
        ann.insert(0, node)
    node.text = value


def link_bioc(linker: Linker, source: str | Path, target: str | Path) -> Counter:
    """Relink a BioC XML file (the `MESH` infon of each annotation) into `target`."""
    if not Path(source).is_file():
        raise FileNotFoundError(f"BioC file not found: {source}")
    tree = etree.parse(str(source), etree.XMLParser(resolve_entities=False, no_network=True))
    stats: Counter = Counter()
    for doc in tree.iterfind(".//document"):
        passages = doc.findall("passage")
        texts = [p.findtext("text") or "" for p in passages]
        context = ArticleContext.of(texts[0] if texts else "", " ".join(texts[1:]))
        for ann in doc.iterfind("passage/annotation"):
            infons = {i.get("key"): i.text for i in ann.findall("infon")}
            if infons.get("CompositeRole") == "IndividualMention":
                continue
            link = linker.link(ann.findtext("text"), infons.get("type"), context)
            _count(stats, infons.get("type") or "", link is not None)
            _set_infon(ann, "MESH", link.id if link else "-1")
    tree.write(str(target), xml_declaration=True, encoding="UTF-8")
    return stats


def link_file(linker: Linker, source: str | Path, target: str | Path, fmt: str = "auto") -> dict:
    """Relink one file (format from the name unless given); returns per-type linked shares."""
    stats = (link_bioc if file_format(source, fmt) == "BioC" else link_pubtator)(linker, source, target)
    types = sorted({k.split(":")[0] for k in stats})
    return {t: {"mentions": stats[f"{t}:mentions"], "linked": stats[f"{t}:linked"],
                "linked_share": round(stats[f"{t}:linked"] / stats[f"{t}:mentions"], 4)}
            for t in types if stats[f"{t}:mentions"]}
