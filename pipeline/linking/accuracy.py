"""Mention-level linking accuracy on gold PubTator documents (composite and -1 gold ids left out)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from pipeline.linking.linker import ArticleContext, Linker
from pipeline.tasks.pubtator import Document


def mention_accuracy(linker: Linker, docs: Iterable[Document]) -> dict[str, Any]:
    """Per type: mentions, correct, accuracy, linked share, and correct links per source."""
    total, correct, linked = Counter(), Counter(), Counter()
    by_source: Counter = Counter()
    for doc in docs:
        context = ArticleContext.of(doc.title, doc.abstract)
        for m in doc.mentions:
            gold = m.concept_id.strip()
            if gold in ("", "-1") or "|" in gold:
                continue
            total[m.type] += 1
            link = linker.link(m.text, m.type, context)
            if link is not None:
                linked[m.type] += 1
                if link.id == gold:
                    correct[m.type] += 1
                    by_source[f"{m.type}:{link.source}"] += 1
    return {t: {"mentions": total[t], "correct": correct[t],
                "accuracy": round(correct[t] / total[t], 4) if total[t] else None,
                "linked": round(linked[t] / total[t], 4) if total[t] else None,
                "correct_by_source": {k.split(":", 1)[1]: v for k, v in sorted(by_source.items())
                                      if k.startswith(f"{t}:")}}
            for t in sorted(total)}
