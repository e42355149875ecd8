"""KV-cache capacity by arithmetic: task-sized slots let BioGPT-Large hold >= 256 RE sequences."""
from __future__ import annotations

import dataclasses

import torch

from model.biogpt import BioGptForCausalLM
from model.config import BIOGPT_LARGE, BioGptConfig
from model.memory import parameter_count, plan_cache_slots

H100_80GB = 85_029_158_912  # torch.cuda.mem_get_info() total on an H100 80GB HBM3 (79.2 GiB)
RE_LEN = 1 + 640 + 9 + 256  # [</s>] + source cut + learned1..9 + max_new_tokens (gpu_stage.re_model_len)


def test_parameter_count_matches_the_model():
    cfg = BioGptConfig(vocab_size=120, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                       intermediate_size=80, max_position_embeddings=50)
    assert parameter_count(cfg) == sum(p.numel() for p in BioGptForCausalLM(cfg).parameters())


def test_large_holds_256_re_sequences_with_task_sized_slots_on_80gb():
    large = dataclasses.replace(BIOGPT_LARGE, vocab_size=57717)
    whole = plan_cache_slots(large, torch.float16, 2048, H100_80GB, 0.9, max_num_seqs=512)
    task = plan_cache_slots(large, torch.float16, RE_LEN, H100_80GB, 0.9, max_num_seqs=512)
    assert task.slot_bytes == 2 * 48 * 1600 * 2 * RE_LEN  # 300 KiB per token, 265 MiB per slot
    assert 100 <= whole.slots < 130  # a whole 2,048-token window per sequence: ~110 (the figure)
    assert task.slots >= 256  # sized from the task: >= 256 concurrent RE sequences
    assert task.slots == task.budget_bytes // task.slot_bytes
    # the margin is thin: at the pipeline's default utilisation 0.85 it is not reached
    assert plan_cache_slots(large, torch.float16, RE_LEN, H100_80GB, 0.85, max_num_seqs=512).slots < 256
