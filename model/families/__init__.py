"""Registry of model families, keyed by the `architectures` names of an HF `config.json`.

Lazy: a family module is imported the first time one of its names is asked for. A config with
no known architecture falls back to its `model_type`, then to BioGPT (biomine's own checkpoints
before families existed carry BioGPT configs).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from model.config import read_json_config
from model.families.base import Family

ARCHITECTURES = {
    "BioGptForCausalLM": "biogpt", "BioGptForTokenClassification": "biogpt",
    "BioGptForSequenceClassification": "biogpt",
    "GPT2LMHeadModel": "gpt2", "GPT2ForTokenClassification": "gpt2", "GPT2ForSequenceClassification": "gpt2",
    "GPTNeoForCausalLM": "gpt_neo", "GPTNeoForTokenClassification": "gpt_neo",
    "GPTNeoForSequenceClassification": "gpt_neo",
    "OpenAIGPTLMHeadModel": "openai_gpt", "OpenAIGPTForSequenceClassification": "openai_gpt",
}
MODEL_TYPES = {"biogpt": "biogpt", "gpt2": "gpt2", "gpt_neo": "gpt_neo", "openai-gpt": "openai_gpt"}
FAMILY_NAMES = ("biogpt", "gpt2", "gpt_neo", "openai_gpt")


def get_family(name: str) -> Family:
    """The family registered as `name` ('biogpt', 'gpt2', 'gpt_neo', 'openai_gpt')."""
    if name not in FAMILY_NAMES:
        raise ValueError(f"unknown model family {name!r}; supported: {list(FAMILY_NAMES)}")
    return importlib.import_module(f"model.families.{name}").FAMILY


def family_of_head(head: str) -> Family:
    """The family of an HF architecture name such as 'GPTNeoForCausalLM'."""
    if head not in ARCHITECTURES:
        raise ValueError(f"unknown head {head!r}; supported architectures: {sorted(ARCHITECTURES)}")
    return get_family(ARCHITECTURES[head])


def family_of_dict(raw: dict[str, Any]) -> Family:
    """The family a config.json dict names: first known architecture, else model_type, else BioGPT."""
    archs = raw.get("architectures") or []
    for arch in archs if isinstance(archs, list) else []:
        if arch in ARCHITECTURES:
            return get_family(ARCHITECTURES[arch])
    model_type = raw.get("model_type")
    if model_type in MODEL_TYPES:
        return get_family(MODEL_TYPES[model_type])
    if archs or model_type:
        raise ValueError(f"model_type {model_type!r} / architectures {archs} is not BioGPT or a supported "
                         "GPT family (GPT-2, GPT-Neo, OpenAI GPT)")
    return get_family("biogpt")


def family_of_config(config: Any) -> Family:
    """The family whose config class built `config`."""
    for name in FAMILY_NAMES:
        family = get_family(name)
        if type(config) is family.config_cls:
            return family
    raise ValueError(f"{type(config).__name__} is not a model family config")


def family_of_model(model: Any) -> Family:
    """The family of a built model."""
    return family_of_config(model.config)


def config_from_dict(raw: dict[str, Any]) -> Any:
    """The family config of an HF config dict."""
    return family_of_dict(raw).config_cls.from_dict(raw)


def read_config(path: str | Path) -> Any:
    """Read an HF `config.json` into its family's config."""
    return read_json_config(path, config_from_dict)


def all_heads() -> dict[str, type]:
    """Every supported architecture name -> its class (imports all families)."""
    return {head: cls for name in FAMILY_NAMES for head, cls in get_family(name).heads.items()}
