"""Compression from content (never the name), entity references, an entity bomb."""
from __future__ import annotations

import gzip
import io

import pytest

from pipeline.pubmed.xml import PubmedParseError, decompressed, iter_records, scan_records

SAMPLE = "pmparser_sample_pubmed26n1334.xml.gz"


def article(pmid: int, title: str) -> str:
    return (f'<PubmedArticle><MedlineCitation><PMID Version="1">{pmid}</PMID><Article><ArticleTitle>'
            f"{title}</ArticleTitle></Article></MedlineCitation></PubmedArticle>")


class ForwardOnly:
    """A stream without seek/peek, as pyarrow's input streams are."""

    def __init__(self, data: bytes) -> None:
        self.buf = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self.buf.read(n)

    def close(self) -> None:
        self.buf.close()


def test_compression_is_detected_from_content_both_ways(tmp_path, data_dir):
    packed = (data_dir / "pubmed" / SAMPLE).read_bytes()
    plain = gzip.decompress(packed)
    (tmp_path / "gz-named-plain.xml").write_bytes(packed)
    (tmp_path / "plain-named-gz.xml.gz").write_bytes(plain)
    want = [r["pmid"] for r in iter_records(str(data_dir / "pubmed" / SAMPLE))]
    for name in ("gz-named-plain.xml", "plain-named-gz.xml.gz"):
        got = list(iter_records(str(tmp_path / name)))
        assert [r["pmid"] for r in got] == want and all(r["record_type"] == "article" for r in got)
    assert decompressed(ForwardOnly(packed)).read() == plain
    assert decompressed(ForwardOnly(plain)).read() == plain
    assert decompressed(ForwardOnly(b"<")).read() == b"<"  # shorter than the magic


def test_a_file_gzipped_twice_is_read_through_both_layers_with_a_warning(tmp_path, data_dir, caplog):
    """A .gz uploaded through a stream that compressed it again: the index (`open_xml`) and the
    Ray reader (`decompressed` on the raw bytes) both read every record, and say so."""
    packed = (data_dir / "pubmed" / SAMPLE).read_bytes()
    twice = tmp_path / "twice.xml.gz"
    twice.write_bytes(gzip.compress(packed))
    want = [r["pmid"] for r in iter_records(str(data_dir / "pubmed" / SAMPLE))]
    with caplog.at_level("WARNING"):
        assert [r["pmid"] for r in iter_records(str(twice))] == want
    assert any("gzip-compressed twice" in r.message and "twice.xml.gz" in r.message for r in caplog.records)
    assert decompressed(ForwardOnly(twice.read_bytes()), "x").read() == gzip.decompress(packed)
    nested = gzip.compress(gzip.compress(gzip.compress(twice.read_bytes())))
    with pytest.raises(ValueError, match="still gzip after 3 gunzips"):
        decompressed(ForwardOnly(nested), "deep.gz").read()


DTD_EXT = '<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet [\n<!ENTITY ext SYSTEM "file:///etc/hostname">\n]>\n'


def test_external_entity_is_dropped_with_an_error_row_per_record():
    xml = (DTD_EXT + "<PubmedArticleSet>\n" + article(1, "a &ext; b") + "\n" + article(2, "clean")
           + "\n" + article(3, "&ext;&ext;") + "\n</PubmedArticleSet>")
    rows = list(scan_records(io.BytesIO(xml.encode()), "pubmed26n0001.xml"))
    arts = [r for r in rows if r["record_type"] == "article"]
    errors = [r for r in rows if r["record_type"] == "error"]
    assert [a["pmid"] for a in arts] == [1, 2, 3] and arts[0]["title"] == "a b"  # nothing fetched
    assert [(e["pmid"], e["stage"], e["line"]) for e in errors] == [(1, "entity", 6), (3, "entity", 8)]
    assert "&ext;" in errors[0]["message"] and "dropped" in errors[0]["message"]
    assert not [r for r in scan_records(io.BytesIO(xml.encode()), "f.xml", entity_errors=False)
                if r["record_type"] == "error"]
    with pytest.raises(PubmedParseError, match="&ext;"):
        list(scan_records(io.BytesIO(xml.encode()), "f.xml", strict=True))


def test_entity_bomb_is_reported_at_its_record_not_at_line_1():
    lol = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "' + f"&{chr(97 + i)};" * 10 + '">' for i in range(9))
    xml = ('<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet [\n' + lol + "\n]>\n<PubmedArticleSet>\n"
           + article(1, "ok") + "\n" + article(2, "boom &j;") + "\n</PubmedArticleSet>")
    rows = list(scan_records(io.BytesIO(xml.encode()), "pubmed26n0002.xml"))
    assert rows[0]["pmid"] == 1 and rows[0]["record_type"] == "article"
    err = rows[-1]
    assert err["record_type"] == "error" and err["record_index"] == 1 and err["line"] == 6
    assert "amplification" in err["message"] and "record after the one at line 6" in err["message"]
