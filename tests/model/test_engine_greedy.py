"""Greedy generation of the engine against transformers `generate` on tiny random models."""
from __future__ import annotations

import pytest
import torch
import transformers

from model.biogpt import BioGptForCausalLM
from model.config import BioGptConfig
from model.engine import Engine, EngineConfig
from model.sampling import SamplingParams

VOCAB = 96
MAX_POS = 64


def make_pair(seed: int = 0, eos_bias: float = 0.0) -> tuple[transformers.BioGptForCausalLM, BioGptForCausalLM]:
    """A tiny HF BioGPT (init std 1.0, so greedy output varies) and ours with the same weights.

    eos_bias > 0 pushes the final LayerNorm bias toward the eos embedding, so eos gets likely.
    """
    torch.manual_seed(seed)
    cfg = transformers.BioGptConfig(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=3,
                                    num_attention_heads=4, intermediate_size=128,
                                    max_position_embeddings=MAX_POS, initializer_range=1.0)
    hf = transformers.BioGptForCausalLM(cfg).eval()
    if eos_bias:
        emb = hf.biogpt.embed_tokens.weight.detach()
        with torch.no_grad():
            hf.biogpt.layer_norm.bias.copy_(eos_bias * emb[2] / emb[2].norm())
    ours = BioGptForCausalLM(BioGptConfig.from_dict(hf.config.to_dict()))
    ours.load_state_dict(hf.state_dict())
    return hf, ours.eval()


def make_prompts(lengths: list[int], seed: int = 1) -> list[list[int]]:
    """`[</s>] + random ids` prompts (ids 4..VOCAB-1) of the given lengths + 1."""
    gen = torch.Generator().manual_seed(seed)
    return [[2] + torch.randint(4, VOCAB, (n,), generator=gen).tolist() for n in lengths]


def hf_generate(hf: transformers.BioGptForCausalLM, prompt: list[int], **kwargs) -> list[int]:
    """HF output ids after the prompt (one prompt at a time: no padding involved)."""
    out = hf.generate(torch.tensor([prompt]), do_sample=False, pad_token_id=1, **kwargs)
    return out[0, len(prompt):].tolist()


def strip_eos(ids: list[int]) -> list[int]:
    """HF keeps the final eos; the engine does not."""
    return ids[:-1] if ids and ids[-1] == 2 else ids


@pytest.fixture(scope="module")
def pair():
    return make_pair()


def test_single_prompt_matches_transformers(pair):
    hf, ours = pair
    prompt = make_prompts([12])[0]
    engine = Engine(ours, config=EngineConfig(kv_cache_tokens=4 * MAX_POS))
    [gen] = engine.generate([prompt], SamplingParams(max_new_tokens=24))
    ref = hf_generate(hf, prompt, max_new_tokens=24)
    assert gen.token_ids == ref
    assert len(set(ref)) > 3  # the random model does not just repeat one token
    assert gen.finish_reason == "length" and gen.prompt_len == 13 and gen.index == 0


def test_batch_of_very_different_lengths_matches_transformers(pair):
    hf, ours = pair
    prompts = make_prompts([40, 1, 25, 3, 9, 33, 0])
    engine = Engine(ours, config=EngineConfig(kv_cache_tokens=8 * MAX_POS))
    gens = engine.generate(prompts, SamplingParams(max_new_tokens=16))
    assert [g.index for g in gens] == list(range(len(prompts)))
    for prompt, gen in zip(prompts, gens):
        ref = hf_generate(hf, prompt, max_new_tokens=16)
        assert gen.token_ids == strip_eos(ref)
        assert gen.finish_reason == ("eos" if ref[-1] == 2 else "length")


def test_continuous_batching_with_slot_reuse_equals_one_by_one(pair):
    _, ours = pair
    prompts = make_prompts([5, 30, 2, 17, 11, 26, 8, 1, 20])
    params = SamplingParams(max_new_tokens=20, logprobs=True)
    small = Engine(ours, config=EngineConfig(kv_cache_tokens=2 * MAX_POS, max_num_seqs=2))
    assert small.cache.num_slots == 2 < len(prompts)  # slots must be reused
    batched = small.generate(prompts, params)
    single = Engine(ours, config=EngineConfig(kv_cache_tokens=MAX_POS, max_num_seqs=1))
    one_by_one = [single.generate([p], params)[0] for p in prompts]
    assert [g.token_ids for g in batched] == [g.token_ids for g in one_by_one]
    assert [g.cumulative_logprob for g in batched] == pytest.approx(
        [g.cumulative_logprob for g in one_by_one], rel=1e-4)
    # the cache is reused across calls: a second call gives the same answer
    assert [g.token_ids for g in small.generate(prompts, params)] == [g.token_ids for g in batched]


def test_forced_prefix_prompt_is_kept_and_generation_continues_after_it(pair):
    hf, ours = pair
    learned = list(range(VOCAB - 9, VOCAB))  # stand-ins for learned1..9 at the end of the vocab
    prompt = [2] + make_prompts([14], seed=5)[0][1:] + learned
    original = list(prompt)
    engine = Engine(ours, config=EngineConfig(kv_cache_tokens=2 * MAX_POS))
    [gen] = engine.generate([prompt], SamplingParams(max_new_tokens=12))
    assert prompt == original
    assert gen.prompt_len == len(prompt)
    assert gen.token_ids == hf_generate(hf, prompt, max_new_tokens=12)


def test_eos_stop_matches_transformers():
    hf, ours = make_pair(eos_bias=1.0)
    prompts = make_prompts([3, 17, 9, 30, 1, 5, 12, 22])
    engine = Engine(ours, config=EngineConfig(kv_cache_tokens=3 * MAX_POS))
    gens = engine.generate(prompts, SamplingParams(max_new_tokens=20))
    refs = [hf_generate(hf, p, max_new_tokens=20) for p in prompts]
    assert sum(r[-1] == 2 for r in refs) >= 3  # the biased model does stop on eos
    assert sum(len(r) == 20 and r[-1] != 2 for r in refs) >= 1  # and sometimes runs to length
    for ref, gen in zip(refs, gens):
        assert gen.token_ids == strip_eos(ref)
        assert gen.finish_reason == ("eos" if ref[-1] == 2 else "length")


def test_cumulative_logprob_matches_transformers_scores(pair):
    hf, ours = pair
    prompt = make_prompts([7], seed=3)[0]
    out = hf.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=10, pad_token_id=1,
                      output_scores=True, return_dict_in_generate=True)
    chosen = out.sequences[0, len(prompt):]
    ref = sum(float(torch.log_softmax(s[0], -1)[t]) for s, t in zip(out.scores, chosen))
    engine = Engine(ours, config=EngineConfig(kv_cache_tokens=MAX_POS))
    [gen] = engine.generate([prompt], SamplingParams(max_new_tokens=10, logprobs=True))
    assert gen.cumulative_logprob == pytest.approx(ref, abs=1e-3)
    [plain] = engine.generate([prompt], SamplingParams(max_new_tokens=10))  # log-probs not asked
    assert plain.token_ids == gen.token_ids and plain.cumulative_logprob == 0.0
    assert gen.first_token_s <= gen.total_s


def test_stream_yields_every_prompt_once_with_generate_results(pair):
    _, ours = pair
    prompts = make_prompts([4, 21, 2, 13, 8])
    params = SamplingParams(max_new_tokens=9)
    engine = Engine(ours, config=EngineConfig(kv_cache_tokens=2 * MAX_POS))
    streamed = list(engine.generate_stream(iter(prompts), params))
    assert sorted(g.index for g in streamed) == list(range(len(prompts)))
    by_index = {g.index: g.token_ids for g in streamed}
    assert [by_index[i] for i in range(len(prompts))] == [g.token_ids for g in engine.generate(prompts, params)]
