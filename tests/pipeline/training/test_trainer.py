"""Shared trainer pieces: fairseq's inverse-sqrt schedule, token-budget plans, checkpoint averaging."""
from __future__ import annotations

import math

import pytest

from pipeline.training.trainer import OptimConfig, average_checkpoints, inverse_sqrt_lr, plan_epoch


def test_inverse_sqrt_schedule_matches_fairseq():
    cfg = OptimConfig(lr=1e-5, warmup=100, warmup_init_lr=1e-7)
    assert inverse_sqrt_lr(0, cfg) == pytest.approx(1e-7)
    assert inverse_sqrt_lr(50, cfg) == pytest.approx(1e-7 + 50 * (1e-5 - 1e-7) / 100)
    assert inverse_sqrt_lr(100, cfg) == pytest.approx(1e-5)
    assert inverse_sqrt_lr(400, cfg) == pytest.approx(1e-5 * math.sqrt(100 / 400))
    with pytest.raises(ValueError, match="warmup"):
        OptimConfig(warmup=0)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_plan_covers_examples_with_equal_steps_per_worker(world):
    lengths = [50 + (7 * i) % 300 for i in range(40)]
    plan = plan_epoch(lengths, micro_batch_tokens=1024, tokens_per_update=2000, world_size=world,
                      seed=0, epoch=1)
    seen = [i for update in plan for batch in update for i in batch]
    assert len(seen) == len(set(seen))
    dropped = set(range(40)) - set(seen)
    assert world > 1 or not dropped
    for update in plan:
        assert len(update) % world == 0
        for batch in update:
            assert len(batch) * max(lengths[i] for i in batch) <= 1024 or len(batch) == 1
    assert all(sum(lengths[i] for b in u for i in b) >= 2000 for u in plan[:-1])
    assert plan == plan_epoch(lengths, 1024, 2000, world, 0, 1)  # every worker plans the same
    assert plan != plan_epoch(lengths, 1024, 2000, world, 0, 2)  # epochs reshuffle


def test_average_checkpoints(tmp_path):
    import torch
    from safetensors.torch import save_file

    for k, scale in enumerate((1.0, 3.0)):
        (tmp_path / str(k)).mkdir()
        save_file({"w": torch.full((2, 2), scale), "n": torch.tensor([5])},
                  str(tmp_path / str(k) / "model.safetensors"))
    avg = average_checkpoints([tmp_path / "0", tmp_path / "1"])
    assert torch.equal(avg["w"], torch.full((2, 2), 2.0)) and avg["n"].tolist() == [5]
    with pytest.raises(ValueError, match="no checkpoint"):
        average_checkpoints([])
