"""The numbers behind OUT/report.html, gathered by streaming over the output tables (few columns)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from pipeline.curation.source import Selection, commit_records, committed_names, data_files, iter_chunks
from pipeline.storage import Location

SCORE_BINS = np.linspace(0.0, 1.0, 21)
LENGTH_BINS = np.array([0, 1, 250, 500, 750, 1000, 1250, 1500, 2000, 2500, 3000, 4000, 6000, 10**9])
TOP_PAIRS = 15
TOP_ENTITIES = 20
ENTITY_KEYS_KEPT = 100_000  # distinct (type, id or text) counted before the rarest are pruned
N_EXAMPLES = 3


@dataclass
class ReportData:
    """Everything the report shows."""

    output: str
    manifest: dict[str, Any] = field(default_factory=dict)
    commits: list[tuple[float, int]] = field(default_factory=list)  # (time, articles) per block
    started: float | None = None  # when the last run started (manifest time - wall time)
    articles: int = 0
    with_abstract: int = 0
    re_skipped: Counter = field(default_factory=Counter)
    years: Counter = field(default_factory=Counter)
    abstract_lengths: np.ndarray = field(default_factory=lambda: np.zeros(len(LENGTH_BINS) - 1, np.int64))
    errors_by_stage: Counter = field(default_factory=Counter)
    errors_by_kind: Counter = field(default_factory=Counter)
    error_examples: dict[str, str] = field(default_factory=dict)
    relations_by_type: Counter = field(default_factory=Counter)
    top_pairs: Counter = field(default_factory=Counter)
    entities_by_type: Counter = field(default_factory=Counter)
    top_entities: Counter = field(default_factory=Counter)  # (type, MeSH id or "", text) -> rows
    scores: np.ndarray = field(default_factory=lambda: np.zeros(len(SCORE_BINS) - 1, np.int64))
    examples: list[dict[str, Any]] = field(default_factory=list)  # articles with their rows
    linking: dict[str, Any] = field(default_factory=dict)  # type -> linked share (pipeline.linking)

    @property
    def n_relations(self) -> int:
        """Relation rows."""
        return sum(self.relations_by_type.values())

    @property
    def n_entities(self) -> int:
        """Entity rows."""
        return sum(self.entities_by_type.values())


def _batches(output: Location, table: str, columns: list[str],  # noqa: ANN202 (iterator of batches)
             committed: dict[str, set[str]] | None = None):
    files = data_files(output, table, committed)
    if not files:
        return iter(())
    dataset = pads.dataset(files, format="parquet", filesystem=output.fs)
    return dataset.to_batches(columns=[c for c in columns if c in dataset.schema.names])


def _error_kind(message: str | None) -> str:
    head = (message or "").split(":", 1)[0].strip()
    return head if head and " " not in head else "other"


def _count_entities(counts: Counter, names: dict, table: pa.Table) -> None:
    """Entity rows per concept (per lower-cased text where unlinked), one Arrow group-by per batch;
    past ENTITY_KEYS_KEPT distinct keys the rarest are pruned (the top stays exact in practice)."""
    lowered = pc.utf8_lower(table.column("text"))
    ids = pc.fill_null(table.column("id"), "") if "id" in table.column_names else pa.array([""] * len(table))
    keyed = pa.table({"type": table.column("type"), "id": ids, "name": lowered,
                      "text": pc.if_else(pc.equal(ids, ""), lowered, pa.scalar(""))})
    grouped = keyed.group_by(["type", "id", "text"]).aggregate([("name", "min"), ([], "count_all")])
    for row in grouped.to_pylist():
        counts[(row["type"], row["id"], row["text"])] += row["count_all"]
        if row["id"]:
            names.setdefault((row["type"], row["id"]), row["name_min"])
    if len(counts) > ENTITY_KEYS_KEPT:
        kept = counts.most_common(ENTITY_KEYS_KEPT // 2)
        counts.clear()
        counts.update(dict(kept))


def collect(output: str | Path | Location) -> ReportData:
    """Gather the report's numbers from an output folder (local or object store)."""
    out = Location.open(output)
    data = ReportData(out.url())
    info = out.info("_manifest.json")
    if info.type.name == "File":
        data.manifest = out.read_json("_manifest.json")
        wall = data.manifest.get("wall_s")
        if isinstance(wall, (int, float)) and info.mtime is not None:
            data.started = info.mtime.timestamp() - wall
    committed = committed_names(out)
    for commit in commit_records(out):
        data.commits.append((float(commit.get("time", 0)), int(commit.get("rows", 0))))
    data.commits.sort()
    best: list[tuple[int, int, int]] = []  # (relations, entities, pmid) of the richest articles
    for batch in _batches(out, "articles", ["pmid", "year", "has_abstract", "abstract", "re_skipped",
                                            "n_entities", "n_relations"], committed):
        data.articles += batch.num_rows
        data.with_abstract += int(pc.sum(batch.column("has_abstract")).as_py() or 0)
        if "re_skipped" in batch.schema.names:
            data.re_skipped.update(x for x in batch.column("re_skipped").to_pylist() if x)
        data.years.update(y for y in batch.column("year").to_pylist() if y)
        if "abstract" in batch.schema.names:
            lengths = pc.fill_null(pc.utf8_length(batch.column("abstract")), 0).to_numpy(zero_copy_only=False)
            data.abstract_lengths += np.histogram(lengths, LENGTH_BINS)[0]
        ranked = zip(batch.column("n_relations").to_pylist(), batch.column("n_entities").to_pylist(),
                     batch.column("pmid").to_pylist())  # articles with relations first
        best = sorted(best + list(ranked), reverse=True)[:N_EXAMPLES]
    for batch in _batches(out, "errors", ["stage", "message"], committed):
        for stage, message in zip(batch.column("stage").to_pylist(), batch.column("message").to_pylist()):
            kind = _error_kind(message)
            data.errors_by_stage[stage or "?"] += 1
            data.errors_by_kind[kind] += 1
            data.error_examples.setdefault(kind, message or "")
    for batch in _batches(out, "relations", ["task", "relation", "head_text", "tail_text"], committed):
        table = pa.Table.from_batches([batch])  # counted per batch in Arrow, merged in Python
        for row in table.group_by(["task", "relation"]).aggregate([([], "count_all")]).to_pylist():
            data.relations_by_type[f"{row['task']} {row['relation']}"] += row["count_all"]
        pairs = table.group_by(["head_text", "relation", "tail_text"]).aggregate([([], "count_all")])
        for row in pairs.to_pylist():
            data.top_pairs[(row["head_text"], row["relation"], row["tail_text"])] += row["count_all"]
    names: dict[tuple[str, str], str] = {}  # (type, id) -> the first text seen for it
    for batch in _batches(out, "entities", ["type", "score", "text", "id"], committed):
        for item in pc.value_counts(batch.column("type")).to_pylist():
            data.entities_by_type[item["values"]] += item["counts"]
        _count_entities(data.top_entities, names, pa.Table.from_batches([batch]))
        scores = pc.fill_null(batch.column("score"), 0.0).to_numpy(zero_copy_only=False)
        data.scores += np.histogram(np.clip(scores, 0.0, 1.0), SCORE_BINS)[0]
    data.top_pairs = Counter(dict(data.top_pairs.most_common(TOP_PAIRS)))
    data.top_entities = Counter({(t, i, names.get((t, i), i) if i else x): n for (t, i, x), n
                                 in data.top_entities.most_common(TOP_ENTITIES)})
    from pipeline.linking.summary import linking_summary

    data.linking = linking_summary(out)
    wanted = frozenset(p for r, e, p in best if r + e > 0)
    if wanted:
        for chunk in iter_chunks(out, Selection(pmids=wanted)):
            for article in chunk.articles:
                data.examples.append({**article, "entities": chunk.rows("entities", article["pmid"]),
                                      "relations": chunk.rows("relations", article["pmid"])})
    return data
