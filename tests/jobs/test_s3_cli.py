"""Every command on an S3 output (moto on loopback, tests/s3.py): run, export, aggregate, report,
parse, update. The `s3` fixture comes before `ray_cluster`, so Ray's workers get its endpoint."""
from __future__ import annotations

import gzip
import json

import pyarrow.parquet as pq
import pytest

from jobs.cli import main
from pipeline.storage import Location
from tests.jobs.test_run_e2e import article_xml

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def s3_run(s3, ray_cluster):
    """`biomine run --sample --tasks ner` (20 articles) into s3://BUCKET/run."""
    uri = s3.uri("run")
    code = main(["run", "--sample", "--demo-model", "--tasks", "ner", "--limit", "20", "--no-progress",
                 "--rows-per-file", "10", "-o", uri])
    assert code in (0, 3)
    return Location.open(uri)


def test_run_writes_data_manifest_and_report_on_s3(s3_run):
    manifest = s3_run.read_json("_manifest.json")
    assert manifest["status"] == "finished" and manifest["totals"]["articles"] == 20
    parts = [p for p in s3_run.files("articles", ".parquet") if "part-schema" not in p]
    assert sum(pq.read_table(p, filesystem=s3_run.fs).num_rows for p in parts) == 20
    assert s3_run.files("_commits", ".parquet")
    assert "biomine run report" in s3_run.read_text("report.html")
    assert not [i.path for i in s3_run.list(recursive=True) if i.path.endswith(".tmp")]


def test_export_aggregate_report_read_the_s3_output(s3_run, s3, tmp_path, capsys):
    local = tmp_path / "x.jsonl"
    assert main(["export", s3_run.uri, "--format", "jsonl", "-o", str(local)]) == 0
    assert len(local.read_text().splitlines()) == 20
    target = s3.uri("exports/x.pubtator.gz")
    assert main(["export", s3_run.uri, "--format", "pubtator", "-o", target]) == 0
    folder = Location.open(s3.uri("exports"))
    assert gzip.decompress(folder.read_bytes("x.pubtator.gz")).count(b"|t|") == 20
    assert main(["export", s3_run.uri, "--format", "tsv", "-o", s3.uri("exports/tsv") + "/"]) == 0
    assert sorted(p.rsplit("/", 1)[1] for p in folder.files("tsv")) == [
        "articles.tsv", "entities.tsv", "relations.tsv"]
    assert main(["aggregate", s3_run.uri]) == 0
    assert "-> s3://biomine-test/run/graph" in capsys.readouterr().out
    assert s3_run.files("graph/edges", ".parquet") and s3_run.files("graph/nodes", ".parquet")
    assert not [i for i in s3_run.list() if i.base_name.startswith(".graph")]
    s3_run.delete("report.html")
    assert main(["report", s3_run.uri]) == 0
    assert capsys.readouterr().out.strip() == "report: s3://biomine-test/run/report.html"
    assert s3_run.is_file("report.html")


def test_missing_s3_output_is_one_clear_line(s3, capsys):
    assert main(["export", s3.uri("nothing"), "--format", "jsonl", "-o", "/tmp/never.jsonl"]) == 2
    assert "output folder not found: s3://biomine-test/nothing" in capsys.readouterr().err


def test_parse_writes_parts_on_s3(s3, data_dir, capsys):
    uri = s3.uri("parsed")
    sample = sorted(str(p) for p in (data_dir / "pubmed").glob("*.xml.gz"))[:1]
    assert main(["parse", *sample, "-o", uri]) in (0, 3)
    out = Location.open(uri)
    parts = out.files("articles", ".parquet")
    assert len(parts) == 1 and pq.read_table(parts[0], filesystem=out.fs).num_rows > 0


def test_update_on_an_s3_state_loses_a_race_cleanly_then_goes_on(s3, ray_cluster, tmp_path, capsys,
                                                                monkeypatch):
    import pipeline.dataflow.update_job as update_job
    from pipeline.state.store import StateStore

    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "pubmed26n0001.xml").write_text(
        f"<PubmedArticleSet>{article_xml(101, 'first')}{article_xml(102, 'second')}</PubmedArticleSet>")
    state = s3.uri("state")
    real_apply = update_job.apply_file

    def rival_first(store, current, *args, **kwargs):  # another updater commits generation 1 first
        rival = StateStore(state)
        rival.commit({**rival.load(), "generation": current["generation"] + 1}, [])
        return real_apply(store, current, *args, **kwargs)

    args = ["update", "--state", state, "-i", str(inputs), "--demo-model", "--tasks", "ner", "--no-progress"]
    monkeypatch.setattr(update_job, "apply_file", rival_first)
    assert main(args) == 1
    assert "generation 1 was committed by another update" in capsys.readouterr().err
    loc = Location.open(state)
    assert loc.read_json("_state.json")["processed"] == []  # the loser committed nothing
    monkeypatch.setattr(update_job, "apply_file", real_apply)
    assert main(args) == 0  # the rerun goes on from generation 1 (the file's run is already mined)
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"generation": 2}
    assert [p["file"] for p in loc.read_json("_state.json")["processed"]] == ["pubmed26n0001.xml"]
    assert loc.is_file("_generations/g000002.json") and not loc.list("_staging")
    assert main(args) == 0  # nothing new: skipped
    assert "already processed, skipped: pubmed26n0001.xml" in capsys.readouterr().out
