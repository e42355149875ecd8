"""Input expansion in NLM order and the Ray Data read (one task per file, errors as rows)."""
from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline.pubmed.read import expand_inputs, nlm_order_key
from pipeline.pubmed.schema import RECORD_SCHEMA

SAMPLES = {"pubmed26n1334.xml.gz": "pmparser_sample_pubmed26n1334.xml.gz",
           "pubmed26n1335.xml.gz": "pmparser_sample_pubmed26n1335_update.xml.gz"}


@pytest.fixture()
def sample_dir(tmp_path, data_dir):
    for name, src in SAMPLES.items():
        (tmp_path / name).write_bytes((data_dir / "pubmed" / src).read_bytes())
    return tmp_path


def test_expand_inputs_nlm_order(tmp_path):
    for name in ["pubmed26n1335.xml.gz", "pubmed26n0002.xml", "pubmed26n0010.xml.gz",
                 "other.xml", "notes.txt"]:
        (tmp_path / name).write_bytes(b"")
    got = [p.rsplit("/", 1)[1] for p in expand_inputs([str(tmp_path)])]
    assert got == ["pubmed26n0002.xml", "pubmed26n0010.xml.gz", "pubmed26n1335.xml.gz", "other.xml"]
    globbed = expand_inputs([str(tmp_path / "pubmed26n00*"), str(tmp_path / "pubmed26n0002.xml")])
    assert [p.rsplit("/", 1)[1] for p in globbed] == ["pubmed26n0002.xml", "pubmed26n0010.xml.gz"]
    assert nlm_order_key("a/pubmed26n0001.xml.gz") < nlm_order_key("pubmed25n1274.xml.gz")


def test_expand_inputs_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.xml"):
        expand_inputs([str(tmp_path / "nope.xml")])
    with pytest.raises(FileNotFoundError, match="no \\*.xml"):
        expand_inputs([str(tmp_path / "*.xml")])
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match="not a PubMed XML file"):
        expand_inputs([str(tmp_path / "x.txt")])


def to_table(ray, ds):
    """A Dataset's rows as one Arrow table."""
    return pa.concat_tables(ray.get(ds.to_arrow_refs()))


@pytest.mark.ray
def test_read_pubmed_on_ray(ray_cluster, sample_dir):
    from pipeline.pubmed.read import read_pubmed

    raw = (sample_dir / "pubmed26n1334.xml.gz").read_bytes()
    (sample_dir / "pubmed26n0001.xml.gz").write_bytes(raw[: len(raw) // 2])  # truncated
    ds = read_pubmed(str(sample_dir), kinds=("articles", "deletions", "errors"))
    blocks = ray_cluster.get(ds.to_arrow_refs())
    # one read task per file: every block holds the rows of exactly one file
    assert sorted(b["source_file"].unique().to_pylist()[0] for b in blocks if b.num_rows) == [
        "pubmed26n0001.xml.gz", "pubmed26n1334.xml.gz", "pubmed26n1335.xml.gz"]
    assert all(len(b["source_file"].unique()) == 1 for b in blocks if b.num_rows)
    table = pa.concat_tables(blocks)
    assert table.schema == RECORD_SCHEMA
    counts = Counter(zip(table["source_file"].to_pylist(), table["record_type"].to_pylist()))
    assert counts[("pubmed26n1334.xml.gz", "article")] == 30
    assert counts[("pubmed26n1335.xml.gz", "article")] == 30
    assert counts[("pubmed26n1335.xml.gz", "deletion")] == 6
    assert counts[("pubmed26n0001.xml.gz", "error")] == 1
    assert 0 < counts[("pubmed26n0001.xml.gz", "article")] < 30
    err = table.filter(pc.equal(table["record_type"], "error")).to_pylist()[0]
    assert "Compressed file ended" in err["error_message"] and err["error_position"]
    only = read_pubmed([str(sample_dir / "pubmed26n1335.xml.gz")], kinds=("deletions",))
    only = to_table(ray_cluster, only)
    assert only["pmid"].to_pylist() == [41456105, 41557076, 41616784, 41618748, 41618749, 41618779]
    with pytest.raises(ValueError, match="kinds"):
        read_pubmed(str(sample_dir), kinds=("bogus",))
