"""The recipe of the bundled tagger `bundled:cdr-small`: a small BioGPT-shaped token classifier
trained from scratch here on the BC5CDR training set (not BioGPT's weights), deterministic on CPU.

`biomine train-tagger --recipe cdr-small --train CDR_TrainingSet.PubTator.txt --dev
CDR_DevelopmentSet.PubTator.txt -o DIR` reproduces the shipped weights bit for bit (same torch,
one CPU thread); `DIR/shipped` is the fp16 copy that goes into `model/bundled/cdr-small/`.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.training.tagger import TaggerConfig

log = logging.getLogger(__name__)

NAME = "cdr-small"
SIZE = {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
        "intermediate_size": 512, "max_position_embeddings": 1024}
CONFIG = TaggerConfig(epochs=15, lr=1e-3, batch_size=8, full_model=True, window=512, seed=0)


def deterministic(threads: int = 1) -> None:
    """Same bits on every run: fixed thread count, deterministic kernels."""
    import torch

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def write_scratch_base(folder: str | Path, seed: int = 0, size: dict[str, int] | None = None) -> Path:
    """A randomly initialised BioGPT-shaped causal LM (BioGPT's vocabulary) saved as a base."""
    from model.config import BIOGPT_BASE
    from model.loader import build_random_model, save_pretrained
    from model.tokenizer import BioGptTokenizer

    config = replace(BIOGPT_BASE, **(size or SIZE))
    model = build_random_model(config, seed=seed, device="cpu")
    folder = Path(folder)
    save_pretrained(model, folder, BioGptTokenizer.from_pretrained("microsoft/biogpt"))
    log.info("scratch base %s (%s) in %s", NAME, size or SIZE, folder)
    return folder


def config_with(**overrides: Any) -> TaggerConfig:
    """The recipe's training settings with some replaced (tests use fewer epochs)."""
    return replace(CONFIG, **overrides)


def train_cdr_small(train: str | Path, dev: str | Path | None, out_dir: str | Path,
                    config: TaggerConfig = CONFIG, size: dict[str, int] | None = None,
                    on_epoch: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Deterministic from-scratch run: `<out>/base` (random init), then `train_tagger` into `<out>`."""
    from pipeline.training.tagger import train_tagger

    deterministic()
    out_dir = Path(out_dir)
    base = out_dir / "base"
    if not (base / "config.json").is_file():  # a resumed run keeps its base
        write_scratch_base(base, seed=config.seed, size=size)
    return train_tagger(train, dev, base, out_dir, config, on_epoch=on_epoch)
