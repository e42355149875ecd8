"""One update file as one transaction on the state: merge, compact due buckets, history, commit."""
from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from pipeline.pubmed.schema import file_stem
from pipeline.state.compact import compact, due, ops_for
from pipeline.state.merge import merge_update
from pipeline.state.partitions import DATA_TABLES
from pipeline.state.store import StateStore, fault_point


def apply_file(store: StateStore, state: dict[str, Any], name: str, new: dict[str, pa.Table],
               deletions: pa.Table) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fold file `name` (its mined rows per table and its DeleteCitations) in; returns (state, counts).

    `new["articles"]` holds one row per PMID; every table has a `pmid` column and articles a
    `version`. Nothing is visible before the commit; a crash anywhere is redone or rolled forward.
    """
    started = time.time()
    missing = [t for t in DATA_TABLES if t not in new]
    if missing:
        raise ValueError(f"update {name}: no rows given for table(s) {missing}")
    gen = state["generation"] + 1
    buckets, counts = merge_update(store, state, gen, new, deletions)
    counts.update(compacted=0, bytes_compacted=0)
    layout = store.layout(state)
    for bucket in due(buckets, layout):
        buckets[bucket], written = compact(store, bucket, buckets[bucket], gen, layout.bucket_width)
        counts["bytes_written"] += written
        counts["bytes_compacted"] += written
        counts["compacted"] += 1
    stem = file_stem(name)
    history = []
    for table in DATA_TABLES:
        rows = new[table]
        if rows.num_rows:
            rel = f"history/{table}/{stem}.parquet"
            changed = rows.append_column("change_file", pa.array([name] * rows.num_rows, pa.string()))
            counts["bytes_written"] += store.write_staged(changed, gen, rel)
            history.append(rel)
    rel = f"history/deletions/{stem}.parquet"
    counts["bytes_written"] += store.write_staged(deletions, gen, rel)
    history.append(rel)
    counts.update(deleted=deletions.num_rows, upserted=new["articles"].num_rows,
                  current_articles=sum(b["live"] for b in buckets.values()))
    ops = ops_for(state["buckets"], buckets) + [["move", r] for r in history]
    processed = state["processed"] + [{"file": name, "at": started, **counts}]
    fault_point("staged")
    state = store.commit({**state, "generation": gen, "buckets": buckets, "processed": processed}, ops)
    counts["seconds"] = time.time() - started
    return state, counts
