"""Slot KV cache, bucketing and the pure-Python scheduler."""
from __future__ import annotations

import pytest
import torch

from model.biogpt import BioGptForCausalLM
from model.config import BioGptConfig
from model.kv_cache import SlotKVCache, kv_bytes_per_token
from model.runner import ModelRunner, key_bucket, row_bucket
from model.scheduler import Request, Scheduler

CFG = BioGptConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                   intermediate_size=64, max_position_embeddings=40)


def test_prefill_then_decode_in_slots_equals_full_forward():
    model = BioGptForCausalLM(CFG)
    model.init_weights(seed=0, std=0.5)
    model.eval()
    cache = SlotKVCache(CFG, num_slots=4, max_model_len=40, dtype=torch.float32, device=torch.device("cpu"))
    runner = ModelRunner(model, torch.device("cpu"), pad_token_id=1, use_cuda_graphs=False)
    runner.attach_cache(cache)
    gen = torch.Generator().manual_seed(0)
    seqs = {3: torch.randint(4, 50, (14,), generator=gen).tolist(),
            1: torch.randint(4, 50, (9,), generator=gen).tolist()}
    prompt_len = {3: 6, 1: 2}
    logits = runner.prefill([seqs[s][:prompt_len[s]] for s in (3, 1)], [3, 1])  # (2, V)
    with torch.no_grad():
        full = {s: model.forward_padded(torch.tensor([seqs[s]]))[0] for s in seqs}  # (T, V)
    torch.testing.assert_close(logits[0], full[3][5], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logits[1], full[1][1], atol=1e-4, rtol=1e-4)
    for step in range(6):  # rows 0 and 2 are idle slots; their garbage must not leak
        tokens, positions = [1, 1, 1, 1], [0, 0, 0, 0]
        for s in seqs:
            positions[s] = prompt_len[s] + step
            tokens[s] = seqs[s][positions[s]]
        out, rows = runner.decode(tokens, positions, key_bucket(max(positions) + 1, 40))  # (4, V)
        assert rows == 4
        for s in seqs:
            torch.testing.assert_close(out[s], full[s][positions[s]], atol=1e-4, rtol=1e-4)


def test_copy_slots_moves_the_prefix():
    cache = SlotKVCache(CFG, num_slots=3, max_model_len=8, dtype=torch.float32, device=torch.device("cpu"))
    cache.kv.normal_()
    before = cache.kv.clone()
    cache.copy_slots([0, 2], [2, 0], length=5)  # swap the first 5 positions of slots 0 and 2
    assert torch.equal(cache.kv[:, :, 2, :, :5], before[:, :, 0, :, :5])
    assert torch.equal(cache.kv[:, :, 0, :, :5], before[:, :, 2, :, :5])
    assert torch.equal(cache.kv[:, :, :, :, 5:], before[:, :, :, :, 5:])
    assert torch.equal(cache.kv[:, :, 1], before[:, :, 1])


def test_sizes_and_buckets():
    assert kv_bytes_per_token(BioGptConfig(), torch.float16) == 24 * 2 * 1024 * 2  # 4 KB/layer
    assert [row_bucket(n, 256) for n in (1, 3, 5, 8, 9, 17, 250)] == [1, 4, 8, 8, 16, 32, 256]
    assert row_bucket(100, 40) == 40
    assert [key_bucket(n, 1024) for n in (1, 128, 129, 352, 1024)] == [128, 128, 256, 384, 1024]
    assert key_bucket(300, 200) == 200
    with pytest.raises(ValueError, match="at least one slot"):
        SlotKVCache(CFG, 0, 8, torch.float32, torch.device("cpu"))


def req(i: int, n: int) -> Request:
    return Request(index=i, prompt=[2] * n, max_new_tokens=4)


def test_scheduler_admits_the_oldest_and_its_nearest_lengths_within_token_budget():
    sched = Scheduler(num_slots=4, slots_per_request=1, max_batched_tokens=30, refill_min=2)
    sched.add([req(0, 5), req(1, 12), req(2, 3), req(3, 11), req(4, 2), req(5, 4)])
    first = sched.schedule_prefill()
    assert [r.index for r in first] == [0, 5, 2, 4]  # the oldest (5 tokens), then 4, 3, 2 tokens
    assert [r.slots for r in first] == [[0], [1], [2], [3]]
    assert sched.schedule_prefill() == []  # no free slot: decode
    sched.finish(first[1])
    assert sched.schedule_prefill() == []  # 1 free < refill_min while two wait: decode on
    assert first[3].slots == [1]  # slot 3 moved into the hole
    assert sched.take_moves() == ([3], [1], 2)
    sched.finish(first[0])  # slot 2 moves into slot 0
    second = sched.schedule_prefill()  # 2 x 12 <= 30 tokens
    assert [(r.index, r.slots) for r in second] == [(1, [2]), (3, [3])]
    assert not sched.waiting and len(sched.running) == 4 and sched.used == 4


def test_scheduler_keeps_the_token_budget_and_skips_what_does_not_fit():
    sched = Scheduler(num_slots=8, slots_per_request=1, max_batched_tokens=30)
    sched.add([req(0, 10), req(1, 25), req(2, 9), req(3, 11)])
    assert [r.index for r in sched.schedule_prefill()] == [0, 2]  # 11 would make 3 x 11 > 30
    assert [r.index for r in sched.schedule_prefill()] == [1]  # the oldest always goes, alone here
    assert [r.index for r in sched.schedule_prefill()] == [3]


def test_scheduler_keeps_live_slots_packed_and_chains_moves():
    sched = Scheduler(num_slots=6, slots_per_request=1, max_batched_tokens=100)
    sched.add([req(i, 3 + i) for i in range(6)])
    r = sched.schedule_prefill()
    for x in r:
        x.tokens = [7] * (x.index + 1)  # cached_len = prompt + tokens - 1 = 2 * index + 3
    sched.finish(r[1])  # r5: slot 5 -> 1
    sched.finish(r[5])  # r5 finishes before its copy ran: nothing to copy for it; r4: 4 -> 1
    sched.finish(r[0])  # r3: 3 -> 0
    assert sched.used == 3 and [(x.index, x.slots) for x in sched.running] == [(2, [2]), (3, [0]), (4, [1])]
    assert sched.take_moves() == ([3, 4], [0, 1], r[4].cached_len)
    assert sched.take_moves() == ([], [], 0)
    sched.finish(r[2])  # the last slot: nothing moves
    sched.finish(r[3])  # r4: 1 -> 0
    assert sched.take_moves() == ([1], [0], r[4].cached_len)


def test_scheduler_move_of_a_moved_slot_keeps_the_original_source():
    sched = Scheduler(num_slots=4, slots_per_request=1, max_batched_tokens=100)
    sched.add([req(i, 3) for i in range(4)])
    r = sched.schedule_prefill()
    sched.finish(r[1])  # r3: 3 -> 1 (not copied yet)
    sched.finish(r[2])  # slot 2 is the top: nothing moves
    sched.finish(r[0])  # r3: 1 -> 0, its keys are still in slot 3
    assert r[3].slots == [0] and sched.used == 1
    assert sched.take_moves() == ([3], [0], 3)


def test_scheduler_beam_groups_need_num_beams_slots():
    sched = Scheduler(num_slots=9, slots_per_request=4, max_batched_tokens=100)
    assert sched.max_running == 2
    sched.add([req(0, 3), req(1, 3), req(2, 3)])
    first = sched.schedule_prefill()
    assert [r.slots for r in first] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    sched.finish(first[0])
    assert first[1].slots == [3, 2, 1, 0]  # the highest live slots fill the holes
    with pytest.raises(ValueError, match="needs 4"):
        Scheduler(num_slots=3, slots_per_request=4, max_batched_tokens=100)
