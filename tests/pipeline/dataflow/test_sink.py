"""ResultSink commit protocol and recovery, called directly (no Ray cluster)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.dataflow.sink import (COMMITS, FAULT_ENV, KILL_ENV, OutputTable, ResultSink, block_key, commit_log,
                           explode, recover)

ARTICLES = pa.schema([("pmid", pa.int64()), ("title", pa.string())])
REL = pa.schema([("pmid", pa.int64()), ("head", pa.string())])
TABLES = [OutputTable("articles", ARTICLES), OutputTable("relations", REL, nested="relations")]


def block(pmids: list[int]) -> pa.Table:
    rels = [[{"pmid": p, "head": f"h{p}-{k}"} for k in range(p % 3)] for p in pmids]
    return pa.table({"pmid": pa.array(pmids, pa.int64()),
                     "title": [f"t{p}" for p in pmids],
                     "relations": pa.array(rels, pa.list_(pa.struct(list(REL)))),
                     "n_generated": pa.array([10] * len(pmids), pa.int64())})


def read_all(out, name: str) -> pa.Table:
    files = sorted((out / name).glob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else None


def test_explode_flattens_nested_rows():
    rows = explode(block([1, 2, 5]), TABLES[1])
    assert rows.schema == REL
    assert rows.column("head").to_pylist() == ["h1-0", "h2-0", "h2-1", "h5-0", "h5-1"]
    assert explode(block([3]), TABLES[1]).num_rows == 0


def test_block_key_ignores_order():
    assert block_key(pa.array([3, 1, 2])) == block_key(pa.array([1, 2, 3]))
    assert block_key(pa.array([1, 2])) != block_key(pa.array([1, 2, 3]))


def test_write_commits_every_table_and_counts(tmp_path):
    sink = ResultSink(str(tmp_path), TABLES, "run-1")
    sink.on_write_start()
    counts = sink.write([block([1, 2, 4]), block([5, 7])], None)
    assert counts == {"articles": 5, "relations": 1 + 2 + 1 + 2 + 1, "n_generated": 50, "blocks": 2,
                      "groups": 1}
    # one write task = one file-group: one file per table, one commit record
    assert len(list((tmp_path / COMMITS).glob("*.parquet"))) == 1
    assert len(list((tmp_path / "articles").glob("part-*.parquet"))) == 2  # + the schema file
    assert sorted(read_all(tmp_path, "articles").column("pmid").to_pylist()) == [1, 2, 4, 5, 7]
    assert sorted(recover(str(tmp_path), ["articles", "relations"]).to_pylist()) == [1, 2, 4, 5, 7]
    (record,) = commit_log(str(tmp_path))
    assert record["rows"] == 5 and record["files"] == {"articles": f"part-{record['key']}.parquet",
                                                       "relations": f"part-{record['key']}.parquet"}


def test_rewriting_a_block_is_idempotent(tmp_path):
    sink = ResultSink(str(tmp_path), TABLES, "run-1")
    sink.on_write_start()
    sink.write([block([1, 2])], None)
    sink.write([block([2, 1])], None)  # a retried task: same PMIDs, same file names
    assert read_all(tmp_path, "articles").num_rows == 2


def test_crash_before_commit_is_rolled_back(tmp_path, monkeypatch):
    sink = ResultSink(str(tmp_path), TABLES, "run-1")
    sink.on_write_start()
    sink.write([block([1, 2])], None)
    monkeypatch.setenv(FAULT_ENV, "1")
    crashing = ResultSink(str(tmp_path), TABLES, "run-1")
    with pytest.raises(RuntimeError, match="injected fault"):
        crashing.write([block([4, 5])], None)
    # the data files of the crashed block exist, its commit marker does not
    assert read_all(tmp_path, "articles").num_rows == 4
    (tmp_path / "articles" / "part-x.parquet.abc.tmp").write_bytes(b"partial")
    done = recover(str(tmp_path), ["articles", "relations"])
    assert sorted(done.to_pylist()) == [1, 2]
    assert sorted(read_all(tmp_path, "articles").column("pmid").to_pylist()) == [1, 2]
    assert not list((tmp_path / "articles").glob("*.tmp"))
    assert {r["pmid"] for r in read_all(tmp_path, "relations").to_pylist()} == {1, 2}


def test_recover_on_missing_output_is_empty(tmp_path):
    assert recover(str(tmp_path / "nothing"), ["articles"]).to_pylist() == []


def test_empty_table_reads_back_with_its_schema(tmp_path):
    import duckdb
    import pyarrow.dataset as ds

    sink = ResultSink(str(tmp_path), TABLES, "run-1")
    sink.on_write_start()
    sink.write([block([3, 6])], None)  # p % 3 == 0: no relation rows at all
    rels = ds.dataset(str(tmp_path / "relations"), format="parquet").to_table()
    assert rels.num_rows == 0 and rels.schema == REL
    assert list(pq.read_table(str(tmp_path / "relations")).to_pandas().columns) == ["pmid", "head"]
    con = duckdb.connect()
    cols = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{tmp_path}/relations/*.parquet')").fetchall()
    assert [c[0] for c in cols] == ["pmid", "head"]
    articles = ds.dataset(str(tmp_path / "articles"), format="parquet").to_table()
    assert sorted(articles.column("pmid").to_pylist()) == [3, 6]


def test_group_streams_row_groups_into_one_file_per_table(tmp_path, monkeypatch):
    monkeypatch.setattr("pipeline.dataflow.sink.ROW_GROUP_ROWS", 4)
    sink = ResultSink(str(tmp_path), TABLES, "run-1", rows_per_file=10)
    assert sink.min_rows_per_write == 10  # what Ray bundles into one write task
    sink.on_write_start()
    sink.write([block(list(range(k, k + 3))) for k in range(0, 30, 3)], None)
    (record,) = commit_log(str(tmp_path))
    meta = pq.ParquetFile(tmp_path / "articles" / record["files"]["articles"]).metadata
    assert meta.num_rows == 30 and meta.num_row_groups > 1
    assert pq.ParquetFile(tmp_path / "articles" / record["files"]["articles"]).metadata.row_group(0) \
        .column(0).compression == "ZSTD"


def test_recover_reads_the_commit_log_not_the_data_files(tmp_path):
    sink = ResultSink(str(tmp_path), TABLES, "run-1")
    sink.on_write_start()
    sink.write([block([10, 11, 12])], None)
    (record,) = commit_log(str(tmp_path))
    (tmp_path / "articles" / record["files"]["articles"]).write_bytes(b"not parquet")
    assert sorted(recover(str(tmp_path), ["articles", "relations"]).to_pylist()) == [10, 11, 12]


KILLED_WRITER = """
import sys
from pipeline.dataflow.sink import ResultSink
from tests.pipeline.dataflow.test_sink import TABLES, block
sink = ResultSink(sys.argv[1], TABLES, "run-1")
sink.write([block([int(p) for p in sys.argv[2:]])], None)
"""


def test_kill_9_during_a_multi_file_group_is_exactly_once(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).parents[3]
    sink = ResultSink(str(tmp_path), TABLES, "run-1")
    sink.on_write_start()
    sink.write([block([1, 2])], None)  # committed before the crash
    env = {**os.environ, KILL_ENV: "1", "PYTHONPATH": str(repo)}
    # group [4, 5]: rows in articles and relations; killed after the first file is in place
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path), "4", "5"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert sorted(read_all(tmp_path, "articles").column("pmid").to_pylist()) == [1, 2, 4, 5]
    assert list((tmp_path / "relations").glob("_inflight-*.tmp"))  # its second file, half done
    done = recover(str(tmp_path), ["articles", "relations"])
    assert sorted(done.to_pylist()) == [1, 2]
    assert sorted(read_all(tmp_path, "articles").column("pmid").to_pylist()) == [1, 2]
    assert not list(tmp_path.glob("*/*.tmp"))
    # the resumed run writes the pending PMIDs again: each lands exactly once
    ResultSink(str(tmp_path), TABLES, "run-1").write([block([4, 5])], None)
    assert sorted(read_all(tmp_path, "articles").column("pmid").to_pylist()) == [1, 2, 4, 5]
    assert sorted(recover(str(tmp_path), ["articles", "relations"]).to_pylist()) == [1, 2, 4, 5]
    assert sorted(r["pmid"] for r in read_all(tmp_path, "relations").to_pylist()) == [1, 2, 2, 4, 5, 5]


def test_recover_refuses_an_older_layout_without_deleting(tmp_path):
    (tmp_path / COMMITS).mkdir()
    (tmp_path / COMMITS / "abc.json").write_text("{}")
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles" / "part-abc.parquet").write_bytes(b"data")
    with pytest.raises(ValueError, match="older biomine"):
        recover(str(tmp_path), ["articles"])
    assert (tmp_path / "articles" / "part-abc.parquet").exists()
