"""Links between mined rows: mention ids of entity rows, relation -> mentions, evidence sentences.

A mention id is `PMID:section:start-end` (section offsets), so it is stable across runs and can
be rebuilt from any entity row. A relation's `head_mentions`/`tail_mentions` are the ids of the
entity rows of the same article that overlap the relation's evidence spans. Its `evidence` is
the sentence(s) holding both a head and a tail span; when no sentence holds both, the first
sentence of each side (at most MAX_EVIDENCE sentences either way).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

MAX_EVIDENCE = 3
# a sentence ends at . ! ? followed by space and a capital, digit or bracket, or at a line break
_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])|\n+")


def mention_id(pmid: Any, section: str, start: int, end: int) -> str:
    """The id of a mention: "PMID:section:start-end"."""
    return f"{pmid}:{section}:{start}-{end}"


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of the sentences of a text (whitespace trimmed)."""
    spans, start = [], 0
    for m in _BOUNDARY.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def _sentence_of(sentences: Sequence[tuple[int, int]], start: int) -> int | None:
    for i, (s, e) in enumerate(sentences):
        if s <= start < e:
            return i
    return None


def evidence_sentences(article: Mapping[str, Any], head_spans: Sequence[Mapping[str, Any]],
                       tail_spans: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Evidence rows {section, start, end, text} for one relation's spans."""
    texts = {"title": article.get("title") or "", "abstract": article.get("abstract") or ""}
    sentences = {name: sentence_spans(text) for name, text in texts.items()}

    def located(spans: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
        out = []
        for span in spans or ():
            section = span["section"]
            i = _sentence_of(sentences.get(section, []), int(span["start"]))
            if i is not None and (section, i) not in out:
                out.append((section, i))
        return out

    heads, tails = located(head_spans), located(tail_spans)
    both = [key for key in heads if key in tails]
    chosen = both or list(dict.fromkeys(heads[:1] + tails[:1]))
    rows = []
    for section, i in chosen[:MAX_EVIDENCE]:
        s, e = sentences[section][i]
        rows.append({"section": section, "start": s, "end": e, "text": texts[section][s:e]})
    return rows


def _overlapping(spans: Sequence[Mapping[str, Any]], entities: Sequence[Mapping[str, Any]]) -> list[str]:
    ids = []
    for span in spans or ():
        for ent in entities:
            if (ent["section"] == span["section"] and ent["start"] < span["end"]
                    and span["start"] < ent["end"] and ent["mention_id"] not in ids):
                ids.append(ent["mention_id"])
    return ids


def link_rows(article: Mapping[str, Any], relations: list[dict[str, Any]],
              entities: list[dict[str, Any]]) -> None:
    """Fill `mention_id` of entity rows and the link/evidence columns of relation rows (in place)."""
    for ent in entities:
        ent["mention_id"] = mention_id(ent["pmid"], ent["section"], ent["start"], ent["end"])
    for rel in relations:
        rel["head_mentions"] = _overlapping(rel.get("head_spans"), entities)
        rel["tail_mentions"] = _overlapping(rel.get("tail_spans"), entities)
        rel["evidence"] = evidence_sentences(article, rel.get("head_spans") or [],
                                             rel.get("tail_spans") or [])
