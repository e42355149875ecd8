"""BioGPT's hard-match evaluation for DDI and KD-DTI (examples/RE-DDI|RE-DTI/hard_match_evaluation.py).

Triples (drug, target, interaction) are lowercased with spaces removed, then normalised twice:
once with a trailing bracketed abbreviation removed ("aaa (bb)" -> "aaa") and once keeping only
the abbreviation ("bb"); each normalisation turns a trailing digit 1-9 into a Roman numeral,
drops "-type" and every non-alphanumeric. Precision and recall are each the better of the two.
Sample level: mean per-document P, R and F1, and BioGPT's drug / target / interaction
accuracies (|pred & gold| / |pred | gold| of each element's set, the better normalisation).
Corpus level ("Ontology" in BioGPT): one set of unique triples over all documents, and one set
each of drugs, targets and interactions (`drug_f1`, `target_f1`, `interaction_f1`).
`per_label` (ours, not BioGPT's): corpus-level scores of the triples of each interaction label.
Documents scored: by default the gold documents with at least one triple (BioGPT's test lists
leave the others out), a missing prediction counting as empty. With `doc_ids` (BioGPT's
position-aligned files, `biomine evaluate --align-by-position`): exactly those documents that
gold holds, empty gold included, and nothing else, as `hard_match_evaluation.py` does when its
prediction file is shorter than its PMID list.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.evaluate import Score, score_sets

Triple = tuple[str, str, str]
_NUM2ROMAN = {"0": "0", "1": "I", "2": "II", "3": "III", "4": "IV", "5": "V", "6": "VI",
              "7": "VII", "8": "VIII", "9": "IX"}
_NON_ALNUM = re.compile(r"[^a-zA-Z0-9]+")


def normalize_name(s: str) -> str:
    """Trailing digit -> Roman numeral, drop "-type", keep only [a-zA-Z0-9]."""
    s = s.strip()
    if len(s) > 2 and s[-1].isnumeric() and not s[-2].isnumeric() and s[-1] in _NUM2ROMAN:
        s = s[:-1] + _NUM2ROMAN[s[-1]]
    s = s.replace("-type", "")
    return _NON_ALNUM.sub("", s)


def without_abbreviation(s: str) -> str:
    """"aaa (bb)" -> normalised "aaa"; anything else -> normalised s."""
    s = s.strip()
    if "(" in s and s[-1] == ")":
        return normalize_name(s[: s.rfind("(")].strip())
    return normalize_name(s)


def abbreviation(s: str) -> str:
    """"aaa (bb)" -> normalised "bb"; anything else -> normalised s."""
    s = s.strip()
    if "(" in s and s[-1] == ")":
        return normalize_name(s[s.rfind("(") + 1: -1].strip())
    return normalize_name(s)


def prepare(drug: str, target: str, interaction: str) -> Triple:
    """BioGPT's first step: strip, lowercase, remove spaces."""
    return tuple(x.strip().lower().replace(" ", "") for x in (drug, target, interaction))  # type: ignore[return-value]


def _variants(triples: set[Triple]) -> tuple[set[Triple], set[Triple]]:
    abbr = {(abbreviation(a), abbreviation(b), abbreviation(c)) for a, b, c in triples}
    rm = {(without_abbreviation(a), without_abbreviation(b), without_abbreviation(c))
          for a, b, c in triples}
    return abbr, rm


def _precision(pred: set, gold: set) -> float:
    if not pred:
        return float(pred == gold)
    return len(pred & gold) / len(pred)


def _recall(pred: set, gold: set) -> float:
    if not gold:
        return float(pred == gold)
    return len(pred & gold) / len(gold)


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2.0 * p * r / (p + r)


@dataclass(frozen=True)
class HardMatch:
    """Precision/recall/F1 under the better of the two normalisations, and the raw counts."""

    precision: float
    recall: float
    f1: float
    score: Score  # counts of the normalisation with the higher F1 (the removed-abbreviation one on a tie)


def hard_match(pred: set[Triple], gold: set[Triple]) -> HardMatch:
    """BioGPT's normed_eval for precision and recall, on prepared triples."""
    abbr_p, rm_p = _variants(pred)
    abbr_g, rm_g = _variants(gold)
    p = max(_precision(abbr_p, abbr_g), _precision(rm_p, rm_g))
    r = max(_recall(abbr_p, abbr_g), _recall(rm_p, rm_g))
    s_abbr, s_rm = score_sets(abbr_g, abbr_p), score_sets(rm_g, rm_p)
    return HardMatch(p, r, _f1(p, r), s_abbr if s_abbr.f1 > s_rm.f1 else s_rm)


def _element_variants(names: set[str]) -> tuple[set[str], set[str]]:
    return {abbreviation(n) for n in names}, {without_abbreviation(n) for n in names}


def _accuracy(pred: set, gold: set) -> float:
    if not gold:
        return float(pred == gold)
    return len(pred & gold) / len(pred | gold)


def element_score(pred: set[str], gold: set[str], metric: Callable[[set, set], float]) -> float:
    """BioGPT's normed_eval on a set of names: the better of the two normalisations."""
    abbr_p, rm_p = _element_variants(pred)
    abbr_g, rm_g = _element_variants(gold)
    return max(metric(abbr_p, abbr_g), metric(rm_p, rm_g))


def _element_f1(pred: set[str], gold: set[str]) -> float:
    return _f1(element_score(pred, gold, _precision), element_score(pred, gold, _recall))


def _per_label(pred: set[Triple], gold: set[Triple]) -> dict[str, dict[str, Any]]:
    out = {}
    for label in sorted({t[2] for t in gold} | {t[2] for t in pred}):
        m = hard_match({t for t in pred if t[2] == label}, {t for t in gold if t[2] == label})
        out[label] = {"precision": m.precision, "recall": m.recall, "f1": m.f1,
                      "n_pred": sum(t[2] == label for t in pred),
                      "n_gold": sum(t[2] == label for t in gold)}
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def evaluate(pred: Mapping[str, Iterable[Triple]], gold: Mapping[str, Iterable[Triple]],
             doc_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """Sample- and corpus-level scores; keys tp, fp, fn, precision, recall, f1 are corpus level."""
    if doc_ids is None:
        scored = [d for d, triples in gold.items() if list(triples)]
    else:
        scored = [d for d in doc_ids if d in gold]
    samples: list[dict[str, Any]] = []
    acc: dict[str, list[float]] = {"drug": [], "target": [], "interaction": []}
    all_pred: set[Triple] = set()
    all_gold: set[Triple] = set()
    for doc_id in scored:
        gold_set = {prepare(*t) for t in gold[doc_id]}
        pred_set = {prepare(*t) for t in pred.get(doc_id, ())}
        m = hard_match(pred_set, gold_set)
        samples.append({"id": doc_id, "precision": m.precision, "recall": m.recall, "f1": m.f1,
                        "n_pred": len(pred_set), "n_gold": len(gold_set)})
        for i, element in enumerate(acc):
            acc[element].append(element_score({t[i] for t in pred_set}, {t[i] for t in gold_set},
                                               _accuracy))
        all_pred |= pred_set
        all_gold |= gold_set
    corpus = hard_match(all_pred, all_gold)
    sample_p, sample_r = _mean([s["precision"] for s in samples]), _mean([s["recall"] for s in samples])
    kept = set(scored)
    return {
        "tp": corpus.score.tp, "fp": corpus.score.fp, "fn": corpus.score.fn,
        "precision": corpus.precision, "recall": corpus.recall, "f1": corpus.f1,
        "sample_precision": sample_p, "sample_recall": sample_r,
        "sample_f1": _mean([s["f1"] for s in samples]),
        "sample_macro_f1": _f1(sample_p, sample_r), "n_samples": len(samples),
        **{f"sample_{k}_acc": _mean(v) for k, v in acc.items()},
        **{f"{k}_f1": _element_f1({t[i] for t in all_pred}, {t[i] for t in all_gold})
           for i, k in enumerate(acc)},
        "per_label": _per_label(all_pred, all_gold),
        "n_pred_without_gold": sum(1 for k in pred if k not in gold),
        "n_pred_not_scored": sum(1 for k in pred if k in gold and k not in kept),
        "samples": samples,
    }


def errors(pred: Mapping[str, Iterable[Triple]], gold: Mapping[str, Iterable[Triple]],
           n: int, doc_ids: Sequence[str] | None = None) -> list[tuple[str, str, Triple]]:
    """The first n false positives then false negatives as (FP|FN, doc id, triple).

    A triple is an error when neither normalisation of it is in the document's other side.
    """
    scored = ([d for d, t in gold.items() if list(t)] if doc_ids is None
              else [d for d in doc_ids if d in gold])
    fps: list[tuple[str, str, Triple]] = []
    fns: list[tuple[str, str, Triple]] = []
    for doc_id in scored:
        p = {prepare(*t): t for t in pred.get(doc_id, ())}
        g = {prepare(*t): t for t in gold[doc_id]}
        abbr_g, rm_g = _variants(set(g))
        abbr_p, rm_p = _variants(set(p))
        for key, raw in p.items():
            if not (_variants({key})[0] & abbr_g or _variants({key})[1] & rm_g):
                fps.append(("FP", doc_id, raw))
        for key, raw in g.items():
            if not (_variants({key})[0] & abbr_p or _variants({key})[1] & rm_p):
                fns.append(("FN", doc_id, raw))
    return (fps + fns)[:n]
