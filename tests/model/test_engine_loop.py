"""Continuous feeding: counters on known cases, many concurrent callers, refill vs per-batch drain."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from model.counters import sum_counters
from model.engine import Engine, EngineConfig
from model.engine_loop import GenerateLoop
from model.sampling import SamplingParams
from tests.model.test_engine_greedy import MAX_POS, make_pair, make_prompts


@pytest.fixture(scope="module")
def biased():
    return make_pair(eos_bias=1.0)[1]  # outputs stop early or run to the cap


def test_counters_on_a_known_refill_case(biased):
    engine = Engine(biased, config=EngineConfig(max_model_len=8, kv_cache_tokens=16))
    prompts = make_prompts([5, 2, 1])  # 6, 3, 2 tokens: room for 2, 5, 6 new tokens
    gens = engine.generate(prompts, SamplingParams(max_new_tokens=4, ignore_eos=True))
    assert [len(g.token_ids) for g in gens] == [2, 4, 4]
    # prefill a,b | decode a,b (a done; b moves to slot 0) | prefill c | decode b,c x2 | decode c
    assert engine.counters.to_dict() == {
        "slots": 2, "decode_steps": 4, "decode_live_rows": 7, "decode_rows_computed": 7,
        "prefill_steps": 2, "prefill_tokens": 11, "prefill_padded_tokens": 14,
        "generated_tokens": 10, "sequences": 3, "decode_occupancy": 7 / 8, "decode_row_efficiency": 1.0,
        "fed_decode_steps": 1, "fed_decode_live_rows": 2, "fed_decode_occupancy": 1.0,  # c waited once
        "host_syncs": 6, "syncs_per_step": 1.0}  # one wait per step
    single = Engine(biased, config=EngineConfig(max_model_len=8, kv_cache_tokens=8))
    for prompt, gen in zip(prompts, gens):  # the moved sequence's keys moved with it
        [ref] = single.generate([prompt], SamplingParams(max_new_tokens=4, ignore_eos=True))
        assert gen.token_ids == ref.token_ids


def test_sum_counters_weights_occupancy_by_each_engines_capacity():
    a = {"slots": 4, "decode_steps": 10, "decode_live_rows": 40, "decode_rows_computed": 40}
    b = {"slots": 2, "decode_steps": 5, "decode_live_rows": 5, "decode_rows_computed": 8}
    total = sum_counters([a, b])
    assert total["slots"] == 6 and total["decode_live_rows"] == 45
    assert total["decode_occupancy"] == 45 / 50 and total["decode_row_efficiency"] == 45 / 48
    assert sum_counters([])["decode_occupancy"] is None


@pytest.mark.parametrize("params", [SamplingParams(max_new_tokens=18),
                                    SamplingParams(max_new_tokens=10, num_beams=2, length_penalty=1.0)])
def test_concurrent_batches_give_the_same_outputs_as_one_batch(biased, params):
    prompts = make_prompts([3, 17, 9, 30, 1, 5, 12, 22, 7, 14, 2, 26, 8, 19], seed=3)
    cfg = EngineConfig(kv_cache_tokens=4 * MAX_POS)
    want = Engine(biased, config=cfg).generate(prompts, params)
    assert len({len(g.token_ids) for g in want}) > 3  # varied lengths: slots free at varied times
    loop = GenerateLoop(Engine(biased, config=cfg), params)
    chunks = [prompts[i:i + 3] for i in range(0, len(prompts), 3)]
    with ThreadPoolExecutor(len(chunks)) as pool:
        got = list(pool.map(loop.generate, chunks))
    assert [[g.index for g in part] for part in got] == [list(range(len(c))) for c in chunks]
    flat = [g for part in got for g in part]  # each caller gets its own rows, in its order
    assert [g.token_ids for g in flat] == [g.token_ids for g in want]
    assert [g.finish_reason for g in flat] == [g.finish_reason for g in want]
    assert loop.in_flight == 0 and loop.engine.counters.sequences == len(prompts)
    loop.close()


def test_refill_across_batches_keeps_slots_fuller_than_per_batch_drain(biased):
    prompts = make_prompts([3, 17, 9, 30, 1, 5, 12, 22, 7, 14, 2, 26, 8, 19, 4, 11], seed=5)
    params = SamplingParams(max_new_tokens=24)
    cfg = EngineConfig(kv_cache_tokens=4 * MAX_POS)
    drained = Engine(biased, config=cfg)  # the old GPU stage: one generate per batch of 4
    per_batch = [g for i in range(0, len(prompts), 4) for g in drained.generate(prompts[i:i + 4], params)]
    loop = GenerateLoop(Engine(biased, config=cfg), params)
    futures = [loop.submit(prompts[i:i + 4]) for i in range(0, len(prompts), 4)]
    fed = [g for f in futures for g in f.result()]
    loop.close()
    assert [g.token_ids for g in fed] == [g.token_ids for g in per_batch]
    low, high = drained.counters.to_dict(), loop.engine.counters.to_dict()
    assert low["generated_tokens"] == high["generated_tokens"]
    assert high["decode_occupancy"] > low["decode_occupancy"] + 0.1
    assert high["decode_steps"] < low["decode_steps"]


def test_a_failed_step_fails_the_batches_in_flight_and_the_loop_goes_on(biased, monkeypatch):
    engine = Engine(biased, config=EngineConfig(kv_cache_tokens=2 * MAX_POS))
    params = SamplingParams(max_new_tokens=6)
    loop = GenerateLoop(engine, params)
    prompts = make_prompts([4, 9, 2])
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        loop.submit([prompts[0], []])  # validated in the caller: nothing was queued
    real = engine.runner.decode
    calls = {"n": 0}

    def broken_once(*args):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("device fault (simulated)")
        return real(*args)

    monkeypatch.setattr(engine.runner, "decode", broken_once)
    with pytest.raises(RuntimeError, match="device fault"):
        loop.generate(prompts)
    again = loop.generate(prompts)
    assert [g.token_ids for g in again] == [g.token_ids for g in Engine(
        biased, config=EngineConfig(kv_cache_tokens=2 * MAX_POS)).generate(prompts, params)]
    loop.close()


def test_results_are_handed_out_while_the_next_step_runs(biased, monkeypatch):
    from model.stepper import GenerationSession

    events: list[str] = []
    launch, complete = GenerationSession.launch, GenerationSession.complete
    deliver = GenerateLoop._deliver

    def logged_launch(self):
        events.append("launch")
        return launch(self)

    def logged_complete(self, step):
        events.append("complete")
        return complete(self, step)

    def logged_deliver(self, finished, start):
        if finished:
            events.append("deliver")
        return deliver(self, finished, start)

    monkeypatch.setattr(GenerationSession, "launch", logged_launch)
    monkeypatch.setattr(GenerationSession, "complete", logged_complete)
    monkeypatch.setattr(GenerateLoop, "_deliver", logged_deliver)
    prompts = make_prompts([3, 17, 9, 30, 1, 5, 12, 22], seed=7)
    params = SamplingParams(max_new_tokens=12)
    loop = GenerateLoop(Engine(biased, config=EngineConfig(kv_cache_tokens=3 * MAX_POS)), params)
    got = loop.generate(prompts)
    loop.close()
    assert loop.engine.counters.host_syncs == events.count("complete")  # one wait per step
    events_of_loop = list(events)
    want = Engine(biased, config=EngineConfig(kv_cache_tokens=3 * MAX_POS)).generate(prompts, params)
    assert [g.token_ids for g in got] == [g.token_ids for g in want]
    events = events_of_loop
    delivers = [i for i, e in enumerate(events) if e == "deliver"]
    assert len(delivers) >= 3  # several steps finished requests
    # every hand-out but the last (nothing left to launch) sits between a launch and its wait
    for i in delivers[:-1]:
        assert events[i - 1] == "launch" and events[i + 1] == "complete"
