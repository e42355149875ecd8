"""`biomine export`: a run's output as PubTator, BioC (XML/JSON), JSON lines or TSV, streaming.

Articles are read chunk by chunk (`source.iter_chunks`) and written as they come; a target ending
in `.gz` is gzip-compressed. Mentions are the `entities/` rows when task `ner` is exported,
otherwise the relations' evidence spans; relation lines come from `relations/`.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pipeline.curation.files import is_folder_target, open_target
from pipeline.curation.source import Chunk, Selection, iter_chunks, open_folder
from pipeline.storage import Location
from pipeline.tasks.pubtator import (Document, entity_rows_to_documents, format_document,
                                     relation_rows_to_documents)

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("pubtator", "bioc-json", "bioc-xml", "jsonl", "tsv")
TSV_TABLES: tuple[str, ...] = ("articles", "relations", "entities")


def chunk_documents(chunk: Chunk, sel: Selection) -> list[Document]:
    """PubTator documents of a chunk (every article, even one without annotations)."""
    articles = chunk.articles
    entity_rows = [r for a in articles for r in chunk.rows("entities", a["pmid"])]
    relation_rows = [r for a in articles for r in chunk.rows("relations", a["pmid"])]
    docs = {d.pmid: d for d in entity_rows_to_documents(entity_rows, articles)}
    for rel_doc in relation_rows_to_documents(relation_rows, articles):
        doc = docs[rel_doc.pmid]
        doc.relations = rel_doc.relations
        if not sel.with_entities:
            doc.mentions = rel_doc.mentions
    return [docs[str(a["pmid"])] for a in articles]


def _write_pubtator(output: Location, target: str, sel: Selection, counts: dict[str, int]) -> None:
    with open_target(target) as out:
        for chunk in iter_chunks(output, sel):
            for doc in chunk_documents(chunk, sel):
                out.write(format_document(doc))
                _count(counts, 1, len(doc.mentions), len(doc.relations))


def article_record(chunk: Chunk, article: dict[str, Any]) -> dict[str, Any]:
    """One article with its selected rows, as the JSON-lines export writes it."""
    pmid = article["pmid"]
    return {**article, "entities": chunk.rows("entities", pmid),
            "relations": chunk.rows("relations", pmid)}


def _write_jsonl(output: Location, target: str, sel: Selection, counts: dict[str, int]) -> None:
    with open_target(target) as out:
        for chunk in iter_chunks(output, sel):
            for article in chunk.articles:
                record = article_record(chunk, article)
                out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
                _count(counts, 1, len(record["entities"]), len(record["relations"]))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _spans(spans: list[dict] | None) -> str:
    return ";".join(f"{s['section']}:{s['start']}-{s['end']}" for s in spans or ())


def tsv_row(table: str, row: dict[str, Any], article: dict[str, Any]) -> dict[str, str]:
    """A flat TSV row of one table (lists joined with ';' or '|')."""
    if table == "articles":
        flat = {k: row.get(k) for k in ("pmid", "version", "title", "journal", "year", "doi",
                                        "pmc_id", "n_entities", "n_relations", "re_skipped")}
        flat["publication_types"] = "|".join(row.get("publication_types") or ())
        flat["mesh_headings"] = "|".join(m["name"] or "" for m in row.get("mesh_headings") or ())
        flat["abstract"] = row.get("abstract")
    elif table == "entities":
        flat = {k: row.get(k) for k in ("pmid", "mention_id", "section", "start", "end", "text",
                                        "type", "score", "model_id")}
    else:
        evidence = row.get("evidence") or []
        flat = {k: row.get(k) for k in ("pmid", "task", "relation", "head_text", "head_id", "head_type",
                                        "tail_text", "tail_id", "tail_type")}
        flat.update({"head_spans": _spans(row.get("head_spans")), "tail_spans": _spans(row.get("tail_spans")),
                     "head_mentions": "|".join(row.get("head_mentions") or ()),
                     "tail_mentions": "|".join(row.get("tail_mentions") or ()),
                     "evidence": " | ".join(e["text"] for e in evidence),
                     "evidence_spans": _spans(evidence), "year": article.get("year"),
                     "title": article.get("title"), "model_id": row.get("model_id")})
    return {k: _cell(v) for k, v in flat.items()}


def _write_tsv(output: Location, target: str, sel: Selection, counts: dict[str, int],
               tables: tuple[str, ...]) -> None:
    """One TSV file per table in `tables`: target itself (one table) or target/TABLE.tsv."""
    paths = {tables[0]: target} if len(tables) == 1 else {t: f"{target.rstrip('/')}/{t}.tsv" for t in tables}
    with ExitStack() as stack:
        files = {t: stack.enter_context(open_target(p)) for t, p in paths.items()}
        for table, out in files.items():  # the header, also for a table without rows
            out.write("\t".join(tsv_row(table, {}, {})) + "\n")
        for chunk in iter_chunks(output, sel):
            for article in chunk.articles:
                _count(counts, 1, len(chunk.rows("entities", article["pmid"])),
                       len(chunk.rows("relations", article["pmid"])))
                for table in tables:
                    rows = [article] if table == "articles" else chunk.rows(table, article["pmid"])
                    for row in rows:
                        cells = tsv_row(table, row, article).values()  # no tab/newline inside
                        files[table].write("\t".join(cells) + "\n")


def _count(counts: dict[str, int], docs: int, mentions: int, relations: int) -> None:
    counts["documents"] += docs
    counts["mentions"] += mentions
    counts["relations"] += relations


def export(output: str | Path | Location, fmt: str, target: str | Path, sel: Selection = Selection(),
           tsv_table: str | None = None) -> dict[str, int]:
    """Write the output folder's articles and rows to `target` in `fmt`; returns counts.

    For tsv, a target that is a folder (existing, or ending in "/") receives articles.tsv,
    relations.tsv and entities.tsv; a file target receives one table (`tsv_table`, default
    relations, or entities when only task ner is exported).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {list(FORMATS)}")
    output = open_folder(output)  # local folder or s3://, gs://: read through one Location
    counts = {"documents": 0, "mentions": 0, "relations": 0}
    target = str(target)
    writers: dict[str, Callable[..., None]] = {"pubtator": _write_pubtator, "jsonl": _write_jsonl}
    if fmt in writers:
        writers[fmt](output, target, sel, counts)
    elif fmt.startswith("bioc-"):
        from pipeline.curation.bioc_export import write_bioc

        write_bioc(output, target, sel, counts, xml=fmt == "bioc-xml")
    else:
        if is_folder_target(target):
            tables = TSV_TABLES
        else:
            default = "entities" if sel.tasks == ("ner",) else "relations"
            tables = (tsv_table or default,)
            if tables[0] not in TSV_TABLES:
                raise ValueError(f"unknown TSV table {tables[0]!r}; expected one of {list(TSV_TABLES)}")
        _write_tsv(output, target, sel, counts, tables)
    log.info("exported %s to %s: %s", output.url(), target, counts)
    return counts
