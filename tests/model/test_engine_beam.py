"""Beam search of the engine against transformers `generate` (same semantics, same answers)."""
from __future__ import annotations

import pytest
import torch

from model.engine import Engine, EngineConfig
from model.sampling import SamplingParams
from tests.model.test_engine_greedy import MAX_POS, make_pair, make_prompts, strip_eos

CASES = [  # num_beams, length_penalty, early_stopping
    (4, 1.3, False),
    (5, 0.7, True),
    (4, 2.0, "never"),
    (5, -0.5, False),
]


@pytest.fixture(scope="module")
def biased_pair():
    return make_pair(eos_bias=1.0)  # some beams end on eos, some run to max_new_tokens


def hf_beam(hf, prompt, **kwargs):
    out = hf.generate(torch.tensor([prompt]), do_sample=False, pad_token_id=1,
                      output_scores=True, return_dict_in_generate=True, **kwargs)
    return out.sequences[0, len(prompt):].tolist(), float(out.sequences_scores[0])


@pytest.mark.parametrize("num_beams,length_penalty,early_stopping", CASES)
def test_beam_search_matches_transformers(biased_pair, num_beams, length_penalty, early_stopping):
    hf, ours = biased_pair
    prompts = make_prompts([3, 17, 9, 30, 1, 12])
    params = SamplingParams(max_new_tokens=14, num_beams=num_beams, length_penalty=length_penalty,
                            early_stopping=early_stopping)
    # room for two prompts' beams at a time: later prompts reuse freed slots
    engine = Engine(ours, config=EngineConfig(kv_cache_tokens=2 * num_beams * MAX_POS))
    gens = engine.generate(prompts, params)
    reasons = set()
    for prompt, gen in zip(prompts, gens):
        ref, ref_score = hf_beam(hf, prompt, max_new_tokens=14, num_beams=num_beams,
                                 length_penalty=length_penalty, early_stopping=early_stopping)
        assert gen.token_ids == strip_eos(ref)
        assert gen.score == pytest.approx(ref_score, rel=1e-4, abs=1e-5)
        assert gen.finish_reason == ("eos" if ref[-1] == 2 else "length")
        reasons.add(gen.finish_reason)
    assert "eos" in reasons  # the eos path of beam search was exercised


def test_beam_search_on_unbiased_model_long_outputs():
    hf, ours = make_pair(seed=0)
    prompts = make_prompts([6, 21], seed=9)
    params = SamplingParams(max_new_tokens=20, num_beams=4, length_penalty=1.0)
    engine = Engine(ours, config=EngineConfig(kv_cache_tokens=8 * MAX_POS))
    for prompt, gen in zip(prompts, engine.generate(prompts, params)):
        ref, _ = hf_beam(hf, prompt, max_new_tokens=20, num_beams=4, length_penalty=1.0)
        assert gen.token_ids == strip_eos(ref)
        assert len(set(gen.token_ids)) > 2
        assert gen.finish_reason == ("eos" if ref[-1] == 2 else "length")


def test_beam_min_new_tokens_matches_transformers(biased_pair):
    hf, ours = biased_pair
    prompts = make_prompts([3, 9, 1])
    params = SamplingParams(max_new_tokens=12, min_new_tokens=5, num_beams=4, length_penalty=1.0)
    engine = Engine(ours, config=EngineConfig(kv_cache_tokens=12 * MAX_POS))
    for prompt, gen in zip(prompts, engine.generate(prompts, params)):
        ref, _ = hf_beam(hf, prompt, max_new_tokens=12, min_new_tokens=5, num_beams=4)
        assert gen.token_ids == strip_eos(ref)
        assert len(gen.token_ids) >= 5 and 2 not in gen.token_ids


def test_beam_needs_enough_cache_slots(biased_pair):
    _, ours = biased_pair
    engine = Engine(ours, config=EngineConfig(kv_cache_tokens=3 * MAX_POS))
    with pytest.raises(ValueError, match="3 slots but one request needs 4"):
        engine.generate(make_prompts([4]), SamplingParams(num_beams=4))
