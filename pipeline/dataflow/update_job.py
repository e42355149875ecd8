"""Scheduled update extracts: mine each new daily update file and fold it into a current view.

State folder layout (all Parquet, readable with any Arrow tool):
- `STATE/_state.json`: settings, bucket layout, processed files (in NLM order), the generation
  and the live file list of every PMID bucket (see pipeline/state/store.py for the commit);
- `STATE/runs/<file>/`: the ordinary `biomine run` output for that one file (resumable);
- `STATE/current/{articles,relations,entities,tombstones}/bucket=NNNNN/*.parquet`: the rows per
  PMID range; a row is current unless its (pmid, gen) is a tombstone (pipeline/state/read.py);
- `STATE/history/{articles,relations,entities,deletions}/<file>.parquet`: append-only, what each
  update file changed (upserted rows, and deletions), with the file it came from.

Per file, in NLM order: mine it (only the PMIDs new or revised in it), then one transaction
(pipeline/state/apply.py): delta rows into the touched buckets, tombstones for the versions the
file revised or deleted, compaction of at most a few due buckets, history, commit. The cost of a
file follows the file, not the state. A file already listed in `_state.json` is skipped.
One updater at a time: the job holds `STATE/_lease.json` (pipeline/storage/lease.py) from before
it opens the state until it ends; a second one is refused (LeaseHeld, exit 2) before any work.
"""
from __future__ import annotations

import logging
import os
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from pipeline.config import RunConfig
from pipeline.pubmed.schema import file_stem
from pipeline.state.apply import apply_file
from pipeline.state.partitions import DATA_TABLES, Layout
from pipeline.state.store import StateStore
from pipeline.storage import Location

log = logging.getLogger(__name__)

DELETION_HISTORY = pa.schema([("pmid", pa.int64()), ("version", pa.int32()),
                              ("source_file", pa.string()), ("position", pa.int64())])


def file_deletions(path: str) -> pa.Table:
    """The DeleteCitation entries of one update file."""
    from pipeline.pubmed.xml import iter_index

    rows = [r for r in iter_index(path) if r["record_type"] == "deletion"]
    return pa.Table.from_pydict({"pmid": [r["pmid"] for r in rows], "version": [r["version"] for r in rows],
                                 "source_file": [os.path.basename(path)] * len(rows),
                                 "position": [r["position"] for r in rows]}, schema=DELETION_HISTORY)


def read_run_table(run_dir: str | Location, table: str, schema: pa.Schema) -> pa.Table:
    """One table of a finished run (any file layout under its folder; `_`/`.` names and
    temporaries ignored)."""
    run = Location.open(run_dir)
    files = [i.path for i in run.list(table, recursive=True) if i.type.name == "File"
             and i.path.endswith(".parquet") and not any(
                 part.startswith(("_", ".")) for part in i.path[len(run.path(table)):].split("/"))]
    if not files:
        return schema.empty_table()
    data = ds.dataset(files, format="parquet", filesystem=run.fs, schema=schema)
    return data.to_table()


def after_commit(config: RunConfig, state_dir: str | Location, state: dict[str, Any], counts: dict[str, Any]) -> None:
    """Hook run after each committed update file (a place for derived views, e.g. a relation graph)."""


def update(config: RunConfig, state_dir: str | Location, layout: Layout | None = None, *,
           break_lease: bool = False) -> dict[str, Any]:
    """Process every input file not yet in the state, in NLM order, under STATE/_lease.json
    (LeaseHeld while another live updater holds it); returns a summary."""
    from pipeline.storage.lease import LeaseConfig, hold_lease, new_run_id

    loc = Location.open(state_dir)  # opened once: the lease, the store, every file's run, the graph
    with hold_lease(loc, "update", config.run_id or new_run_id("update"),
                    LeaseConfig(ttl_s=config.lease_ttl_s), break_lease):
        return _update(config, loc, layout)


def _update(config: RunConfig, loc: Location, layout: Layout | None) -> dict[str, Any]:
    """The update itself, once the state is ours (see update)."""
    from pipeline.dataflow.build import run
    from pipeline.dataflow.outputs import OUTPUT_TABLES
    from pipeline.pubmed.read import expand_inputs

    files = expand_inputs(config.inputs)
    schemas = {t.name: t.schema for t in OUTPUT_TABLES}
    settings = {"tasks": config.tasks, "re_model": config.re_model_id, "ner_model": config.ner_model_id,
                "entities": config.entities}
    store = StateStore(loc)
    state = store.open(settings, layout or Layout())
    done = {p["file"] for p in state["processed"]}
    summary: dict[str, Any] = {"skipped": [], "processed": []}
    for path in files:
        name = os.path.basename(path)
        if name in done:
            summary["skipped"].append(name)
            continue
        stem = file_stem(path)
        run_dir = loc.child(f"runs/{stem}")
        run_cfg = config.model_copy(update={"inputs": [path], "output": run_dir.uri, "run_id": f"update-{stem}"})
        run(run_cfg, lease=False)  # STATE's lease covers it; raises on failure, the next update resumes
        new = {t: read_run_table(run_dir, t, schemas[t]) for t in DATA_TABLES}
        state, counts = apply_file(store, state, name, new, file_deletions(path))
        log.info("update %s: %s", name, counts)
        after_commit(config, loc, state, counts)
        summary["processed"].append({"file": name, **counts})
    summary["generation"] = state["generation"]
    if summary["processed"] and loc.is_dir("graph"):
        # opt-in (a graph made once by `biomine aggregate STATE`): the rebuild reads every live
        # relation, a cost that follows the state, not the update file
        summary["graph"] = refresh_graph(loc)
    return summary


def refresh_graph(state_dir: str | Location) -> dict[str, Any] | None:
    """Rebuild STATE/graph/ from the live rows, so deleted and revised PMIDs leave it."""
    from pipeline.curation.graph import build_graph

    return build_graph(state_dir)
