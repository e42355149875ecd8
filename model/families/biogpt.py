"""BioGPT as a family: the model and config stay in `model.biogpt` / `model.config`; this registers them."""
from __future__ import annotations

from model.biogpt import HEADS
from model.config import BioGptConfig
from model.families.base import Family

FAMILY = Family(
    hf_config="BioGptConfig",
    name="biogpt", config_cls=BioGptConfig, heads=dict(HEADS), causal_lm="BioGptForCausalLM",
    token_classifier="BioGptForTokenClassification",
    embed_key="biogpt.embed_tokens.weight", tied_key="output_projection.weight", base_prefix="biogpt.",
    base_keys=("embed_tokens.", "embed_positions.", "layers.", "layer_norm."),
    positions_key="biogpt.embed_positions.weight", positions_offset=2,
    head_keys={"BioGptForTokenClassification": "classifier.weight",
               "BioGptForSequenceClassification": "score.weight"})
