"""`biomine train-tagger --train X.PubTator --dev Y.PubTator --base microsoft/biogpt -o DIR`."""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train-tagger` sub-command."""
    p = subparsers.add_parser(
        "train-tagger", help="fine-tune a BioGPT entity tagger from PubTator gold",
        description="Train BioGptForTokenClassification (IOB2 labels of the mention types in "
                    "--train) on top of --base; report dev entity F1 each epoch; save the best "
                    "epoch to DIR and the last to DIR/last (load with the ner task).")
    p.add_argument("--train", required=True, metavar="FILE", help="PubTator training file")
    p.add_argument("--dev", metavar="FILE", help="PubTator dev file (F1 each epoch)")
    p.add_argument("--base", default="microsoft/biogpt",
                   help="hub id or local model folder (default microsoft/biogpt)")
    p.add_argument("-o", "--output", "--out", dest="out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default 1e-3 head only, 5e-5 with --full-model)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--window", type=int, default=512, help="tokens per window (default 512)")
    p.add_argument("--full-model", action="store_true", help="train the whole model, not just the head")
    p.add_argument("--max-docs", type=int, default=None, help="use only the first N documents")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_train_tagger)


def run_train_tagger(args: argparse.Namespace) -> int:
    """Handler: train, print one JSON line per epoch."""
    from pipeline.storage import Location
    from pipeline.training.tagger import TaggerConfig, train_tagger

    config = TaggerConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                          full_model=args.full_model, max_docs=args.max_docs,
                          window=args.window, seed=args.seed)
    out = Location.open(args.out)  # an object store: train locally, then upload the model
    for record in train_tagger(args.train, args.dev, args.base, out.work_dir(), config):
        print(json.dumps(record))
    if not out.is_local:
        n = out.upload(out.work_dir())
        print(f"uploaded {n} files -> {out.url()}")
    return 0
