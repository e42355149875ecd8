"""Tiny BioGPT checkpoints on disk (random weights, real layout) for tests of model checks."""
from __future__ import annotations

from pathlib import Path


def save_tiny_models(folder: Path) -> Path:
    """folder/re (causal LM) and folder/ner (token classifier), with BioGPT's tokenizer files."""
    from model.demo import LEARNED_PROMPT, build_demo_model
    from model.loader import save_pretrained
    from model.tokenizer import BioGptTokenizer

    tokenizer = BioGptTokenizer.from_pretrained("microsoft/biogpt")
    tokenizer.add_tokens(list(LEARNED_PROMPT))
    for kind in ("re", "ner"):
        save_pretrained(build_demo_model(kind, device="cpu"), folder / kind, tokenizer=tokenizer)
    return folder
