"""`biomine train-re --task bc5cdr --train X --dev Y --base microsoft/biogpt -o DIR`."""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train-re` sub-command."""
    p = subparsers.add_parser(
        "train-re", help="fine-tune BioGPT for relation extraction (BioGPT's soft-prompt recipe)",
        description="Train BioGPT on [</s>] + source + learned1..9 + target + [</s>] with Ray Train "
                    "(DDP over --num-workers), report loss and dev F1 each epoch, checkpoint every "
                    "epoch (the same -o resumes), average the last --keep-last epochs into DIR "
                    "(load it with `biomine run --re-model DIR`).")
    p.add_argument("--task", required=True, choices=["bc5cdr", "ddi", "kd-dti"])
    p.add_argument("--train", required=True, metavar="FILE",
                   help="BioGPT JSON ({id: {title, abstract, relations|triples, ...}}) or, for "
                        "bc5cdr, a PubTator file")
    p.add_argument("--dev", metavar="FILE", help="dev file in the same formats (F1 each epoch)")
    p.add_argument("--base", default="microsoft/biogpt",
                   help="hub id or local model folder (default microsoft/biogpt)")
    p.add_argument("-o", "--output", "--out", dest="out", required=True, metavar="DIR",
                   help="output folder (resumable)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, default=None, help="peak lr (default 1e-5; ddi 1e-4)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up updates (default 100; ddi 500)")
    p.add_argument("--tokens-per-update", type=int, default=32768,
                   help="tokens per optimiser update, by gradient accumulation (default 32768)")
    p.add_argument("--micro-batch-tokens", type=int, default=4096,
                   help="padded tokens per forward/backward (default 4096)")
    p.add_argument("--num-workers", type=int, default=1, help="Ray Train workers (DDP)")
    p.add_argument("--use-gpu", action="store_true", help="one GPU per worker, bf16/fp16 autocast")
    p.add_argument("--keep-last", type=int, default=5, help="epoch checkpoints kept and averaged")
    p.add_argument("--max-docs", type=int, default=None, help="use only the first N documents")
    p.add_argument("--target-only-loss", action="store_true",
                   help="loss on the answer tokens only (default: whole sequence, as the paper)")
    p.add_argument("--dev-max-new-tokens", type=int, default=375, help="dev generation length cap")
    p.add_argument("--max-failures", type=int, default=0, help="Ray Train worker-failure retries")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_train_re)


def run_train_re(args: argparse.Namespace) -> int:
    """Handler: train (or resume), print one JSON line per epoch run now."""
    from pipeline.storage import Location
    from pipeline.training.re_train import ReTrainConfig, train_re

    out = Location.open(args.out)  # an object store: train locally (resumable), upload the model
    config = ReTrainConfig(
        task=args.task, train=args.train, dev=args.dev, base=args.base, out_dir=out.work_dir(),
        epochs=args.epochs, lr=args.lr, warmup=args.warmup, tokens_per_update=args.tokens_per_update,
        micro_batch_tokens=args.micro_batch_tokens, keep_last=args.keep_last,
        num_workers=args.num_workers, use_gpu=args.use_gpu, max_docs=args.max_docs,
        target_only_loss=args.target_only_loss, dev_max_new_tokens=args.dev_max_new_tokens,
        max_failures=args.max_failures, seed=args.seed)
    for record in train_re(config):
        print(json.dumps(record))
    if not out.is_local:
        n = out.upload(out.work_dir(), skip=("checkpoints",))  # Ray Train's epoch states stay local
        print(f"uploaded {n} files -> {out.url()}")
    return 0
