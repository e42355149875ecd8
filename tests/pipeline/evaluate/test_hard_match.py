"""BioGPT's DDI/KD-DTI hard-match evaluation: normalisation, abbreviations, sample and corpus level."""
from __future__ import annotations

import pytest

from pipeline.evaluate.hard_match import abbreviation, evaluate, normalize_name, without_abbreviation


def test_normalisation_rules():
    assert normalize_name("cyp3a4") == "cyp3aIV"  # trailing digit after a non-digit -> Roman
    assert normalize_name("cyp2c19") == "cyp2c19"  # two trailing digits: unchanged
    assert normalize_name("p-type") == "p"  # too short for the Roman rule; "-type" removed
    assert normalize_name("5-ht(2a) receptor") == "5ht2areceptor"
    assert normalize_name("ab") == "ab" and normalize_name("x0") == "x0"
    assert without_abbreviation("monoamineoxidase(mao)") == "monoamineoxidase"
    assert abbreviation("monoamineoxidase(mao)") == "mao"
    assert abbreviation("aspirin") == without_abbreviation("aspirin") == "aspirin"


def test_abbreviation_or_full_name_both_match():
    gold = {"1": [("Monoamine oxidase (MAO)", "Drug B", "effect")]}
    assert evaluate({"1": [("mao", "drug b", "effect")]}, gold)["f1"] == 1.0
    assert evaluate({"1": [("monoamine oxidase", "drug b", "effect")]}, gold)["f1"] == 1.0
    assert evaluate({"1": [("mao", "drug b", "advise")]}, gold)["f1"] == 0.0


def test_scores_by_hand():
    gold = {"a": [("x", "y", "effect"), ("x", "z", "advise")],
            "b": [("p", "q", "mechanism")],
            "c": [("u", "v", "int")],
            "e": []}  # no gold triples: not scored, as BioGPT's test lists leave it out
    pred = {"a": [("x", "y", "effect"), ("x", "w", "effect"), ("X", "Y", "effect")],  # dup after lowercasing
            "b": [("p", "q", "mechanism")],
            "e": [("k", "l", "int")],
            "zzz": [("m", "n", "int")]}  # a document gold lacks
    r = evaluate(pred, gold)
    # sample level: a P=1/2 R=1/2, b P=1 R=1, c (no prediction) P=0 R=0
    assert r["n_samples"] == 3 and r["n_pred_without_gold"] == 1
    assert r["sample_precision"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert r["sample_recall"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert r["sample_f1"] == pytest.approx((0.5 + 1 + 0) / 3)
    # corpus level over unique triples: pred {xy, xw, pq}, gold {xy, xz, pq, uv}
    assert (r["tp"], r["fp"], r["fn"]) == (2, 1, 2)
    assert r["precision"] == pytest.approx(2 / 3) and r["recall"] == pytest.approx(2 / 4)
    assert r["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert [s["id"] for s in r["samples"]] == ["a", "b", "c"]


def test_drug_target_interaction_accuracy_and_element_f1_by_hand():
    gold = {"a": [("x", "y", "effect"), ("x", "z", "advise")], "b": [("p", "q", "mechanism")]}
    pred = {"a": [("x", "y", "effect"), ("x", "w", "effect")]}  # b: nothing predicted
    r = evaluate(pred, gold)
    # a: drugs {x}/{x} = 1, targets {y,w}/{y,z} = 1/3, interactions {effect}/{effect,advise} = 1/2
    # b: nothing right: 0, 0, 0
    assert r["sample_drug_acc"] == pytest.approx(0.5)
    assert r["sample_target_acc"] == pytest.approx(1 / 6)
    assert r["sample_interaction_acc"] == pytest.approx(0.25)
    # corpus sets: drugs {x} vs {x,p}; targets {y,w} vs {y,z,q}; interactions {effect} vs 3 labels
    assert r["drug_f1"] == pytest.approx(2 / 3)
    assert r["target_f1"] == pytest.approx(0.4)
    assert r["interaction_f1"] == pytest.approx(0.5)
    assert r["per_label"]["effect"]["f1"] == pytest.approx(2 / 3)
    assert r["per_label"]["advise"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "n_pred": 0,
                                        "n_gold": 1}
    # an abbreviation matches its full name for an element too
    abbr = evaluate({"1": [("d", "mao", "inhibitor")]}, {"1": [("d", "Monoamine oxidase (MAO)", "inhibitor")]})
    assert abbr["sample_target_acc"] == 1.0 and abbr["target_f1"] == 1.0


def test_position_aligned_scoring_leaves_out_what_a_short_file_lacks():
    gold = {"e": [], "a": [("x", "y", "effect"), ("x", "z", "advise")], "b": [("p", "q", "mechanism")]}
    pred = {"e": [], "a": [("x", "y", "effect"), ("x", "w", "effect")]}
    keyed = evaluate(pred, gold)  # default: gold documents with triples; b counts as empty
    assert [s["id"] for s in keyed["samples"]] == ["a", "b"]
    aligned = evaluate(pred, gold, doc_ids=["e", "a"])  # BioGPT: a two-line file for e, a, b
    assert [s["id"] for s in aligned["samples"]] == ["e", "a"]
    assert aligned["samples"][0]["f1"] == 1.0  # empty gold, empty prediction: BioGPT scores 1
    assert aligned["sample_precision"] == pytest.approx(0.75) and aligned["fn"] == 1
