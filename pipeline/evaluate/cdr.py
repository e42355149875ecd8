"""BioCreative V CDR scoring (relation CID, disease/chemical mention, concept ID), as the official kit.

Rules (BC5CDR_Evaluation-0.0.3, `Evaluate {relation CID|mention Disease|id Disease}`):
- relation: document-level unique (pmid, chemical id, disease id) of the given relation type;
- mention: unique (pmid, start, end, type) of the evaluated type(s), exact offsets;
- id: document-level unique (pmid, type, concept id) of the evaluated type(s); composite ids
  "D1|D2" count each part, "-1" (no concept) is dropped.
Identifiers lose a leading "MESH:" (prediction files write "MESH:D003866", gold "D003866").
The kit is told one type (its scripts pass "Disease"); `types=None` evaluates the types the
predictions contain, which restricts the gold the same way for a disease-only prediction file.

On the kit's sample files these rules reproduce its relation (90/533/33) and mention
(303/105/121) results exactly. For ids they give the kit's totals (206 predicted, 214 gold) but
TP 149 / FP 57 / FN 65 against the kit's 150 / 56 / 64: no exact (pmid, id) pair accounts for
the kit's extra match (composite-as-unit, keeping "-1", typeless or unsplit variants were tried
and miss), so that one pair stays unexplained (tests/pipeline/test_eval_cdr.py, xfail).
The likeliest explanation, unverified: the kit maps MEDIC alternate ids to their MeSH concept,
so PMID 3827439's predicted OMIM:215600 ("cryptogenic cirrhosis") would match its gold D005355
(the only document whose unmatched prediction and gold would then pair up). Settling it needs
the kit's jar run with its INFO lines on, or CTD's MEDIC vocabulary; neither is reachable offline.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from pipeline.evaluate import Score, score_sets
from pipeline.tasks.pubtator import Document

Key = tuple


def normalize_id(concept_id: str) -> str:
    """Drop a "MESH:" prefix and surrounding space."""
    concept_id = concept_id.strip()
    return concept_id[5:] if concept_id.upper().startswith("MESH:") else concept_id


def relation_set(docs: Iterable[Document], relation_type: str = "CID") -> set[Key]:
    """Unique (pmid, id1, id2) of one relation type."""
    return {(r.pmid, normalize_id(r.id1), normalize_id(r.id2))
            for d in docs for r in d.relations if r.type == relation_type}


def mention_set(docs: Iterable[Document], types: set[str]) -> set[Key]:
    """Unique (pmid, start, end, type) of the given types."""
    return {(m.pmid, m.start, m.end, m.type) for d in docs for m in d.mentions if m.type in types}


def id_set(docs: Iterable[Document], types: set[str]) -> set[Key]:
    """Unique (pmid, type, concept id) of the given types; composites split, "-1" dropped."""
    out: set[Key] = set()
    for d in docs:
        for m in d.mentions:
            if m.type not in types:
                continue
            for part in m.concept_id.split("|"):
                part = normalize_id(part)
                if part and part != "-1":
                    out.add((m.pmid, m.type, part))
    return out


def _types(gold: Sequence[Document], pred: Sequence[Document],
           types: Iterable[str] | None) -> set[str]:
    if types:
        return set(types)
    found = {m.type for d in pred for m in d.mentions}
    return found or {m.type for d in gold for m in d.mentions}


def score_relation(gold: Sequence[Document], pred: Sequence[Document],
                   relation_type: str = "CID") -> Score:
    """The kit's `relation CID` score."""
    return score_sets(relation_set(gold, relation_type), relation_set(pred, relation_type))


def score_mention(gold: Sequence[Document], pred: Sequence[Document],
                  types: Iterable[str] | None = None) -> Score:
    """The kit's `mention TYPE` score (exact offsets and type)."""
    wanted = _types(gold, pred, types)
    return score_sets(mention_set(gold, wanted), mention_set(pred, wanted))


def score_id(gold: Sequence[Document], pred: Sequence[Document],
             types: Iterable[str] | None = None) -> Score:
    """The kit's `id TYPE` score (document-level concept ids)."""
    wanted = _types(gold, pred, types)
    return score_sets(id_set(gold, wanted), id_set(pred, wanted))
