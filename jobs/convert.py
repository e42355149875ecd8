"""`biomine convert-fairseq CHECKPOINT.pt --data-dir DIR -o OUT`: fairseq BioGPT -> HF-layout folder."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `convert-fairseq` sub-command."""
    p = subparsers.add_parser(
        "convert-fairseq", help="convert a fairseq BioGPT checkpoint.pt to a safetensors folder",
        description="Convert a fairseq BioGPT checkpoint (e.g. Microsoft's RE-BC5CDR/DDI/DTI "
                    "checkpoint_avg.pt) plus its dict.txt and bpecodes into OUT: model.safetensors, "
                    "config.json, vocab.json, merges.txt, tokenizer_config.json (learned1..N prompt "
                    "tokens kept as added tokens). The checkpoint's own code is never run.")
    p.add_argument("checkpoint", type=Path, metavar="CHECKPOINT.pt", help="fairseq checkpoint file")
    p.add_argument("--data-dir", required=True, type=Path, metavar="DIR",
                   help="folder holding the model's dict.txt and bpecodes")
    p.add_argument("-o", "--output", "--out", dest="out", required=True, type=Path, metavar="OUT",
                   help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in OUT")
    p.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    """Convert, then print a JSON summary of the written model."""
    from model.config import BioGptConfig
    from model.convert_fairseq import convert_fairseq_checkpoint
    from model.loader import weights_fingerprint

    out = convert_fairseq_checkpoint(args.checkpoint, args.data_dir, args.out, overwrite=args.overwrite)
    config = BioGptConfig.from_json_file(out / "config.json")
    added_file = out / "added_tokens.json"
    added = json.loads(added_file.read_text()) if added_file.exists() else {}
    summary = {"out": str(out), "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
               "layers": config.num_hidden_layers, "heads": config.num_attention_heads,
               "max_positions": config.max_position_embeddings,
               "prompt_tokens": sorted(added, key=added.__getitem__),
               "weights_sha256": weights_fingerprint(out)}
    print(json.dumps(summary, indent=2))
    return 0
