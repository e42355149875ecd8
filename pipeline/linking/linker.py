"""Mention text -> MeSH id: exact, then ever looser name variants, then abbreviations defined in
the same abstract, with the article's own MeSH indexing breaking ties and adding candidates.

Rules, in order (the first that links wins):
1. a short form the article defines (Schwartz-Hearst) links through its long form ("abbreviation");
2. the lexicon, level by level (exact, lower case, normalised, compact, word bag);
3. the article's indexing names at the same levels ("article-indexing");
4. composite mentions ("breast and ovarian cancer") link part by part ("D1|D2");
5. fallback: salt words dropped, an adjective's noun (score lowered).
Among a level's candidates of the mention's type, an id the article is indexed with wins, then
the highest weight (how often a source names it). Indexing never filters: it is topical.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.linking.abbreviations import find_abbreviations
from pipeline.linking.lexicon import Lexicon, lexicon_type
from pipeline.linking.normalize import LEVELS, keys

LEVEL_SCORE = {0: 1.0, 1: 0.95, 2: 0.9, 3: 0.85, 4: 0.7}
_SALTS = frozenset({"hydrochloride", "hcl", "dihydrochloride", "hydrobromide", "maleate", "mesylate",
                    "citrate", "tartrate", "fumarate", "succinate", "besylate", "monohydrate"})
_DERIVED = (("etic", "esia"), ("otic", "osis"), ("tic", "sis"), ("ic", "ia"), ("ic", "y"), ("al", ""),
            ("ful", ""), ("eurs", "e"), ("ous", "e"))
_COMPOSITE = re.compile(r"^(.*?)\s*(?:,\s*)?\b(?:and|or|and/or)\b\s+(.*)$|^(.*?)\s*/\s*(.*)$")


@dataclass(frozen=True)
class Link:
    """A linked mention: concept id, how it was linked, and a score in (0, 1]."""

    id: str
    source: str
    score: float


@dataclass(frozen=True)
class ArticleContext:
    """What one article tells the linker: its abbreviations and its MeSH indexing (UI -> name)."""

    abbreviations: Mapping[str, str]
    indexing: Mapping[str, tuple[str, str]]  # UI -> (name, type)

    @classmethod
    def of(cls, title: str | None, abstract: str | None, indexing: Mapping[str, tuple[str, str]] | None = None
           ) -> "ArticleContext":
        """The context of an article's text and indexing."""
        text = f"{title or ''} {abstract or ''}"
        return cls(find_abbreviations(text), dict(indexing or {}))


EMPTY = ArticleContext({}, {})


class Linker:
    """Links mention texts of a type with one lexicon (and an article's context)."""

    def __init__(self, lexicon: Lexicon, *, variants: bool = True, abbreviations: bool = True,
                 fallback: bool = True) -> None:
        self.lexicon = lexicon
        self.max_level = max(LEVELS) if variants else 1  # without variants: exact and lower case
        self.abbreviations = abbreviations
        self.fallback = fallback

    def _lexicon_match(self, text: str, wanted: str | None, context: ArticleContext) -> Link | None:
        for level, key in keys(text).items():
            if level > self.max_level:
                break
            found = []
            for concept, source, weight in self.lexicon.candidates(level, key):
                ctype = self.lexicon.concept_type(concept)
                if wanted is None or ctype == wanted:
                    found.append((concept, source, weight, 0))
                elif ctype == "":  # type unknown (a MeshHeading name): accepted, ranked after typed ones
                    found.append((concept, source, weight, 1))
            if not found:
                continue
            ids = {c: self.lexicon.concept_id(c) for c, *_ in found}
            best = min(found, key=lambda f: (ids[f[0]] not in context.indexing, f[3], -f[2]))
            distinct = len(set(ids.values()))
            score = LEVEL_SCORE[level] * (1.0 if distinct == 1 or ids[best[0]] in context.indexing
                                          else 0.8)
            return Link(ids[best[0]], best[1], round(score, 3))
        return None

    def _indexing_match(self, text: str, wanted: str | None, context: ArticleContext) -> Link | None:
        if not context.indexing:
            return None
        mine = keys(text)
        for level in LEVELS:
            if level not in mine or level > self.max_level:
                continue
            for ui, (name, ctype) in context.indexing.items():
                if (wanted is None or ctype in (wanted, "")) and keys(name).get(level) == mine[level]:
                    return Link(ui, "article-indexing", round(LEVEL_SCORE[level] * 0.9, 3))
        return None

    def _single(self, text: str, wanted: str | None, context: ArticleContext) -> Link | None:
        long = context.abbreviations.get(text.strip()) if self.abbreviations else None
        if long:
            found = self._lexicon_match(long, wanted, context) or self._indexing_match(long, wanted, context)
            if found:
                return Link(found.id, "abbreviation", round(found.score * 0.95, 3))
        return self._lexicon_match(text, wanted, context) or self._indexing_match(text, wanted, context)

    def _fallback(self, text: str, wanted: str | None, context: ArticleContext) -> Link | None:
        """Looser guesses: salt words dropped ("bupropion HCl"), an adjective's noun ("dyskinetic")."""
        words = text.split()
        tries = []
        bare = [w for w in words if w.lower() not in _SALTS]
        if bare and len(bare) < len(words):
            tries.append((" ".join(bare), 0.8))
        last = words[-1].lower() if words else ""
        for old, new in _DERIVED:
            if last.endswith(old) and len(last) > len(old) + 3:
                tries.append((" ".join(words[:-1] + [last[: -len(old)] + new]), 0.7))
        for variant, factor in tries:
            found = self._lexicon_match(variant, wanted, context)
            if found:
                return Link(found.id, found.source, round(found.score * factor, 3))
        return None

    def _composite(self, text: str, wanted: str | None, context: ArticleContext) -> Link | None:
        m = _COMPOSITE.match(text)
        if m is None:
            return None
        left, right = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
        if not left or not right:
            return None
        parts = [right]
        head = right.split()[-1] if len(right.split()) > 1 else ""
        parts.insert(0, f"{left} {head}" if head and len(left.split()) == 1 else left)
        links = [self._single(p, wanted, context) for p in parts]
        if any(link is None for link in links) or len({link.id for link in links}) < 2:
            return None
        return Link("|".join(link.id for link in links), links[0].source,
                    round(min(link.score for link in links) * 0.9, 3))

    def link(self, text: str | None, entity_type: str | None,
             context: ArticleContext = EMPTY) -> Link | None:
        """The concept a mention names, or None."""
        if not text or not text.strip():
            return None
        wanted = lexicon_type(entity_type)
        found = self._single(text, wanted, context)
        if found is None and self.max_level > 1:
            found = self._composite(text, wanted, context)
        if found is None and self.fallback:
            found = self._fallback(text, wanted, context)
        return found
