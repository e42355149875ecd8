"""Pick a model folder's config and tokenizer by its family (config.json `architectures`, tokenizer files)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TOKENIZER_CLASSES = {  # tokenizer_config.json `tokenizer_class` -> our tokenizer
    "BioGptTokenizer": "biogpt", "GPT2Tokenizer": "gpt2", "GPT2TokenizerFast": "gpt2",
    "OpenAIGPTTokenizer": "openai", "OpenAIGPTTokenizerFast": "openai",
}
FAMILY_TOKENIZERS = {"biogpt": "biogpt", "gpt2": "gpt2", "gpt_neo": "gpt2", "openai_gpt": "openai"}


def load_config(name_or_path: str | Path) -> Any:
    """The family config of a model folder or hub repo id."""
    from model.families import read_config
    from model.loader import resolve_model_dir

    return read_config(resolve_model_dir(name_or_path) / "config.json")


def tokenizer_kind(folder: Path) -> str:
    """'biogpt', 'gpt2' or 'openai': tokenizer_config.json's class, else the config.json family."""
    config = folder / "tokenizer_config.json"
    if config.is_file():
        cls = json.loads(config.read_text(encoding="utf-8")).get("tokenizer_class")
        if cls in TOKENIZER_CLASSES:
            return TOKENIZER_CLASSES[cls]
    if (folder / "config.json").is_file():
        from model.families import family_of_dict

        return FAMILY_TOKENIZERS[family_of_dict(json.loads((folder / "config.json").read_text())).name]
    return "biogpt"


def load_tokenizer(name_or_path: str | Path) -> Any:
    """The tokenizer of a model folder or hub repo id (BioGPT's bundled vocabularies offline)."""
    from model.tokenizer import BUNDLED, BioGptTokenizer

    if str(name_or_path).lower() in BUNDLED and not Path(name_or_path).exists():
        return BioGptTokenizer.from_pretrained(name_or_path)
    from model.loader import resolve_model_dir

    folder = resolve_model_dir(name_or_path)
    kind = tokenizer_kind(folder)
    if kind == "gpt2":
        from model.gpt2_tokenizer import GPT2Tokenizer

        return GPT2Tokenizer.from_folder(folder)
    if kind == "openai":
        from model.openai_tokenizer import OpenAIGPTTokenizer

        return OpenAIGPTTokenizer.from_folder(folder)
    return BioGptTokenizer.from_pretrained(folder)
