"""Slot KV cache, bucketing and the pure-Python scheduler."""
from __future__ import annotations

import pytest
import torch

from model.biogpt import BioGptForCausalLM
from model.config import BioGptConfig
from model.kv_cache import SlotKVCache, kv_bytes_per_token
from model.runner import ModelRunner, key_bucket, row_bucket
from model.scheduler import Request, Scheduler, SlotAllocator

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
        out = runner.decode(tokens, positions, key_bucket(max(positions) + 1, 40))  # (4, V)
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


def test_allocator_hands_out_lowest_slots_and_reuses_them():
    alloc = SlotAllocator(5)
    assert alloc.allocate(2) == [0, 1]
    assert alloc.allocate(2) == [2, 3]
    alloc.release([1, 0])
    assert alloc.allocate(1) == [0]
    assert alloc.num_free == 2
    with pytest.raises(RuntimeError):
        alloc.allocate(3)


def req(i: int, n: int) -> Request:
    return Request(index=i, prompt=[2] * n, max_new_tokens=4)


def test_scheduler_prefills_longest_first_within_token_budget():
    sched = Scheduler(num_slots=4, slots_per_request=1, max_batched_tokens=30)
    sched.add([req(0, 5), req(1, 12), req(2, 3), req(3, 11), req(4, 2)])
    first = sched.schedule_prefill()
    assert [r.index for r in first] == [1, 3]  # 3 x 12 > 30 tokens
    assert [r.slots for r in first] == [[0], [1]]
    second = sched.schedule_prefill()  # 2 of 4 free >= a quarter of capacity
    assert [r.index for r in second] == [0, 2]
    assert sched.schedule_prefill() == []  # no free slot: decode
    sched.finish(first[0])
    third = sched.schedule_prefill()
    assert [(r.index, r.slots) for r in third] == [(4, [0])]  # the freed slot is reused
    assert not sched.waiting and len(sched.running) == 4


def test_scheduler_beam_groups_need_num_beams_slots():
    sched = Scheduler(num_slots=9, slots_per_request=4, max_batched_tokens=100)
    assert sched.max_running == 2
    sched.add([req(0, 3), req(1, 3), req(2, 3)])
    assert [r.slots for r in sched.schedule_prefill()] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    with pytest.raises(ValueError, match="needs 4"):
        Scheduler(num_slots=3, slots_per_request=4, max_batched_tokens=100)
