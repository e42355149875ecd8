"""Shared relation-extraction machinery for BioGPT's RE recipes (BC5CDR, DDI, KD-DTI).

Input (microsoft/BioGPT `rebuild_data.py` + `language_model_prompt_dataset.py`):
`[</s>] + source[:640] + learned1..learned9`, the source lowercased; a cut source ends in "...".
Output (`postprocess.py`): parsed by `pipeline.tasks.re_parse` (the answer after the echoed
prompt and a conclusion phrase, clauses split on ";" and matched against the recipe's whole
template, a cut-off last clause dropped and counted, duplicates dropped).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.tasks.linking import EntityDictionary, find_spans
from pipeline.tasks.re_parse import ParsedAnswer, answer_text, match_clause, parse_answer, split_clauses

__all__ = ["answer_text", "match_clause", "split_clauses"]  # re-exported from re_parse

N_LEARNED = 9
MAX_SOURCE_TOKENS = 640


class Tokenizer(Protocol):
    """What the RE tasks need from `model.tokenizer.BioGptTokenizer`."""

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]: ...
    def convert_tokens_to_ids(self, tokens: Any) -> Any: ...


@dataclass(frozen=True)
class TaskInput:
    """Model input(s) of one article: one prompt for RE, one per window for NER."""

    prompts: list[list[int]]
    n_cut: int  # source tokens removed to fit the model window (RE) / 0 (NER windows overlap)
    source: str  # the text the prompts were built from

    @property
    def prompt_ids(self) -> list[int]:
        """The single prompt of an RE task ([] when the article has no text to read)."""
        return self.prompts[0] if self.prompts else []

    @property
    def empty(self) -> bool:
        """True when there is nothing to run (no title/abstract text)."""
        return not self.prompts


@dataclass(frozen=True)
class TaskOutput:
    """Rows parsed from one article's model output, and how many clauses were malformed."""

    rows: list[dict[str, Any]]
    malformed: int = 0
    clauses: int = 0
    dropped: tuple[str, ...] = ()  # text of each malformed clause (len == malformed for RE)
    finish_reason: str | None = None  # the engine's "eos" | "length", when known


@dataclass(frozen=True)
class Answer:
    """A decoded generation and why it stopped (what `RelationTask.parse_outputs` accepts)."""

    text: str
    finish_reason: str | None = None


@dataclass(frozen=True)
class Recipe:
    """One BioGPT RE recipe: source text, output template and entity types."""

    name: str
    head_type: str
    tail_type: str
    template: re.Pattern[str]  # BioGPT's regex (groups: head, tail[, relation]); informative
    render: str  # format string with {head}, {tail}, {relation}; parsing matches it whole
    clause_sep: str  # regex between clauses
    title_in_source: bool = True
    fixed_relation: str | None = None  # "CID" for BC5CDR (no relation group)
    label_set: frozenset[str] = field(default_factory=frozenset)  # known labels (informative)


def source_text(article: Mapping[str, Any], title_in_source: bool) -> str:
    """BioGPT's lowercased source text of an article ("" when it has none)."""
    title = (article.get("title") or "").strip()
    abstract = (article.get("abstract") or "").strip().replace("\n", " ")
    if not title_in_source:
        return abstract.lower()
    if title and abstract:
        joiner = " " if re.search(r"\W$", title) else ". "
        return (title + joiner + abstract).lower()
    return (title or abstract).lower()


def learned_ids(tokenizer: Tokenizer) -> list[int]:
    """Ids of learned1..learned9; a clear error when the tokenizer lacks them."""
    names = [f"learned{i}" for i in range(1, N_LEARNED + 1)]
    ids = [int(i) for i in tokenizer.convert_tokens_to_ids(names)]
    unk = int(tokenizer.convert_tokens_to_ids(["<unk>"])[0])
    if any(i == unk for i in ids):
        raise ValueError("tokenizer has no learned1..learned9 prompt tokens: load the RE "
                         "checkpoint's tokenizer, or call tokenizer.add_tokens(['learned1', ...])")
    return ids


def build_prompt(source: str, tokenizer: Tokenizer, prompt_ids: list[int],
                 max_source_tokens: int = MAX_SOURCE_TOKENS) -> TaskInput:
    """`[eos] + source (cut to max_source_tokens, ending in "...") + learned tokens` (eos: </s> for BioGPT)."""
    from model.tokenizer import truncate_source

    if not source:
        return TaskInput([], 0, source)
    ids = tokenizer.encode(source, add_special_tokens=False)
    ids, n_cut = truncate_source(ids, max_source_tokens, tokenizer.ellipsis_id)
    return TaskInput([[tokenizer.eos_token_id, *ids, *prompt_ids]], n_cut, source)


def _choose(candidates: list[tuple[str, str, str]], known: set[str], context: str,
            ) -> tuple[str, str, str]:
    """The reading whose names recur in other clauses / occur in the text; ties -> greedy (last)."""
    def support(c: tuple[str, str, str]) -> int:
        return sum((name in known) + bool(context and find_spans(name, context, None))
                   for name in c[:2])
    best = max(range(len(candidates)), key=lambda i: (support(candidates[i]), i))
    return candidates[best]


def parse_generation(recipe: Recipe, text: str, context: str = "", finish_reason: str | None = None,
                     ) -> tuple[list[tuple[int, str, str, str]], int, int]:
    """Unique (clause_index, head, tail, relation), malformed count, clause count.

    See `pipeline.tasks.re_parse.parse_answer`; an empty answer counts as one malformed
    clause. `context` (the article text) helps pick among readings of a clause whose names
    contain " and ".
    """
    parsed = _parse(recipe, text, context, finish_reason)
    return parsed.found, len(parsed.dropped), parsed.n_clauses


def _parse(recipe: Recipe, text: str, context: str, finish_reason: str | None) -> ParsedAnswer:
    return parse_answer(recipe, text, lambda c, known: _choose(c, set(known), context), finish_reason)


def render_answer(recipe: Recipe, triples: list[tuple[str, str, str]]) -> str:
    """The target text BioGPT trains on: clauses joined by "; ", ending in "."."""
    return "; ".join(recipe.render.format(head=h, tail=t, relation=r) for h, t, r in triples) + "."


def relation_rows(recipe: Recipe, article: Mapping[str, Any], text: str, *, model_id: str,
                  run_id: str, dictionary: EntityDictionary | None = None,
                  finish_reason: str | None = None) -> TaskOutput:
    """Parse one generation into relation rows (see `pipeline.tasks.rows.RELATION_SCHEMA`)."""
    title, abstract = article.get("title") or "", article.get("abstract") or ""
    parsed = _parse(recipe, text, f"{title}\n{abstract}", finish_reason)
    rows = []
    for clause_index, head, tail, relation in parsed.found:
        rows.append({
            "pmid": article["pmid"], "version": article.get("version"), "task": recipe.name,
            "head_text": head, "tail_text": tail, "relation": relation,
            "head_id": dictionary.lookup(recipe.head_type, head) if dictionary else None,
            "tail_id": dictionary.lookup(recipe.tail_type, tail) if dictionary else None,
            "head_type": recipe.head_type, "tail_type": recipe.tail_type,
            "head_spans": find_spans(head, title, abstract),
            "tail_spans": find_spans(tail, title, abstract),
            "clause_index": clause_index, "model_id": model_id, "run_id": run_id,
        })
    return TaskOutput(rows, len(parsed.dropped), parsed.n_clauses, tuple(parsed.dropped),
                      finish_reason)


class RelationTask:
    """An RE task object: `build_inputs(article)` and `parse_outputs(article, output, ...)`."""

    def __init__(self, recipe: Recipe, tokenizer: Tokenizer,
                 dictionary: EntityDictionary | None = None,
                 max_source_tokens: int = MAX_SOURCE_TOKENS) -> None:
        self.recipe = recipe
        self.name = recipe.name
        self.tokenizer = tokenizer
        self.dictionary = dictionary
        self.max_source_tokens = max_source_tokens
        self.prompt_ids = learned_ids(tokenizer) if tokenizer is not None else []

    def build_inputs(self, article: Mapping[str, Any]) -> TaskInput:
        """The prompt of one article (empty when it has no text)."""
        if self.tokenizer is None:
            raise ValueError(f"{self.name}: build_inputs needs a tokenizer")
        source = source_text(article, self.recipe.title_in_source)
        return build_prompt(source, self.tokenizer, self.prompt_ids, self.max_source_tokens)

    def parse_outputs(self, article: Mapping[str, Any], output: Any, *, model_id: str,
                      run_id: str) -> TaskOutput:
        """Rows from a `Generation` or `Answer` (text and finish_reason), or a plain text."""
        text = output if isinstance(output, str) else getattr(output, "text", None)
        if text is None:
            raise ValueError(f"{self.name}: output for PMID {article.get('pmid')} has no text")
        return relation_rows(self.recipe, article, text, model_id=model_id, run_id=run_id,
                             dictionary=self.dictionary,
                             finish_reason=getattr(output, "finish_reason", None))
