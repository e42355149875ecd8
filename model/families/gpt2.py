"""GPT-2 (and BioMedLM, a GPT-2): pre-LN blocks, Conv1D weights, learned positions, final ln_f.

Key names match HF `modeling_gpt2.py` (`transformer.h.{i}.attn.c_attn.weight`, ..., `lm_head.weight`).
Attention scale is 1/sqrt(head_dim) (unless `scale_attn_weights` is false), divided by layer+1 with
`scale_attn_by_inverse_layer_idx` (BioMedLM sets it); `reorder_and_upcast_attn` means fp32 scores.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from model.attention import AttnSpec
from model.families.base import (ACTIVATIONS, CausalLMHead, Conv1D, Family, HFConfig, SequenceClassifierHead,
                                 TokenClassifierHead, split_heads)
from model.families.pre_ln import LearnedPositionsBody, PreLNBlock


@dataclass(frozen=True)
class GPT2Config(HFConfig):
    """Hyper-parameters of a GPT-2 decoder (HF `GPT2Config` key names)."""

    model_type = "gpt2"

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None  # MLP width; None: 4 * n_embd
    activation_function: str = "gelu_new"
    layer_norm_epsilon: float = 1e-5
    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False
    reorder_and_upcast_attn: bool = False
    add_cross_attention: bool = False
    tie_word_embeddings: bool = True
    resid_pdrop: float = 0.1  # training only
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    bos_token_id: int | None = 50256
    eos_token_id: int | None = 50256
    pad_token_id: int | None = None
    id2label: dict[int, str] | None = None
    architectures: tuple[str, ...] = ("GPT2LMHeadModel",)
    torch_dtype: str | None = None

    def __post_init__(self) -> None:
        self._validate_common()
        if self.activation_function not in ACTIVATIONS:
            raise ValueError(f"activation_function {self.activation_function!r} is not supported; "
                             f"use one of {sorted(ACTIVATIONS)}")
        if self.add_cross_attention:
            raise ValueError("add_cross_attention (GPT-2 as an encoder-decoder half) is not supported")

    hidden_size = property(lambda self: self.n_embd, doc="d_model")
    num_hidden_layers = property(lambda self: self.n_layer, doc="decoder blocks")
    num_attention_heads = property(lambda self: self.n_head, doc="heads per layer")
    max_position_embeddings = property(lambda self: self.n_positions, doc="learned positions")
    intermediate_size = property(lambda self: self.n_inner or 4 * self.n_embd, doc="MLP width")
    hidden_dropout_p = property(lambda self: self.resid_pdrop, doc="residual dropout")
    attention_dropout_p = property(lambda self: self.attn_pdrop, doc="attention dropout")

    def attn_spec(self, layer: int) -> AttnSpec:
        """Layer `layer`'s attention options."""
        scale = self.head_dim ** -0.5 if self.scale_attn_weights else 1.0
        if self.scale_attn_by_inverse_layer_idx:
            scale /= float(layer + 1)
        return AttnSpec(scale=scale, fp32=self.reorder_and_upcast_attn)


class ConvAttention(nn.Module):
    """Fused q/k/v projection `c_attn` and output `c_proj`, both Conv1D (GPT-2, OpenAI GPT)."""

    def __init__(self, config: Any, layer: int) -> None:
        super().__init__()
        d = config.hidden_size
        self.layer = layer
        self.heads = config.num_attention_heads
        self.spec = config.attn_spec(layer)
        self.c_attn = Conv1D(3 * d, d)
        self.c_proj = Conv1D(d, d)
        self.resid_dropout = nn.Dropout(config.hidden_dropout_p)

    def forward(self, x: Tensor, attn: Any) -> Tensor:
        b, t, d = x.shape  # (B, T, d)
        q, k, v = self.c_attn(x).split(d, dim=2)  # 3 x (B, T, d)
        out = attn.attend(self.layer, split_heads(q, self.heads), split_heads(k, self.heads),
                          split_heads(v, self.heads), self.spec)  # (B, T, H, D)
        return self.resid_dropout(self.c_proj(out.reshape(b, t, d)))


class ConvMLP(nn.Module):
    """c_fc -> activation -> c_proj, Conv1D weights."""

    def __init__(self, config: Any, activation: str) -> None:
        super().__init__()
        d, ffn = config.hidden_size, config.intermediate_size
        self.c_fc = Conv1D(ffn, d)
        self.c_proj = Conv1D(d, ffn)
        self.act = ACTIVATIONS[activation]
        self.dropout = nn.Dropout(config.hidden_dropout_p)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))  # (B, T, d)


class GPT2Model(LearnedPositionsBody):
    """wte + wpe, pre-LN blocks of ConvAttention and ConvMLP, ln_f."""

    def __init__(self, config: GPT2Config) -> None:
        def block(layer: int) -> PreLNBlock:
            return PreLNBlock(config.hidden_size, config.layer_norm_epsilon, ConvAttention(config, layer),
                              ConvMLP(config, config.activation_function))

        super().__init__(config, block, config.embd_pdrop)


class GPT2LMHeadModel(CausalLMHead):
    """GPT-2 causal LM."""

    body_cls = GPT2Model


class GPT2ForTokenClassification(TokenClassifierHead):
    """GPT-2 token classifier."""

    body_cls = GPT2Model


class GPT2ForSequenceClassification(SequenceClassifierHead):
    """GPT-2 sequence classifier."""

    body_cls = GPT2Model


FAMILY = Family(
    hf_config="GPT2Config",
    name="gpt2", config_cls=GPT2Config,
    heads={c.__name__: c for c in (GPT2LMHeadModel, GPT2ForTokenClassification, GPT2ForSequenceClassification)},
    causal_lm="GPT2LMHeadModel", token_classifier="GPT2ForTokenClassification",
    embed_key="transformer.wte.weight", tied_key="lm_head.weight", base_prefix="transformer.",
    base_keys=("wte.", "wpe.", "h.", "ln_f."), positions_key="transformer.wpe.weight",
    dropped=(r"(transformer\.)?h\.\d+\.attn\.(masked_)?bias",),
    head_keys={"GPT2ForTokenClassification": "classifier.weight", "GPT2ForSequenceClassification": "score.weight"})
