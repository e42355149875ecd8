"""`biomine export` and `biomine report` from the command line (synthetic output, no Ray)."""
from __future__ import annotations

import gzip

import pytest

from jobs.cli import main
from pipeline.tasks.pubtator import parse_pubtator
from tests.pipeline.curation.synthetic import make_output


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return make_output(tmp_path_factory.mktemp("cli") / "out")


def test_export_pubtator_gz_with_pmid_list(out, tmp_path, capsys):
    pmids = tmp_path / "pmids.txt"
    pmids.write_text("# two articles\n9002\n\n9004\n")
    target = tmp_path / "sel.pubtator.gz"
    assert main(["export", str(out), "--format", "pubtator", "-o", str(target), "--pmids", str(pmids),
                 "--task", "re-bc5cdr,ner", "--relation", "CID"]) == 0
    assert "exported 2 documents" in capsys.readouterr().out
    docs = parse_pubtator(gzip.decompress(target.read_bytes()).decode().splitlines())
    assert sorted(d.pmid for d in docs) == ["9002", "9004"]
    assert sum(len(d.relations) for d in docs) == 3 and all(d.mentions for d in docs)


def test_export_errors_are_one_clear_line(out, tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("9002\nPMID9\n")
    assert main(["export", str(out), "--format", "jsonl", "-o", str(tmp_path / "x"), "--pmids", str(bad)]) == 2
    assert f"{bad}:2: expected a PMID" in capsys.readouterr().err
    assert main(["export", str(out), "--format", "jsonl", "-o", str(tmp_path / "x"), "--task", "foo"]) == 2
    assert "unknown task" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "none"), "--format", "tsv", "-o", str(tmp_path / "x")]) == 2
    assert "output folder not found" in capsys.readouterr().err


def test_report_command_writes_the_page(out, capsys):
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").is_file() and "report.html" in capsys.readouterr().out
