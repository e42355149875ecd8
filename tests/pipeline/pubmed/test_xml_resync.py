"""A broken record costs that record only: the reader resynchronises at the next record,
wherever the break falls relative to the read chunk, on a real 30-record update file."""
from __future__ import annotations

import gzip
import io
import random
import re

import pytest

from pipeline.pubmed.xml import PubmedParseError, scan_records

UPDATE = "pmparser_sample_pubmed26n1335_update.xml.gz"
CHUNK = 16384  # small, so the 466 KiB file crosses many chunk boundaries
BAD = b"<Oops attr=>"  # the syntax error
RECORD = re.compile(rb"<(PubmedArticle|DeleteCitation)>.*?</\1>", re.S)


@pytest.fixture(scope="module")
def raw(data_dir) -> bytes:
    return gzip.decompress((data_dir / "pubmed" / UPDATE).read_bytes())


@pytest.fixture(scope="module")
def spans(raw) -> list[tuple[int, int]]:
    """(start, end) of the 31 records: 30 articles, then the DeleteCitation."""
    found = [(m.start(), m.end()) for m in RECORD.finditer(raw)]
    assert len(found) == 31
    return found


@pytest.fixture(scope="module")
def clean(raw) -> list[int | None]:
    """PMID of each record of the clean file (None for the DeleteCitation)."""
    rows = list(scan_records(io.BytesIO(raw), "pubmed26n1335.xml", chunk_size=CHUNK))
    arts = [r for r in rows if r["record_type"] == "article"]
    assert len(arts) == 30 and len(rows) == 36 and [r["position"] for r in arts] == list(range(30))
    return [r["pmid"] for r in arts] + [None]


def scan(data: bytes, chunk_size: int = CHUNK) -> list[dict]:
    return list(scan_records(io.BytesIO(data), "pubmed26n1335.xml", chunk_size=chunk_size))


def check(rows: list[dict], clean: list[int | None], broken: int | None) -> dict | None:
    """Every record but `broken` comes out at its own position, once; the error names it."""
    arts = [r for r in rows if r["record_type"] == "article"]
    dels = [r for r in rows if r["record_type"] == "deletion"]
    errors = [r for r in rows if r["record_type"] == "error"]
    want = [i for i in range(30) if i != broken]
    assert [(a["position"], a["pmid"]) for a in arts] == [(i, clean[i]) for i in want]
    assert len(dels) == (0 if broken == 30 else 6)
    assert len(errors) == 1, [e["message"] for e in errors]
    err = errors[0]
    assert err["stage"] == "xml" and "pubmed26n1335.xml: line 4" in err["message"]
    # accounting: every record is an article, the deletion record, or the error, once
    seen = [a["position"] for a in arts] + sorted({d["position"] for d in dels})
    if broken is not None:
        assert err["record_index"] == broken and err["pmid"] in (clean[broken], None)
        seen.append(broken)
    assert sorted(seen) == list(range(31))
    return err


def corrupt(raw: bytes, at: int, bad: bytes = BAD) -> bytes:
    return raw[:at] + bad + raw[at:]


def broken_record(spans: list[tuple[int, int]], at: int) -> int | None:
    """Index of the record the bytes inserted at `at` land in (None: between records)."""
    return next((i for i, (s, e) in enumerate(spans) if s < at < e), None)


def positions(raw: bytes, spans: list[tuple[int, int]]) -> list[int]:
    """Insertion points before, on and after chunk boundaries, around record edges, at random."""
    around = [b + d for b in range(CHUNK, len(raw), 5 * CHUNK) for d in (-1, 0, 1)]
    edges = [p + d for s, e in (spans[3], spans[17], spans[29]) for p in (s, e) for d in (-1, 0, 1)]
    rng = random.Random(23)
    picks = [rng.randrange(spans[0][0], spans[-1][1]) for _ in range(12)]
    return sorted(set(around + edges + picks))


def test_corruption_anywhere_costs_one_record(raw, spans, clean):
    for at in positions(raw, spans):
        broken = broken_record(spans, at)
        err = check(scan(corrupt(raw, at)), clean, broken)
        if broken is None:  # between records: nothing lost, the error names the next record
            assert err["record_index"] == next(i for i, (s, _) in enumerate(spans) if s >= at)
            assert err["pmid"] is None
        s, e = spans[broken] if broken is not None else (at, at)
        assert s <= err["byte_offset"] <= e + len(BAD), (at, err)


def test_title_attribute_and_delete_citation(raw, spans, clean):
    title = raw.index(b"<ArticleTitle>", spans[18][0]) + len(b"<ArticleTitle>")  # the case
    err = check(scan(corrupt(raw, title)), clean, 18)
    assert err["pmid"] == clean[18] and err["line"] == 4
    assert err["byte_offset"] == title + len(BAD) - 1  # at the ">" where an attribute value was due
    assert f"record 18, PMID {clean[18]}, byte {title + len(BAD) - 1}" in err["message"]
    attr = raw.index(b'IndexingMethod="', spans[1][0]) + len(b'IndexingMethod="')  # '<' in a value
    err = check(scan(corrupt(raw, attr, b"<")), clean, 1)
    assert err["pmid"] == clean[1] and err["byte_offset"] == attr
    pmid = raw.index(b"</PMID>", spans[30][0])  # inside the DeleteCitation
    err = check(scan(corrupt(raw, pmid, BAD)), clean, 30)
    assert err["pmid"] is None and spans[30][0] < err["byte_offset"] < spans[30][1] + len(BAD)


def test_break_in_the_second_record_keeps_the_rest(raw, spans, clean):
    at = raw.index(b"<ArticleTitle>", spans[1][0]) + len(b"<ArticleTitle>")
    check(scan(corrupt(raw, at)), clean, 1)


def test_result_does_not_depend_on_the_chunk_size(raw, spans):
    bad = corrupt(raw, raw.index(b"<ArticleTitle>", spans[7][0]) + 3)
    want = scan(bad)
    for size in (333, 4096, CHUNK - 1, 1 << 18, 1 << 20):
        assert scan(bad, size) == want


def test_strict_stops_at_the_broken_record(raw, spans):
    bad = corrupt(raw, raw.index(b"<ArticleTitle>", spans[5][0]))
    with pytest.raises(PubmedParseError, match=r"line 4, column \d+ \(record 5, PMID \d+, byte \d+\)"):
        list(scan_records(io.BytesIO(bad), "pubmed26n1335.xml", strict=True, chunk_size=CHUNK))


def with_title(raw: bytes, spans: list[tuple[int, int]], k: int, text: bytes) -> bytes:
    at = raw.index(b"<ArticleTitle>", spans[k][0]) + len(b"<ArticleTitle>")
    return raw[:at] + text + raw[at:]


LOL = b'<!ENTITY a "aaaaaaaaaa">' + b"".join(
    b"<!ENTITY %c \"%s\">" % (98 + i, b"&%c;" % (97 + i) * 10) for i in range(9))


def test_entity_bomb_in_one_record_costs_that_record(raw, spans, clean):
    doctype = re.search(rb"<!DOCTYPE[^>]*>", raw)
    bad = with_title(raw, spans, 12, b"boom &j; ")
    bad = bad[:doctype.start()] + b"<!DOCTYPE PubmedArticleSet [\n" + LOL + b"\n]>" + bad[doctype.end():]
    rows = scan(bad)
    err = next(r for r in rows if r["record_type"] == "error")
    assert err["record_index"] == 12 and "amplification" in err["message"]
    assert [r["position"] for r in rows if r["record_type"] == "article"] == [i for i in range(30) if i != 12]


def test_undefined_entity_without_a_dtd_costs_that_record(raw, spans, clean):
    doctype = re.search(rb"<!DOCTYPE[^>]*>", raw)
    bad = with_title(raw, spans, 20, b"&nosuch; ")
    no_dtd = bad[:doctype.start()] + bad[doctype.end():]
    err = check(scan(no_dtd), clean, 20)
    assert "'nosuch' not defined" in err["message"] and err["pmid"] == clean[20]
    # under the real DOCTYPE (an external DTD, never loaded) the record is kept, with a warning
    rows = scan(bad)
    assert sum(r["record_type"] == "article" for r in rows) == 30
    (warn,) = [r for r in rows if r["record_type"] == "error"]
    assert warn["stage"] == "entity" and warn["record_index"] == 20 and "&nosuch;" in warn["message"]


def test_truncated_plain_xml_keeps_every_complete_record(raw, spans, clean):
    for cut in (spans[9][1], spans[9][1] + 1, spans[10][0] + 400):
        rows = scan(raw[:cut])
        arts = [r for r in rows if r["record_type"] == "article"]
        (err,) = [r for r in rows if r["record_type"] == "error"]
        assert [a["pmid"] for a in arts] == clean[:10] and err["record_index"] == 10
        assert err["pmid"] == (clean[10] if cut == spans[10][0] + 400 else None)


def test_broken_header_keeps_the_records(raw, clean):
    bad = raw.replace(b"<PubmedArticleSet>", b"<PubmedArticleSet attr=>", 1)
    rows = scan(bad)
    assert [r["pmid"] for r in rows if r["record_type"] == "article"] == clean[:30]
    (err,) = [r for r in rows if r["record_type"] == "error"]
    assert err["record_index"] == 0 and "no well-formed root start tag" in err["message"]


def medline(pmid: int, title: str = "T.") -> str:
    return (f'<MedlineCitation Status="MEDLINE"><PMID Version="1">{pmid}</PMID><Article>'
            f"<ArticleTitle>{title}</ArticleTitle></Article></MedlineCitation>\n")


def test_medline_citation_set_and_stray_element_next_to_a_broken_record():
    xml = ("<MedlineCitationSet>\n" + medline(1) + medline(2, "<Oops attr=>") + "<Surprise/>\n" + medline(3)
           + '<DeleteCitation><PMID Version="1">7</PMID></DeleteCitation>\n</MedlineCitationSet>\n')
    rows = list(scan_records(io.BytesIO(xml.encode()), "medline16n0042.xml"))
    assert [(r["record_type"], r.get("stage"), r["pmid"], r.get("record_index", r.get("position")))
            for r in rows] == [("article", None, 1, 0), ("error", "xml", 2, 1), ("error", "element", None, 2),
                               ("article", None, 3, 2), ("deletion", None, 7, 3)]
    assert rows[1]["line"] == 3 and rows[2]["line"] == 4 and rows[1]["record_lost"]
