"""Mention text -> MeSH id: exact, then ever looser name variants, then abbreviations defined in
the same abstract, with the article's own MeSH indexing breaking ties and adding candidates.

Rules, in order (the first that links wins):
1. a short form the article defines (Schwartz-Hearst) links through its long form ("abbreviation");
2. the lexicon, level by level (exact, lower case, normalised, compact, word bag);
3. the article's indexing names at the same levels ("article-indexing");
4. composite mentions ("breast and ovarian cancer") link part by part ("D1|D2");
5. fallback (score lowered): salt words dropped, an adjective's noun, a cause dropped
   ("ribavirin-induced hemolytic anemia"), then a disease's leading modifiers one by one
   ("metastatic breast cancer" -> "breast cancer"; at least two words are kept).
Among a level's candidates of the mention's type, an id the article is indexed with wins, then
the highest weight (how often a source names it). Indexing never filters: it is topical.
Lexicon look-ups do not depend on the article, so they are cached per (text, type).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pipeline.linking.abbreviations import find_abbreviations
from pipeline.linking.lexicon import Lexicon, lexicon_type
from pipeline.linking.normalize import EXACT, LEVELS, LOWER, fold, keys

LEVEL_SCORE = {0: 1.0, 1: 0.95, 2: 0.9, 3: 0.85, 4: 0.7, 5: 0.6}
_SALTS = frozenset({"hydrochloride", "hcl", "dihydrochloride", "hydrobromide", "maleate", "mesylate",
                    "citrate", "tartrate", "fumarate", "succinate", "besylate", "monohydrate"})
_DERIVED = (("etic", "esia"), ("otic", "osis"), ("tic", "sis"), ("ic", "ia"), ("ic", "y"), ("al", ""),
            ("ful", ""), ("eurs", "e"), ("ous", "e"))
_COMPOSITE = re.compile(r"^(.*?)\s*(?:,\s*)?\b(?:and|or|and/or)\b\s+(.*)$|^(.*?)\s*/\s*(.*)$")
_INDUCED = re.compile(r"^\S.*?[- ](?:induced|associated|related|mediated)\s+(\S.*)$", re.I)
_GENERIC_WORDS = frozenset({"disease", "diseases", "disorder", "disorders", "syndrome", "injury",
                            "damage", "toxicity", "dysfunction", "lesion", "lesions", "symptom",
                            "symptoms", "effect", "effects", "failure", "reaction", "reactions",
                            "complication", "complications", "activity", "abnormality", "abnormalities",
                            "impairment", "deficit", "deficits", "change", "changes"})
CACHE_SIZE = 200_000
Candidates = tuple[int, tuple[tuple[str, str, float, int], ...]]  # level, (id, source, weight, rank)


@dataclass(frozen=True)
class Link:
    """A linked mention: concept id, how it was linked, and a score in (0, 1]."""

    id: str
    source: str
    score: float


class ArticleContext:
    """What one article tells the linker: its abbreviations and its MeSH indexing (UI -> (name, type)),
    both worked out only when a mention needs them."""

    def __init__(self, text: str = "", indexing: Mapping[str, tuple[str, str]] | None = None) -> None:
        self.text = text
        self.indexing = dict(indexing or {})
        self._indexing_keys: dict[tuple[int, str], list[tuple[str, str]]] | None = None

    @classmethod
    def of(cls, title: str | None, abstract: str | None,
           indexing: Mapping[str, tuple[str, str]] | None = None) -> "ArticleContext":
        """The context of an article's text and indexing."""
        return cls(f"{title or ''} {abstract or ''}", indexing)

    def may_define(self, short: str) -> bool:
        """Whether the text could define `short` ("(SHORT" or "SHORT (" occurs): a cheap filter."""
        return f"({short}" in self.text or f"{short} (" in self.text

    @cached_property
    def abbreviations(self) -> dict[str, str]:
        """Short form -> long form defined in the text."""
        return find_abbreviations(self.text)

    def indexing_keys(self, keys_of: Callable[[str], Mapping[int, str]] = keys
                      ) -> dict[tuple[int, str], list[tuple[str, str]]]:
        """(level, key) -> [(UI, type)] of the indexing names (worked out once per article)."""
        if self._indexing_keys is None:
            out: dict[tuple[int, str], list[tuple[str, str]]] = {}
            for ui, (name, type_) in self.indexing.items():
                for level, key in keys_of(name).items():
                    out.setdefault((level, key), []).append((ui, type_))
            self._indexing_keys = out
        return self._indexing_keys


def _short_form_shaped(text: str) -> bool:
    return 2 <= len(text) <= 10 and text.count(" ") <= 1


class Linker:
    """Links mention texts of a type with one lexicon (and an article's context)."""

    def __init__(self, lexicon: Lexicon, *, variants: bool = True, abbreviations: bool = True,
                 fallback: bool = True) -> None:
        self.lexicon = lexicon
        self.max_level = max(LEVELS) if variants else 1  # without variants: exact and lower case
        self.abbreviations = abbreviations
        self.fallback = fallback
        self._cache: dict[tuple, Any] = {}
        self._key_cache: dict[str, dict[int, str]] = {}

    def _keys(self, text: str) -> dict[int, str]:
        """`normalize.keys` of a text, cached (indexing names repeat across articles: "Humans")."""
        found = self._key_cache.get(text)
        if found is None:
            if len(self._key_cache) >= CACHE_SIZE:
                self._key_cache.clear()
            found = self._key_cache[text] = keys(text)
        return found

    def _lookup(self, text: str, wanted: str | None) -> Candidates | None:
        """The first level whose key names concepts of the type (or of unknown type)."""
        cache_key = (text, wanted)
        if cache_key in self._cache:
            return self._cache[cache_key]
        found: Candidates | None = None
        level_keys: dict[int, str] = {EXACT: text, LOWER: fold(text)}  # most names hit here
        looser = self.max_level > LOWER  # the looser keys are worked out only after a miss
        while found is None:
            result = self.lexicon.lookup(level_keys, self.max_level) if level_keys else None
            if result is None:
                if not looser:
                    break
                looser = False
                level_keys = {lv: k for lv, k in self._keys(text).items() if lv > LOWER}
                continue
            level, rows = result
            hits = []
            for concept, source, weight in rows:
                ctype = self.lexicon.concept_type(concept)
                if wanted is None or ctype == wanted or ctype == "":  # "": a MeshHeading name
                    hits.append((self.lexicon.concept_id(concept), source, weight,
                                 0 if wanted is None or ctype == wanted else 1))
            if hits:
                found = (level, tuple(hits))
            level_keys = {lv: k for lv, k in level_keys.items() if lv > level}  # other types only: go on
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[cache_key] = found
        return found

    def _lexicon_match(self, text: str, wanted: str | None, context: ArticleContext) -> Link | None:
        return self._choose(self._lookup(text, wanted), context)

    @staticmethod
    def _choose(found: Candidates | None, context: ArticleContext) -> Link | None:
        """The best of one level's candidates for this article."""
        if found is None:
            return None
        level, hits = found
        indexed = context.indexing
        best = min(hits, key=lambda h: (h[0] not in indexed, h[3], -h[2]))
        ambiguous = len({h[0] for h in hits}) > 1 and best[0] not in indexed
        return Link(best[0], best[1], round(LEVEL_SCORE[level] * (0.8 if ambiguous else 1.0), 3))

    def _indexing_match(self, text: str, wanted: str | None, context: ArticleContext) -> Link | None:
        if not context.indexing:
            return None
        index = context.indexing_keys(self._keys)
        for level, key in self._keys(text).items():
            if level > self.max_level:
                break
            for ui, ctype in index.get((level, key), ()):
                if wanted is None or ctype in (wanted, ""):
                    return Link(ui, "article-indexing", round(LEVEL_SCORE[level] * 0.9, 3))
        return None

    def _single(self, text: str, wanted: str | None, context: ArticleContext) -> Link | None:
        text = text.strip()
        if self.abbreviations and _short_form_shaped(text) and context.may_define(text):
            long = context.abbreviations.get(text)
            if long:
                found = (self._lexicon_match(long, wanted, context) or self._indexing_match(long, wanted, context)
                         or (self._fallback(long, wanted, context) if self.fallback else None))
                if found:
                    return Link(found.id, "abbreviation", round(found.score * 0.95, 3))
        return self._lexicon_match(text, wanted, context) or self._indexing_match(text, wanted, context)

    def _fallback(self, text: str, wanted: str | None, context: ArticleContext) -> Link | None:
        """Looser guesses: salt words dropped ("bupropion HCl"), an adjective's noun ("dyskinetic")."""
        cache_key = ("fallback", text, wanted)
        if cache_key not in self._cache:
            self._cache[cache_key] = self._fallback_candidates(text, wanted)
        found = self._cache[cache_key]
        if found is None:
            return None
        link = self._choose(found[0], context)
        return Link(link.id, link.source, round(link.score * found[1], 3)) if link else None

    def _fallback_candidates(self, text: str, wanted: str | None) -> tuple[Candidates, float] | None:
        """The first fallback variant's candidates and its score factor (article independent)."""
        words = text.split()
        tries = []
        bare = [w for w in words if w.lower() not in _SALTS]
        if bare and len(bare) < len(words):
            tries.append((" ".join(bare), 0.8))
        last = words[-1].lower() if words else ""
        for old, new in _DERIVED:
            if last.endswith(old) and len(last) > len(old) + 3:
                tries.append((" ".join(words[:-1] + [last[: -len(old)] + new]), 0.7))
        induced = _INDUCED.match(text)
        if induced:  # "ribavirin-induced hemolytic anemia": the disease without its cause
            tries.append((induced.group(1), 0.8))
        if wanted != "Chemical":  # a disease without its leading modifiers: "metastatic breast cancer"
            # (not chemicals: "heparin sodium" is not sodium; never down to one word: a lone head
            # word is mostly a broader concept, "optic neuropathy" is not any neuropathy)
            for k in range(1, len(words) - 1):
                rest = words[k:]
                if all(w.lower() in _GENERIC_WORDS for w in rest):
                    break
                tries.append((" ".join(rest), 0.6))
        for variant, factor in tries:
            found = self._lookup(variant, wanted)
            if found is not None:
                return found, factor
        return None

    def _composite(self, text: str, wanted: str | None, context: ArticleContext) -> Link | None:
        if " " not in text and "/" not in text:
            return None
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
             context: ArticleContext | None = None) -> Link | None:
        """The concept a mention names, or None."""
        if not text or not text.strip():
            return None
        context = context or ArticleContext()
        wanted = lexicon_type(entity_type)
        text = text.strip()
        sure_key = ("sure", text, wanted)  # results no article can change
        if sure_key in self._cache and not (self.abbreviations and context.may_define(text)):
            return self._cache[sure_key]
        found = self._single(text, wanted, context)
        if found is None and self.max_level > 1:
            found = self._composite(text, wanted, context)
        if found is None and self.fallback:
            found = self._fallback(text, wanted, context)
        if found is not None and found.source not in ("abbreviation", "article-indexing"):
            hit = self._cache.get((text, wanted))
            if hit is not None and len({h[0] for h in hit[1]}) == 1:  # one id: indexing cannot change it
                self._cache[sure_key] = found
        return found
