"""Prediction and gold files of the DDI/KD-DTI scorer: BioGPT's gold JSON, our relation rows,
and BioGPT's position-aligned outputs (one answer per line, as `infer.sh` writes them).

Position-aligned files (`biomine evaluate --align-by-position`): line i answers the i-th
document of the PMID list (BioGPT's `*_test.pmid`, `--pmids`) or of the gold file. A line is
either a raw generation (parsed with biomine's RE parser, `pipeline.tasks.re_parse`) or one
JSON object of BioGPT's `postprocess.py` output (`{"triple_list_pred": [{subject, relation,
object}]}`, a "failed" triple meaning none).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.jsonfile import read_json

Triple = tuple[str, str, str]


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


def read_doc_ids(path: str | Path) -> list[str]:
    """A PMID list: a JSON array (BioGPT's `.json` lists) or one id per line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PMID list not found: {path}")
    if path.suffix == ".json":
        ids = read_json(path, "PMID list")
        if not isinstance(ids, list):
            raise ValueError(f"{path}: expected a JSON array of document ids")
        return [str(i).strip() for i in ids]
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]


def _extracted(obj: Any, where: str) -> list[Triple]:
    triples = obj.get("triple_list_pred") if isinstance(obj, dict) else None
    if not isinstance(triples, list):
        raise ValueError(f"{where}: expected an object with a 'triple_list_pred' list")
    out = []
    for t in triples:
        try:
            triple = (str(t["subject"]), str(t["object"]), str(t["relation"]))
        except (KeyError, TypeError):
            raise ValueError(f"{where}: a triple needs subject, relation, object; got {t!r}") from None
        if triple != ("failed", "failed", "failed"):
            out.append(triple)
    return out


def load_positional(path: str | Path, task: str) -> list[list[Triple]]:
    """One list of (drug, target, interaction) per line of a position-aligned prediction file."""
    from pipeline.tasks.relation import parse_generation
    from pipeline.tasks.rows import get_task

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prediction file not found: {path}")
    recipe = get_task(task, None).recipe
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if text.startswith("{"):
            try:
                out.append(_extracted(json.loads(text), f"{path}:{i}"))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{i}: not a JSON object ({exc})") from None
        else:
            out.append([tuple(f[1:]) for f in parse_generation(recipe, text)[0]])  # type: ignore[misc]
    return out
