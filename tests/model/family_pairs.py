"""Tiny HF models of every new family (random, large weights, eager attention) and ours loaded from their folders."""
from __future__ import annotations

from pathlib import Path

import torch

VOCAB, MAX_POS, EOS = 96, 64, 2
NEO_WINDOW = 5  # tiny window so prompts of 6..31 tokens cross it

TINY = {  # family -> (HF config class, kwargs)
    "gpt2": ("GPT2Config", dict(vocab_size=VOCAB, n_positions=MAX_POS, n_embd=32, n_layer=3, n_head=4,
                                 scale_attn_by_inverse_layer_idx=True, bos_token_id=0, eos_token_id=EOS)),
    "gpt_neo": ("GPTNeoConfig", dict(vocab_size=VOCAB, max_position_embeddings=MAX_POS, hidden_size=32,
                                     num_layers=4, num_heads=4, attention_types=[[["global", "local"], 2]],
                                     window_size=NEO_WINDOW, bos_token_id=0, eos_token_id=EOS)),
    "openai_gpt": ("OpenAIGPTConfig", dict(vocab_size=VOCAB, n_positions=MAX_POS, n_embd=32, n_layer=3,
                                           n_head=4)),
}
HEADS = {  # family -> (causal LM, token classifier or None, sequence classifier)
    "gpt2": ("GPT2LMHeadModel", "GPT2ForTokenClassification", "GPT2ForSequenceClassification"),
    "gpt_neo": ("GPTNeoForCausalLM", "GPTNeoForTokenClassification", "GPTNeoForSequenceClassification"),
    "openai_gpt": ("OpenAIGPTLMHeadModel", None, "OpenAIGPTForSequenceClassification"),
}


def randomize(model: torch.nn.Module, seed: int, scale: float = 0.3) -> None:
    """Large, seeded random weights (HF's init is too close to zero to test anything)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            param.copy_(1 + 0.2 * noise if ".ln" in name and name.endswith("weight") else scale * noise)


def hf_model(family: str, head: str, seed: int = 0, labels: int = 0, scale: float = 0.3, **extra):
    """A tiny eager HF model of `family` with seeded random weights, in eval mode."""
    import transformers

    cls_name, kwargs = TINY[family]
    kwargs = {**kwargs, **extra}
    if labels:
        kwargs.update(num_labels=labels, pad_token_id=1)
    config = getattr(transformers, cls_name)(**kwargs)
    config._attn_implementation = "eager"  # the reference (GPT-Neo's FA2 ignores the window)
    model = getattr(transformers, head)(config)
    randomize(model, seed, scale)
    if hasattr(model, "tie_weights") and head == HEADS[family][0]:
        model.tie_weights()
    return model.eval()


def saved_pair(family: str, head: str, folder: Path, seed: int = 0, labels: int = 0, **extra):
    """(HF model, ours loaded by `load_model` from the folder HF wrote)."""
    from model.loader import load_model

    hf = hf_model(family, head, seed, labels, **extra)
    hf.save_pretrained(folder)
    return hf, load_model(folder, device="cpu")


def prompts(lengths: list[int], seed: int = 1) -> list[list[int]]:
    """Random prompts (ids 4..VOCAB-1) of the given lengths."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(4, VOCAB, (n,), generator=gen).tolist() for n in lengths]
