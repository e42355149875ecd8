"""End to end on the shared local Ray (fake GPU slot) with the tiny demo model."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.run import sample_inputs
from pipeline.config import RunConfig
from pipeline.dataflow.outputs import OUT_ARTICLE_SCHEMA
from pipeline.pubmed.xml import iter_records
from pipeline.pubmed.schema import ERROR_SCHEMA
from pipeline.dataflow.sink import FAULT_ENV
from pipeline.tasks.rows import ENTITY_SCHEMA, RELATION_SCHEMA

pytestmark = pytest.mark.ray
REPO = Path(__file__).parents[2]


def config(inputs: list[str], out: Path, **kw) -> RunConfig:
    base = dict(inputs=inputs, output=str(out), tasks=["re-bc5cdr", "ner"], demo_model=True,
                max_new_tokens=6, batch_size=8, cpu_batch_size=8, progress=False)
    return RunConfig(**{**base, **kw})


def expected_latest(paths: list[str]) -> dict[int, tuple[int, str | None]]:
    """Oracle, written independently of the product: replay the files in order."""
    latest: dict[int, tuple[int, str | None]] = {}
    for path in paths:
        for rec in iter_records(path):
            kind = type(rec).__name__.lower()
            row = rec if isinstance(rec, dict) else vars(rec)
            if "delet" in kind or row.get("record_type") == "deletion":
                latest.pop(row["pmid"], None)
            elif "error" not in kind and row.get("record_type", "article") == "article":
                if row["pmid"] not in latest or row["version"] >= latest[row["pmid"]][0]:
                    latest[row["pmid"]] = (row["version"], row["title"])
    return latest


def table(out: Path, name: str) -> pa.Table | None:
    files = sorted((out / name).glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else None


def wait_for_idle_cluster(ray, timeout_s: float = 90.0) -> None:
    """Wait until the failed run's actors are gone and every CPU/GPU is free again."""
    import time

    total = ray.cluster_resources()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        free = ray.available_resources()
        if all(free.get(k, 0) >= total[k] for k in ("CPU", "GPU") if k in total):
            return
        time.sleep(0.5)
    raise AssertionError(f"resources not released: {ray.available_resources()} of {total}")


def run(cfg: RunConfig) -> dict:
    from pipeline.dataflow.build import run as run_job

    return run_job(cfg)


def test_sample_end_to_end(ray_cluster, tmp_path):
    inputs = sample_inputs()
    manifest = run(config(inputs, tmp_path / "out"))
    out = tmp_path / "out"
    articles = table(out, "articles")
    assert articles.schema == OUT_ARTICLE_SCHEMA
    want = expected_latest(inputs)
    pmids = articles.column("pmid").to_pylist()
    assert sorted(pmids) == sorted(want) and len(pmids) == len(set(pmids))
    assert {r["pmid"]: r["version"] for r in articles.to_pylist()} == {k: v[0] for k, v in want.items()}
    entities = table(out, "entities")
    assert entities is not None and entities.schema == ENTITY_SCHEMA
    assert set(entities.column("pmid").to_pylist()) <= set(pmids)
    # --demo-model is the random RE model only: ner tags with the bundled tagger
    assert set(entities.column("model_id").to_pylist()) == {"bundled:cdr-small"}
    assert {"Chemical", "Disease"} <= set(entities.column("type").to_pylist())
    for row in entities.to_pylist()[:50]:  # spans point at the text they claim
        assert row["end"] > row["start"]
    rels = table(out, "relations")
    assert rels is None or rels.schema == RELATION_SCHEMA
    saved = json.loads((out / "_manifest.json").read_text())
    assert saved["status"] == "finished" == manifest["status"]
    assert saved["counts"]["written"]["articles"] == len(want)
    for column in ("n_relations", "n_entities"):  # the articles' n_ columns summed
        assert saved["counts"]["written"][column] == sum(articles.column(column).to_pylist())
    assert "n_generated" in saved["counts"]["written"]
    assert saved["versions"]["ray"] and saved["versions"]["torch"]
    assert not (out / "_lease.json").exists()  # released when the run ended
    # a rerun of a finished run does no model work
    again = run(config(inputs, out))
    assert again["history"][-1]["status"] == "nothing to do" and again["status"] == "finished"
    assert again["counts"]["index"]["pending"] == 0 and again["totals"] == saved["totals"]
    assert table(out, "articles").num_rows == len(want)


def test_kill_and_resume_is_exactly_once(ray_cluster, tmp_path):
    from benchmarks.pipeline import make_inputs

    (tmp_path / "in").mkdir()
    inputs = make_inputs(tmp_path / "in", records=60, per_file=10)  # 6 files, groups of >= 10 rows
    out = tmp_path / "out"
    # the crashing run is its own driver process (as in production), on the session's cluster
    address = ray_cluster.get_runtime_context().gcs_address
    crash = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "run", *inputs, "-o", str(out), "--demo-model",
         "--tasks", "re-bc5cdr", "--max-new-tokens", "6", "--batch-size", "8", "--cpu-batch-size", "8",
         "--rows-per-file", "10", "--no-progress", "--address", address],
        cwd=REPO, env={**os.environ, FAULT_ENV: "2", "RAY_AUTH_MODE": "disabled"},
        capture_output=True, text=True, timeout=300)
    assert crash.returncode == 1, crash.stderr[-3000:]
    assert "injected fault" in crash.stderr and "run the same command again" in crash.stderr
    assert not (out / "_lease.json").exists()  # a failed run releases its lease too
    wait_for_idle_cluster(ray_cluster)  # the dead driver's actors are gone
    crashed = json.loads((out / "_manifest.json").read_text())
    assert crashed["status"] == "failed" and "injected fault" in crashed["failure"]
    committed = len(list((out / "_commits").glob("*.parquet")))
    assert committed >= 2
    manifest = run(config(inputs, out, tasks=["re-bc5cdr"], rows_per_file=10))
    assert manifest["status"] == "finished"
    assert manifest["counts"]["index"]["done"] > 0
    pmids = table(out, "articles").column("pmid").to_pylist()
    assert len(pmids) == len(set(pmids)) == len(expected_latest(inputs))


def test_bad_file_and_overlong_record_become_errors(ray_cluster, tmp_path):
    good = sample_inputs()[0]
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(good, folder / "pubmed26n0001.xml.gz")
    raw = gzip.decompress(Path(good).read_bytes())
    (folder / "pubmed26n0002.xml.gz").write_bytes(gzip.compress(raw)[: len(gzip.compress(raw)) // 2])
    long_abstract = " ".join(["aspirin induced hepatotoxicity in rats"] * 300)
    (folder / "pubmed26n0003.xml").write_text(
        "<PubmedArticleSet><PubmedArticle><MedlineCitation Status=\"MEDLINE\" Owner=\"NLM\">"
        "<PMID Version=\"1\">99999901</PMID><Article><ArticleTitle>Long one.</ArticleTitle>"
        f"<Abstract><AbstractText>{long_abstract}</AbstractText></Abstract></Article>"
        "</MedlineCitation></PubmedArticle></PubmedArticleSet>")
    out = tmp_path / "out"
    manifest = run(config([str(folder)], out, tasks=["re-bc5cdr"], max_source_tokens=4000))
    assert manifest["status"] == "finished"
    errors = table(out, "errors")
    assert errors.schema == ERROR_SCHEMA
    rows = errors.to_pylist()
    assert any(r["source_file"] == "pubmed26n0002.xml.gz" for r in rows)
    assert any(r["pmid"] == 99999901 and "does not fit" in r["message"] for r in rows)
    pmids = table(out, "articles").column("pmid").to_pylist()
    assert 99999901 in pmids  # the article is kept, with its error


def article_xml(pmid: int, title: str, version: int = 1) -> str:
    return (f"<PubmedArticle><MedlineCitation Status=\"MEDLINE\" Owner=\"NLM\"><PMID Version=\"{version}\">"
            f"{pmid}</PMID><Article><ArticleTitle>{title}</ArticleTitle><Abstract><AbstractText>"
            f"Cisplatin caused nephrotoxicity in {title}.</AbstractText></Abstract></Article>"
            "</MedlineCitation></PubmedArticle>")


def test_update_files_revise_and_delete(ray_cluster, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "pubmed26n0001.xml").write_text(
        "<PubmedArticleSet>" + article_xml(101, "old title") + article_xml(102, "to delete")
        + article_xml(103, "kept") + "</PubmedArticleSet>")
    (folder / "pubmed26n0002.xml").write_text(
        "<PubmedArticleSet>" + article_xml(101, "new title") + article_xml(103, "second version", 2)
        + "<DeleteCitation><PMID Version=\"1\">102</PMID></DeleteCitation></PubmedArticleSet>")
    out = tmp_path / "out"
    run(config([str(folder)], out, tasks=["re-bc5cdr"]))
    rows = {r["pmid"]: r for r in table(out, "articles").to_pylist()}
    assert set(rows) == {101, 103}
    assert rows[101]["title"] == "new title" and rows[101]["source_file"] == "pubmed26n0002.xml"
    assert rows[103]["version"] == 2


def test_dead_gpu_actor_is_replaced_and_its_batch_retried(ray_cluster, tmp_path, monkeypatch):
    from pipeline.dataflow.gpu_stage import GPU_FAULT_ENV

    marker = tmp_path / "died"
    monkeypatch.setenv(GPU_FAULT_ENV, str(marker))
    inputs = sample_inputs()
    manifest = run(config(inputs, tmp_path / "out", tasks=["re-bc5cdr"]))
    assert marker.exists()  # an actor really died
    assert manifest["status"] == "finished"
    pmids = table(tmp_path / "out", "articles").column("pmid").to_pylist()
    assert len(pmids) == len(set(pmids)) == len(expected_latest(inputs))


def test_gpu_stage_gets_several_batches_at_once_from_one_big_block(ray_cluster, tmp_path):
    # one input file and a CPU batch larger than the file: the tokenizer emits ONE block, which
    # Ray would hand to the GPU actor as one task whose batches run one after another
    inputs = [p for p in sample_inputs() if p.endswith("pubmed26n1334.xml.gz")]
    abstracts = sum(1 for r in iter_records(inputs[0]) if (r if isinstance(r, dict) else vars(r)).get("abstract"))
    manifest = run(config(inputs, tmp_path / "out", tasks=["re-bc5cdr"], batch_size=4,
                          cpu_batch_size=64, max_new_tokens=48))
    engine = manifest["engine"]
    assert engine["sequences"] == abstracts and engine["decode_row_efficiency"] == 1.0
    assert engine["stage_calls"] >= abstracts // 4
    assert engine["peak_calls_in_flight"] >= 2  # batches of the one block were in flight together
    assert engine["host_syncs"] == engine["decode_steps"] + engine["prefill_steps"]
