"""kill -9 at any point of an update, then rerun == an uninterrupted run; updates touch only their buckets."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.state.apply import apply_file
from pipeline.state.partitions import Layout
from pipeline.state.store import StateStore
from tests.pipeline.state.crash_driver import build
from tests.pipeline.state.synth import ARTICLES, DELETIONS, ENTITIES, RELATIONS

ROOT = Path(__file__).parents[3]


def snapshot(folder: Path) -> dict[str, list]:
    """Rows of every Parquet file under current/ and history/, by relative path."""
    out = {}
    for path in sorted(folder.rglob("*.parquet")):
        rel = str(path.relative_to(folder))
        if rel.startswith(("current/", "history/")):
            out[rel] = pq.read_table(path).to_pylist()
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[dict, dict]:
    folder = tmp_path_factory.mktemp("clean")
    state = build(str(folder), 4)
    assert state["processed"][2]["compacted"] >= 1  # the crashed update below also compacts
    return snapshot(folder), state


@pytest.mark.parametrize("fault", ["staged", "ops:3", "applied"])
def test_kill_mid_update_then_rerun_equals_clean_run(tmp_path, clean, fault):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tests.pipeline.state.crash_driver", str(tmp_path), "4", "2", fault],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    crashed = json.loads((tmp_path / "_state.json").read_text())
    assert len(crashed["processed"]) == (2 if fault == "staged" else 3)
    state = build(str(tmp_path), 4)
    assert snapshot(tmp_path) == clean[0]
    assert state["buckets"] == clean[1]["buckets"] and state["generation"] == clean[1]["generation"]
    assert not (tmp_path / "_staging").exists()


def _files(folder: Path) -> dict[str, tuple[int, str]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
            for p in folder.rglob("*") if p.is_file()}


def _update(pmids: list[int], deleted: list[int], name: str) -> tuple[dict, pa.Table]:
    arts = [{"pmid": p, "version": 1, "title": f"{name}:{p}", "source_file": name} for p in pmids]
    new = {"articles": pa.Table.from_pylist(arts, ARTICLES),
           "entities": pa.Table.from_pylist([{"pmid": p, "version": 1, "start": 0, "text": "x"} for p in pmids],
                                            ENTITIES),
           "relations": RELATIONS.empty_table()}
    dels = pa.Table.from_pylist([{"pmid": p, "version": None, "source_file": name, "position": 0} for p in deleted],
                                DELETIONS)
    return new, dels


def test_an_update_rewrites_only_the_buckets_it_touches(tmp_path):
    store = StateStore(str(tmp_path))
    state = store.open({"tasks": ["ner"]}, Layout(bucket_width=10))
    state, _ = apply_file(store, state, "pubmed26n0001.xml", *_update(list(range(200)), [], "pubmed26n0001.xml"))
    before = _files(tmp_path / "current")
    state, counts = apply_file(store, state, "pubmed26n0002.xml", *_update([35, 37, 122], [150], "pubmed26n0002.xml"))
    after = _files(tmp_path / "current")
    changed = {rel for rel in before.keys() | after.keys() if before.get(rel) != after.get(rel)}
    assert {rel.split("/")[1] for rel in changed} == {"bucket=00003", "bucket=00012", "bucket=00015"}
    assert all(after[rel] == before[rel] for rel in before if rel not in changed)  # same mtime, same bytes
    assert counts["buckets_touched"] == 3 and counts["current_articles"] == 199
