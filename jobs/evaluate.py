"""`biomine evaluate {bc5cdr-relation,bc5cdr-mention,bc5cdr-id,ddi,kd-dti} --gold F --pred F [--json]`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

METRICS: tuple[str, ...] = ("bc5cdr-relation", "bc5cdr-mention", "bc5cdr-id", "ddi", "kd-dti")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` sub-command."""
    p = subparsers.add_parser(
        "evaluate", help="score predictions against gold (BioCreative V CDR kit, BioGPT hard match)",
        description="BC5CDR metrics read PubTator or BioC files and count exactly what the "
                    "official CDR kit's jar counts; ddi/kd-dti read BioGPT's gold JSON and a "
                    "`biomine run` output folder (its re-ddi/re-kd-dti rows), our relation rows "
                    "(.parquet/.jsonl) or a JSON in the gold layout, and report "
                    "BioGPT's hard-match scores (hard_match_evaluation.py).")
    p.add_argument("metric", choices=METRICS)
    p.add_argument("--gold", required=True, metavar="FILE", help="gold file")
    p.add_argument("--pred", required=True, metavar="FILE",
                   help="prediction file (ddi/kd-dti: or a `biomine run` output folder)")
    p.add_argument("--type", dest="types", action="append", metavar="TYPE",
                   help="bc5cdr-*: entity type (mention/id; default: the types the predictions "
                        "contain) or relation type (relation; default CID) to score; repeatable")
    p.add_argument("--format", dest="fmt", choices=("auto", "PubTator", "BioC"), default="auto",
                   help="bc5cdr-*: file format (default: .xml is BioC, anything else PubTator)")
    p.add_argument("--show-errors", type=int, default=0, metavar="N",
                   help="list the first N false positives, then false negatives, with document id "
                        "and text (as the kit's INFO lines)")
    p.add_argument("--align-by-position", action="store_true",
                   help="ddi/kd-dti: BioGPT's layout: line i of --pred (a raw answer, or a JSON line "
                        "of postprocess.py) answers document i of --pmids (default: the gold "
                        "file's order); documents past the end of a shorter file are left out, "
                        "as hard_match_evaluation.py does (default: predictions keyed by id, a "
                        "missing document scored as empty)")
    p.add_argument("--pmids", metavar="FILE",
                   help="with --align-by-position: BioGPT's PMID list (*_test.pmid or .json)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_evaluate)


def _cdr(metric: str, gold: str, pred: str, types: list[str] | None, fmt: str,
         show_errors: int) -> dict[str, Any]:
    from pipeline.evaluate.cdr_files import compare_files

    kind = metric.removeprefix("bc5cdr-")
    c = compare_files(kind, gold, pred, types, fmt)
    result = c.score.to_dict()
    if show_errors:
        result["errors"] = [{"kind": k, "evaluation": kind, "pmid": key[0],
                             "key": ["null" if x is None else str(x) for x in key[1:]], "text": text}
                            for k, key, text in c.errors(show_errors)]
    return result


def run_triples(folder: str | Path, task: str) -> dict[str, list[tuple[str, str, str]]]:
    """(head, tail, relation) of one task's relation rows in a `biomine run` output folder (or
    update state folder), keyed by str(pmid); read as `biomine export` reads them (only the
    files a commit names)."""
    from pipeline.curation.source import Selection, iter_chunks

    out: dict[str, list[tuple[str, str, str]]] = {}
    for chunk in iter_chunks(folder, Selection(tasks=(task,))):
        for pmid, rows in chunk.relations.items():
            out.setdefault(str(pmid), []).extend(
                (str(r["head_text"]), str(r["tail_text"]), str(r["relation"])) for r in rows)
    return out


def _triples(metric: str, gold: str, pred: str, show_errors: int, align_by_position: bool,
             pmids: str | None) -> dict[str, Any]:
    from pipeline.evaluate import hard_match
    from pipeline.evaluate.triple_files import load_gold, load_positional, load_pred, read_doc_ids

    gold_map = load_gold(gold)
    doc_ids = None
    if align_by_position:
        lines = load_positional(pred, "re-" + metric)
        order = read_doc_ids(pmids) if pmids else list(gold_map)
        pairs = list(zip(order, lines))  # a shorter file leaves the remaining documents out
        pred_map = dict(pairs)
        doc_ids = [doc_id for doc_id, _ in pairs]
    elif pmids:
        raise ValueError("--pmids goes with --align-by-position")
    else:
        pred_map = run_triples(pred, "re-" + metric) if Path(pred).is_dir() else load_pred(pred)
    result = hard_match.evaluate(pred_map, gold_map, doc_ids)
    if align_by_position:
        result["n_pred_lines"] = len(doc_ids or [])
        result["n_missing"] = sum(1 for d in doc_ids or [] if d not in gold_map)
    if show_errors:
        result["errors"] = [{"kind": k, "evaluation": metric, "pmid": doc_id, "key": list(t),
                             "text": "; ".join(t)}
                            for k, doc_id, t in hard_match.errors(pred_map, gold_map, show_errors, doc_ids)]
    return result


def evaluate(metric: str, gold: str, pred: str, types: list[str] | None = None, *,
             fmt: str = "auto", show_errors: int = 0, align_by_position: bool = False,
             pmids: str | None = None) -> dict[str, Any]:
    """Scores of one metric as a dict (tp, fp, fn, precision, recall, f1, ...; errors when asked)."""
    if show_errors < 0:
        raise ValueError(f"--show-errors needs a count >= 0, got {show_errors}")
    if metric.startswith("bc5cdr-") and metric in METRICS:
        if align_by_position or pmids:
            raise ValueError("--align-by-position/--pmids apply to ddi and kd-dti only")
        return _cdr(metric, gold, pred, types, fmt, show_errors)
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {list(METRICS)}")
    return _triples(metric, gold, pred, show_errors, align_by_position, pmids)


def run_evaluate(args: argparse.Namespace) -> int:
    """Handler: print the scores."""
    result = evaluate(args.metric, args.gold, args.pred, args.types, fmt=args.fmt,
                      show_errors=args.show_errors, align_by_position=args.align_by_position,
                      pmids=args.pmids)
    if args.json:
        print(json.dumps(result))
        return 0
    for e in result.get("errors", []):
        print("\t".join(["INFO", e["kind"], e["evaluation"], str(e["pmid"]), *e["key"], e["text"]]))
    print(f"TP: {result['tp']}\nFP: {result['fp']}\nFN: {result['fn']}")
    print(f"Precision: {result['precision']}\nRecall: {result['recall']}\nF-score: {result['f1']}")
    if "sample_f1" in result:
        print(f"Sample-level ({result['n_samples']} documents): precision "
              f"{result['sample_precision']:.4f} recall {result['sample_recall']:.4f} "
              f"f1 {result['sample_f1']:.4f}; accuracy drug {result['sample_drug_acc']:.4f} "
              f"target {result['sample_target_acc']:.4f} "
              f"interaction {result['sample_interaction_acc']:.4f}")
        print(f"Corpus-level F1: drug {result['drug_f1']:.4f} target {result['target_f1']:.4f} "
              f"interaction {result['interaction_f1']:.4f}")
    return 0
