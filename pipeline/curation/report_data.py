"""The numbers behind OUT/report.html, gathered by streaming over the output tables (few columns)."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from pipeline.curation.source import Selection, iter_chunks, table_dir, table_files
from pipeline.storage import Location

SCORE_BINS = np.linspace(0.0, 1.0, 21)
LENGTH_BINS = np.array([0, 1, 250, 500, 750, 1000, 1250, 1500, 2000, 2500, 3000, 4000, 6000, 10**9])
TOP_PAIRS = 15
COMMIT_KEY = b"biomine.commit"  # pipeline.dataflow.sink.META_KEY (not imported: it needs Ray)
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
    scores: np.ndarray = field(default_factory=lambda: np.zeros(len(SCORE_BINS) - 1, np.int64))
    examples: list[dict[str, Any]] = field(default_factory=list)  # articles with their rows

    @property
    def n_relations(self) -> int:
        """Relation rows."""
        return sum(self.relations_by_type.values())

    @property
    def n_entities(self) -> int:
        """Entity rows."""
        return sum(self.entities_by_type.values())


def _batches(output: Location, table: str, columns: list[str]):  # noqa: ANN202 (iterator of batches)
    folder = table_dir(output, table)
    files = table_files(folder) if folder is not None else []
    if not files:
        return iter(())
    dataset = pads.dataset(files, format="parquet", filesystem=output.fs)
    return dataset.to_batches(columns=[c for c in columns if c in dataset.schema.names])


def _error_kind(message: str | None) -> str:
    head = (message or "").split(":", 1)[0].strip()
    return head if head and " " not in head else "other"


def _commit_records(out: Location) -> list[dict[str, Any]]:
    """The commit records of OUT/_commits (Parquet, record in the metadata; older: JSON markers)."""
    import pyarrow.parquet as pq

    records = []
    for path in out.files("_commits"):
        if path.endswith(".json"):
            with out.fs.open_input_stream(path) as f:
                records.append(json.loads(f.read()))
        elif path.endswith(".parquet"):
            meta = pq.read_schema(path, filesystem=out.fs).metadata or {}
            if COMMIT_KEY in meta:
                records.append(json.loads(meta[COMMIT_KEY]))
    return records


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
    for commit in _commit_records(out):
        data.commits.append((float(commit.get("time", 0)), int(commit.get("rows", 0))))
    data.commits.sort()
    best: list[tuple[int, int, int]] = []  # (relations, entities, pmid) of the richest articles
    for batch in _batches(out, "articles", ["pmid", "year", "has_abstract", "abstract", "re_skipped",
                                            "n_entities", "n_relations"]):
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
    for batch in _batches(out, "errors", ["stage", "message"]):
        for stage, message in zip(batch.column("stage").to_pylist(), batch.column("message").to_pylist()):
            kind = _error_kind(message)
            data.errors_by_stage[stage or "?"] += 1
            data.errors_by_kind[kind] += 1
            data.error_examples.setdefault(kind, message or "")
    for batch in _batches(out, "relations", ["task", "relation", "head_text", "tail_text"]):
        table = pa.Table.from_batches([batch])  # counted per batch in Arrow, merged in Python
        for row in table.group_by(["task", "relation"]).aggregate([([], "count_all")]).to_pylist():
            data.relations_by_type[f"{row['task']} {row['relation']}"] += row["count_all"]
        pairs = table.group_by(["head_text", "relation", "tail_text"]).aggregate([([], "count_all")])
        for row in pairs.to_pylist():
            data.top_pairs[(row["head_text"], row["relation"], row["tail_text"])] += row["count_all"]
    for batch in _batches(out, "entities", ["type", "score"]):
        for item in pc.value_counts(batch.column("type")).to_pylist():
            data.entities_by_type[item["values"]] += item["counts"]
        scores = pc.fill_null(batch.column("score"), 0.0).to_numpy(zero_copy_only=False)
        data.scores += np.histogram(np.clip(scores, 0.0, 1.0), SCORE_BINS)[0]
    data.top_pairs = Counter(dict(data.top_pairs.most_common(TOP_PAIRS)))
    wanted = frozenset(p for r, e, p in best if r + e > 0)
    if wanted:
        for chunk in iter_chunks(out, Selection(pmids=wanted)):
            for article in chunk.articles:
                data.examples.append({**article, "entities": chunk.rows("entities", article["pmid"]),
                                      "relations": chunk.rows("relations", article["pmid"])})
    return data
