"""Preallocated slot KV cache and the attention backends that read and write it.

Design: slot-based, not paged. Each running sequence (each beam) owns one slot of
`max_model_len` positions, so its keys/values are one contiguous strided block and decode
attends over a plain view `kv[layer, :, :rows, :, :key_len]` through
`torch.nn.functional.scaled_dot_product_attention` with no gather. Plain torch has no
paged-attention kernel: a paged cache would need a gather (a copy of every key) per step,
doubling decode's memory traffic, which is the bound. The price is memory reserved per slot
(max_model_len tokens); for BioGPT base at 1024 tokens that is 96 MiB/slot in fp16, so 256
slots fit in 24 GiB on an 80 GB GPU. The engine sizes max_model_len from the task (RE: prompt
cut + max_new_tokens, `model.memory` does the arithmetic). Live sequences stay packed in slots
`[0, used)` (the scheduler moves the top slot into a finished one's hole, `copy_slots`), so
decode reads the live rows only, keys `[:key_bucket]` only.

Layout: one tensor `(layers, 2, slots, heads, max_model_len, head_dim)`; one tensor makes the
beam-search cache reorder a single indexing op.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from model.attention import DEFAULT_SPEC, AttnSpec, causal_sdpa, sdpa, window_mask


def kv_bytes_per_token(config: Any, dtype: torch.dtype) -> int:
    """Bytes of K and V for one token over all layers."""
    elem = torch.empty((), dtype=dtype).element_size()
    return 2 * config.num_hidden_layers * config.hidden_size * elem


class CausalAttention:
    """No-cache backend for right-padded batches: causal SDPA (pads sit after real tokens)."""

    def attend(self, layer: int, q: Tensor, k: Tensor, v: Tensor,
               spec: AttnSpec = DEFAULT_SPEC) -> Tensor:
        out = causal_sdpa(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), spec)  # (B, H, T, D)
        return out.transpose(1, 2)  # (B, T, H, D)


class SlotKVCache:
    """The preallocated cache plus its backend; the runner sets the step's mode before forward.

    Modes: `prefill` (right-padded new prompts written to `slots[:, :T]`, causal attention over
    themselves), `decode` (row i = slot i, one new token at `positions[i]`, attention over
    `kv[..., :key_len]` masked to keys <= position, and > position - window on windowed layers).
    """

    def __init__(self, config: Any, num_slots: int, max_model_len: int,
                 dtype: torch.dtype, device: torch.device) -> None:
        if num_slots < 1:
            raise ValueError(f"KV cache needs at least one slot, got {num_slots}")
        self.num_slots = num_slots
        self.max_model_len = max_model_len
        shape = (config.num_hidden_layers, 2, num_slots, config.num_attention_heads,
                 max_model_len, config.head_dim)
        self.kv = torch.zeros(shape, dtype=dtype, device=device)  # (L, 2, S, H, Tmax, D)
        self.key_pos = torch.arange(max_model_len, device=device)  # (Tmax,)
        self.row_ids = torch.arange(num_slots, device=device)  # (S,)
        self.mode = "prefill"
        self.slots: Tensor | None = None  # (B,) prefill target slots
        self.positions: Tensor | None = None  # (R, 1) decode positions
        self.key_len = 0
        self._masks: dict[int | None, Tensor] = {}  # decode masks of this step, one per window

    @property
    def nbytes(self) -> int:
        """Bytes held by the cache tensor."""
        return self.kv.numel() * self.kv.element_size()

    def set_prefill(self, slots: Tensor) -> None:
        """Next forward writes a (B, T) right-padded batch into `slots` (B,)."""
        self.mode, self.slots = "prefill", slots

    def set_decode(self, positions: Tensor, key_len: int) -> None:
        """Next forward decodes rows [:R] (= slots [:R]) at `positions` (R, 1), keys [:key_len]."""
        self.mode, self.positions, self.key_len = "decode", positions, key_len
        self._masks = {}

    def attend(self, layer: int, q: Tensor, k: Tensor, v: Tensor,
               spec: AttnSpec = DEFAULT_SPEC) -> Tensor:
        """Write the new k/v into the cache, then attend (q, k, v: (B, T, H, D))."""
        if self.mode == "prefill":
            return self._prefill(layer, q, k, v, spec)
        return self._decode(layer, q, k, v, spec)

    def _prefill(self, layer: int, q: Tensor, k: Tensor, v: Tensor, spec: AttnSpec) -> Tensor:
        t = q.shape[1]
        k_t, v_t = k.transpose(1, 2), v.transpose(1, 2)  # (B, H, T, D)
        self.kv[layer, 0, self.slots, :, :t] = k_t
        self.kv[layer, 1, self.slots, :, :t] = v_t
        out = causal_sdpa(q.transpose(1, 2), k_t, v_t, spec)  # (B, H, T, D)
        return out.transpose(1, 2)  # (B, T, H, D)

    def _decode(self, layer: int, q: Tensor, k: Tensor, v: Tensor, spec: AttnSpec) -> Tensor:
        rows = q.shape[0]
        pos = self.positions[:, 0]  # (R,)
        ids = self.row_ids[:rows]
        self.kv[layer, 0][ids, :, pos] = k[:, 0]  # (R, H, D) into slot r at its position
        self.kv[layer, 1][ids, :, pos] = v[:, 0]
        mask = self._masks.get(spec.window)
        if mask is None:  # built once per step and window, shared by the layers that use it
            mask = window_mask(self.positions, self.key_pos[:self.key_len][None, :], spec.window)  # (R, Lk)
            mask = self._masks[spec.window] = mask[:, None, None, :]  # (R, 1, 1, Lk)
        keys = self.kv[layer, 0, :rows, :, :self.key_len]  # (R, H, Lk, D) view, no copy
        values = self.kv[layer, 1, :rows, :, :self.key_len]
        out = sdpa(q.transpose(1, 2), keys, values, spec, mask=mask)  # (R, H, 1, D)
        return out.transpose(1, 2)  # (R, 1, H, D)

    def copy_slots(self, src: list[int], dst: list[int], length: int) -> None:
        """Copy positions [:length] of slots `src` into slots `dst` (beam reorder)."""
        if not src:
            return
        device = self.kv.device
        s = torch.tensor(src, device=device)
        d = torch.tensor(dst, device=device)
        self.kv[:, :, d, :, :length] = self.kv[:, :, s, :, :length]
