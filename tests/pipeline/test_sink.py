"""ResultSink commit protocol and recovery, called directly (no Ray cluster)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.sink import COMMITS, FAULT_ENV, OutputTable, ResultSink, block_key, explode, recover

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
    assert counts == {"articles": 5, "relations": 1 + 2 + 1 + 2 + 1, "n_generated": 50, "blocks": 2}
    assert len(list((tmp_path / COMMITS).glob("*.json"))) == 2
    assert sorted(read_all(tmp_path, "articles").column("pmid").to_pylist()) == [1, 2, 4, 5, 7]
    assert sorted(recover(str(tmp_path), ["articles", "relations"]).to_pylist()) == [1, 2, 4, 5, 7]


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
