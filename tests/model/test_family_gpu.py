"""GPU (skipped without CUDA): the new families at real shapes in fp16/bf16, CUDA graphs, one sync per step.

Imports only torch, transformers and model.* (the GPU box has no ray/sacremoses/pydantic).
Reference: transformers eager in fp32 on the same GPU; error bounds as tests/model/test_gpu_parity.py
(fp32 <= 1e-3 is loosened to 2e-3 for GPT-Neo, whose 300-token input crosses its 256-key window);
top-1 flips are allowed only at near ties (HF-init logits are nearly flat: on CPU, GPT-2 small in
fp16 had max error 0.0043 but 98.8 % top-1 agreement).
"""
from __future__ import annotations

import pytest
import torch

from model.engine import Engine, EngineConfig
from model.families import config_from_dict
from model.loader import build_from_state_dict
from model.sampling import SamplingParams
from tests.model.test_gpu_parity import BOUNDS

pytestmark = pytest.mark.gpu

REAL = {  # name -> (HF config class, head, kwargs, input length)
    "gpt_neo_125m": ("GPTNeoConfig", "GPTNeoForCausalLM",
                     dict(hidden_size=768, num_layers=12, num_heads=12,
                          attention_types=[[["global", "local"], 6]]), 300),
    "gpt2_small": ("GPT2Config", "GPT2LMHeadModel", {}, 128),
    "openai_gpt": ("OpenAIGPTConfig", "OpenAIGPTLMHeadModel", {}, 128),
    "biomedlm_2.7b": ("GPT2Config", "GPT2LMHeadModel",
                      dict(vocab_size=28896, n_embd=2560, n_layer=32, n_head=20,
                           scale_attn_by_inverse_layer_idx=True, bos_token_id=28895, eos_token_id=28895), 128),
}


def hf_model(name: str):
    import transformers

    cls_name, head, kwargs, _ = REAL[name]
    config = getattr(transformers, cls_name)(**kwargs)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    with torch.device("cuda"):
        return getattr(transformers, head)(config).eval()


def ours_from(hf, dtype: torch.dtype):
    config = config_from_dict(hf.config.to_dict())
    state = {k: v.detach().clone() for k, v in hf.state_dict().items()}
    return build_from_state_dict(config, type(hf).__name__, state, dtype=dtype, device="cuda")


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_shapes_half_precision_vs_transformers(name):
    hf = hf_model(name)
    length = REAL[name][3]
    ids = torch.randint(0, hf.config.vocab_size, (2, length), generator=torch.Generator().manual_seed(0)).cuda()
    with torch.no_grad():
        ref = hf(input_ids=ids).logits.float()
    errors = {}
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        ours = ours_from(hf, dtype)
        with torch.no_grad():
            mine = ours.forward_padded(ids).float()
        bound = BOUNDS[dtype][0]
        if dtype == torch.float32 and name.startswith("gpt_neo"):
            bound = 2e-3
        key = str(dtype).removeprefix("torch.")
        errors[key] = (mine - ref).abs().max().item()
        errors[key + "_top1"] = (mine.argmax(-1) == ref.argmax(-1)).float().mean().item()
        picked = ref.gather(-1, mine.argmax(-1)[..., None])[..., 0]
        errors[key + "_top1_gap"] = (ref.max(-1).values - picked).max().item()
        del ours
        assert errors[key] <= bound, errors
        # random HF-init logits are nearly flat: a flipped top-1 must be a near tie of the reference
        assert errors[key + "_top1_gap"] <= 2 * bound, errors
    print(name, errors)


@pytest.mark.parametrize("name", ["gpt_neo_125m", "gpt2_small", "openai_gpt"])
def test_cuda_graphs_equal_eager_and_one_sync_per_step(name):
    """Prompts past GPT-Neo's window, slot reuse; graphs give eager's tokens; host syncs = steps."""
    hf = hf_model(name)
    gen = torch.Generator().manual_seed(1)
    batch = [torch.randint(0, hf.config.vocab_size, (n,), generator=gen).tolist()
             for n in (300, 5, 270, 40, 77, 200, 9, 64)]
    params = SamplingParams(max_new_tokens=40, ignore_eos=True)
    cfg = dict(dtype="float16", kv_cache_tokens=4 * 512, max_model_len=512, max_num_seqs=4)
    eager = Engine(ours_from(hf, torch.float32), config=EngineConfig(enforce_eager=True, **cfg))
    want = [g.token_ids for g in eager.generate(batch, params)]
    del eager
    graphed = Engine(ours_from(hf, torch.float32), config=EngineConfig(**cfg))
    got = [g.token_ids for g in graphed.generate(batch, params)]
    c = graphed.counters
    assert graphed.runner.num_graphs > 0 and c.host_syncs == c.prefill_steps + c.decode_steps
    same = sum(a == b for a, b in zip(got, want))
    assert same >= len(want) - 1, (got, want)  # fp16: one near-tie flip allowed over 8 x 40 tokens


def test_gpt_neo_engine_matches_hf_greedy_past_the_window():
    """HF generate (eager, fp32) vs the engine in fp32 on the GPU: a 300-token prompt, 16 tokens."""
    hf = hf_model("gpt_neo_125m")
    prompt = torch.randint(0, 50257, (300,), generator=torch.Generator().manual_seed(2)).tolist()
    ref = hf.generate(torch.tensor([prompt], device="cuda"), do_sample=False, max_new_tokens=16,
                      min_new_tokens=16, pad_token_id=0)[0, 300:].tolist()
    engine = Engine(ours_from(hf, torch.float32), config=EngineConfig(dtype="float32", kv_cache_tokens=2 * 512,
                                                                      max_model_len=512))
    assert engine.generate([prompt], SamplingParams(max_new_tokens=16, ignore_eos=True))[0].token_ids == ref
