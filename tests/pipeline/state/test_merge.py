"""Partitioned current view: revisions, (versioned) deletions, compaction vs a dict model; engines agree."""
from __future__ import annotations

import pyarrow.dataset as ds
import pytest

from pipeline.state.apply import apply_file
from pipeline.state.partitions import Layout
from pipeline.state.read import duckdb_sql, read_current
from pipeline.state.store import StateStore
from tests.pipeline.state.synth import apply_model, model_rows, rows, update_file

SETTINGS = {"tasks": ["ner"]}


def test_updates_across_buckets_match_the_model(tmp_path):
    layout = Layout(bucket_width=40, max_dead_ratio=0.3, max_files=3, max_compactions=1)
    store = StateStore(str(tmp_path / "state"))
    state = store.open(SETTINGS, layout)
    model: dict = {}
    compacted = 0
    for i in range(7):
        upd = update_file(i, f"pubmed26n{i:04d}.xml")
        state, counts = apply_file(store, state, upd["name"], upd["new"], upd["deletions"])
        apply_model(model, upd)
        compacted += counts["compacted"]
        assert counts["current_articles"] == len(model)
        for table in ("articles", "entities", "relations") if i % 3 == 2 else ("articles",):
            assert rows(read_current(str(tmp_path / "state"), table)) == model_rows(model, table), (i, table)
    assert compacted > 0  # the settings above force compactions: they keep the same rows
    assert len(state["buckets"]) > 5


def test_duckdb_and_pyarrow_hive_read_the_folders_directly(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    folder = str(tmp_path / "state")
    store = StateStore(folder)
    state = store.open(SETTINGS, Layout(bucket_width=50))
    model: dict = {}
    for i in range(3):
        upd = update_file(100 + i, f"pubmed26n{i:04d}.xml")
        state, _ = apply_file(store, state, upd["name"], upd["new"], upd["deletions"])
        apply_model(model, upd)
    for table in ("articles", "entities"):
        via_duckdb = duckdb.sql(duckdb_sql(folder, table)).fetch_arrow_table()
        assert rows(via_duckdb) == model_rows(model, table)
        data = ds.dataset(f"{folder}/current/{table}", partitioning="hive").to_table()
        dead = ds.dataset(f"{folder}/current/tombstones", partitioning="hive").to_table()
        live = data.join(dead, ["pmid", "gen", "bucket"], join_type="left anti")
        assert rows(live.drop_columns(["gen", "bucket"])) == model_rows(model, table)
        assert set(data.column("bucket").to_pylist()) > {0, 1}


def test_state_refuses_other_settings(tmp_path):
    StateStore(str(tmp_path)).open(SETTINGS, Layout())
    with pytest.raises(ValueError, match="was built with"):
        StateStore(str(tmp_path)).open({"tasks": ["re-ddi"]}, Layout())
