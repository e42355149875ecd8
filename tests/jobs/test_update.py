"""`biomine update`: current view, append-only history, idempotence (shared local Ray)."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.cli import main
from pipeline.state.read import read_current
from tests.jobs.test_run_e2e import article_xml

pytestmark = pytest.mark.ray


def read(folder: Path) -> pa.Table:
    files = sorted(folder.glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files])


def read_live(state: Path, table: str) -> pa.Table:
    return read_current(str(state), table)


def write(folder: Path, name: str, body: str) -> None:
    (folder / name).write_text(f"<PubmedArticleSet>{body}</PubmedArticleSet>")


def update(state: Path, inputs: Path, capsys) -> str:
    code = main(["update", "--state", str(state), "-i", str(inputs), "--demo-model",
                 "--tasks", "re-bc5cdr,ner", "--max-new-tokens", "4", "--no-progress"])
    assert code == 0
    return capsys.readouterr().out


def test_update_folds_files_into_current_and_history(ray_cluster, tmp_path, capsys):
    inputs, state = tmp_path / "in", tmp_path / "state"
    inputs.mkdir()
    write(inputs, "pubmed26n0001.xml", article_xml(101, "first") + article_xml(102, "doomed")
          + article_xml(103, "stable"))
    write(inputs, "pubmed26n0002.xml", article_xml(101, "revised") + article_xml(104, "new")
          + '<DeleteCitation><PMID Version="1">102</PMID></DeleteCitation>')
    out = update(state, inputs, capsys)
    assert "pubmed26n0002.xml: upserted 2, deleted 1, current articles 3" in out
    current = {r["pmid"]: r for r in read_live(state, "articles").to_pylist()}
    assert set(current) == {101, 103, 104}
    assert current[101]["title"] == "revised" and current[101]["source_file"] == "pubmed26n0002.xml"
    entities = read_live(state, "entities")
    assert 102 not in entities.column("pmid").to_pylist()
    fresh = read(state / "runs" / "pubmed26n0002" / "entities")
    n101 = [r for r in fresh.to_pylist() if r["pmid"] == 101]
    assert [r for r in entities.to_pylist() if r["pmid"] == 101] == n101  # replaced, not appended
    history = read(state / "history" / "articles")
    assert sorted(zip(history.column("pmid").to_pylist(), history.column("change_file").to_pylist())) == [
        (101, "pubmed26n0001.xml"), (101, "pubmed26n0002.xml"), (102, "pubmed26n0001.xml"),
        (103, "pubmed26n0001.xml"), (104, "pubmed26n0002.xml")]
    assert read(state / "history" / "deletions").column("pmid").to_pylist() == [102]
    assert not (state / "graph").exists()  # the graph is opt-in: no `biomine aggregate` yet
    assert not list(state.rglob("_lease.json"))  # STATE's lease released; the file runs take none

    # the same files again: nothing changes
    before = (state / "_state.json").read_text()
    out = update(state, inputs, capsys)
    assert "already processed, skipped: pubmed26n0001.xml, pubmed26n0002.xml" in out
    assert (state / "_state.json").read_text() == before
    assert read_live(state, "articles").num_rows == 3

    # a later file with a new version of 103, once the graph was made: the update rebuilds it
    from pipeline.curation.graph import build_graph

    build_graph(state)
    made = {p.name: p.stat().st_ino for p in (state / "graph" / "edges").iterdir()}
    write(inputs, "pubmed26n0003.xml", article_xml(103, "second version", 2))
    update(state, inputs, capsys)
    rebuilt = {p.name: p.stat().st_ino for p in (state / "graph" / "edges").iterdir()}
    assert rebuilt.keys() == made.keys() and rebuilt != made
    current = {r["pmid"]: r for r in read_live(state, "articles").to_pylist()}
    assert set(current) == {101, 103, 104} and current[103]["version"] == 2
    doc = json.loads((state / "_state.json").read_text())
    assert doc["generation"] == 3
    live = {rel for b in doc["buckets"].values() for files in b["files"].values() for rel in files}
    on_disk = {str(p.relative_to(state)) for p in (state / "current").rglob("*.parquet")}
    assert on_disk == live  # nothing stale left behind
    assert all("/bucket=00000/" in rel for rel in live)


def test_update_refuses_other_settings(ray_cluster, tmp_path, capsys):
    inputs, state = tmp_path / "in", tmp_path / "state"
    inputs.mkdir()
    write(inputs, "pubmed26n0001.xml", article_xml(201, "one"))
    update(state, inputs, capsys)
    code = main(["update", "--state", str(state), "-i", str(inputs), "--demo-model",
                 "--tasks", "re-ddi", "--no-progress"])
    assert code == 2
    assert "was built with" in capsys.readouterr().err


def test_update_refuses_a_live_lease_and_breaks_a_dead_ones(ray_cluster, tmp_path, capsys):
    inputs, state = tmp_path / "in", tmp_path / "state"
    inputs.mkdir()
    state.mkdir()
    write(inputs, "pubmed26n0001.xml", article_xml(301, "one"))
    # left by an updater whose driver was killed a moment ago: its heartbeat still looks live
    (state / "_lease.json").write_text(json.dumps({
        "job": "update", "run_id": "update-killed", "host": "gpu-3", "pid": 777,
        "started": "2026-12-05T10:00:00+00:00", "heartbeat": "2999-01-01T00:00:00+00:00", "ttl_s": 600,
        "token": "dead"}))
    args = ["update", "--state", str(state), "-i", str(inputs), "--demo-model", "--tasks", "ner",
            "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "in use by another biomine update (run update-killed, host gpu-3, pid 777" in err
    assert not (state / "_state.json").exists()  # refused before any work
    assert main([*args, "--break-lease"]) == 0
    assert "pubmed26n0001.xml: upserted 1" in capsys.readouterr().out
    assert not (state / "_lease.json").exists()
