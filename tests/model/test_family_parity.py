"""GPT-2, GPT-Neo and OpenAI GPT against transformers (eager, fp32): logits, greedy, beam, through the engine."""
from __future__ import annotations

import pytest
import torch

from model.biogpt import positions_from_mask
from model.engine import Engine, EngineConfig
from model.sampling import SamplingParams
from tests.model.family_pairs import EOS, HEADS, MAX_POS, NEO_WINDOW, VOCAB, prompts, saved_pair

transformers = pytest.importorskip("transformers")

TOL = 1e-4  # max abs logits difference, fp32 on CPU (logits are O(10..100) with these weights)
FAMILIES = ["gpt2", "gpt_neo", "openai_gpt"]
LENGTHS = [3, 17, 9, 30, 1]  # several cross GPT-Neo's tiny window


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    """family -> (HF causal LM, ours)."""
    return {f: saved_pair(f, HEADS[f][0], tmp_path_factory.mktemp(f), seed=i) for i, f in enumerate(FAMILIES)}


def batch(padding: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(B=3, T=11) ids and a mask with the chosen padding (pads hold id 1)."""
    ids = torch.randint(4, VOCAB, (3, 11), generator=torch.Generator().manual_seed(7))
    mask = torch.ones_like(ids)
    if padding == "left":
        mask[0, :4], mask[2, :1] = 0, 0
    elif padding == "right":
        mask[0, -4:], mask[2, -1:] = 0, 0
    return ids.masked_fill(mask == 0, 1), mask


def hf_logits(hf, ids, mask):
    pos = positions_from_mask(mask).clamp(min=0)  # pads read position 0 (never attended)
    with torch.no_grad():
        return hf(input_ids=ids, attention_mask=mask, position_ids=pos).logits


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("padding", ["none", "left", "right"])
def test_lm_logits_match(lms, family, padding):
    hf, ours = lms[family]
    ids, mask = batch(padding)
    with torch.no_grad():
        mine = ours.forward_padded(ids, mask)
    theirs = hf_logits(hf, ids, mask)
    real = mask.bool()
    assert (mine - theirs)[real].abs().max() <= TOL
    assert mine.abs().max() > 1.0


@pytest.mark.parametrize("family", FAMILIES)
def test_classifier_heads_match(tmp_path, family):
    _, token_head, seq_head = HEADS[family]
    ids, mask = batch("left")
    real = mask.bool()
    if token_head:
        hf, ours = saved_pair(family, token_head, tmp_path / "tok", seed=3, labels=5)
        assert type(ours).__name__ == token_head and ours.config.num_labels == 5
        with torch.no_grad():
            assert (ours.forward_padded(ids, mask) - hf_logits(hf, ids, mask))[real].abs().max() <= TOL
    hf, ours = saved_pair(family, seq_head, tmp_path / "seq", seed=4, labels=2)
    assert type(ours).__name__ == seq_head and ours.config.num_labels == 2
    with torch.no_grad():
        assert (ours.forward_padded(ids, mask) - hf_logits(hf, ids, mask)).abs().max() <= TOL


def hf_generate(hf, prompt: list[int], **kwargs) -> tuple[list[int], float]:
    """HF ids after the prompt (batch 1: no padding), final eos stripped, and the beam score."""
    out = hf.generate(torch.tensor([prompt]), do_sample=False, pad_token_id=1, eos_token_id=EOS,
                      output_scores=True, return_dict_in_generate=True, **kwargs)
    ids = out.sequences[0, len(prompt):].tolist()
    score = float(out.sequences_scores[0]) if kwargs.get("num_beams", 1) > 1 else 0.0
    return (ids[:-1] if ids and ids[-1] == EOS else ids), score


@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_with_continuous_batching_matches(lms, family):
    hf, ours = lms[family]
    batch_prompts = prompts(LENGTHS)
    engine = Engine(ours, config=EngineConfig(kv_cache_tokens=2 * MAX_POS))  # 2 slots for 5 prompts
    gens = engine.generate(batch_prompts, SamplingParams(max_new_tokens=10, eos_token_id=EOS))
    for prompt, gen in zip(batch_prompts, gens):
        assert gen.token_ids == hf_generate(hf, prompt, max_new_tokens=10)[0]
    c = engine.counters
    assert c.host_syncs == c.prefill_steps + c.decode_steps  # one host sync per step


@pytest.mark.parametrize("family", FAMILIES)
def test_beam_search_matches(lms, family):
    hf, ours = lms[family]
    batch_prompts = prompts([4, 13], seed=5)
    params = SamplingParams(max_new_tokens=8, num_beams=3, length_penalty=1.3, eos_token_id=EOS)
    engine = Engine(ours, config=EngineConfig(kv_cache_tokens=2 * 3 * MAX_POS))
    for prompt, gen in zip(batch_prompts, engine.generate(batch_prompts, params)):
        ref, score = hf_generate(hf, prompt, max_new_tokens=8, num_beams=3, length_penalty=1.3)
        assert gen.token_ids == ref
        assert gen.score == pytest.approx(score, rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("family", ["gpt2", "gpt_neo"])
def test_left_padded_hf_batch_generate_matches(lms, family):
    """HF's batched generate on left-padded rows (positions from the mask) equals the engine's rows."""
    hf, ours = lms[family]
    batch_prompts = prompts([5, 19, 11], seed=8)
    t = max(map(len, batch_prompts))
    ids = torch.tensor([[1] * (t - len(p)) + p for p in batch_prompts])
    mask = torch.tensor([[0] * (t - len(p)) + [1] * len(p) for p in batch_prompts])
    out = hf.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=8, pad_token_id=1,
                      eos_token_id=EOS)[:, t:].tolist()
    engine = Engine(ours, config=EngineConfig(kv_cache_tokens=3 * MAX_POS))
    for ref, gen in zip(out, engine.generate(batch_prompts, SamplingParams(max_new_tokens=8, eos_token_id=EOS))):
        ref = ref[:ref.index(EOS)] if EOS in ref else ref
        assert gen.token_ids == ref


def test_gpt_neo_window_is_in_force(lms):
    """Local layers see the last NEO_WINDOW keys: the engine's prefill+decode equals the dense reference,
    and differs from the same weights with the window turned off."""
    from dataclasses import replace

    from model.families.gpt_neo import GPTNeoForCausalLM

    _, ours = lms["gpt_neo"]
    ids = torch.tensor(prompts([20], seed=11))
    with torch.no_grad():
        windowed = ours.forward_padded(ids)
        wide = GPTNeoForCausalLM(replace(ours.config, window_size=MAX_POS))
        wide.load_state_dict(ours.state_dict())
        unwindowed = wide.eval().forward_padded(ids)
    assert (windowed[0, :NEO_WINDOW] - unwindowed[0, :NEO_WINDOW]).abs().max() <= TOL  # inside the window
    assert (windowed[0, NEO_WINDOW:] - unwindowed[0, NEO_WINDOW:]).abs().max() > 1e-2


def test_gpt2_inverse_layer_scale_matters(lms):
    """BioMedLM's flag: dropping scale_attn_by_inverse_layer_idx changes the logits."""
    from dataclasses import replace

    from model.families.gpt2 import GPT2LMHeadModel

    _, ours = lms["gpt2"]
    assert ours.config.scale_attn_by_inverse_layer_idx
    other = GPT2LMHeadModel(replace(ours.config, scale_attn_by_inverse_layer_idx=False))
    other.load_state_dict(ours.state_dict())
    ids = torch.tensor(prompts([9]))
    with torch.no_grad():
        assert (ours.forward_padded(ids) - other.eval().forward_padded(ids)).abs().max() > 1e-2
