"""BioCreative V CDR scorer: the official kit's results on its sample files, and its rules.

The figures here are what the kit's jar prints on these files (tests/data/bc5cdr_eval/SOURCES.md);
test_cdr_jar.py runs the jar itself, when Java is present, and requires the same items."""
from __future__ import annotations

import pytest

from pipeline.evaluate.cdr import (compare_documents, concept_key, id_set, normalize_id, score_id,
                                   score_mention, score_relation)
from pipeline.tasks.pubtator import parse_pubtator, read_pubtator


@pytest.fixture(scope="module")
def kit(data_dir):
    gold = data_dir / "gold"
    return (read_pubtator(gold / "evalkit_CDR_sample.gold.PubTator"),
            read_pubtator(gold / "evalkit_CDR_sample.test.CID.PubTator"),
            read_pubtator(gold / "evalkit_CDR_sample.test.DNER.PubTator"))


def test_relation_cid_matches_kit(kit):
    gold, cid, _ = kit
    s = score_relation(gold, cid)
    assert (s.tp, s.fp, s.fn) == (90, 533, 33)
    assert s.precision == 0.14446227929373998 and s.recall == 0.7317073170731707
    assert s.f1 == pytest.approx(0.24128686327077747, abs=1e-15)


def test_mention_matches_kit(kit):
    gold, _, dner = kit
    s = score_mention(gold, dner)  # the prediction file holds Disease only -> gold restricted too
    assert (s.tp, s.fp, s.fn) == (303, 105, 121)
    assert s.precision == 0.7426470588235294 and s.recall == 0.714622641509434
    assert s.f1 == pytest.approx(0.7283653846153848, abs=1e-15)
    assert score_mention(gold, dner, types=["Disease"]) == s
    both = score_mention(gold, dner, types=["Disease", "Chemical"])
    assert (both.tp, both.fp) == (303, 105) and both.fn > 121  # chemicals are all missed


def test_id_matches_the_kits_jar(kit):
    """The jar computes TP 149 FP 57 FN 65 (its readme's 150/56/64 is not what the jar prints)."""
    gold, _, dner = kit
    s = score_id(gold, dner)
    assert (s.tp, s.fp, s.fn) == (149, 57, 65)
    assert s.precision == 0.7233009708737864 and s.recall == 0.6962616822429907


def test_id_rules_composites_unknown_prefix_and_duplicates():
    docs = parse_pubtator([
        "1|t|Renal and hepatic failure.",
        "1|a|More failure.",
        "1\t0\t25\tRenal and hepatic failure\tDisease\tD058186|D017093\trenal failure|hepatic failure",
        "1\t31\t38\tfailure\tDisease\tMESH:D058186",
        "1\t31\t38\tfailure\tDisease\t-1",
        "1\t0\t5\tRenal\tChemical\tD000001",
    ])
    assert id_set(docs, {"Disease"}) == {("1", "Disease", "MESH:D058186"),
                                         ("1", "Disease", "MESH:D017093")}
    assert concept_key("D1") == "MESH:D1" == concept_key("MESH:D1")
    assert concept_key("OMIM:215600") == "OMIM:215600"
    assert concept_key("-1") is None and concept_key("") is None and normalize_id("-1") == "null"
    pred = parse_pubtator(["1|t|x", "1|a|y", "1\t0\t5\tRenal\tDisease\tMESH:D017093\t0.5"])
    s = score_id(docs, pred)  # types from the prediction: Disease
    assert (s.tp, s.fp, s.fn) == (1, 0, 1)


def test_relation_scoring_is_document_level_and_typed():
    gold = parse_pubtator(["7|t|t", "7|a|a", "7\tCID\tD1\tD2", "8|t|t", "8|a|a", "8\tCID\tD1\tD2",
                           "10|t|t", "10|a|a", "10\t0\t1\tt\tDisease\tD5"])
    pred = parse_pubtator(["7|t|t", "7|a|a", "7\tCID\tMESH:D1\tD2\t0.9", "7\tCID\tD1\tD2",
                           "7\tOTHER\tD5\tD6", "7\tCID\t-1\tD2", "7\tCID\t\tD2",
                           "9|t|t", "9|a|a", "9\tCID\tD1\tD2", "10|t|t", "10|a|a", "10\tCID\tD1\tD2"])
    c = compare_documents("relation", gold, pred)
    # the jar on these lines: TP 7 D1-D2; FP 7 null-D2 (-1 and "" are one unknown id); FN 8;
    # documents 9 (not in gold) and 10 (no gold relation) are left out
    assert (c.score.tp, c.score.fp, c.score.fn) == (1, 1, 1)
    assert c.fp == [("7", "CID", None, "MESH:D2")] and c.fn == [("8", "CID", "MESH:D1", "MESH:D2")]


def test_reader_rejects_malformed_lines(tmp_path):
    bad = tmp_path / "bad.PubTator"
    bad.write_text("1|t|x\n1|a|y\n1\tabc\n")
    with pytest.raises(ValueError, match=r"bad.PubTator:3"):
        read_pubtator(bad)
    bad.write_text("1|t|x\n1|a|y\n1\t5\t2\tx\tDisease\tD1\n")
    with pytest.raises(ValueError, match="before start"):
        read_pubtator(bad)
    with pytest.raises(FileNotFoundError):
        read_pubtator(tmp_path / "missing.PubTator")
