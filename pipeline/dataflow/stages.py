"""Ray Data stages: callable classes that declare the columns they need and add.

Each stage takes a batch (a `pa.Table` or a dict of arrays) and returns a `pa.Table`, so it can
be tested by calling it directly, without Ray. CPU stages (tokenize, postprocess) never touch
the GPU; the GPU stage only sees token ids. Errors of one record become rows in the `errors`
column (ERROR_SCHEMA structs) and the record goes on through the pipeline without model output.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

from pipeline.records.accounting import fold_read_errors
from pipeline.config import RunConfig
from pipeline.dataflow.outputs import ERROR_STRUCT, ENTITY_STRUCT, RELATION_STRUCT, error_row
from pipeline.dataflow.outputs import CURATION_COLUMNS, with_curation_columns
from pipeline.dataflow.runtime import load_tasks
from pipeline.tasks.relation import Answer
from pipeline.tasks.evidence import link_rows

log = logging.getLogger(__name__)

IDS = pa.list_(pa.int32())
RENAMES = {"journal_title": "journal", "pub_year": "year"}  # reader names -> output names


def as_table(batch: pa.Table | Mapping[str, Any]) -> pa.Table:
    """Accept a pyarrow table or a dict of arrays/lists (as Ray's numpy format gives)."""
    if isinstance(batch, pa.Table):
        return batch
    return pa.table({k: (v.tolist() if isinstance(v, np.ndarray) and v.dtype == object else v)
                     for k, v in batch.items()})


def require(table: pa.Table, columns: tuple[str, ...], stage: str) -> None:
    """Fail clearly when a batch lacks a column the stage needs."""
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ValueError(f"stage {stage} needs column(s) {missing}; the batch has {table.column_names}")


def _set(table: pa.Table, name: str, values: Any, type_: pa.DataType) -> pa.Table:
    array = pa.array(values, type=type_)
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, array)
    return table.append_column(name, array)


def _errors(table: pa.Table) -> list[list[dict]]:
    if "errors" in table.column_names:
        return [list(e or []) for e in table.column("errors").to_pylist()]
    return [[] for _ in range(table.num_rows)]


class TokenizeStage:
    """Builds each task's model inputs (token ids) from title and abstract (CPU)."""

    requires = ("pmid", "version", "title", "abstract", "source_file")
    adds = ("has_abstract", "re_prompt", "re_cut", "ner_windows", "re_skipped", "errors")

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.re_task, self.ner_task = load_tasks(config)

    def __call__(self, batch: pa.Table | Mapping[str, Any]) -> pa.Table:
        table = fold_read_errors(as_table(batch))  # records the read could not parse keep their error
        require(table, self.requires, type(self).__name__)
        articles = table.select(["pmid", "version", "title", "abstract"]).to_pylist()
        errors = _errors(table)
        prompts: list[list[int] | None] = []
        cuts: list[int | None] = []
        windows: list[list[list[int]] | None] = []
        skipped = [re_skip_reason(a) if self.re_task is not None else None for a in articles]
        for i, article in enumerate(articles):
            prompt = cut = wins = None
            if article["abstract"] or article["title"]:  # title-only records are tagged, not RE-mined
                try:
                    if self.re_task is not None and skipped[i] is None:
                        inputs = self.re_task.build_inputs(article)
                        prompt, cut = list(inputs.prompt_ids) or None, int(inputs.n_cut)
                        if prompt and len(prompt) >= self.re_task.max_model_len:
                            raise ValueError(f"prompt of {len(prompt)} tokens does not fit the model "
                                             f"window of {self.re_task.max_model_len}")
                    if self.ner_task is not None:
                        wins = [list(w) for w in self.ner_task.build_inputs(article).prompts] or None
                except Exception as exc:  # one bad record must not stop the batch
                    prompt = cut = wins = None
                    errors[i].append(error_row(table, i, "tokenize", exc))
            prompts.append(prompt)
            cuts.append(cut)
            windows.append(wins)
        table = _set(table, "has_abstract", [bool(a["abstract"]) for a in articles], pa.bool_())
        table = _set(table, "re_prompt", prompts, IDS)
        table = _set(table, "re_cut", cuts, pa.int32())
        table = _set(table, "ner_windows", windows, pa.list_(IDS))
        table = _set(table, "re_skipped", skipped, pa.string())
        return _set(table, "errors", errors, pa.list_(ERROR_STRUCT))


class PostprocessStage:
    """Turns generated ids and tag probabilities into relation and entity rows (CPU)."""

    requires = ("pmid", "version", "title", "abstract", "re_output", "ner_probs", "errors")
    adds = ("relations", "entities", "n_relations", "n_entities", "n_malformed", "malformed",
            "finish_reason")
    keep = ("pmid", "version", "title", "journal_title", "pub_year", "has_abstract",
            "source_file", "file_seq", "position", "n_generated", "n_prompt_tokens", "n_gpu_busy_us",
            *CURATION_COLUMNS)

    def __init__(self, config: RunConfig, run_id: str) -> None:
        self.config = config
        self.run_id = run_id
        self.re_task, self.ner_task = load_tasks(config)
        self.linker = None
        if config.lexicon:  # memory-mapped once per actor process
            from pipeline.linking.apply import load_linker

            self.linker = load_linker(config.lexicon)

    def __call__(self, batch: pa.Table | Mapping[str, Any]) -> pa.Table:
        table = as_table(batch)
        require(table, self.requires, type(self).__name__)
        indexing = [c for c in ("mesh_headings", "chemicals") if c in table.column_names]
        articles = table.select(["pmid", "version", "title", "abstract",
                                 *(indexing if self.linker else [])]).to_pylist()
        outputs = table.column("re_output").to_pylist()
        probs = table.column("ner_probs").to_pylist()
        finish = (table.column("re_finish").to_pylist() if "re_finish" in table.column_names
                  else [None] * table.num_rows)  # "eos" | "length" from the GPU stage
        errors = _errors(table)
        relations: list[list[dict]] = []
        entities: list[list[dict]] = []
        malformed: list[int] = []
        dropped: list[list[str]] = []
        for i, article in enumerate(articles):
            rels: list[dict] = []
            ents: list[dict] = []
            bad, texts = 0, []
            try:
                if self.re_task is not None and outputs[i] is not None:
                    text = Answer(self.re_task.decode(outputs[i]), finish[i])
                    parsed = self.re_task.parse_outputs(article, text, model_id=self.config.re_model_id,
                                                        run_id=self.run_id)
                    rels, bad, texts = parsed.rows, parsed.malformed, list(parsed.dropped)
                if self.ner_task is not None and probs[i] is not None:
                    windows = [np.asarray(p, dtype=np.float32) for p in probs[i]]
                    ents = self.ner_task.parse_outputs(article, windows, model_id=self.config.ner_model_id,
                                                       run_id=self.run_id).rows
                link_rows(article, rels, ents)  # mention ids, relation -> mentions, evidence
                if self.linker is not None:  # MeSH ids (pipeline.linking)
                    from pipeline.linking.apply import link_article_rows

                    link_article_rows(self.linker, article, rels, ents)
            except Exception as exc:  # keep the article, record why it has no rows
                rels, ents = [], []
                errors[i].append(error_row(table, i, "postprocess", exc))
            relations.append(rels)
            entities.append(ents)
            malformed.append(bad)
            dropped.append(texts)
        out = table.select([c for c in self.keep if c in table.column_names])
        out = with_curation_columns(out.rename_columns([RENAMES.get(c, c) for c in out.column_names]))
        out = _set(out, "relations", relations, pa.list_(RELATION_STRUCT))
        out = _set(out, "entities", entities, pa.list_(ENTITY_STRUCT))
        out = _set(out, "errors", errors, pa.list_(ERROR_STRUCT))
        out = _set(out, "n_relations", [len(r) for r in relations], pa.int64())
        out = _set(out, "n_entities", [len(e) for e in entities], pa.int64())
        out = _set(out, "n_errors", [len(e) for e in errors], pa.int64())
        out = _set(out, "malformed", dropped, pa.list_(pa.string()))  # text of each dropped clause
        out = _set(out, "finish_reason", finish, pa.string())
        return _set(out, "n_malformed", malformed, pa.int64())


def re_skip_reason(article: Mapping[str, Any]) -> str | None:
    """Why relation extraction skips an article (None: it is mined)."""
    if article.get("abstract"):
        return None
    return "title only (no abstract)" if article.get("title") else "no title or abstract"
