"""Scheduled update extracts: mine each new daily update file and fold it into a current view.

State folder layout (all Parquet, readable with any Arrow tool):
- `STATE/_state.json`: settings, processed files (in NLM order) and the current generation;
- `STATE/runs/<file>/`: the ordinary `biomine run` output for that one file (resumable);
- `STATE/current/{articles,relations,entities}/gen-<G>.parquet`: the latest rows per PMID;
- `STATE/history/{articles,relations,entities,deletions}/<file>.parquet`: append-only, what each
  update file changed (upserted rows, and deletions), with the file it came from.

Per file, in NLM order: mine it (only the PMIDs new or revised in it), then write generation G+1
of `current` = old rows minus PMIDs deleted or revised by the file, plus the new rows; then
commit by rewriting `_state.json`; then delete generation G. A crash anywhere is repaired by the
next start (files of other generations are removed; a half-done file is simply redone, its run
resuming). A file already listed in `_state.json` is skipped: processing it twice changes nothing.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.config import RunConfig
from pipeline.manifest import write_json
from pipeline.sink import open_output, write_table_atomic

log = logging.getLogger(__name__)

TABLES = ("articles", "relations", "entities")
STATE = "_state.json"
DELETION_HISTORY = pa.schema([("pmid", pa.int64()), ("version", pa.int32()),
                              ("source_file", pa.string()), ("position", pa.int64())])


def file_stem(path: str) -> str:
    """pubmed26n1335.xml.gz -> pubmed26n1335."""
    name = os.path.basename(path)
    for suffix in (".xml.gz", ".xml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _read_state(fs: pafs.FileSystem, base: str) -> dict[str, Any] | None:
    path = f"{base}/{STATE}"
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    with fs.open_input_stream(path) as f:
        return json.loads(f.read())


def _read_dir(fs: pafs.FileSystem, folder: str, name: str | None = None) -> pa.Table | None:
    infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    files = sorted(i.path for i in infos if i.base_name.endswith(".parquet")
                   and (name is None or i.base_name == name))
    if not files:
        return None
    return pa.concat_tables([pq.read_table(f, filesystem=fs) for f in files], promote_options="default")


def _cleanup(fs: pafs.FileSystem, base: str, generation: int) -> None:
    """Remove files of other generations (leftovers of a crash) from current/."""
    keep = f"gen-{generation:06d}.parquet"
    for table in TABLES:
        for info in fs.get_file_info(pafs.FileSelector(f"{base}/current/{table}", allow_not_found=True)):
            if info.base_name != keep:
                fs.delete_file(info.path)


def file_deletions(path: str) -> pa.Table:
    """The DeleteCitation entries of one update file."""
    from pipeline.pubmed.xml import iter_index

    rows = [r for r in iter_index(path) if r["record_type"] == "deletion"]
    return pa.Table.from_pydict({"pmid": [r["pmid"] for r in rows], "version": [r["version"] for r in rows],
                                 "source_file": [os.path.basename(path)] * len(rows),
                                 "position": [r["position"] for r in rows]}, schema=DELETION_HISTORY)


def merge(current: pa.Table | None, new: pa.Table | None, deletions: pa.Table,
          revised: pa.Array, articles: pa.Table | None) -> pa.Table | None:
    """Old rows minus deleted/revised PMIDs, plus the new rows."""
    if current is not None:
        drop = pc.is_in(current.column("pmid"), value_set=revised)
        if deletions.num_rows:
            if articles is not None:  # a versioned deletion only removes that version
                versions = dict(zip(articles.column("pmid").to_pylist(), articles.column("version").to_pylist()))
            else:
                versions = {}
            doomed = [p for p, v in zip(deletions.column("pmid").to_pylist(), deletions.column("version").to_pylist())
                      if v is None or versions.get(p) in (None, v)]
            drop = pc.or_(drop, pc.is_in(current.column("pmid"), value_set=pa.array(doomed, pa.int64())))
        current = current.filter(pc.invert(drop))
    parts = [t for t in (current, new) if t is not None]
    return pa.concat_tables(parts, promote_options="default") if parts else None


def update(config: RunConfig, state_dir: str) -> dict[str, Any]:
    """Process every input file not yet in the state, in NLM order; returns a summary."""
    from pipeline.build import run
    from pipeline.pubmed.read import expand_inputs

    files = expand_inputs(config.inputs)
    fs, base = open_output(state_dir)
    fs.create_dir(base, recursive=True)
    settings = {"tasks": config.tasks, "re_model": config.re_model_id, "ner_model": config.ner_model_id,
                "entities": config.entities}
    state = _read_state(fs, base) or {"settings": settings, "processed": [], "generation": 0}
    if state["settings"] != settings:
        raise ValueError(f"{state_dir} was built with {state['settings']}; this update asks for {settings}")
    _cleanup(fs, base, state["generation"])
    done = {p["file"] for p in state["processed"]}
    summary: dict[str, Any] = {"skipped": [], "processed": []}
    for path in files:
        name = os.path.basename(path)
        if name in done:
            summary["skipped"].append(name)
            continue
        started = time.time()
        stem = file_stem(path)
        run_cfg = config.model_copy(update={"inputs": [path], "output": f"{state_dir}/runs/{stem}",
                                            "run_id": f"update-{stem}"})
        run(run_cfg)  # raises on failure; the next update resumes this file's run
        deletions = file_deletions(path)
        run_base = f"{base}/runs/{stem}"
        new_articles = _read_dir(fs, f"{run_base}/articles")
        revised = (new_articles.column("pmid") if new_articles is not None else pa.array([], pa.int64()))
        revised = revised.combine_chunks() if isinstance(revised, pa.ChunkedArray) else revised
        generation = state["generation"] + 1
        old_articles = _read_dir(fs, f"{base}/current/articles")
        counts = {"deleted": deletions.num_rows, "upserted": len(revised)}
        for table in TABLES:
            new = new_articles if table == "articles" else _read_dir(fs, f"{run_base}/{table}")
            old = old_articles if table == "articles" else _read_dir(fs, f"{base}/current/{table}")
            merged = merge(old, new, deletions, revised, old_articles)
            fs.create_dir(f"{base}/current/{table}", recursive=True)
            fs.create_dir(f"{base}/history/{table}", recursive=True)
            if merged is not None:
                write_table_atomic(fs, merged, f"{base}/current/{table}/gen-{generation:06d}.parquet")
                counts[f"current_{table}"] = merged.num_rows
            if new is not None:
                history = new.append_column("change_file", pa.array([name] * new.num_rows))
                write_table_atomic(fs, history, f"{base}/history/{table}/{stem}.parquet")
        fs.create_dir(f"{base}/history/deletions", recursive=True)
        write_table_atomic(fs, deletions, f"{base}/history/deletions/{stem}.parquet")
        state = {**state, "generation": generation,
                 "processed": state["processed"] + [{"file": name, "at": time.time(), **counts}]}
        write_json(state_dir, STATE, state)  # the commit point
        _cleanup(fs, base, generation)
        log.info("update %s: %s in %.1fs", name, counts, time.time() - started)
        summary["processed"].append({"file": name, **counts})
    summary["generation"] = state["generation"]
    return summary
