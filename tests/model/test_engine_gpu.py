"""GPU checks (skipped without CUDA): CUDA graphs vs eager, fp16 vs fp32, memory-sized cache.

Imports only torch and model.* so they run on a GPU box without ray/sacremoses/pydantic.
"""
from __future__ import annotations

import pytest
import torch

from model.biogpt import BioGptForCausalLM
from model.config import BIOGPT_BASE
from model.engine import Engine, EngineConfig
from model.sampling import SamplingParams

pytestmark = pytest.mark.gpu


def base_model(seed: int = 0) -> BioGptForCausalLM:
    """BioGPT base config with random weights (HF init, std 0.02)."""
    model = BioGptForCausalLM(BIOGPT_BASE)
    model.init_weights(seed=seed)
    return model.eval()


def prompts(lengths: list[int], seed: int = 1) -> list[list[int]]:
    gen = torch.Generator().manual_seed(seed)
    return [[2] + torch.randint(4, BIOGPT_BASE.vocab_size, (n,), generator=gen).tolist() for n in lengths]


def test_cuda_graphs_give_the_same_tokens_as_eager():
    batch = prompts([300, 5, 120, 40, 77, 200, 9, 64, 150, 33])
    params = SamplingParams(max_new_tokens=40, ignore_eos=True)
    cfg = dict(dtype="float16", kv_cache_tokens=6 * 1024, max_num_seqs=6)  # slot reuse too
    eager = Engine(base_model(), config=EngineConfig(enforce_eager=True, **cfg))
    want = [g.token_ids for g in eager.generate(batch, params)]
    del eager
    graphed = Engine(base_model(), config=EngineConfig(**cfg))
    got = [g.token_ids for g in graphed.generate(batch, params)]
    assert graphed.runner.num_graphs > 0
    assert got == want
    assert [g.token_ids for g in graphed.generate(batch, params)] == want  # graphs replayed


def test_fp16_greedy_agrees_with_fp32_on_first_tokens():
    batch = prompts([20, 120, 320])
    params = SamplingParams(max_new_tokens=8, ignore_eos=True)
    cfg = dict(kv_cache_tokens=4 * 1024, max_num_seqs=4)
    fp32 = Engine(base_model(), config=EngineConfig(dtype="float32", **cfg)).generate(batch, params)
    fp16 = Engine(base_model(), config=EngineConfig(dtype="float16", **cfg)).generate(batch, params)
    for a, b in zip(fp32, fp16):
        assert a.token_ids[:4] == b.token_ids[:4]


def test_cache_is_sized_from_free_gpu_memory():
    model = base_model()
    engine = Engine(model, config=EngineConfig(max_num_seqs=64, gpu_memory_utilization=0.5))
    total = torch.cuda.mem_get_info()[1]
    assert 1 <= engine.cache.num_slots <= 64
    assert torch.cuda.memory_allocated() <= 0.5 * total
    gens = engine.generate(prompts([320] * 8), SamplingParams(max_new_tokens=16, ignore_eos=True))
    assert all(len(g.token_ids) == 16 for g in gens)
    assert torch.cuda.max_memory_allocated() <= 0.5 * total


def test_bf16_beam_search_runs_with_graphs():
    engine = Engine(base_model(), config=EngineConfig(dtype="bfloat16", kv_cache_tokens=16 * 1024,
                                                      max_num_seqs=16))
    params = SamplingParams(max_new_tokens=12, num_beams=4, length_penalty=1.0)
    gens = engine.generate(prompts([30, 90, 10]), params)
    assert all(1 <= len(g.token_ids) <= 12 for g in gens)


def test_graphs_with_slot_moves_and_a_fed_loop_match_eager():
    from model.engine_loop import GenerateLoop

    # max_model_len 330 stops the 301-token prompt after 29 tokens: finishes are staggered, so
    # live slots move (copy_slots) between graph replays of different row buckets
    batch = prompts([300, 5, 120, 40, 77, 200, 9, 64, 150, 33, 250, 18])
    params = SamplingParams(max_new_tokens=40, ignore_eos=True)
    cfg = dict(dtype="float16", max_model_len=330, kv_cache_tokens=5 * 330, max_num_seqs=5)
    eager = Engine(base_model(), config=EngineConfig(enforce_eager=True, **cfg))
    want = [g.token_ids for g in eager.generate(batch, params)]
    assert len({len(t) for t in want}) > 1
    graphed = Engine(base_model(), config=EngineConfig(**cfg))
    loop = GenerateLoop(graphed, params)
    futures = [loop.submit(batch[i:i + 3]) for i in range(0, len(batch), 3)]
    got = [g.token_ids for f in futures for g in f.result()]
    loop.close()
    assert got == want
    counters = graphed.counters.to_dict()
    assert counters["sequences"] == len(batch) and counters["decode_row_efficiency"] <= 1.0


def test_a_greedy_decode_launch_never_waits_for_the_device():
    engine = Engine(base_model(), config=EngineConfig(dtype="float16", max_model_len=256,
                                                      kv_cache_tokens=8 * 256, max_num_seqs=8))
    params = SamplingParams(max_new_tokens=20, ignore_eos=True)
    session = engine.session(params)
    session.add([engine.request(i, p, params) for i, p in enumerate(prompts([40] * 8))])
    session.complete(session.launch())  # prefill
    session.complete(session.launch())  # first decode: captures the (8 rows, 128 keys) graph
    for _ in range(5):  # replays: inputs staged and launched, the choice copied, no wait
        torch.cuda.set_sync_debug_mode("error")
        try:
            launched = session.launch()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        session.complete(launched)
    assert engine.counters.host_syncs == 7 and engine.counters.decode_steps == 6
