"""Per-layer attention options (scale, fp32 scores, sliding window) and the one SDPA call all backends make.

Families differ in how a layer attends, not in where its keys live: BioGPT and GPT-2 scale scores by
1/sqrt(head_dim) (GPT-2 optionally also by 1/(layer+1)), GPT-Neo does not scale and computes scores in
fp32, GPT-Neo's local layers see only the last `window` keys (the query's own included). A backend
(dense reference, slot KV cache) takes the layer's `AttnSpec` and builds its masks from positions.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class AttnSpec:
    """How one layer attends: softmax scale (None: 1/sqrt(head_dim)), fp32 scores, window of keys."""

    scale: float | None = None
    fp32: bool = False  # compute q.k, softmax and the weighted sum in float32 (GPT-Neo)
    window: int | None = None  # a query at position i sees keys i-window+1 .. i (None: all of 0 .. i)

    def __post_init__(self) -> None:
        if self.scale is not None and not self.scale > 0:
            raise ValueError(f"AttnSpec.scale must be > 0 or None, got {self.scale!r}")
        if self.window is not None and (isinstance(self.window, bool) or not isinstance(self.window, int)
                                        or self.window < 1):
            raise ValueError(f"AttnSpec.window must be an int >= 1 or None, got {self.window!r}")


DEFAULT_SPEC = AttnSpec()


def window_mask(q_pos: Tensor, k_pos: Tensor, window: int | None) -> Tensor:
    """Bool mask `k <= q` (and `k > q - window` with a window) broadcast from q_pos (.., Tq, 1), k_pos (.., 1, Tk)."""
    allowed = k_pos <= q_pos
    if window is not None:
        allowed = allowed & (k_pos > q_pos - window)
    return allowed


def sdpa(q: Tensor, k: Tensor, v: Tensor, spec: AttnSpec, mask: Tensor | None = None,
         is_causal: bool = False, dropout_p: float = 0.0) -> Tensor:
    """Scaled dot-product attention with the layer's options; q (B, H, Tq, D), k/v (B, H, Tk, D)."""
    dtype = q.dtype
    if spec.fp32 and dtype != torch.float32:
        q, k, v = q.float(), k.float(), v.float()
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal and mask is None,
                                         dropout_p=dropout_p, scale=spec.scale)  # (B, H, Tq, D)
    return out.to(dtype)


def causal_sdpa(q: Tensor, k: Tensor, v: Tensor, spec: AttnSpec, dropout_p: float = 0.0) -> Tensor:
    """Causal attention of T queries over the same T keys (right padding), windowed if the spec says so."""
    t = q.shape[-2]
    if spec.window is None or spec.window >= t:
        return sdpa(q, k, v, spec, is_causal=True, dropout_p=dropout_p)
    pos = torch.arange(t, device=q.device)
    mask = window_mask(pos[:, None], pos[None, :], spec.window)  # (T, T)
    return sdpa(q, k, v, spec, mask=mask, dropout_p=dropout_p)
