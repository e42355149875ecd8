"""Each new family at its real configuration (random weights, fp32, CPU): our logits equal transformers' eager.

GPT-Neo 125M runs a prompt longer than its 256-key window, through the dense path and the engine.
Larger sizes (GPT-Neo 1.3B, BioMedLM's 2.7B GPT-2) are `slow`: run with BIOMINE_SLOW=1.
"""
from __future__ import annotations

import os

import pytest
import torch

from model.engine import Engine, EngineConfig
from model.families import config_from_dict
from model.loader import build_from_state_dict
from model.sampling import SamplingParams

transformers = pytest.importorskip("transformers")

TOL = 2e-3  # max abs logits difference at real width (fp32 sums over 768..2560 terms)
REAL = {  # family -> (HF config class, head, kwargs): the hub configs (see docs/ model-families note)
    "gpt_neo_125m": ("GPTNeoConfig", "GPTNeoForCausalLM",
                     dict(hidden_size=768, num_layers=12, num_heads=12, attention_types=[[["global", "local"], 6]])),
    "openai_gpt": ("OpenAIGPTConfig", "OpenAIGPTLMHeadModel", {}),
    "gpt2_small": ("GPT2Config", "GPT2LMHeadModel", {}),
}
SLOW = {
    "gpt_neo_1.3b": ("GPTNeoConfig", "GPTNeoForCausalLM",
                     dict(hidden_size=2048, num_layers=24, num_heads=16, attention_types=[[["global", "local"], 12]])),
    "biomedlm_2.7b": ("GPT2Config", "GPT2LMHeadModel",  # stanford-crfm/BioMedLM's shape and flags
                      dict(vocab_size=28896, n_embd=2560, n_layer=32, n_head=20, n_positions=1024,
                           scale_attn_by_inverse_layer_idx=True, reorder_and_upcast_attn=False,
                           bos_token_id=28895, eos_token_id=28895)),
}
slow = pytest.mark.skipif(os.environ.get("BIOMINE_SLOW") != "1", reason="slow: set BIOMINE_SLOW=1")


def real_pair(cls_name: str, head: str, kwargs: dict):
    """HF model (seeded HF init, eager) and ours sharing its tensors."""
    torch.manual_seed(0)
    config = getattr(transformers, cls_name)(**kwargs)
    config._attn_implementation = "eager"
    hf = getattr(transformers, head)(config).eval()
    ours = build_from_state_dict(config_from_dict(hf.config.to_dict()), head, dict(hf.state_dict()),
                                 device="cpu")
    return hf, ours


def check_logits(hf, ours, length: int) -> None:
    ids = torch.randint(0, ours.config.vocab_size, (1, length), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        mine = ours.forward_padded(ids)
        theirs = hf(input_ids=ids).logits
    assert (mine - theirs).abs().max() <= TOL
    assert mine.std() > 0.1


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_config_logits_match(name):
    hf, ours = real_pair(*REAL[name])
    length = 300 if name.startswith("gpt_neo") else 40  # GPT-Neo: past the 256-key window
    check_logits(hf, ours, length)
    if name.startswith("gpt_neo"):  # the window inside the KV cache: prefill 270 then decode
        prompt = torch.randint(0, 50257, (270,), generator=torch.Generator().manual_seed(4)).tolist()
        ref = hf.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=3, min_new_tokens=3,
                          pad_token_id=0)[0, 270:].tolist()
        engine = Engine(ours, config=EngineConfig(kv_cache_tokens=512, max_model_len=512))
        gen = engine.generate([prompt], SamplingParams(max_new_tokens=3, min_new_tokens=3,
                                                       eos_token_id=50256))[0]
        assert gen.token_ids == ref


@slow
@pytest.mark.parametrize("name", sorted(SLOW))
def test_large_config_logits_match(name):
    hf, ours = real_pair(*SLOW[name])
    check_logits(hf, ours, 300 if name.startswith("gpt_neo") else 40)
