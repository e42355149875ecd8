"""BioC export (XML or JSON) through the `bioc` package, one document per article, streaming.

Layout as in the BioCreative V CDR BioC files: passage "title" at offset 0, passage "abstract" at
offset len(title) + 1 (PubTator's document offsets), annotations in the passage that holds them
with document offsets; relations at document level with infons `relation`, `<head type>`: head
id, `<tail type>`: tail id, and nodes pointing at the mention annotations (role head/tail).
Annotation ids are the entity rows' `mention_id`s.
"""
from __future__ import annotations

import json
from typing import Any

import bioc
from bioc import biocjson, biocxml

from pipeline.curation.files import open_target
from pipeline.storage import Location
from pipeline.curation.source import Chunk, Selection, iter_chunks
from pipeline.tasks.evidence import mention_id

SOURCE = "biomine"


def _passages(article: dict[str, Any]) -> dict[str, bioc.BioCPassage]:
    title, abstract = article.get("title") or "", article.get("abstract") or ""
    out = {}
    for section, offset, text in (("title", 0, title), ("abstract", len(title) + 1, abstract)):
        passage = bioc.BioCPassage()
        passage.offset, passage.text = offset, text
        passage.infons["type"] = section
        out[section] = passage
    return out


def _annotation(ident: str, passage: bioc.BioCPassage, start: int, end: int, kind: str,
                concept: str | None, score: float | None) -> bioc.BioCAnnotation:
    ann = bioc.BioCAnnotation()
    ann.id = ident
    ann.text = passage.text[start:end]
    ann.infons["type"] = kind
    ann.infons["identifier"] = concept or "-1"
    if score is not None:
        ann.infons["score"] = f"{score:.6g}"
    ann.add_location(bioc.BioCLocation(passage.offset + start, end - start))
    return ann


def _infons(article: dict[str, Any]) -> dict[str, str]:
    mesh = "|".join(m["name"] or "" for m in article.get("mesh_headings") or ())
    values = {"version": article.get("version"), "journal": article.get("journal"),
              "year": article.get("year"), "doi": article.get("doi"), "pmc_id": article.get("pmc_id"),
              "publication_types": "|".join(article.get("publication_types") or ()),
              "mesh_headings": mesh, "re_skipped": article.get("re_skipped")}
    return {k: str(v) for k, v in values.items() if v not in (None, "")}


def article_document(chunk: Chunk, article: dict[str, Any], sel: Selection) -> bioc.BioCDocument:
    """The BioC document of one article with its selected entity and relation rows."""
    doc = bioc.BioCDocument()
    doc.id = str(article["pmid"])
    doc.infons.update(_infons(article))
    passages = _passages(article)
    known: set[str] = set()
    for ent in chunk.rows("entities", article["pmid"]):
        ident = ent.get("mention_id") or mention_id(ent["pmid"], ent["section"], ent["start"], ent["end"])
        passages[ent["section"]].add_annotation(_annotation(
            ident, passages[ent["section"]], ent["start"], ent["end"], ent["type"], None, ent.get("score")))
        known.add(ident)
    for i, rel in enumerate(chunk.rows("relations", article["pmid"])):
        relation = bioc.BioCRelation()
        relation.id = f"R{i}"
        relation.infons.update({"relation": rel["relation"], "task": rel["task"],
                                rel["head_type"]: rel.get("head_id") or "-1",
                                rel["tail_type"]: rel.get("tail_id") or "-1",
                                "head_text": rel["head_text"], "tail_text": rel["tail_text"]})
        evidence = rel.get("evidence") or []
        if evidence:
            relation.infons["evidence"] = " | ".join(e["text"] for e in evidence)
        for role in ("head", "tail"):
            refs = list(rel.get(f"{role}_mentions") or ())
            if not sel.with_entities:  # mentions are the relation's own evidence spans
                refs = []
                for span in rel.get(f"{role}_spans") or ():
                    ident = mention_id(rel["pmid"], span["section"], span["start"], span["end"])
                    if ident not in known:
                        passages[span["section"]].add_annotation(_annotation(
                            ident, passages[span["section"]], span["start"], span["end"],
                            rel[f"{role}_type"], rel.get(f"{role}_id"), None))
                        known.add(ident)
                    refs.append(ident)
            for ref in refs:
                relation.add_node(bioc.BioCNode(ref, role))
        doc.add_relation(relation)
    for passage in passages.values():
        passage.annotations.sort(key=lambda a: (a.total_span.offset, a.total_span.end))
        doc.add_passage(passage)
    return doc


def _count(counts: dict[str, int], doc: bioc.BioCDocument) -> None:
    counts["documents"] += 1
    counts["mentions"] += sum(len(p.annotations) for p in doc.passages)
    counts["relations"] += len(doc.relations)


def write_bioc(output: str | Location, target: str, sel: Selection, counts: dict[str, int], xml: bool) -> None:
    """Write every article of the output folder as one BioC collection (XML or JSON)."""
    collection = bioc.BioCCollection()
    collection.source, collection.key = SOURCE, f"{SOURCE}.key"
    if xml:
        with open_target(target, binary=True) as out:
            writer = biocxml.BioCXMLDocumentWriter(out)
            writer.write_collection_info(collection)
            for chunk in iter_chunks(output, sel):
                for article in chunk.articles:
                    doc = article_document(chunk, article, sel)
                    writer.write_document(doc)
                    _count(counts, doc)
            writer.close()
        return
    with open_target(target) as out:  # a BioC JSON collection, documents written one by one
        head = biocjson.toJSON(collection)
        head.pop("documents", None)
        out.write(json.dumps(head)[:-1] + ', "documents": [\n')
        first = True
        for chunk in iter_chunks(output, sel):
            for article in chunk.articles:
                doc = article_document(chunk, article, sel)
                out.write(("" if first else ",\n") + json.dumps(biocjson.toJSON(doc), ensure_ascii=False))
                first = False
                _count(counts, doc)
        out.write("\n]}\n")
