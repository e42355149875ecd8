"""What every family shares: config parsing, Conv1D, activations, and the model/head classes.

A family module gives a frozen config (HF key names plus the common properties below), a body
`forward(input_ids, positions, attn) -> hidden` whose layers call `attn.attend(layer, q, k, v, spec)`,
and its HF head classes built from `CausalLMHead`, `TokenClassifierHead`, `SequenceClassifierHead`.
Common config surface: vocab_size, hidden_size, num_hidden_layers, num_attention_heads, head_dim,
max_position_embeddings, fill_token_id, eos/bos/pad_token_id, id2label, num_labels, architectures.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.biogpt import DenseAttention, positions_from_mask
from model.config import hf_kwargs, read_json_config

ACTIVATIONS = {  # HF ACT2FN names -> torch
    "gelu": F.gelu,  # exact erf GELU
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}


class HFConfig:
    """Mixin for frozen config dataclasses read from and written to HF `config.json` dicts."""

    model_type: ClassVar[str] = ""

    @classmethod
    def _parse(cls, key: str, value: Any) -> Any:
        """Family hook for keys the generic type check cannot read (nested lists)."""
        return value

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Any:
        """Build from an HF-style dict; unknown keys are ignored, wrong types refused."""
        return cls(**hf_kwargs(cls, raw, cls._parse))

    @classmethod
    def from_json_file(cls, path: str | Path) -> Any:
        """Read an HF `config.json`."""
        return read_json_config(path, cls.from_dict)

    def to_dict(self) -> dict[str, Any]:
        """HF-compatible dict (loadable by the family's transformers config class)."""
        out = asdict(self)  # type: ignore[call-overload]
        out["architectures"] = list(self.architectures)  # type: ignore[attr-defined]
        out["model_type"] = self.model_type
        if self.id2label is None:  # type: ignore[attr-defined]
            del out["id2label"]
        else:
            out["id2label"] = {str(k): v for k, v in self.id2label.items()}  # type: ignore[attr-defined]
            out["label2id"] = self.label2id
        dtype = out.pop("torch_dtype")
        if dtype is not None:
            out["dtype"] = dtype
        return out

    def to_json_file(self, path: str | Path) -> None:
        """Write an HF `config.json`."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    def _validate_common(self) -> None:
        """Positive sizes, heads dividing the width, labels 0..n-1."""
        name = type(self).__name__
        for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "max_position_embeddings"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}.{key} must be a positive int, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"{name}: hidden size {self.hidden_size} is not divisible by "
                             f"{self.num_attention_heads} heads")
        labels = self.id2label  # type: ignore[attr-defined]
        if labels is not None and (not isinstance(labels, dict) or sorted(labels) != list(range(len(labels)))):
            raise ValueError(f"id2label must map 0..n-1 to label names, got {labels!r}")

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_attention_heads

    @property
    def num_labels(self) -> int:
        """Number of classification labels (0 when the config has none)."""
        return len(self.id2label) if self.id2label else 0  # type: ignore[attr-defined]

    @property
    def label2id(self) -> dict[str, int]:
        """Inverse of id2label."""
        return {v: k for k, v in (self.id2label or {}).items()}  # type: ignore[attr-defined]

    @property
    def fill_token_id(self) -> int:
        """Id the engine puts in padded rows (never attended): pad, else eos, else 0."""
        for tok in (self.pad_token_id, self.eos_token_id):  # type: ignore[attr-defined]
            if tok is not None:
                return tok
        return 0


class Conv1D(nn.Module):
    """HF's GPT Conv1D: a linear layer whose weight is stored (in, out); y = x @ W + b."""

    def __init__(self, n_out: int, n_in: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: Tensor) -> Tensor:
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


class FamilyModel(nn.Module):
    """A family's body under its HF attribute name, plus the padded-batch reference path and init."""

    body_cls: ClassVar[type[nn.Module]]
    base_model_prefix: ClassVar[str] = "transformer"
    embed_name: ClassVar[str] = "wte"  # the token embedding inside the body
    is_causal_lm: ClassVar[bool] = False

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        setattr(self, self.base_model_prefix, self.body_cls(config))

    @property
    def body(self) -> nn.Module:
        """The decoder without a head."""
        return getattr(self, self.base_model_prefix)

    def forward(self, input_ids: Tensor, positions: Tensor, attn: Any) -> Tensor:
        """input_ids, positions: (B, T) (positions -1 on padding) -> hidden (B, T, d)."""
        return self.body(input_ids, positions, attn)

    def compute_logits(self, hidden: Tensor) -> Tensor:
        """hidden (..., d) -> logits (..., V or num_labels)."""
        raise NotImplementedError

    def forward_padded(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Logits for a (B, T) batch (left or right padded), no cache: the reference path."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        attn = DenseAttention(attention_mask, dropout_p=self.attn_dropout())
        hidden = self(input_ids, positions_from_mask(attention_mask), attn)
        if isinstance(self, SequenceClassifierHead):
            return self.compute_logits(hidden, attention_mask)
        return self.compute_logits(hidden)

    def attn_dropout(self) -> float:
        """Attention-probability dropout in training, 0 in eval."""
        return self.config.attention_dropout_p if self.training else 0.0

    def init_weights(self, seed: int | None = None, std: float = 0.02) -> None:
        """Random init as HF does (normal(0, std), zero biases, LayerNorm = 1/0)."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear | Conv1D | nn.Embedding):
                    module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * std)
                    if getattr(module, "bias", None) is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
        if self.is_causal_lm:
            self.tie_weights()  # type: ignore[attr-defined]


class CausalLMHead(FamilyModel):
    """`lm_head` (no bias), tied to the token embedding unless the config unties it."""

    is_causal_lm = True

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.tie_weights()

    @property
    def tied(self) -> bool:
        """Whether lm_head shares the token embedding."""
        return getattr(self.config, "tie_word_embeddings", True)

    def tie_weights(self) -> None:
        """Share lm_head with the token embedding (the embedding wins, as in HF)."""
        if self.tied:
            self.lm_head.weight = getattr(self.body, self.embed_name).weight

    def compute_logits(self, hidden: Tensor) -> Tensor:
        """hidden (..., d) -> logits (..., V)."""
        return self.lm_head(hidden)


class TokenClassifierHead(FamilyModel):
    """Per-token labels from the causal hidden states (`classifier`, Linear d -> num_labels)."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        if not config.num_labels:
            raise ValueError("token classification needs config.id2label")
        self.dropout = nn.Dropout(config.hidden_dropout_p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def compute_logits(self, hidden: Tensor) -> Tensor:
        """hidden (..., d) -> logits (..., num_labels)."""
        return self.classifier(self.dropout(hidden))


class SequenceClassifierHead(FamilyModel):
    """One label per sequence from the last non-pad token (`score`, no bias)."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        if not config.num_labels:
            raise ValueError("sequence classification needs config.id2label")
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=False)

    def compute_logits(self, hidden: Tensor, attention_mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        """hidden (B, T, d) -> logits (B, num_labels) at each row's last real token."""
        b, t, _ = hidden.shape
        if attention_mask is None:
            last = torch.full((b,), t - 1, device=hidden.device)
        else:
            idx = torch.arange(t, device=hidden.device)[None, :]
            last = torch.where(attention_mask.bool(), idx, -1).max(dim=1).values
        return self.score(hidden[torch.arange(b, device=hidden.device), last])  # (B, num_labels)


def split_heads(x: Tensor, heads: int) -> Tensor:
    """(B, T, H*D) -> (B, T, H, D)."""
    b, t, _ = x.shape
    return x.view(b, t, heads, -1)


@dataclass(frozen=True)
class Family:
    """What the loader, engine and training need to know about one architecture family."""

    name: str  # registry key, e.g. "gpt_neo"
    config_cls: type
    heads: dict[str, type[nn.Module]]  # HF architecture name -> our class
    causal_lm: str  # the causal-LM head's architecture name
    token_classifier: str | None  # None where transformers has no token-classification head
    embed_key: str  # checkpoint key of the token embedding (the tied LM head's weight)
    tied_key: str  # checkpoint key of the LM head
    base_prefix: str  # what a base-model checkpoint's keys lack, e.g. "transformer."
    base_keys: tuple[str, ...]  # first parts of base-model keys
    positions_key: str  # checkpoint key of the learned positions, rows = max_position_embeddings + offset
    positions_offset: int = 0
    dropped: tuple[str, ...] = ()  # regexes of stored non-weights (old mask buffers)
    head_keys: dict[str, str] = field(default_factory=dict)  # classifier head -> its weight key
    hf_config: str = ""  # the transformers config class (tests and benchmarks build the peer with it)

    def is_dropped(self, key: str) -> bool:
        """Whether a checkpoint key is a stored buffer, not a weight."""
        return any(re.fullmatch(p, key) for p in self.dropped)
