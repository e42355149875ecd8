"""Training sequences for BioGPT's RE recipes, from the BioGPT JSON layout or BC5CDR PubTator.

Targets follow microsoft/BioGPT `examples/RE-*/rebuild_data.py`:
- BC5CDR: one `the relation between {chemical} and {disease} exists` per relation, in the
  document's relation order; a name is the longest lowercased surface form of its MeSH id in
  the document (the first one on a tie).
- DDI / KD-DTI: `the interaction between {drug} and {target} is {interaction}`, lowercased,
  sorted (stably) by `source.find(drug)` -- BioGPT looks the *raw* drug name up in the
  lowercased text, so a name with capitals sorts first (-1); kept as is for fidelity.
Clauses are joined by "; " and end in "."; documents without relations are left out.
Sequence (`language_model_prompt_dataset.py`): `[</s>] + source + learned1..9 + target + [</s>]`,
source cut to 640 tokens (last kept one "..."), target to 1024 - 640 - 9 tokens with its eos.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.jsonfile import read_json
from pipeline.tasks import re_bc5cdr, re_ddi, re_kd_dti
from pipeline.tasks.relation import MAX_SOURCE_TOKENS, Recipe, render_answer, source_text

log = logging.getLogger(__name__)

RECIPES: dict[str, Recipe] = {"bc5cdr": re_bc5cdr.RECIPE, "ddi": re_ddi.RECIPE,
                              "kd-dti": re_kd_dti.RECIPE}
MAX_LENGTH = 1024  # fairseq --max-target-positions: source + prompt + target
IGNORE = -100
_MENTION = re.compile(r"^([^\t|]+)\t(\d+)\t(\d+)\t")


@dataclass(frozen=True)
class ReDocument:
    """One training/dev document: text, target triples (target order) and name -> id maps."""

    doc_id: str
    title: str
    abstract: str
    triples: tuple[tuple[str, str, str], ...]  # (head, tail, relation) as written in the target
    head_ids: Mapping[str, str] | None = None  # BC5CDR: lowercased chemical name -> MeSH
    tail_ids: Mapping[str, str] | None = None  # BC5CDR: lowercased disease name -> MeSH
    gold_ids: tuple[tuple[str, str], ...] = ()  # BC5CDR: (chemical id, disease id) relations

    def article(self) -> dict[str, Any]:
        """The article mapping the RE task functions read."""
        return {"pmid": self.doc_id, "version": None, "title": self.title, "abstract": self.abstract}


@dataclass(frozen=True)
class TrainExample:
    """Token ids of one sequence and how many of them precede the target."""

    ids: list[int]
    n_prefix: int  # [</s>] + source + prompt

    def labels(self, target_only: bool) -> list[int]:
        """Next-token labels of `ids[:-1]`: all of them, or only those inside the target."""
        labels = list(self.ids[1:])
        if target_only:
            labels[: self.n_prefix - 1] = [IGNORE] * (self.n_prefix - 1)
        return labels


def longest_names(name2id: Mapping[str, str]) -> dict[str, str]:
    """id -> its longest name (BioGPT's `unify_ent2id(method='max')`: the first on a tie)."""
    out: dict[str, str] = {}
    for name, concept in name2id.items():
        if concept not in out or len(name) > len(out[concept]):
            out[concept] = name
    return out


def bc5cdr_document(doc_id: str, record: Mapping[str, Any], where: str) -> ReDocument:
    """A BC5CDR document from a BioGPT JSON record (relations named by their longest names)."""
    try:
        chem, dis = dict(record["chemical2id"]), dict(record["disease2id"])
        rels = [(str(r["chemical"]), str(r["disease"])) for r in record.get("relations") or []]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{where}: document {doc_id}: expected chemical2id, disease2id and "
                         f"relations of {{chemical, disease}} ({exc!r})") from None
    id2chem, id2dis = longest_names(chem), longest_names(dis)
    triples = []
    for c, d in rels:
        if c not in id2chem or d not in id2dis:
            raise ValueError(f"{where}: document {doc_id}: relation {c}-{d} names an id with no "
                             "surface form in chemical2id/disease2id")
        triples.append((id2chem[c], id2dis[d], "CID"))
    return ReDocument(doc_id, str(record.get("title") or ""), str(record.get("abstract") or ""),
                      tuple(triples), chem, dis, tuple(rels))


def interaction_document(doc_id: str, record: Mapping[str, Any], recipe: Recipe,
                         where: str) -> ReDocument:
    """A DDI / KD-DTI document: triples lowercased and sorted by where the drug occurs."""
    try:
        raw = [(str(t["drug"]), str(t["target"]), str(t["interaction"]))
               for t in record.get("triples") or []]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{where}: document {doc_id}: a triple needs drug, target and "
                         f"interaction ({exc!r})") from None
    title, abstract = str(record.get("title") or ""), str(record.get("abstract") or "")
    text = source_text({"title": title, "abstract": abstract}, recipe.title_in_source)
    raw.sort(key=lambda t: text.find(t[0]))
    triples = tuple((d.lower(), t.lower(), r.lower()) for d, t, r in raw)
    return ReDocument(doc_id, title, abstract, triples)


def read_json_documents(path: str | Path, task: str) -> list[ReDocument]:
    """Every document of a BioGPT-layout JSON file `{id: {...}}`, in file order."""
    path, recipe = Path(path), recipe_for(task)
    data = read_json(path, "data file")
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: expected a JSON object {{id: {{title?, abstract, ...}}}}")
    if task == "bc5cdr":
        return [bc5cdr_document(str(k), v, str(path)) for k, v in data.items()]
    return [interaction_document(str(k), v, recipe, str(path)) for k, v in data.items()]


def pubtator_records(path: str | Path) -> dict[str, dict[str, Any]]:
    """BC5CDR PubTator -> BioGPT JSON records, as BioGPT's preprocessed files were built.

    Names are lowercased mention texts; a composite mention (`D1|D2`) contributes the single
    names of its 7th column, or nothing when it has none; a later mention of a name overrides
    its id; relations whose ids lost every name are dropped.
    """
    from pipeline.tasks.pubtator import read_pubtator

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such PubTator file")
    singles: dict[tuple[str, int, int], list[str]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            cols = line.rstrip("\r\n").split("\t")
            if _MENTION.match(line) and len(cols) > 6 and "|" in cols[5]:
                singles[(cols[0], int(cols[1]), int(cols[2]))] = cols[6].split("|")
    out: dict[str, dict[str, Any]] = {}
    for doc in read_pubtator(path):
        maps: dict[str, dict[str, str]] = {"Chemical": {}, "Disease": {}}
        for m in doc.mentions:
            if m.type not in maps:
                continue
            ids = m.concept_id.split("|")
            names = [m.text] if len(ids) == 1 else singles.get((doc.pmid, m.start, m.end), [])
            if len(names) != len(ids) and len(ids) > 1 and names:
                raise ValueError(f"{path}: PMID {doc.pmid}: composite mention {m.text!r} has "
                                 f"{len(ids)} ids but {len(names)} names")
            for name, concept in zip(names, ids):
                maps[m.type][name.lower()] = concept
        named_c, named_d = set(maps["Chemical"].values()), set(maps["Disease"].values())
        rels = [{"chemical": r.id1, "disease": r.id2} for r in doc.relations
                if r.type == "CID" and r.id1 in named_c and r.id2 in named_d]
        out[doc.pmid] = {"title": doc.title, "abstract": doc.abstract, "relations": rels,
                         "chemical2id": maps["Chemical"], "disease2id": maps["Disease"]}
    return out


def load_documents(path: str | Path, task: str, max_docs: int | None = None) -> list[ReDocument]:
    """Documents with at least one relation (first `max_docs`), from .json or BC5CDR PubTator."""
    recipe_for(task)
    if Path(path).suffix.lower() == ".json":
        docs = read_json_documents(path, task)
    elif task == "bc5cdr":
        docs = [bc5cdr_document(k, v, str(path)) for k, v in pubtator_records(path).items()]
    else:
        raise ValueError(f"{path}: task {task} reads BioGPT JSON (.json) only")
    kept = [d for d in docs if d.triples]
    if len(kept) < len(docs):
        log.info("%s: %d of %d documents have no relation and are left out (as BioGPT does)",
                 path, len(docs) - len(kept), len(docs))
    kept = kept[:max_docs] if max_docs else kept
    if not kept:
        raise ValueError(f"{path}: no document with a relation to learn from")
    return kept


def recipe_for(task: str) -> Recipe:
    """The recipe of `bc5cdr`, `ddi` or `kd-dti`."""
    if task not in RECIPES:
        raise ValueError(f"unknown RE task {task!r}; expected one of {sorted(RECIPES)}")
    return RECIPES[task]


def target_text(recipe: Recipe, doc: ReDocument) -> str:
    """The answer BioGPT trains on: clauses joined by "; ", ending in "."."""
    return render_answer(recipe, list(doc.triples))


def encode_example(doc: ReDocument, recipe: Recipe, tokenizer: Any, prompt_ids: list[int],
                   max_source_tokens: int = MAX_SOURCE_TOKENS) -> TrainExample:
    """`[</s>] + source + prompt + target + [</s>]` with BioGPT's source and target cuts."""
    from model.tokenizer import truncate_source

    eos, ellipsis = tokenizer.eos_token_id, tokenizer.ellipsis_id
    source = source_text(doc.article(), recipe.title_in_source)
    src, _ = truncate_source(tokenizer.encode(source, add_special_tokens=False), max_source_tokens,
                             ellipsis)
    tgt = [*tokenizer.encode(target_text(recipe, doc), add_special_tokens=False), eos]
    max_target = MAX_LENGTH - max_source_tokens - len(prompt_ids)
    if len(tgt) > max_target:  # fairseq: cut, "..." then eos at the end
        tgt = [*tgt[: max_target - 2], ellipsis, eos]
    prefix = [eos, *src, *prompt_ids]
    return TrainExample([*prefix, *tgt], len(prefix))

