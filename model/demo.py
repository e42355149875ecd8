"""A tiny random BioGPT for `--demo-model`: lets the whole pipeline run anywhere; output is meaningless."""
from __future__ import annotations

import torch

from model.biogpt import BioGptForCausalLM, BioGptForTokenClassification
from model.config import BIOGPT_BASE, BioGptConfig

LEARNED_PROMPT = tuple(f"learned{i}" for i in range(1, 10))  # BioGPT RE soft-prompt tokens
DEMO_LABELS = ("O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease")


def demo_config(num_labels: int = 0) -> BioGptConfig:
    """Base vocabulary + learned1..9, 2 layers of width 64, the base 1,024 positions."""
    id2label = dict(enumerate(DEMO_LABELS[:num_labels])) if num_labels else None
    arch = "BioGptForTokenClassification" if num_labels else "BioGptForCausalLM"
    return BioGptConfig(vocab_size=BIOGPT_BASE.vocab_size + len(LEARNED_PROMPT), hidden_size=64,
                        num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                        max_position_embeddings=BIOGPT_BASE.max_position_embeddings,
                        id2label=id2label, architectures=(arch,))


def build_demo_model(kind: str, seed: int = 0, device: str | torch.device | None = None,
                     ) -> BioGptForCausalLM | BioGptForTokenClassification:
    """kind "re": causal LM; kind "ner": token classifier with Chemical/Disease BIO labels."""
    if kind not in ("re", "ner"):
        raise ValueError(f"demo model kind must be 're' or 'ner', got {kind!r}")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "re":
        model = BioGptForCausalLM(demo_config())
    else:
        model = BioGptForTokenClassification(demo_config(num_labels=len(DEMO_LABELS)))
    model.init_weights(seed=seed)
    return model.to(device).eval()
