"""The pre-LayerNorm block and the learned-position body that GPT-2 and GPT-Neo share (their
attention and MLP differ; parameter names follow the checkpoints: ln_1, attn, ln_2, mlp; wte,
wpe, h, ln_f)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn


class PreLNBlock(nn.Module):
    """x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, d: int, eps: float, attn: nn.Module, mlp: nn.Module) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.attn = attn
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        self.mlp = mlp

    def forward(self, x: Tensor, attn: Any) -> Tensor:
        x = x + self.attn(self.ln_1(x), attn)  # (B, T, d)
        return x + self.mlp(self.ln_2(x))


class LearnedPositionsBody(nn.Module):
    """wte + wpe, the blocks, ln_f."""

    def __init__(self, config: Any, make_block: Callable[[int], nn.Module], embed_dropout: float) -> None:
        super().__init__()
        d = config.hidden_size
        self.wte = nn.Embedding(config.vocab_size, d)
        self.wpe = nn.Embedding(config.max_position_embeddings, d)
        self.drop = nn.Dropout(embed_dropout)
        self.h = nn.ModuleList(make_block(i) for i in range(config.num_hidden_layers))
        self.ln_f = nn.LayerNorm(d, eps=config.layer_norm_epsilon)

    def forward(self, input_ids: Tensor, positions: Tensor, attn: Any) -> Tensor:
        """input_ids, positions: (B, T) -> hidden (B, T, d); pads (position -1) read row 0."""
        x = self.drop(self.wte(input_ids) + self.wpe(positions.clamp(min=0)))  # (B, T, d)
        for block in self.h:
            x = block(x, attn)
        return self.ln_f(x)
