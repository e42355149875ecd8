"""`biomine run --dry-run`: the plan from the run's own steps; no model, no output but the index."""
from __future__ import annotations

from importlib import resources

import pyarrow as pa
import pytest

from pipeline.config import RunConfig
from pipeline.dataflow.outputs import OUTPUT_TABLES
from pipeline.planning.plan import DEFAULT_BYTES_PER_ARTICLE, format_plan, plan
from pipeline.dataflow.sink import ResultSink

SAMPLE = resources.files("pipeline") / "data" / "sample"
pytestmark = pytest.mark.ray


def cfg(out) -> RunConfig:
    inputs = [str(SAMPLE / n) for n in ("pubmed26n1334.xml.gz", "pubmed26n1335.xml.gz")]
    return RunConfig(inputs=inputs, output=str(out), tasks=["ner"], demo_model=True, progress=False)


def article_block(pmids: list[int]) -> pa.Table:
    """A postprocessed block (every output column) for the given PMIDs, with no mined rows."""
    n = len(pmids)
    cols = {f.name: pa.nulls(n, f.type) for f in OUTPUT_TABLES[0].schema}
    cols["pmid"] = pa.array(pmids, pa.int64())
    for t in OUTPUT_TABLES[1:]:
        cols[t.nested] = pa.array([[]] * n, pa.list_(pa.struct(list(t.schema))))
    return pa.table(cols)


def test_dry_run_plans_without_mining(ray_cluster, tmp_path):
    out = tmp_path / "out"
    p = plan(cfg(out))
    assert (p["files"], p["records"], p["deletions"], p["latest"], p["done"], p["pending"]) == (
        2, 60, 6, 60, 0, 60)
    assert p["estimate_basis"] == "default"
    assert p["estimated_output_bytes"] == 60 * DEFAULT_BYTES_PER_ARTICLE
    assert 0 < p["driver_index_bytes_per_record"] <= 64
    # the index and its MeSH names (pipeline.linking), no run id, no tables, no manifest
    assert sorted(x.name for x in out.iterdir()) == ["_index", "_index_names"]
    assert "to mine 60" in format_plan(p)


def test_dry_run_counts_committed_work_and_measures_output_size(ray_cluster, tmp_path):
    out = tmp_path / "out"
    first = plan(cfg(out))
    sink = ResultSink(str(out), OUTPUT_TABLES, "run-1")
    sink.on_write_start()
    from pipeline.pubmed.xml import iter_index

    pmids = [r["pmid"] for r in iter_index(str(SAMPLE / "pubmed26n1334.xml.gz"))][:10]
    sink.write([article_block(pmids)], None)
    (out / "articles" / "part-leftover.parquet").write_bytes(b"x")  # uncommitted: kept by a dry run
    p = plan(cfg(out))
    assert p["done"] == 10 and p["pending"] == first["pending"] - 10
    assert p["estimate_basis"] == "measured on 10 committed articles"
    assert (out / "articles" / "part-leftover.parquet").exists()
