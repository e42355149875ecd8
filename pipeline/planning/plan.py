"""`biomine run --dry-run`: what a run would do (files, records, done, to mine, output size),
computed by the run's own planning steps, without starting a model or changing any output.
It warms the index cache (OUT/_index/), so the real run starts mining sooner.
"""
from __future__ import annotations

import logging
import time
from typing import Any


from pipeline.config import RunConfig
from pipeline.dataflow.outputs import TABLE_NAMES
from pipeline.dataflow.sink import SCHEMA_FILE, commit_log, recover
from pipeline.storage import Location

log = logging.getLogger(__name__)

# Output bytes per mined article when the output holds nothing yet to measure it on: the
# `--tasks ner --demo-model` run of benchmarks/scale.py at 10 k records (1,460 B/article, its
# random tagger finding ~200 entities per article: an upper bound for real models).
DEFAULT_BYTES_PER_ARTICLE = 1_500


def output_bytes_per_article(output: str | Location) -> tuple[float | None, int]:
    """Bytes of committed data files per committed article in `output` (None when empty)."""
    out = Location.open(output)
    records = commit_log(out)
    rows = sum(r["rows"] for r in records)
    if not rows:
        return None, 0
    total = 0
    for name in TABLE_NAMES:
        total += sum(i.size or 0 for i in out.list(name) if i.base_name.endswith(".parquet")
                     and i.base_name != SCHEMA_FILE)
    return total / rows, rows


def plan(config: RunConfig) -> dict[str, Any]:
    """The run's plan: index (cached), update semantics, committed work; nothing is mined."""
    from pipeline.dataflow.build import index_files, select_pending
    from pipeline.dataflow.ray_session import connect
    from pipeline.pubmed.read import expand_inputs

    started = time.perf_counter()
    files = expand_inputs(config.inputs)
    ray, placement = connect(config)  # a cluster that cannot run the plan is refused here too
    out = Location.open(config.output)
    done = recover(out, TABLE_NAMES, delete=False)
    index, errors = index_files(ray, files, out, placement.index_cpu)
    pending, counts = select_pending(index, done, config.limit)
    per_article, measured_rows = output_bytes_per_article(out)
    basis = f"measured on {measured_rows} committed articles" if per_article else "default"
    per_article = per_article or DEFAULT_BYTES_PER_ARTICLE
    records = index.num_rows if index is not None else 0
    return {
        "files": len(files), "file_errors": len(errors), **counts,
        "estimated_output_bytes": int(per_article * counts["pending"]),
        "bytes_per_article": round(per_article, 1), "estimate_basis": basis,
        "driver_index_bytes_per_record": round(index.nbytes / records, 1) if records else None,
        "driver_pending_bytes_per_record": round(pending.nbytes / max(pending.num_rows, 1), 1),
        "plan_s": round(time.perf_counter() - started, 3),
    }


def format_plan(p: dict[str, Any]) -> str:
    """The plan as the lines `biomine run --dry-run` prints."""
    size = p["estimated_output_bytes"] / 2**20
    return "\n".join([
        f"plan: {p['files']} files ({p['file_errors']} with errors), {p['records']} records, "
        f"{p['deletions']} deletions -> {p['latest']} latest",
        f"  already done {p['done']}, to mine {p['pending']}",
        f"  estimated output {size:,.1f} MiB ({p['bytes_per_article']} B/article, {p['estimate_basis']})",
        f"  driver index {p['driver_index_bytes_per_record']} B/record; planned in {p['plan_s']} s",
        "  dry run: no model started, nothing written but the index cache (OUT/_index/)",
    ])
