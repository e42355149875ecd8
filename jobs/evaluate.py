"""`biomine evaluate {bc5cdr-relation,bc5cdr-mention,bc5cdr-id,ddi,kd-dti} --gold F --pred F [--json]`."""
from __future__ import annotations

import argparse
import json
from typing import Any

METRICS: tuple[str, ...] = ("bc5cdr-relation", "bc5cdr-mention", "bc5cdr-id", "ddi", "kd-dti")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` sub-command."""
    p = subparsers.add_parser(
        "evaluate", help="score predictions against gold (BioCreative V CDR kit, BioGPT hard match)",
        description="BC5CDR metrics read PubTator files (as the official CDR kit scores them); "
                    "ddi/kd-dti read BioGPT's gold JSON and our relation rows (.parquet/.jsonl) "
                    "or a JSON in the gold layout, and report BioGPT's hard-match scores.")
    p.add_argument("metric", choices=METRICS)
    p.add_argument("--gold", required=True, metavar="FILE", help="gold file")
    p.add_argument("--pred", required=True, metavar="FILE", help="prediction file")
    p.add_argument("--type", dest="types", action="append", metavar="TYPE",
                   help="bc5cdr-mention/-id: entity type to score (repeatable); default: the "
                        "types the predictions contain")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_evaluate)


def evaluate(metric: str, gold: str, pred: str, types: list[str] | None = None) -> dict[str, Any]:
    """Scores of one metric as a dict (tp, fp, fn, precision, recall, f1, ...)."""
    if metric.startswith("bc5cdr-"):
        from pipeline.evaluate import cdr
        from pipeline.tasks.pubtator import read_pubtator

        g, p = read_pubtator(gold), read_pubtator(pred)
        if metric == "bc5cdr-relation":
            return cdr.score_relation(g, p).to_dict()
        scorer = cdr.score_mention if metric == "bc5cdr-mention" else cdr.score_id
        return scorer(g, p, types).to_dict()
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {list(METRICS)}")
    from pipeline.evaluate import hard_match

    return hard_match.evaluate(hard_match.load_pred(pred), hard_match.load_gold(gold))


def run_evaluate(args: argparse.Namespace) -> int:
    """Handler: print the scores."""
    result = evaluate(args.metric, args.gold, args.pred, args.types)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"TP: {result['tp']}\nFP: {result['fp']}\nFN: {result['fn']}")
    print(f"Precision: {result['precision']}\nRecall: {result['recall']}\nF-score: {result['f1']}")
    if "sample_f1" in result:
        print(f"Sample-level ({result['n_samples']} documents): precision "
              f"{result['sample_precision']:.4f} recall {result['sample_recall']:.4f} "
              f"f1 {result['sample_f1']:.4f}")
    return 0
