"""BioGPT in plain torch: pre-LN decoder, causal-LM / token- / sequence-classification heads.

Key names match HF `modeling_biogpt.py` (`biogpt.layers.{i}.self_attn.q_proj.weight`, ...,
`output_projection.weight`) so HF state dicts load without renaming.

The decoder takes explicit `positions` (0-based token positions; -1 for padding) and an
attention backend. A backend owns the KV cache layout: `DenseAttention` below is the
reference (padded batches, optional growing cache); the engine brings its own slot cache.
"""
from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.attention import DEFAULT_SPEC, AttnSpec, sdpa, window_mask
from model.config import BioGptConfig

POSITION_OFFSET = 2  # fairseq/HF learned positions start at row 2 (row 1 = padding)


class AttentionBackend(Protocol):
    """Computes attention for one layer given the new tokens' projections."""

    def attend(self, layer: int, q: Tensor, k: Tensor, v: Tensor,
               spec: AttnSpec = DEFAULT_SPEC) -> Tensor:
        """q, k, v: (B, T, H, D) for the new tokens -> (B, T, H, D), with the layer's options."""
        ...


def positions_from_mask(attention_mask: Tensor) -> Tensor:
    """HF/fairseq positions from a (B, T) 0/1 mask: `cumsum(mask) * mask - 1` (pads get -1)."""
    mask = attention_mask.long()
    return torch.cumsum(mask, dim=1) * mask - 1


class DenseAttention:
    """Reference backend: (B, T) padded batches with an optional growing KV cache.

    `key_mask` (B, T_past + T_new) marks real tokens (1) vs padding (0) over everything the
    queries may see; None means no padding. With `use_cache`, keys/values are appended per
    layer, so a later call with only the new tokens continues the sequence.
    """

    def __init__(self, key_mask: Tensor | None = None, use_cache: bool = False,
                 dropout_p: float = 0.0) -> None:
        self.key_mask = key_mask
        self.use_cache = use_cache
        self.dropout_p = dropout_p
        self.cache: dict[int, tuple[Tensor, Tensor]] = {}

    def past_length(self) -> int:
        """Number of cached positions (0 without a cache)."""
        return self.cache[0][0].shape[1] if self.cache else 0

    def attend(self, layer: int, q: Tensor, k: Tensor, v: Tensor,
               spec: AttnSpec = DEFAULT_SPEC) -> Tensor:
        if self.use_cache:
            if layer in self.cache:
                k = torch.cat([self.cache[layer][0], k], dim=1)  # (B, Tp + T, H, D)
                v = torch.cat([self.cache[layer][1], v], dim=1)
            self.cache[layer] = (k, v)
        b, t_q, _, _ = q.shape
        t_k = k.shape[1]
        past = t_k - t_q
        q_pos = torch.arange(past, t_k, device=q.device)[:, None]  # (Tq, 1)
        k_pos = torch.arange(t_k, device=q.device)[None, :]  # (1, Tk)
        allowed = window_mask(q_pos, k_pos, spec.window)[None]  # (1, Tq, Tk) causal (windowed)
        if self.key_mask is not None:
            keys = self.key_mask[:, -t_k:].bool()[:, None, :]  # (B, 1, Tk)
            # a query always sees itself, so padded rows stay finite (no all-masked softmax)
            allowed = (allowed & keys) | (k_pos == q_pos)[None]
        mask = allowed[:, None]  # (B|1, 1, Tq, Tk)
        out = sdpa(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),  # (B, H, T, D)
                   spec, mask=mask, dropout_p=self.dropout_p)
        return out.transpose(1, 2)  # (B, Tq, H, D)


class BioGptAttention(nn.Module):
    """Multi-head self-attention with biases; scaling head_dim**-0.5 is SDPA's default."""

    def __init__(self, config: BioGptConfig, layer: int) -> None:
        super().__init__()
        d = config.hidden_size
        self.layer = layer
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x: Tensor, attn: AttentionBackend) -> Tensor:
        b, t, d = x.shape  # (B, T, d)
        q = self.q_proj(x).view(b, t, self.num_heads, self.head_dim)  # (B, T, H, D)
        k = self.k_proj(x).view(b, t, self.num_heads, self.head_dim)
        v = self.v_proj(x).view(b, t, self.num_heads, self.head_dim)
        out = attn.attend(self.layer, q, k, v)  # (B, T, H, D)
        return self.out_proj(out.reshape(b, t, d))


class BioGptDecoderLayer(nn.Module):
    """x + SelfAttn(LN(x)), then x + fc2(GELU(fc1(LN(x))))."""

    def __init__(self, config: BioGptConfig, layer: int) -> None:
        super().__init__()
        d = config.hidden_size
        self.self_attn = BioGptAttention(config, layer)
        self.self_attn_layer_norm = nn.LayerNorm(d)  # eps 1e-5, as HF (config.layer_norm_eps unused)
        self.fc1 = nn.Linear(d, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, d)
        self.final_layer_norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: Tensor, attn: AttentionBackend) -> Tensor:
        x = x + self.dropout(self.self_attn(self.self_attn_layer_norm(x), attn))  # (B, T, d)
        h = F.gelu(self.fc1(self.final_layer_norm(x)))  # (B, T, ffn), exact erf GELU
        return x + self.dropout(self.fc2(h))


class BioGptDecoder(nn.Module):
    """Token + learned position embeddings, the decoder layers, a final LayerNorm."""

    def __init__(self, config: BioGptConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.embed_scale = math.sqrt(d) if config.scale_embedding else 1.0
        self.embed_tokens = nn.Embedding(config.vocab_size, d, padding_idx=config.pad_token_id)
        self.embed_positions = nn.Embedding(config.max_position_embeddings + POSITION_OFFSET, d)
        self.layers = nn.ModuleList(BioGptDecoderLayer(config, i)
                                    for i in range(config.num_hidden_layers))
        self.layer_norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, positions: Tensor, attn: AttentionBackend) -> Tensor:
        """input_ids, positions: (B, T) -> hidden (B, T, d)."""
        x = self.embed_tokens(input_ids) * self.embed_scale  # (B, T, d)
        x = x + self.embed_positions(positions + POSITION_OFFSET)
        x = self.dropout(x)
        for layer in self.layers:
            x = layer(x, attn)
        return self.layer_norm(x)


class _BioGptBase(nn.Module):
    """Shared plumbing: the decoder under the HF name `biogpt`, padded-batch convenience."""

    base_model_prefix = "biogpt"  # the body's attribute (and checkpoint key prefix), as in HF
    is_causal_lm = False

    def __init__(self, config: BioGptConfig) -> None:
        super().__init__()
        self.config = config
        self.biogpt = BioGptDecoder(config)

    def forward(self, input_ids: Tensor, positions: Tensor, attn: AttentionBackend) -> Tensor:
        """input_ids, positions: (B, T) -> hidden (B, T, d)."""
        return self.biogpt(input_ids, positions, attn)

    def forward_padded(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Logits for a (B, T) batch (left or right padded), no cache: the reference path."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        attn = DenseAttention(attention_mask, dropout_p=self._attn_dropout())
        hidden = self(input_ids, positions_from_mask(attention_mask), attn)
        return self.compute_logits(hidden) if not isinstance(self, BioGptForSequenceClassification) \
            else self.compute_logits(hidden, attention_mask)

    def _attn_dropout(self) -> float:
        return self.config.attention_probs_dropout_prob if self.training else 0.0

    def init_weights(self, seed: int | None = None, std: float = 0.02) -> None:
        """Random init as HF does (normal(0, std), zero biases, LayerNorm = 1/0, pad row 0)."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * std)
                    if module.bias is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.Embedding):
                    module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * std)
                    if module.padding_idx is not None:
                        module.weight[module.padding_idx].zero_()
                elif isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()


class BioGptForCausalLM(_BioGptBase):
    """Language-model head tied to the token embedding."""

    is_causal_lm = True

    def __init__(self, config: BioGptConfig) -> None:
        super().__init__(config)
        self.output_projection = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.tie_weights()

    def tie_weights(self) -> None:
        """Share the LM head with embed_tokens (HF ties at load; embed_tokens wins)."""
        self.output_projection.weight = self.biogpt.embed_tokens.weight

    def compute_logits(self, hidden: Tensor) -> Tensor:
        """hidden (..., d) -> logits (..., V)."""
        return self.output_projection(hidden)


class BioGptForTokenClassification(_BioGptBase):
    """Per-token labels from the causal hidden states (`classifier`, Linear d -> num_labels)."""

    def __init__(self, config: BioGptConfig) -> None:
        super().__init__(config)
        if not config.num_labels:
            raise ValueError("token classification needs config.id2label")
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def compute_logits(self, hidden: Tensor) -> Tensor:
        """hidden (..., d) -> logits (..., num_labels)."""
        return self.classifier(self.dropout(hidden))


class BioGptForSequenceClassification(_BioGptBase):
    """One label per sequence from the last non-pad token (`score`, no bias)."""

    def __init__(self, config: BioGptConfig) -> None:
        super().__init__(config)
        if not config.num_labels:
            raise ValueError("sequence classification needs config.id2label")
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=False)

    def compute_logits(self, hidden: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """hidden (B, T, d) -> logits (B, num_labels) at each row's last real token."""
        b, t, _ = hidden.shape
        if attention_mask is None:
            last = torch.full((b,), t - 1, device=hidden.device)
        else:  # last real token; works for left and right padding
            idx = torch.arange(t, device=hidden.device)[None, :]
            last = torch.where(attention_mask.bool(), idx, -1).max(dim=1).values
        pooled = hidden[torch.arange(b, device=hidden.device), last]  # (B, d)
        return self.score(pooled)


HEADS: dict[str, type[_BioGptBase]] = {
    "BioGptForCausalLM": BioGptForCausalLM,
    "BioGptForTokenClassification": BioGptForTokenClassification,
    "BioGptForSequenceClassification": BioGptForSequenceClassification,
}
