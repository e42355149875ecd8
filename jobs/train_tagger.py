"""`biomine train-tagger --train X.PubTator --dev Y.PubTator --base microsoft/biogpt -o DIR`."""
from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train-tagger` sub-command."""
    p = subparsers.add_parser(
        "train-tagger", help="fine-tune a BioGPT entity tagger from PubTator gold",
        description="Train BioGptForTokenClassification (IOB2 labels of the mention types in "
                    "--train) on top of --base; report loss and dev entity F1 each epoch (one line "
                    "each); save the best epoch to DIR and the last to DIR/last (load with the ner "
                    "task), a run summary to DIR/train_summary.json; the same -o resumes a killed "
                    "run. --recipe cdr-small trains the bundled tagger from scratch, bit for bit.")
    p.add_argument("--train", required=True, metavar="FILE", help="PubTator training file")
    p.add_argument("--dev", metavar="FILE", help="PubTator dev file (F1 each epoch)")
    p.add_argument("--base", default=None,
                   help="hub id or local model folder (default microsoft/biogpt)")
    p.add_argument("--recipe", choices=["cdr-small"], default=None,
                   help="the bundled tagger's recipe: a small BioGPT-shaped model from scratch, "
                        "its settings, one deterministic CPU thread (other flags must be left out)")
    p.add_argument("-o", "--output", "--out", dest="out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--ship", metavar="DIR", help="with --recipe: write the best epoch as fp16 to DIR "
                   "with its dev scores and run summary (the bundled copy: model/bundled/cdr-small)")
    p.add_argument("--epochs", type=int, default=None, help="default 3 (recipe: its own)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default 1e-3 head only, 5e-5 with --full-model)")
    p.add_argument("--batch-size", type=int, default=None, help="windows per update (default 8)")
    p.add_argument("--window", type=int, default=None, help="tokens per window (default 512)")
    p.add_argument("--full-model", action="store_true", default=None,
                   help="train the whole model, not just the head")
    p.add_argument("--max-docs", type=int, default=None, help="use only the first N documents")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N updates in all")
    p.add_argument("--seed", type=int, default=None, help="default 0")
    p.set_defaults(func=run_train_tagger)


def run_train_tagger(args: argparse.Namespace) -> int:
    """Handler: train (or resume), print one JSON line per epoch as it ends."""
    import logging

    from pipeline.storage import Location
    from pipeline.training.tagger import TaggerConfig, train_tagger

    logging.getLogger("pipeline.training").setLevel(logging.INFO)
    settings = {k: getattr(args, k) for k in ("epochs", "lr", "batch_size", "full_model", "window",
                                              "seed", "max_docs", "max_steps")}
    given = {k: v for k, v in settings.items() if v is not None}
    show = lambda record: print(json.dumps(record), flush=True)  # noqa: E731
    out = Location.open(args.out)  # an object store: train locally, then upload the model
    work = out.work_dir()
    if args.recipe:
        from pipeline.training.cdr_small import CONFIG, ship, train_cdr_small

        extra = sorted(set(given) - {"max_docs", "max_steps"}) + (["base"] if args.base else [])
        if extra:
            raise ValueError(f"train-tagger --recipe {args.recipe} fixes its settings; leave out "
                             f"{', '.join('--' + k.replace('_', '-') for k in extra)}")
        from dataclasses import replace

        train_cdr_small(args.train, args.dev, work, replace(CONFIG, **given), on_epoch=show)
        if args.ship:
            if not args.dev:
                raise ValueError("train-tagger --ship needs --dev (the published scores)")
            ship(work, args.train, args.dev, args.ship)
        return _upload(out, work)
    if args.ship:
        raise ValueError("train-tagger --ship goes with --recipe")
    train_tagger(args.train, args.dev, args.base or "microsoft/biogpt", work,
                 TaggerConfig(**given), on_epoch=show)
    return _upload(out, work)


def _upload(out: Any, work: str) -> int:
    """An object-store -o: copy the trained model up from the local work folder."""
    if not out.is_local:
        n = out.upload(work)
        print(f"uploaded {n} files -> {out.url()}")
    return 0
