"""GPT-Neo: pre-LN GPT-2-style blocks with nn.Linear weights, unscaled fp32 attention, local layers.

Key names match HF `modeling_gpt_neo.py` (`transformer.h.{i}.attn.attention.q_proj.weight`, ...).
Facts (HF eager, the reference): no 1/sqrt(head_dim) scaling; scores, softmax in fp32; layers
follow `attention_types` (layer 0 global, then alternating); a local layer's query at i sees keys
i-window_size+1 .. i (256 keys with itself by default).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from model.attention import AttnSpec
from model.families.base import (ACTIVATIONS, CausalLMHead, Family, HFConfig, SequenceClassifierHead,
                                 TokenClassifierHead, split_heads)
from model.families.pre_ln import LearnedPositionsBody, PreLNBlock

NEO_FP32 = True  # GPT-Neo keeps attention scores in fp32 ("to avoid overflow issues")


@dataclass(frozen=True)
class GPTNeoConfig(HFConfig):
    """Hyper-parameters of a GPT-Neo decoder (HF `GPTNeoConfig` key names)."""

    model_type = "gpt_neo"

    vocab_size: int = 50257
    max_position_embeddings: int = 2048
    hidden_size: int = 2048
    num_layers: int = 24
    num_heads: int = 16
    intermediate_size: int | None = None  # MLP width; None: 4 * hidden_size
    window_size: int = 256
    attention_types: tuple = ((("global", "local"), 12),)  # [[kinds, repeat], ...] as in config.json
    activation_function: str = "gelu_new"
    layer_norm_epsilon: float = 1e-5
    tie_word_embeddings: bool = True
    resid_dropout: float = 0.0  # training only
    embed_dropout: float = 0.0
    attention_dropout: float = 0.0
    bos_token_id: int | None = 50256
    eos_token_id: int | None = 50256
    pad_token_id: int | None = None
    id2label: dict[int, str] | None = None
    architectures: tuple[str, ...] = ("GPTNeoForCausalLM",)
    torch_dtype: str | None = None

    def __post_init__(self) -> None:
        self._validate_common()
        if self.activation_function not in ACTIVATIONS:
            raise ValueError(f"activation_function {self.activation_function!r} is not supported; "
                             f"use one of {sorted(ACTIVATIONS)}")
        if isinstance(self.window_size, bool) or not isinstance(self.window_size, int) or self.window_size < 1:
            raise ValueError(f"window_size must be an int >= 1, got {self.window_size!r}")
        layers = self.attention_layers
        if len(layers) != self.num_layers or set(layers) - {"global", "local"}:
            raise ValueError(f"attention_types {self.attention_types!r} expand to {len(layers)} layers of "
                             f"{sorted(set(layers))}; need {self.num_layers} of 'global'/'local'")

    @classmethod
    def _parse(cls, key: str, value: Any) -> Any:
        if key != "attention_types":
            return value
        try:
            return tuple((tuple(str(k) for k in kinds), int(n)) for kinds, n in value)
        except (TypeError, ValueError):
            raise ValueError(f"config key 'attention_types' must look like [[['global', 'local'], 12]], "
                             f"got {value!r}") from None

    @property
    def attention_layers(self) -> tuple[str, ...]:
        """'global' or 'local' per layer, expanded from attention_types."""
        return tuple(kind for kinds, n in self.attention_types for _ in range(n) for kind in kinds)

    num_hidden_layers = property(lambda self: self.num_layers, doc="decoder blocks")
    num_attention_heads = property(lambda self: self.num_heads, doc="heads per layer")
    hidden_dropout_p = property(lambda self: self.resid_dropout, doc="residual dropout")
    attention_dropout_p = property(lambda self: self.attention_dropout, doc="attention dropout")

    @property
    def mlp_size(self) -> int:
        """MLP width."""
        return self.intermediate_size or 4 * self.hidden_size

    def attn_spec(self, layer: int) -> AttnSpec:
        """Layer `layer`'s attention options: unscaled, fp32, windowed on local layers."""
        local = self.attention_layers[layer] == "local"
        return AttnSpec(scale=1.0, fp32=NEO_FP32, window=self.window_size if local else None)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["attention_types"] = [[list(kinds), n] for kinds, n in self.attention_types]
        out["attention_layers"] = list(self.attention_layers)
        return out


class GPTNeoSelfAttention(nn.Module):
    """q/k/v without bias, out_proj with bias; the layer's AttnSpec does scale, fp32 and window."""

    def __init__(self, config: GPTNeoConfig, layer: int) -> None:
        super().__init__()
        d = config.hidden_size
        self.layer = layer
        self.heads = config.num_attention_heads
        self.spec = config.attn_spec(layer)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.q_proj = nn.Linear(d, d, bias=False)
        self.out_proj = nn.Linear(d, d)
        self.resid_dropout = nn.Dropout(config.resid_dropout)

    def forward(self, x: Tensor, attn: Any) -> Tensor:
        b, t, d = x.shape  # (B, T, d)
        q = split_heads(self.q_proj(x), self.heads)  # (B, T, H, D)
        k = split_heads(self.k_proj(x), self.heads)
        v = split_heads(self.v_proj(x), self.heads)
        out = attn.attend(self.layer, q, k, v, self.spec)  # (B, T, H, D)
        return self.resid_dropout(self.out_proj(out.reshape(b, t, d)))


class GPTNeoAttention(nn.Module):
    """HF's wrapper level (`attn.attention.*` key names)."""

    def __init__(self, config: GPTNeoConfig, layer: int) -> None:
        super().__init__()
        self.attention = GPTNeoSelfAttention(config, layer)

    def forward(self, x: Tensor, attn: Any) -> Tensor:
        return self.attention(x, attn)


class GPTNeoMLP(nn.Module):
    """c_fc -> activation -> c_proj, nn.Linear weights."""

    def __init__(self, config: GPTNeoConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.hidden_size, config.mlp_size)
        self.c_proj = nn.Linear(config.mlp_size, config.hidden_size)
        self.act = ACTIVATIONS[config.activation_function]
        self.dropout = nn.Dropout(config.resid_dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))  # (B, T, d)


class GPTNeoModel(LearnedPositionsBody):
    """wte + wpe, pre-LN blocks of GPTNeoAttention and GPTNeoMLP, ln_f."""

    def __init__(self, config: GPTNeoConfig) -> None:
        def block(layer: int) -> PreLNBlock:
            return PreLNBlock(config.hidden_size, config.layer_norm_epsilon, GPTNeoAttention(config, layer),
                              GPTNeoMLP(config))

        super().__init__(config, block, config.embed_dropout)


class GPTNeoForCausalLM(CausalLMHead):
    """GPT-Neo causal LM."""

    body_cls = GPTNeoModel


class GPTNeoForTokenClassification(TokenClassifierHead):
    """GPT-Neo token classifier."""

    body_cls = GPTNeoModel


class GPTNeoForSequenceClassification(SequenceClassifierHead):
    """GPT-Neo sequence classifier."""

    body_cls = GPTNeoModel


FAMILY = Family(
    hf_config="GPTNeoConfig",
    name="gpt_neo", config_cls=GPTNeoConfig,
    heads={c.__name__: c for c in (GPTNeoForCausalLM, GPTNeoForTokenClassification,
                                   GPTNeoForSequenceClassification)},
    causal_lm="GPTNeoForCausalLM", token_classifier="GPTNeoForTokenClassification",
    embed_key="transformer.wte.weight", tied_key="lm_head.weight", base_prefix="transformer.",
    base_keys=("wte.", "wpe.", "h.", "ln_f."), positions_key="transformer.wpe.weight",
    dropped=(r"(transformer\.)?h\.\d+\.attn\.attention\.(masked_)?bias",),
    head_keys={"GPTNeoForTokenClassification": "classifier.weight",
               "GPTNeoForSequenceClassification": "score.weight"})
