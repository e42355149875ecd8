"""`biomine run` as a user meets it: exit codes, record accounting, failures, Ctrl-C, manifest history.

Each test is one real CLI run (its own driver process, joining the session's Ray cluster), so
the exit code, stderr and the files left behind are what a user would get.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.run import sample_inputs
from pipeline.pubmed.xml import iter_records

pytestmark = pytest.mark.ray
REPO = Path(__file__).parents[2]
FAST = ["--demo-model", "--tasks", "re-bc5cdr", "--max-new-tokens", "4", "--batch-size", "8",
        "--cpu-batch-size", "8", "--no-progress"]


def cli(ray_cluster, *args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    address = ray_cluster.get_runtime_context().gcs_address
    return subprocess.run([sys.executable, "-m", "jobs.cli", "run", *args, "--address", address],
                          cwd=REPO, env={**os.environ, "RAY_AUTH_MODE": "disabled", **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def articles(out: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in sorted((out / "articles").glob("*.parquet"))])


def oracle(paths: list[Path]) -> set[int]:
    """PMIDs a correct run mines: latest version per PMID, deleted ones removed (replayed here)."""
    alive: dict[int, int] = {}
    for path in paths:
        for rec in iter_records(str(path)):
            if rec["record_type"] == "article":
                alive[rec["pmid"]] = max(alive.get(rec["pmid"], 0), rec["version"])
            elif rec["record_type"] == "deletion":
                alive.pop(rec["pmid"], None)
    return set(alive)


def article_xml(pmid: int, body: str = "<Article><ArticleTitle>T.</ArticleTitle><Abstract><AbstractText>"
                "Cisplatin caused nephrotoxicity.</AbstractText></Abstract></Article>") -> str:
    return (f"<PubmedArticle><MedlineCitation Status=\"MEDLINE\" Owner=\"NLM\"><PMID Version=\"1\">{pmid}"
            f"</PMID>{body}</MedlineCitation></PubmedArticle>")


def test_mismatched_compression_accounting_and_noop_rerun(ray_cluster, tmp_path):
    """gzip named .xml and plain XML named .xml.gz are both mined in full; a record the read
    cannot parse is kept with its error; the identity adds up; a rerun keeps the totals."""
    baseline, update = sample_inputs()
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(baseline, folder / "pubmed26n1334.xml")  # gzip content, plain name
    (folder / "pubmed26n1335.xml.gz").write_bytes(gzip.decompress(Path(update).read_bytes()))  # the reverse
    first, second = [r["pmid"] for r in iter_records(baseline) if r["record_type"] == "article"][:2]
    (folder / "pubmed26n1336.xml").write_text(  # no <Article>: indexed, then unreadable; no PMID: rejected
        "<PubmedArticleSet>" + article_xml(99000001, body="") + article_xml(99000002) + article_xml(second)
        + "<PubmedArticle><MedlineCitation><Article/></MedlineCitation></PubmedArticle>"
        + f"<DeleteCitation><PMID Version=\"1\">{first}</PMID></DeleteCitation></PubmedArticleSet>")
    inputs = sorted(folder.iterdir())
    out = tmp_path / "out"
    done = cli(ray_cluster, str(folder), "-o", str(out), *FAST)
    assert done.returncode == 3, done.stderr[-3000:]  # finished, with record errors
    assert "finished" in done.stdout and "record error" in done.stdout
    assert "99000001" in done.stdout and f"{out}/errors/" in done.stdout  # first errors, and where the rest are
    mined = articles(out)
    want = oracle(inputs) | {99000001}  # iter_records rejects 99000001 (no <Article>); the run keeps it
    assert set(mined.column("pmid").to_pylist()) == want and mined.num_rows == len(want)
    manifest = json.loads((out / "_manifest.json").read_text())
    acc = manifest["accounting"]
    assert acc["ok"] and acc["unaccounted"] == 0
    assert acc["records"] == acc["articles"] + acc["errors"] + sum(acc["skipped"].values())
    assert acc["articles"] == len(want) and acc["errors"] == 1
    assert acc["skipped"]["deleted"] == 1 and acc["skipped"]["duplicate_copy"] == 1
    assert first not in want and second in want
    assert manifest["totals"]["articles"] == len(want) and len(manifest["history"]) == 1
    entry = manifest["history"][0]
    assert entry["status"] == "finished" and entry["host"] and entry["device"]["cpus"] > 0
    # a rerun has nothing to do and forgets nothing
    again = cli(ray_cluster, str(folder), "-o", str(out), *FAST)
    assert again.returncode == 3, again.stderr[-3000:]
    rerun = json.loads((out / "_manifest.json").read_text())
    assert rerun["totals"] == manifest["totals"] and rerun["status"] == "finished"
    assert rerun["abstracts_per_s"] == manifest["abstracts_per_s"]
    assert [h["status"] for h in rerun["history"]] == ["finished", "nothing to do"]
    strict = cli(ray_cluster, str(folder), "-o", str(out), *FAST, "--strict")  # errors are fatal
    assert strict.returncode == 1 and "--strict: 1 file error(s)" in strict.stderr, strict.stderr[-3000:]


def test_broken_record_costs_that_record_and_the_identity_holds(ray_cluster, tmp_path):
    """A syntax error inside one article of the update file: the run mines the other 29, the
    broken one is one error row and counts as rejected, nothing is unaccounted."""
    _, update = sample_inputs()
    raw = gzip.decompress(Path(update).read_bytes())
    starts = [i for i in range(len(raw)) if raw.startswith(b"<PubmedArticle>", i)]
    title = raw.index(b"<ArticleTitle>", starts[18]) + len(b"<ArticleTitle>")
    folder = tmp_path / "in"
    folder.mkdir()
    bad = folder / "pubmed26n1335.xml.gz"
    bad.write_bytes(gzip.compress(raw[:title] + b"<Oops attr=>" + raw[title:]))
    out = tmp_path / "out"
    done = cli(ray_cluster, str(folder), "-o", str(out), *FAST)
    assert done.returncode == 3, done.stderr[-3000:]
    want = oracle([bad])
    assert len(want) == 29 and set(articles(out).column("pmid").to_pylist()) == want
    acc = json.loads((out / "_manifest.json").read_text())["accounting"]
    assert acc["ok"] and acc["errors"] == 1 and acc["records"] == 30
    assert acc["records"] == acc["articles"] + acc["errors"] + sum(acc["skipped"].values())
    (err,) = pq.read_table(out / "errors" / "files.parquet").to_pylist()
    assert err["record_index"] == 18 and err["stage"] == "xml" and err["pmid"] is not None


def test_all_inputs_broken_fails(ray_cluster, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "pubmed26n0001.xml").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    (folder / "pubmed26n0002.xml").write_text("<html><body>Not Found</body></html>")
    out = tmp_path / "out"
    done = cli(ray_cluster, str(folder), "-o", str(out), *FAST)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "no record could be read from any of the 2 input file(s)" in done.stderr
    assert "pubmed26n0001.xml" in done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads((out / "_manifest.json").read_text())["status"] == "failed"


def test_model_failing_inside_ray_is_one_root_cause_and_frees_the_output(ray_cluster, tmp_path, tiny_models):
    """Weights that pass the header checks but not the loader: one short block naming the
    cause, no resume advice, the traceback in OUT/_logs, and -o free for another model."""
    from safetensors.numpy import load_file, save_file

    bad = tmp_path / "bad-model"
    shutil.copytree(tiny_models / "re", bad)
    tensors = load_file(str(bad / "model.safetensors"))
    tensors["stray.weight"] = tensors["biogpt.layer_norm.weight"].copy()
    save_file(tensors, str(bad / "model.safetensors"))
    out = tmp_path / "out"
    inputs = sample_inputs()[:1]
    done = cli(ray_cluster, *inputs, "-o", str(out), "--tasks", "re-bc5cdr", "--re-model", str(bad),
               "--max-new-tokens", "4", "--no-progress", "--limit", "8")
    assert done.returncode == 1, done.stderr[-3000:]
    err = done.stderr
    assert "failed: ValueError:" in err and "stray.weight" in err, err
    assert "fix the cause above" in err and "run the same command again" not in err
    assert "_logs" in err and len(err.splitlines()) < 40, err
    assert list((out / "_logs").glob("*.log"))
    assert not (out / "_run.json").exists()  # nothing committed: the folder is not locked
    fixed = cli(ray_cluster, *inputs, "-o", str(out), *FAST, "--limit", "8")
    assert fixed.returncode == 0, fixed.stderr[-3000:]


def test_sigint_is_exit_130_and_resume_finishes(ray_cluster, tmp_path):
    from benchmarks.pipeline import make_inputs

    (tmp_path / "in").mkdir()
    inputs = make_inputs(tmp_path / "in", records=80, per_file=4)  # 20 blocks
    out = tmp_path / "out"
    address = ray_cluster.get_runtime_context().gcs_address
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", "run", *inputs, "-o", str(out), *FAST,
                             "--rows-per-file", "4", "--address", address], cwd=REPO, text=True,
                            env={**os.environ, "RAY_AUTH_MODE": "disabled"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not list((out / "_commits").glob("*.parquet")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted" in err and "run the same command again" in err
    assert "Traceback" not in err
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    partial = manifest["totals"]["articles"]
    assert 0 < partial < 80
    resumed = cli(ray_cluster, *inputs, "-o", str(out), *FAST, "--rows-per-file", "4")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["totals"]["articles"] == 80
    assert [h["status"] for h in manifest["history"]] == ["interrupted", "finished"]
    pmids = articles(out).column("pmid").to_pylist()
    assert len(pmids) == len(set(pmids)) == 80
