"""BioCreative V CDR scoring (relation CID, mention, concept id), item for item as the official kit.

The oracle is the kit's jar (BC5CDR_Evaluation-0.0.3, `ncbi.bc5cdr_eval.Evaluate`), not its
readme: tests/pipeline/evaluate/test_cdr_jar.py runs the jar on the same files and requires the
same TP/FP/FN. Its rules, read from the jar and checked against it:
- relation: unique (pmid, type, id1, id2) of the evaluated relation types (CID);
- mention: unique (pmid, start, end, type) of the evaluated entity types, exact offsets;
- id: unique (pmid, type, id) of the evaluated types, a composite "D1|D2" split into its parts;
- an id "" or "-1" is no concept (`None`: dropped for id, kept as "null" in a relation); an id
  without a namespace gets "MESH:" ("D003866" == "MESH:D003866"; "OMIM:215600" stays);
- predictions for documents that have no gold item of the evaluated kind are left out.
The kit is told the types (its scripts pass "Disease"); `types=None` evaluates the types the
predictions contain. On the kit's sample files this gives relation 90/533/33, mention
303/105/121 and id 149/57/65, the jar's own figures (its readme's 150/56/64 for ids is not what
the jar it ships with computes).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pipeline.evaluate import Score
from pipeline.tasks.pubtator import Document

Key = tuple
Items = dict[Key, str]  # kit key -> text shown for it (mention text, entity names)
KINDS = ("relation", "mention", "id")


def concept_key(concept_id: str | None) -> str | None:
    """The kit's `finalizeConceptId`: None for ""/"-1", "MESH:" added when there is no namespace."""
    if not concept_id or concept_id == "-1":
        return None
    return concept_id if ":" in concept_id else "MESH:" + concept_id


def normalize_id(concept_id: str) -> str:
    """A concept id as the kit compares it ("-1"/"" -> "null")."""
    return concept_key(concept_id) or "null"


def _names(doc: Document) -> dict[str | None, str]:
    out: dict[str | None, str] = {}
    for m in doc.mentions:
        for part in m.concept_id.strip().split("|"):
            out.setdefault(concept_key(part), m.text)
    return out


def relation_items(docs: Iterable[Document], types: Iterable[str] = ("CID",)) -> Items:
    """(pmid, type, id1, id2) -> "chemical name -> disease name" (names from the mentions)."""
    wanted, out = set(types), {}
    for d in docs:
        names = None
        for r in d.relations:
            if r.type in wanted:
                names = names if names is not None else _names(d)
                a, b = concept_key(r.id1), concept_key(r.id2)
                out.setdefault((r.pmid, r.type, a, b), f"{names.get(a, '?')} -> {names.get(b, '?')}")
    return out


def mention_items(docs: Iterable[Document], types: Iterable[str]) -> Items:
    """(pmid, start, end, type) -> mention text."""
    wanted = set(types)
    return {(m.pmid, m.start, m.end, m.type): m.text
            for d in docs for m in d.mentions if m.type in wanted}


def id_items(docs: Iterable[Document], types: Iterable[str]) -> Items:
    """(pmid, type, concept id) -> first mention text; composites split, no-concept ids dropped."""
    wanted, out = set(types), {}
    for d in docs:
        for m in d.mentions:
            if m.type in wanted:
                for part in m.concept_id.strip().split("|"):
                    key = concept_key(part)
                    if key is not None:
                        out.setdefault((m.pmid, m.type, key), m.text)
    return out


def relation_set(docs: Iterable[Document], relation_type: str = "CID") -> set[Key]:
    """The kit's relation keys of one relation type."""
    return set(relation_items(docs, (relation_type,)))


def mention_set(docs: Iterable[Document], types: set[str]) -> set[Key]:
    """The kit's mention keys of the given types."""
    return set(mention_items(docs, types))


def id_set(docs: Iterable[Document], types: set[str]) -> set[Key]:
    """The kit's concept-id keys of the given types."""
    return set(id_items(docs, types))


@dataclass(frozen=True)
class Comparison:
    """The kit's outcome: counts and every TP/FP/FN key (sorted), with its text."""

    score: Score
    tp: list[Key]
    fp: list[Key]
    fn: list[Key]
    text: Mapping[Key, str]

    def errors(self, n: int) -> list[tuple[str, Key, str]]:
        """The first n FP then FN as (kind, key, text), like the kit's INFO lines."""
        rows = [("FP", k, self.text.get(k, "")) for k in self.fp]
        rows += [("FN", k, self.text.get(k, "")) for k in self.fn]
        return rows[:n]


def _order(key: Key) -> tuple:
    return tuple((0, int(x), "") if isinstance(x, int) or (isinstance(x, str) and x.isdigit())
                 else (1, 0, str(x)) for x in key)


def compare(gold: Items, pred: Items) -> Comparison:
    """The kit's comparison: predictions of documents without gold items are left out."""
    gold_docs = {k[0] for k in gold}
    pred = {k: v for k, v in pred.items() if k[0] in gold_docs}
    tp = sorted(gold.keys() & pred.keys(), key=_order)
    fp = sorted(pred.keys() - gold.keys(), key=_order)
    fn = sorted(gold.keys() - pred.keys(), key=_order)
    return Comparison(Score(len(tp), len(fp), len(fn)), tp, fp, fn, {**gold, **pred})


def default_types(gold: Sequence[Document], pred: Sequence[Document],
                  types: Iterable[str] | None) -> set[str]:
    """The given types, else those the predictions contain (else the gold's)."""
    if types:
        return set(types)
    found = {m.type for d in pred for m in d.mentions}
    return found or {m.type for d in gold for m in d.mentions}


def compare_documents(kind: str, gold: Sequence[Document], pred: Sequence[Document],
                      types: Iterable[str] | None = None) -> Comparison:
    """Kit comparison of PubTator documents for kind relation (types default CID) / mention / id."""
    if kind == "relation":
        wanted = set(types or ("CID",))
        return compare(relation_items(gold, wanted), relation_items(pred, wanted))
    if kind not in KINDS:
        raise ValueError(f"unknown CDR evaluation {kind!r}; expected one of {list(KINDS)}")
    wanted = default_types(gold, pred, types)
    items = mention_items if kind == "mention" else id_items
    return compare(items(gold, wanted), items(pred, wanted))


def score_relation(gold: Sequence[Document], pred: Sequence[Document],
                   relation_type: str = "CID") -> Score:
    """The kit's `relation CID` score."""
    return compare_documents("relation", gold, pred, [relation_type]).score


def score_mention(gold: Sequence[Document], pred: Sequence[Document],
                  types: Iterable[str] | None = None) -> Score:
    """The kit's `mention TYPE` score (exact offsets and type)."""
    return compare_documents("mention", gold, pred, types).score


def score_id(gold: Sequence[Document], pred: Sequence[Document],
             types: Iterable[str] | None = None) -> Score:
    """The kit's `id TYPE` score (document-level concept ids)."""
    return compare_documents("id", gold, pred, types).score
