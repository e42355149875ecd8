"""Record accounting, read errors kept as rows, the manifest's history, failure causes, progress."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from pipeline.records.accounting import account, describe, fold_read_errors
from pipeline.dataflow.build import select_pending
from pipeline.records.failures import explain
from pipeline.records.manifest import invocation_entry, with_history
from pipeline.records.progress import Progress
from pipeline.pubmed.schema import INDEX_SCHEMA


def index_of(rows: list[tuple]) -> pa.Table:
    cols = list(zip(*rows))
    return pa.Table.from_pydict(dict(zip(INDEX_SCHEMA.names, cols)), schema=INDEX_SCHEMA)


# baseline: 1, 2, 3 (v1); update: 1 again, 3 version 2, 2 deleted, 4 new
INDEX = index_of([(1, 1, 0, 0, "article"), (2, 1, 0, 1, "article"), (3, 1, 0, 2, "article"),
                  (1, 1, 1, 0, "article"), (3, 2, 1, 1, "article"), (2, None, 1, 2, "deletion"),
                  (4, 1, 1, 3, "article")])


def test_identity_with_updates_and_deletions():
    pending, counts = select_pending(INDEX, pa.array([], pa.int64()), None)
    acc = account(INDEX, counts, {"articles": pending.num_rows}, [{"stage": "record"}, {"stage": "xml"}])
    assert acc["skipped"] == {"duplicate_copy": 1, "deleted": 1, "older_version": 1, "over_limit": 0}
    assert acc["articles"] == 3 and acc["errors"] == 1 and acc["records"] == 7 and acc["ok"]
    assert "records 7 = articles 3 + rejected 1 + skipped 3" in describe(acc)


def test_limit_resume_and_a_lost_record():
    pending, counts = select_pending(INDEX, pa.array([1], pa.int64()), 2)  # pmid 1 mined before
    acc = account(INDEX, counts, {"articles": pending.num_rows}, [])
    assert acc["skipped"]["over_limit"] == 1 and acc["articles"] == 2 and acc["ok"]
    lost = account(INDEX, counts, {"articles": pending.num_rows - 1}, [])
    assert not lost["ok"] and lost["unaccounted"] == 1
    assert "1 unaccounted: 1 were to be mined, 0 written" in describe(lost)


def test_read_errors_become_article_rows_with_their_error():
    batch = pa.table({"pmid": [7, 8, None], "title": ["ok", None, None], "abstract": ["a", None, None],
                      "source_file": ["f.xml"] * 3, "file_seq": [1, 1, 1], "position": [0, 1, 2],
                      "record_type": ["article", "error", "error"],
                      "error_message": [None, "f.xml: line 9: no <Article>", "f.xml: byte 70: broken"],
                      "error_position": [None, "line 9, column 0", "byte 70"]})
    out = fold_read_errors(batch)
    assert out.column("pmid").to_pylist() == [7, 8]  # no PMID: cannot be a row, logged
    errors = out.column("errors").to_pylist()
    assert errors[0] == [] and errors[1][0]["stage"] == "read" and "no <Article>" in errors[1][0]["message"]
    assert errors[1][0]["record_index"] == 1 and errors[1][0]["position"] == "line 9, column 0"
    plain = batch.drop_columns(["record_type"])
    assert fold_read_errors(plain) is plain


def entry(status: str, articles: int) -> dict:
    return invocation_entry("r1", status, 100.0, 110.0, {"articles": articles, "errors": 1 if articles else 0},
                            {"address": "local"}, None, articles)


def test_history_totals_survive_a_noop_and_add_up_over_a_resume():
    first = with_history(None, {"status": "interrupted", "config": {}, "counts": {"index": {}}},
                         entry("interrupted", 40))
    resumed = with_history(first, {"status": "finished", "config": {}, "counts": {"index": {}}},
                           entry("finished", 60))
    assert resumed["totals"]["articles"] == 100 and resumed["totals"]["errors"] == 2
    assert resumed["abstracts_per_s"] == 5.0  # 100 articles over 20 s of two invocations
    noop = with_history(resumed, {"status": "nothing to do", "config": {}, "counts": {"index": {"done": 100}}},
                        entry("nothing to do", 0))
    assert noop["totals"] == resumed["totals"] and noop["status"] == "finished"
    assert noop["abstracts_per_s"] == 5.0 and noop["counts"]["index"] == {"done": 100}
    assert [h["status"] for h in noop["history"]] == ["interrupted", "finished", "nothing to do"]


def test_failure_root_cause_and_advice():
    try:
        try:
            raise ValueError("model.safetensors: checkpoint does not fit")
        except ValueError as inner:
            raise RuntimeError("actor pool failed") from inner
    except RuntimeError as exc:
        failure = explain(exc)
    assert failure.summary == "ValueError: model.safetensors: checkpoint does not fit"
    assert not failure.transient and "fix the cause" in failure.advice()

    class ActorDiedError(Exception):
        pass

    class SystemException(Exception):
        pass

    text = ("The actor died because of an error raised in its creation task, \x1b[36mray::Gen\x1b[39m\n"
            "Traceback (most recent call last):\n  File \"x.py\", line 3\n"
            "FileNotFoundError: /m: no config.json")
    try:  # as Ray Data raises it
        raise ActorDiedError(text) from SystemException()
    except ActorDiedError as exc:
        failure = explain(exc)
    assert failure.kind == "FileNotFoundError" and failure.message == "/m: no config.json"
    assert explain(RuntimeError("injected fault")).transient
    assert "resume" in explain(ConnectionError("reset")).advice()


def _commit(path, rows: int, counts: dict) -> None:
    """A commit record as the sink writes it: sorted PMIDs, what it committed in the metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.dataflow.sink import META_KEY

    table = pa.table({"pmid": pa.array(range(rows), pa.int64())})
    pq.write_table(table.replace_schema_metadata({META_KEY: json.dumps({"rows": rows, "counts": counts})}), path)


def test_progress_counts_only_new_commits(tmp_path):
    commits = tmp_path / "_commits"
    commits.mkdir()
    _commit(commits / "old.parquet", 5, {"n_errors": 1})
    progress = Progress(str(tmp_path), to_mine=10, show=False, interval_s=60).start()
    _commit(commits / "a.parquet", 4, {"n_entities": 7, "n_errors": 2})
    (commits / "_inflight-x.tmp").write_bytes(b"half a file")  # a record mid-write is not counted
    assert progress.poll()["articles"] == 4
    _commit(commits / "b.parquet", 3, {})
    counts = progress.stop()
    assert counts == {"articles": 7, "relations": 0, "entities": 7, "errors": 2, "blocks": 2}
    assert progress.line().startswith("mined 7/10 articles (70%)") and "errors 2" in progress.line()


@pytest.mark.parametrize("done, to_mine, eta", [(0, 10, "--:--"), (10, 10, "--:--")])
def test_progress_line_without_eta(tmp_path, done, to_mine, eta):
    progress = Progress(str(tmp_path), to_mine=to_mine, show=False)
    progress.counts["articles"] = done
    assert f"ETA {eta}" in progress.line()


def test_progress_follows_the_model_stage_between_commits(tmp_path):
    from pipeline.records.engine_stats import write_actor_counters

    progress = Progress(str(tmp_path), to_mine=1000, show=False, interval_s=60).start()
    write_actor_counters(str(tmp_path), "old-run", 0.0, {"stage_rows": 900})  # an earlier invocation's
    path = tmp_path / "_engine" / "old-run.json"
    record = json.loads(path.read_text())
    record["written_at"] = 1.0
    path.write_text(json.dumps(record))
    assert progress.poll()["articles"] == 0 and progress.through_model == 0
    assert "model" not in progress.line() and "ETA --:--" in progress.line()
    write_actor_counters(str(tmp_path), "a1", 0.0, {"stage_rows": 256, "stage_calls": 2})
    write_actor_counters(str(tmp_path), "a2", 0.0, {"stage_rows": 128, "stage_calls": 1})
    progress.poll()
    assert progress.through_model == 384 and progress.counts["articles"] == 0  # nothing committed yet
    line = progress.line()
    assert line.startswith("mined 0/1,000 articles (0%)  model 384  ") and "ETA --:--" not in line
    (tmp_path / "_commits").mkdir()
    _commit(tmp_path / "_commits" / "g.parquet", 384, {})
    assert progress.stop()["articles"] == 384  # the final count is the committed one
    assert "model" not in progress.line()  # committed caught up with the model stage
