"""Linking inside the CPU postprocess stage: entity rows and both ends of relation rows.

A row keeps an id it already has (`--entities`, source "entities"); otherwise the linker fills
`*_id`, `*_id_source` and `*_id_score`; unlinked stays null. The lexicon is memory-mapped once
per actor (`load_row_linker` caches it per process).
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.linking.lexicon import Lexicon
from pipeline.linking.linker import ArticleContext, Linker
from pipeline.linking.sources import indexing_names

log = logging.getLogger(__name__)


def article_context(article: Mapping[str, Any]) -> ArticleContext:
    """An article's abbreviations and MeSH indexing (mesh_headings, chemicals columns when present)."""
    indexing = {ui: (name, type_) for name, ui, type_ in
                indexing_names(article.get("mesh_headings"), article.get("chemicals"))}
    return ArticleContext.of(article.get("title"), article.get("abstract"), indexing)


def _fill(row: dict, prefix: str, text: str | None, entity_type: str | None, linker: Linker,
          context: ArticleContext) -> None:
    id_key, source_key, score_key = f"{prefix}id", f"{prefix}id_source", f"{prefix}id_score"
    if row.get(id_key) not in (None, "", "-1"):
        row.setdefault(source_key, "entities")
        row.setdefault(score_key, 1.0)
        return
    link = linker.link(text, entity_type, context)
    row[id_key] = link.id if link else None
    row[source_key] = link.source if link else None
    row[score_key] = link.score if link else None


def link_article_rows(linker: Linker, article: Mapping[str, Any], relations: Sequence[dict],
                      entities: Sequence[dict]) -> None:
    """Fill the id columns of one article's relation and entity rows in place."""
    if not relations and not entities:
        return
    context = article_context(article)
    for row in entities:
        _fill(row, "", row.get("text"), row.get("type"), linker, context)
    for row in relations:
        _fill(row, "head_", row.get("head_text"), row.get("head_type"), linker, context)
        _fill(row, "tail_", row.get("tail_text"), row.get("tail_type"), linker, context)


@functools.lru_cache(maxsize=4)
def load_linker(folder: str) -> Linker:
    """The linker of a lexicon folder, memory-mapped once per process."""
    lexicon = Lexicon(folder)
    log.info("lexicon %s: %d concepts", folder, len(lexicon))
    return Linker(lexicon)


def check_lexicon(folder: str) -> list[str]:
    """Preflight: the lexicon folder opens (problems as lines, empty when fine)."""
    try:
        Lexicon(folder)
    except (OSError, ValueError, KeyError) as exc:
        return [f"{folder}: --lexicon: {exc}"]
    return []
