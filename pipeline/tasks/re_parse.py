"""Parse a generated RE answer into clauses and (head, tail, relation) readings, whatever ends it.

The answer is the text after the echoed prompt (the last run of soft-prompt tokens starting at
`learned1`, when the output repeats its prompt) and after a leading "in conclusion ," / "we can
conclude that" / "we have that"; it stops at `</s>` or at a later `learnedN` (text the model
adds after one is dropped and counted). Final periods and extra whitespace are dropped; clauses
are split on the recipe's separator (";", also ". " before the template's first words) and
empty clauses (";;") skipped. A clause is kept when it matches the recipe's whole template
(built from `Recipe.render`, any run of whitespace between words). The last clause of an answer
that did not end (no final "." and the engine did not stop on end-of-sequence) must also end in
a complete relation: for BC5CDR the word "exists", for DDI/KD-DTI one of the recipe's known
labels, so a cut-off `... is a` or `... is inhib` is dropped. Every dropped clause is counted
and its text kept.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

_LEARNED_RUN = re.compile(r"(?:\s*(?<![0-9A-Za-z])learned[0-9]+(?![0-9A-Za-z]))+\s*")
_PROMPT_START = re.compile(r"\s*learned1(?![0-9])")
_SPECIAL = re.compile(r"</s>|<s>|<pad>")
_LEADING_SPECIALS = re.compile(
    r"^(?:\s*(?:</s>|<s>|<pad>|(?<![0-9A-Za-z])learned[0-9]+(?![0-9A-Za-z])))+")
_PREFIXES = re.compile(r"in\s+conclusion\s*,|we\s+can\s+conclude\s+that|we\s+have\s+that")
_TRAILING = re.compile(r"[\s.;]+$")
_AND = re.compile(r"\s+and\s+")
MAX_KEPT_TEXT = 300  # characters of a dropped clause kept for inspection

Triple = tuple[str, str, str]


class ClauseRecipe(Protocol):
    """What parsing needs of `pipeline.tasks.relation.Recipe`."""

    render: str
    clause_sep: str
    fixed_relation: str | None
    label_set: frozenset[str]


@dataclass(frozen=True)
class ParsedAnswer:
    """Unique (clause_index, head, tail, relation), the dropped clauses' texts, clause count."""

    found: list[tuple[int, str, str, str]]
    dropped: list[str]
    n_clauses: int
    complete: bool  # the answer ended (final "." or end-of-sequence)


@lru_cache(maxsize=16)
def template_pattern(render: str) -> re.Pattern[str]:
    """The whole-clause regex of a render string: placeholders -> `(.*)`, spaces -> `\\s+`."""
    words = []
    for word in render.split():
        pieces = re.split(r"\{(head|tail|relation)\}", word)  # literal, name, literal, ...
        words.append("".join(f"(?P<{x}>.*)" if i % 2 else re.escape(x) for i, x in enumerate(pieces)))
    return re.compile(r"\s+".join(words), re.IGNORECASE)


def _has_text(piece: str) -> bool:
    return bool(re.search(r"[0-9A-Za-z]", _SPECIAL.sub(" ", piece)))


def _clean(piece: str) -> str:
    """Blank special tokens and drop a leading conclusion phrase."""
    piece = _SPECIAL.sub(" ", piece)
    last = None
    for last in _PREFIXES.finditer(piece):
        pass
    return (piece[last.end():] if last is not None else piece).strip()


def answer_parts(text: str) -> tuple[str, list[str]]:
    """The answer of a generation and any text the model added after stray soft-prompt tokens.

    An echoed prompt ends with a run of learned tokens starting at `learned1`: the answer
    follows the last such run. `</s>` ends the output; a later `learnedN` ends the answer.
    """
    start = 0
    for run in _LEARNED_RUN.finditer(text):
        if _PROMPT_START.match(run.group()):
            start = run.end()
    region = _LEADING_SPECIALS.sub("", text[start:])
    end = region.find("</s>")
    pieces = [_clean(p) for p in _LEARNED_RUN.split(region if end < 0 else region[:end])]
    pieces = [p for p in pieces if _has_text(p)]
    return (pieces[0], pieces[1:]) if pieces else ("", [])


def answer_text(text: str) -> str:
    """The answer part of a generation: prompt echo, conclusion phrase, specials and tail removed."""
    return answer_parts(text)[0]


def split_clauses(text: str, sep: str) -> tuple[list[str], bool]:
    """Non-empty clauses of an answer and whether it ended in "."."""
    stripped = _TRAILING.sub("", text)
    complete = "." in text[len(stripped):]
    clauses = [c.strip() for c in re.split(sep, stripped)]
    return [c for c in clauses if c], complete


def match_clause(recipe: ClauseRecipe, clause: str) -> list[Triple]:
    """Candidate (head, tail, relation) readings of a clause; [] when it misses the template.

    The greedy reading (BioGPT's regex) comes last; when the names themselves contain " and ",
    every split of "{head} and {tail}" at an " and " is a candidate.
    """
    m = template_pattern(recipe.render).fullmatch(clause.strip())
    if m is None:
        return []
    relation = recipe.fixed_relation or " ".join(m.group("relation").split())
    pair = m.string[m.start("head"): m.end("tail")]
    out = []
    for sep in _AND.finditer(pair):
        head, tail = pair[: sep.start()].strip(), pair[sep.end():].strip()
        if head and tail and relation:
            out.append((head, tail, relation))
    return out


def _ends_complete(recipe: ClauseRecipe, reading: Triple) -> bool:
    """A reading of an unterminated last clause is whole when its relation is a known label."""
    return bool(recipe.fixed_relation) or reading[2] in recipe.label_set


Chooser = Callable[[list[Triple], Collection[str]], Triple]


def parse_answer(recipe: ClauseRecipe, text: str, choose: Chooser,
                 finish_reason: str | None = None) -> ParsedAnswer:
    """Parse one generation; `choose(candidates, known_names)` picks among " and " readings.

    `finish_reason` "eos" marks an answer the model ended itself (complete without a final
    "."); "length" or None with no final "." means the last clause may be cut off.
    """
    answer, extra = answer_parts(text)
    clauses, complete = split_clauses(answer, recipe.clause_sep)
    complete = complete or finish_reason == "eos"
    if not clauses:
        return ParsedAnswer([], [_short(text.strip())], 0, complete)
    readings = [match_clause(recipe, c) for c in clauses]
    if not complete and readings[-1]:
        readings[-1] = [r for r in readings[-1] if _ends_complete(recipe, r)]
    known = {name for r in readings if len(r) == 1 for name in r[0][:2]}
    found: list[tuple[int, str, str, str]] = []
    dropped: list[str] = []
    seen: set[Triple] = set()
    for i, candidates in enumerate(readings):
        if not candidates:
            dropped.append(_short(clauses[i]))
            continue
        triple = candidates[0] if len(candidates) == 1 else choose(candidates, known)
        if triple not in seen:
            seen.add(triple)
            found.append((i, *triple))
    dropped.extend(_short(e) for e in extra)  # text after stray soft-prompt tokens
    return ParsedAnswer(found, dropped, len(clauses) + len(extra), complete)


def _short(text: str) -> str:
    return text if len(text) <= MAX_KEPT_TEXT else text[:MAX_KEPT_TEXT] + "..."
