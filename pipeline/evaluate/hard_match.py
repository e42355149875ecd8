"""BioGPT's hard-match evaluation for DDI and KD-DTI (examples/RE-DDI|RE-DTI/hard_match_evaluation.py).

Triples (drug, target, interaction) are lowercased with spaces removed, then normalised twice:
once with a trailing bracketed abbreviation removed ("aaa (bb)" -> "aaa") and once keeping only
the abbreviation ("bb"); each normalisation turns a trailing digit 1-9 into a Roman numeral,
drops "-type" and every non-alphanumeric. Precision and recall are each the better of the two.
Sample level: mean per-document P, R and F1. Corpus level ("Ontology" in BioGPT): one set of
unique triples over all documents, as BioGPT does. Documents scored: the gold documents with at
least one triple (BioGPT's test lists leave the others out); a missing prediction is empty.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.evaluate import Score, score_sets
from pipeline.jsonfile import read_json

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


def evaluate(pred: Mapping[str, Iterable[Triple]], gold: Mapping[str, Iterable[Triple]],
             ) -> dict[str, Any]:
    """Sample- and corpus-level scores; keys tp, fp, fn, precision, recall, f1 are corpus level."""
    samples: list[dict[str, Any]] = []
    all_pred: set[Triple] = set()
    all_gold: set[Triple] = set()
    for doc_id, gold_triples in gold.items():
        gold_set = {prepare(*t) for t in gold_triples}
        if not gold_set:
            continue
        pred_set = {prepare(*t) for t in pred.get(doc_id, ())}
        m = hard_match(pred_set, gold_set)
        samples.append({"id": doc_id, "precision": m.precision, "recall": m.recall, "f1": m.f1,
                        "n_pred": len(pred_set), "n_gold": len(gold_set)})
        all_pred |= pred_set
        all_gold |= gold_set
    corpus = hard_match(all_pred, all_gold)
    n = len(samples)
    mean = (lambda key: sum(s[key] for s in samples) / n) if n else (lambda key: 0.0)
    sample_p, sample_r = mean("precision"), mean("recall")
    return {
        "tp": corpus.score.tp, "fp": corpus.score.fp, "fn": corpus.score.fn,
        "precision": corpus.precision, "recall": corpus.recall, "f1": corpus.f1,
        "sample_precision": sample_p, "sample_recall": sample_r, "sample_f1": mean("f1"),
        "sample_macro_f1": _f1(sample_p, sample_r), "n_samples": n,
        "n_pred_without_gold": sum(1 for k in pred if k not in gold),
        "samples": samples,
    }


def _triples_of(doc: Any, where: str) -> list[Triple]:
    if not isinstance(doc, dict) or not isinstance(doc.get("triples", []), list):
        raise ValueError(f"{where}: expected an object with a 'triples' list")
    out = []
    for t in doc.get("triples") or []:
        try:
            out.append((str(t["drug"]), str(t["target"]), str(t["interaction"])))
        except (KeyError, TypeError):
            raise ValueError(f"{where}: a triple needs drug, target, interaction; got {t!r}") from None
    return out


def load_gold(path: str | Path) -> dict[str, list[Triple]]:
    """BioGPT's gold JSON: `{id: {"triples": [{drug, target, interaction}, ...], ...}}`."""
    path = Path(path)
    raw = read_json(path, "gold file")
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object keyed by document id")
    return {str(k): _triples_of(v, f"{path}: document {k}") for k, v in raw.items()}


def load_pred(path: str | Path) -> dict[str, list[Triple]]:
    """Predictions: our relation rows (.parquet, or .jsonl with pmid/head_text/tail_text/relation)
    or a JSON object in the gold layout; documents keyed by str(pmid)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prediction file not found: {path}")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path, columns=["pmid", "head_text", "tail_text", "relation"]).to_pylist()
    else:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            return load_gold(path)
        rows = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{i}: not a JSON row ({exc})") from None
    out: dict[str, list[Triple]] = {}
    for i, row in enumerate(rows, 1):
        try:
            triple = (str(row["head_text"]), str(row["tail_text"]), str(row["relation"]))
            out.setdefault(str(row["pmid"]), []).append(triple)
        except (KeyError, TypeError):
            raise ValueError(f"{path}: row {i} needs pmid, head_text, tail_text, relation") from None
    return out
