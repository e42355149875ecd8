"""`biomine parse` end to end, in-process."""
from __future__ import annotations

import pyarrow.parquet as pq

from jobs.cli import main
from pipeline.pubmed.schema import ARTICLE_SCHEMA, DELETION_SCHEMA, ERROR_SCHEMA

SAMPLES = {"pubmed26n1334.xml.gz": "pmparser_sample_pubmed26n1334.xml.gz",
           "pubmed26n1335.xml.gz": "pmparser_sample_pubmed26n1335_update.xml.gz"}


def test_parse_writes_parquet_and_summary(tmp_path, data_dir, capsys):
    for name, src in SAMPLES.items():
        (tmp_path / name).write_bytes((data_dir / "pubmed" / src).read_bytes())
    out = tmp_path / "out"
    assert main(["parse", str(tmp_path / "*.xml.gz"), "-o", str(out), "--batch-rows", "8"]) == 0
    arts = pq.read_table(out / "articles")
    assert arts.schema == ARTICLE_SCHEMA and arts.num_rows == 60
    assert sorted(p.name for p in (out / "articles").iterdir()) == [
        "pubmed26n1334.parquet", "pubmed26n1335.parquet"]
    dels = pq.read_table(out / "deletions" / "pubmed26n1335.parquet")
    assert dels.schema == DELETION_SCHEMA and dels.num_rows == 6
    assert not (out / "errors").exists()
    summary = capsys.readouterr().out
    assert "files: 2" in summary and "records: 66" in summary
    assert "with abstract: 56" in summary and "deletions: 6" in summary and "errors: 0" in summary


def test_parse_bad_file_error_row_and_strict(tmp_path, data_dir, capsys):
    raw = (data_dir / "pubmed" / SAMPLES["pubmed26n1334.xml.gz"]).read_bytes()
    bad = tmp_path / "pubmed26n0003.xml.gz"
    bad.write_bytes(raw[: len(raw) // 2])
    out = tmp_path / "out"
    assert main(["parse", str(bad), "-o", str(out)]) == 3  # finished with errors
    errors = pq.read_table(out / "errors" / "pubmed26n0003.parquet")
    assert errors.schema == ERROR_SCHEMA and errors.num_rows == 1
    message = errors["message"][0].as_py()
    assert pq.read_table(out / "articles").num_rows > 0
    assert "errors: 1" in capsys.readouterr().out
    assert main(["parse", str(bad), "-o", str(tmp_path / "strict"), "--strict"]) == 2
    assert message in capsys.readouterr().err


def test_parse_missing_input_fails_before_work(tmp_path, data_dir, capsys):
    good = tmp_path / "pubmed26n1334.xml.gz"
    good.write_bytes((data_dir / "pubmed" / SAMPLES["pubmed26n1334.xml.gz"]).read_bytes())
    out = tmp_path / "out"
    assert main(["parse", str(good), str(tmp_path / "missing.xml"), "-o", str(out)]) == 2
    assert "missing.xml" in capsys.readouterr().err
    assert not out.exists()


def test_damaged_file_reads_the_same_in_parse_index_run_and_update(tmp_path, data_dir, capsys):
    """The issue's file: a syntax error in record 19 of 30 costs that record only, in `biomine
    parse`, the index (OUT/_index), the run's read and the update job's deletions alike."""
    import gzip
    import re

    import pyarrow as pa

    from pipeline.records.accounting import account
    from pipeline.planning.index_cache import scan_file
    from pipeline.pubmed.read import _datasource_class, keep_positions_handler
    from pipeline.dataflow.update_job import file_deletions

    raw = gzip.decompress((data_dir / "pubmed" / SAMPLES["pubmed26n1335.xml.gz"]).read_bytes())
    starts = [m.start() for m in re.finditer(rb"<PubmedArticle>", raw)]
    title = raw.index(b"<ArticleTitle>", starts[18]) + len(b"<ArticleTitle>")
    bad = tmp_path / "pubmed26n1335.xml.gz"
    bad.write_bytes(gzip.compress(raw[:title] + b"<Oops attr=>" + raw[title:]))
    out = tmp_path / "out"
    assert main(["parse", str(bad), "-o", str(out)]) == 3
    assert "records: 35" in capsys.readouterr().out  # 29 articles + 6 deletions
    arts = pq.read_table(out / "articles")
    assert arts["position"].to_pylist() == [i for i in range(30) if i != 18]
    assert pq.read_table(out / "deletions").num_rows == 6
    (err,) = pq.read_table(out / "errors").to_pylist()
    assert err["record_index"] == 18 and err["pmid"] == 41595234 and err["line"] == 4
    assert 0 < err["byte_offset"] - title <= 30 and err["stage"] == "xml"

    index, errors = scan_file(str(bad))  # what OUT/_index holds (and `biomine run` resolves)
    kinds = index["record_type"].to_pylist()
    assert index.filter(pa.array([k == "article" for k in kinds]))["pmid"].to_pylist() == arts["pmid"].to_pylist()
    assert kinds.count("deletion") == 6
    (ierr,) = errors
    assert {k: ierr[k] for k in err} == err and ierr["record_lost"]
    acc = account(None, {}, {}, errors)
    assert acc["errors"] == 1  # the broken article is counted as rejected

    source = _datasource_class()([str(bad)], kinds=("articles", "errors"), batch_rows=100)
    read = pa.concat_tables(source._read_stream(pa.OSFile(str(bad)), str(bad)))  # read_pubmed's
    pmids = arts["pmid"].to_pylist()
    assert read["pmid"].to_pylist() == pmids[:18] + [err["pmid"]] + pmids[18:]
    assert read["error_message"].to_pylist()[18] == err["message"]
    positions = index["position"].to_pylist()  # the run's read: the index's keep-list
    source._keep = {bad.name: None}
    source._handler = lambda path: keep_positions_handler(positions)
    read = pa.concat_tables(source._read_stream(pa.OSFile(str(bad)), str(bad)))
    assert read["pmid"].to_pylist() == arts["pmid"].to_pylist()  # no 2nd row for the index's error
    assert file_deletions(str(bad)).num_rows == 6
