"""Arrow schemas of mined rows and the task registry (`get_task`).

Evidence is stored as two columns, `head_spans` and `tail_spans`, each a list of
{section: "title"|"abstract", start, end}: character offsets into that section of the article,
one per case-insensitive occurrence of the entity name (empty when the name is not in the text).
Links (`pipeline.tasks.evidence`): every entity row has a `mention_id` ("PMID:section:start-end");
a relation lists the mention ids of the entity rows its spans overlap (`head_mentions`,
`tail_mentions`) and its `evidence` sentences (section offsets and text).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

_s = pa.string()

SPAN = pa.struct([("section", _s), ("start", pa.int32()), ("end", pa.int32())])
EVIDENCE = pa.struct([("section", _s), ("start", pa.int32()), ("end", pa.int32()), ("text", _s)])

RELATION_SCHEMA = pa.schema([
    ("pmid", pa.int64()),
    ("version", pa.int32()),
    ("task", _s),                      # "re-bc5cdr" | "re-ddi" | "re-kd-dti"
    ("head_text", _s),                 # the name as generated (lowercase)
    ("head_id", _s),                   # dictionary id (MeSH for BC5CDR) or null when unknown
    ("head_type", _s),                 # Chemical | Drug
    ("tail_text", _s),
    ("tail_id", _s),
    ("tail_type", _s),                 # Disease | Drug | Target
    ("relation", _s),                  # CID | advise/effect/mechanism/int | inhibitor/...
    ("head_spans", pa.list_(SPAN)),    # evidence: where head_text occurs in title/abstract
    ("tail_spans", pa.list_(SPAN)),
    ("clause_index", pa.int32()),      # 0-based clause of the generated answer
    ("model_id", _s),
    ("run_id", _s),
    ("head_mentions", pa.list_(_s)),   # mention_id of the entities/ rows the head spans overlap
    ("tail_mentions", pa.list_(_s)),
    ("evidence", pa.list_(EVIDENCE)),  # sentence(s) holding head and tail (else each one's first)
    ("head_id_source", _s),            # how head_id was found: entities/gold/mesh/obo/corpus-index/
    ("head_id_score", pa.float32()),   #   abbreviation/article-indexing (pipeline.linking); score 0-1
    ("tail_id_source", _s),
    ("tail_id_score", pa.float32()),
])

ENTITY_SCHEMA = pa.schema([
    ("pmid", pa.int64()),
    ("version", pa.int32()),
    ("section", _s),                   # "title" | "abstract"
    ("start", pa.int32()),             # character offsets into that section
    ("end", pa.int32()),
    ("text", _s),
    ("type", _s),                      # entity type from the checkpoint's labels
    ("score", pa.float32()),           # mean probability of the span's labels
    ("model_id", _s),
    ("run_id", _s),
    ("mention_id", _s),                # "PMID:section:start-end", referenced by relations
    ("id", _s),                        # MeSH id from --lexicon (null: not linked)
    ("id_source", _s),                 # how: gold/mesh/obo/entities/corpus-index/abbreviation/article-indexing
    ("id_score", pa.float32()),
])

TASK_NAMES: tuple[str, ...] = ("re-bc5cdr", "re-ddi", "re-kd-dti", "ner")


def schema_for(task: str) -> pa.Schema:
    """The output schema of a task name."""
    if task not in TASK_NAMES:
        raise ValueError(f"unknown task {task!r}; expected one of {list(TASK_NAMES)}")
    return ENTITY_SCHEMA if task == "ner" else RELATION_SCHEMA


def rows_to_table(rows: list[dict[str, Any]], task: str) -> pa.Table:
    """Rows of a task as an Arrow table of its schema."""
    return pa.Table.from_pylist(rows, schema=schema_for(task))


def get_task(name: str, tokenizer: Any, **options: Any) -> Any:
    """A task object by name.

    Options: RE tasks take `entities` (a `*.entities.json` path, a mapping, or an
    `EntityDictionary`) and `max_source_tokens` (640); `ner` takes `id2label` (required),
    `window` (512 tokens) and `overlap` (128).
    """
    from pipeline.tasks.linking import EntityDictionary

    if name == "ner":
        from pipeline.tasks.ner import NerTask

        if options.get("id2label") is None:
            raise ValueError("task 'ner' needs id2label (the checkpoint config's labels)")
        return NerTask(tokenizer, **options)
    recipes = _recipes()
    if name not in recipes:
        raise ValueError(f"unknown task {name!r}; expected one of {list(TASK_NAMES)}")
    from pipeline.tasks.relation import MAX_SOURCE_TOKENS, RelationTask

    unknown = set(options) - {"entities", "max_source_tokens"}
    if unknown:
        raise ValueError(f"task {name!r}: unknown options {sorted(unknown)}")
    entities = options.get("entities")
    if isinstance(entities, str | Path):
        entities = EntityDictionary.from_json(entities)
    elif isinstance(entities, dict):
        entities = EntityDictionary.from_mapping(entities)
    return RelationTask(recipes[name], tokenizer, entities,
                        int(options.get("max_source_tokens") or MAX_SOURCE_TOKENS))


def _recipes() -> dict[str, Any]:
    from pipeline.tasks import re_bc5cdr, re_ddi, re_kd_dti

    return {r.RECIPE.name: r.RECIPE for r in (re_bc5cdr, re_ddi, re_kd_dti)}
