"""OpenAI GPT (GPT-1): post-LN blocks, Conv1D weights, learned positions, no final LayerNorm.

Key names match HF `modeling_openai.py` (`transformer.tokens_embed.weight`, `transformer.h.{i}.attn.c_attn.weight`,
`lm_head.weight`). Facts: `afn="gelu"` is the tanh GELU (HF `ACT_FNS`); block is
`n = ln_1(x + attn(x)); h = ln_2(n + mlp(n))`; scores scaled by 1/sqrt(head_dim); HF keeps no KV
cache and masks with -1e4, which a cached engine matches for unpadded rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from model.attention import AttnSpec
from model.families.base import CausalLMHead, Family, HFConfig, SequenceClassifierHead
from model.families.gpt2 import ConvAttention, ConvMLP

AFN = {"gelu": "gelu_new", "relu": "relu", "silu": "silu", "swish": "silu"}  # HF ACT_FNS


@dataclass(frozen=True)
class OpenAIGPTConfig(HFConfig):
    """Hyper-parameters of an OpenAI GPT decoder (HF `OpenAIGPTConfig` key names)."""

    model_type = "openai-gpt"

    vocab_size: int = 40478
    n_positions: int = 512
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    afn: str = "gelu"
    layer_norm_epsilon: float = 1e-5
    tie_word_embeddings: bool = True
    resid_pdrop: float = 0.1  # training only
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    id2label: dict[int, str] | None = None
    architectures: tuple[str, ...] = ("OpenAIGPTLMHeadModel",)
    torch_dtype: str | None = None

    def __post_init__(self) -> None:
        self._validate_common()
        if self.afn not in AFN:
            raise ValueError(f"afn {self.afn!r} is not supported; use one of {sorted(AFN)}")

    hidden_size = property(lambda self: self.n_embd, doc="d_model")
    num_hidden_layers = property(lambda self: self.n_layer, doc="decoder blocks")
    num_attention_heads = property(lambda self: self.n_head, doc="heads per layer")
    max_position_embeddings = property(lambda self: self.n_positions, doc="learned positions")
    intermediate_size = property(lambda self: 4 * self.n_embd, doc="MLP width")
    hidden_dropout_p = property(lambda self: self.resid_pdrop, doc="residual dropout")
    attention_dropout_p = property(lambda self: self.attn_pdrop, doc="attention dropout")

    def attn_spec(self, layer: int) -> AttnSpec:
        """Every layer: 1/sqrt(head_dim), model dtype, full causal."""
        return AttnSpec()


class OpenAIGPTBlock(nn.Module):
    """Post-LN: n = ln_1(x + attn(x)), then ln_2(n + mlp(n))."""

    def __init__(self, config: OpenAIGPTConfig, layer: int) -> None:
        super().__init__()
        d, eps = config.hidden_size, config.layer_norm_epsilon
        self.attn = ConvAttention(config, layer)
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.mlp = ConvMLP(config, AFN[config.afn])
        self.ln_2 = nn.LayerNorm(d, eps=eps)

    def forward(self, x: Tensor, attn: Any) -> Tensor:
        n = self.ln_1(x + self.attn(x, attn))  # (B, T, d)
        return self.ln_2(n + self.mlp(n))


class OpenAIGPTModel(nn.Module):
    """tokens_embed + positions_embed, the blocks; no final LayerNorm."""

    def __init__(self, config: OpenAIGPTConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.tokens_embed = nn.Embedding(config.vocab_size, d)
        self.positions_embed = nn.Embedding(config.max_position_embeddings, d)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList(OpenAIGPTBlock(config, i) for i in range(config.num_hidden_layers))

    def forward(self, input_ids: Tensor, positions: Tensor, attn: Any) -> Tensor:
        """input_ids, positions: (B, T) -> hidden (B, T, d); pads (position -1) read row 0."""
        x = self.drop(self.tokens_embed(input_ids) + self.positions_embed(positions.clamp(min=0)))
        for block in self.h:
            x = block(x, attn)  # (B, T, d)
        return x


class OpenAIGPTLMHeadModel(CausalLMHead):
    """OpenAI GPT causal LM."""

    body_cls = OpenAIGPTModel
    embed_name = "tokens_embed"


class OpenAIGPTForSequenceClassification(SequenceClassifierHead):
    """OpenAI GPT sequence classifier (transformers has no OpenAI GPT token classifier)."""

    body_cls = OpenAIGPTModel
    embed_name = "tokens_embed"


FAMILY = Family(
    hf_config="OpenAIGPTConfig",
    name="openai_gpt", config_cls=OpenAIGPTConfig,
    heads={c.__name__: c for c in (OpenAIGPTLMHeadModel, OpenAIGPTForSequenceClassification)},
    causal_lm="OpenAIGPTLMHeadModel", token_classifier=None,
    embed_key="transformer.tokens_embed.weight", tied_key="lm_head.weight", base_prefix="transformer.",
    base_keys=("tokens_embed.", "positions_embed.", "h."), positions_key="transformer.positions_embed.weight",
    dropped=(r"(transformer\.)?h\.\d+\.attn\.bias", r"(transformer\.)?position_ids"),
    head_keys={"OpenAIGPTForSequenceClassification": "score.weight"})
