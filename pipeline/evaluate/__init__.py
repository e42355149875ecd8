"""Scorers: BioCreative V CDR (relation, mention, id) and BioGPT's DDI/KD-DTI hard match."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Score:
    """True/false positives, false negatives and the derived precision, recall, F1."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 0 when nothing was predicted."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 0 when there is no gold."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, Any]:
        """tp, fp, fn, precision, recall, f1."""
        return {**asdict(self), "precision": self.precision, "recall": self.recall, "f1": self.f1}


def score_sets(gold: set, pred: set) -> Score:
    """Score two sets of hashable keys."""
    tp = len(gold & pred)
    return Score(tp=tp, fp=len(pred) - tp, fn=len(gold) - tp)
