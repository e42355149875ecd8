"""Length limits, eos handling, bad input and the tagger's classify_tokens."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model.biogpt import BioGptForTokenClassification
from model.config import BioGptConfig
from model.engine import Engine, EngineConfig
from model.sampling import SamplingParams
from tests.model.test_engine_greedy import MAX_POS, hf_generate, make_pair, make_prompts, strip_eos


@pytest.fixture(scope="module")
def biased_pair():
    return make_pair(eos_bias=1.0)


@pytest.fixture(scope="module")
def engine(biased_pair):
    return Engine(biased_pair[1], config=EngineConfig(kv_cache_tokens=4 * MAX_POS))


def test_min_new_tokens_blocks_eos_like_transformers(biased_pair, engine):
    hf, _ = biased_pair
    prompts = make_prompts([3, 9, 1, 5])
    gens = engine.generate(prompts, SamplingParams(max_new_tokens=15, min_new_tokens=6))
    early = 0
    for prompt, gen in zip(prompts, gens):
        ref = hf_generate(hf, prompt, max_new_tokens=15, min_new_tokens=6)
        assert gen.token_ids == strip_eos(ref)
        assert len(gen.token_ids) >= 6
        early += len(hf_generate(hf, prompt, max_new_tokens=15)) < 6
    assert early >= 2  # without min_new_tokens these prompts stop sooner


def test_max_new_tokens_and_ignore_eos(biased_pair, engine):
    hf, _ = biased_pair
    prompts = make_prompts([3, 9, 1])
    for n in (1, 4):
        for gen in engine.generate(prompts, SamplingParams(max_new_tokens=n)):
            assert len(gen.token_ids) <= n
    forced = engine.generate(prompts, SamplingParams(max_new_tokens=11, ignore_eos=True))
    assert all(len(g.token_ids) == 11 and g.finish_reason == "length" for g in forced)
    assert any(2 in g.token_ids for g in forced)  # eos was generated but did not stop
    # the forced run agrees with HF up to HF's eos
    for prompt, gen in zip(prompts, forced):
        ref = hf_generate(hf, prompt, max_new_tokens=11)
        assert gen.token_ids[:len(ref)] == ref


def test_prompt_reaching_max_model_len_is_refused_before_any_work(biased_pair):
    _, ours = biased_pair
    engine = Engine(ours, config=EngineConfig(max_model_len=32, kv_cache_tokens=64))
    prompts = make_prompts([5, 31])  # the second has 32 tokens
    with pytest.raises(ValueError, match=r"prompt 1 has 32 tokens; max_model_len is 32"):
        engine.generate(prompts, SamplingParams(max_new_tokens=4))
    with pytest.raises(ValueError, match="prompt 0 is empty"):
        engine.generate([[]], SamplingParams())
    with pytest.raises(ValueError, match=r"prompt 1 has token ids outside \[0, 96\)"):
        engine.generate([[2, 5], [2, 96]], SamplingParams())
    with pytest.raises(ValueError, match="exceeds the model's max_position_embeddings"):
        Engine(ours, config=EngineConfig(max_model_len=MAX_POS + 1))


def test_output_stops_at_max_model_len(biased_pair):
    hf, ours = biased_pair
    engine = Engine(ours, config=EngineConfig(max_model_len=32, kv_cache_tokens=64))
    prompt = make_prompts([26], seed=4)[0]  # 27 tokens: room for 5 more
    [gen] = engine.generate([prompt], SamplingParams(max_new_tokens=20, ignore_eos=True))
    assert len(gen.token_ids) == 5 and gen.finish_reason == "length"
    ref = hf_generate(hf, prompt, max_new_tokens=5)
    assert gen.token_ids[:len(ref)] == ref


def test_config_and_params_validation():
    with pytest.raises(ValueError, match="max_num_seqs"):
        EngineConfig(max_num_seqs=0)
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        EngineConfig(gpu_memory_utilization=1.5)
    with pytest.raises(ValueError, match="dtype"):
        EngineConfig(dtype="int8")
    with pytest.raises(ValueError, match="early_stopping"):
        SamplingParams(early_stopping="sometimes")
    with pytest.raises(ValueError, match="max_new_tokens"):
        SamplingParams(max_new_tokens=0)


def test_classify_tokens_equals_forward_padded_softmax():
    cfg = BioGptConfig(vocab_size=96, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=128, max_position_embeddings=MAX_POS,
                       id2label={0: "O", 1: "B-Chemical", 2: "I-Chemical"},
                       architectures=("BioGptForTokenClassification",))
    model = BioGptForTokenClassification(cfg)
    model.init_weights(seed=3, std=0.5)
    model.eval()
    prompts = make_prompts([12, 1, 40, 7, 25])
    engine = Engine(model, config=EngineConfig(dtype="float32"))
    probs = engine.classify_tokens(prompts, batch_tokens=64)  # forces several packed batches
    assert [p.shape for p in probs] == [(len(x), 3) for x in prompts]
    for prompt, got in zip(prompts, probs):
        with torch.no_grad():
            ref = torch.softmax(model.forward_padded(torch.tensor([prompt])), -1)[0].numpy()
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, ref, atol=1e-5)
    with pytest.raises(ValueError, match="prompt 0 has 0 tokens"):
        engine.classify_tokens([[]])
    with pytest.raises(ValueError, match="causal-LM"):
        next(engine.generate_stream([[2, 5]], SamplingParams()))
