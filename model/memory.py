"""KV-cache capacity planning by arithmetic: how many sequences fit on a GPU of a given size.

Mirrors what `Engine._allocate_cache` measures on a real GPU (`ModelRunner.profile_cache_bytes`):
the usable share of memory, minus the weights, the prefill activations, the sampling
temporaries and the decode graphs' static logits buffer, divided by one slot
(`kv_bytes_per_token x max_model_len`). Used to size a task's `max_model_len` and to check
a target (e.g. >= 256 concurrent RE sequences for BioGPT-Large on an 80 GB H100) without one.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from model.config import BioGptConfig
from model.kv_cache import kv_bytes_per_token


def parameter_count(config: BioGptConfig) -> int:
    """Parameters of the causal LM (LM head tied to the token embedding)."""
    d, ffn, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_layer = 4 * (d * d + d) + (d * ffn + ffn) + (ffn * d + d) + 4 * d  # attn, fc1, fc2, 2 LNs
    embeddings = config.vocab_size * d + (config.max_position_embeddings + 2) * d
    return embeddings + layers * per_layer + 2 * d


@dataclass(frozen=True)
class CachePlan:
    """The arithmetic of one sizing."""

    slot_bytes: int
    budget_bytes: int
    slots: int


def plan_cache_slots(config: BioGptConfig, dtype: torch.dtype, max_model_len: int, gpu_bytes: int,
                     utilization: float, max_num_seqs: int, max_batched_tokens: int = 16384,
                     context_bytes: int = 600 * 2**20) -> CachePlan:
    """Slots that fit: (gpu_bytes x utilization - CUDA context - weights - prefill activations
    - sampling temporaries - graph logits buffer) // slot bytes, at most max_num_seqs.

    Prefill activations are bounded by the widest live tensors of one layer over
    `max_batched_tokens` tokens (hidden x ~6 plus the FFN x 2), as `profile_cache_bytes` measures.
    """
    elem = torch.empty((), dtype=dtype).element_size()
    weights = parameter_count(config) * elem
    tokens = max_batched_tokens
    activations = tokens * (6 * config.hidden_size + 2 * config.intermediate_size) * elem
    sampling = 4 * max_num_seqs * config.vocab_size * 4
    graph_logits = max_num_seqs * config.vocab_size * 4
    budget = int(gpu_bytes * utilization) - context_bytes - weights - activations - sampling - graph_logits
    slot = kv_bytes_per_token(config, dtype) * max_model_len
    return CachePlan(slot_bytes=slot, budget_bytes=budget, slots=max(0, min(max_num_seqs, budget // slot)))
