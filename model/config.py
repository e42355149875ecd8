"""BioGPT configuration: read from an HF config.json, validated, with presets for base and Large."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class BioGptConfig:
    """Hyper-parameters of a BioGPT decoder (HF `BioGptConfig` key names)."""

    vocab_size: int = 42384  # token embedding rows (42393 with learned1..9 prompt tokens)
    hidden_size: int = 1024  # d_model
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096  # fc1 width
    max_position_embeddings: int = 1024  # the positional table has 2 more rows (offset 2)
    hidden_act: str = "gelu"  # exact erf GELU; the only activation BioGPT uses
    scale_embedding: bool = True  # token embeddings times sqrt(hidden_size)
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2
    hidden_dropout_prob: float = 0.1  # training only
    attention_probs_dropout_prob: float = 0.1  # training only
    id2label: dict[int, str] | None = None  # token/sequence classification labels
    architectures: tuple[str, ...] = ("BioGptForCausalLM",)
    torch_dtype: str | None = None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"BioGptConfig.{name} must be a positive int, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                f"{self.num_attention_heads}")
        if self.hidden_act != "gelu":
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported (BioGPT uses 'gelu')")
        if self.id2label is not None:
            if not isinstance(self.id2label, dict) or sorted(self.id2label) != list(range(len(self.id2label))):
                raise ValueError(f"id2label must map 0..n-1 to label names, got {self.id2label!r}")

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_attention_heads

    @property
    def fill_token_id(self) -> int:
        """Id the engine puts in padded rows (never attended)."""
        return self.pad_token_id

    @property
    def num_labels(self) -> int:
        """Number of classification labels (0 when the config has none)."""
        return len(self.id2label) if self.id2label else 0

    @property
    def label2id(self) -> dict[str, int]:
        """Inverse of id2label."""
        return {v: k for k, v in (self.id2label or {}).items()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "BioGptConfig":
        """Build from an HF-style dict; unknown keys are ignored, wrong types refused."""
        return cls(**hf_kwargs(cls, raw))

    @classmethod
    def from_json_file(cls, path: str | Path) -> "BioGptConfig":
        """Read an HF `config.json`."""
        return read_json_config(path, cls.from_dict)

    def to_dict(self) -> dict[str, Any]:
        """HF-compatible dict (loadable by transformers' BioGptConfig)."""
        out = asdict(self)
        out["architectures"] = list(self.architectures)
        out["model_type"] = "biogpt"
        out["layer_norm_eps"] = 1e-5
        out["initializer_range"] = 0.02
        out["layerdrop"] = 0.0
        out["activation_dropout"] = 0.0
        out["use_cache"] = True
        out["tie_word_embeddings"] = True
        if self.id2label is None:
            del out["id2label"]
        else:
            out["id2label"] = {str(k): v for k, v in self.id2label.items()}
            out["label2id"] = self.label2id
        if self.torch_dtype is None:
            del out["torch_dtype"]
        else:
            out["dtype"] = self.torch_dtype  # the transformers >= 5 name
        return out

    def to_json_file(self, path: str | Path) -> None:
        """Write an HF `config.json`."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


def _check_type(key: str, value: Any, annotation: Any) -> Any:
    text = str(annotation)
    if text.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"config key {key!r} must be an int, got {type(value).__name__} {value!r}")
    elif text.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"config key {key!r} must be a number, got {type(value).__name__} {value!r}")
        value = float(value)
    elif text.startswith("bool"):
        if not isinstance(value, bool):
            raise ValueError(f"config key {key!r} must be true/false, got {type(value).__name__} {value!r}")
    elif text.startswith("str"):
        if not isinstance(value, str):
            raise ValueError(f"config key {key!r} must be a string, got {type(value).__name__} {value!r}")
    return value


BIOGPT_BASE = BioGptConfig()
BIOGPT_LARGE = BioGptConfig(vocab_size=57717, hidden_size=1600, num_hidden_layers=48,
                            num_attention_heads=25, intermediate_size=6400,
                            max_position_embeddings=2048)
PRESETS: dict[str, BioGptConfig] = {
    "microsoft/biogpt": BIOGPT_BASE,
    "microsoft/BioGPT-Large": BIOGPT_LARGE,
}


def hf_kwargs(cls: type, raw: dict[str, Any], parse: Callable[[str, Any], Any] | None = None) -> dict[str, Any]:
    """The dataclass `cls`'s keyword arguments from an HF config dict: unknown keys and nulls
    ignored, `dtype` read as `torch_dtype`, `num_labels` alone as LABEL_i names, types checked
    (`parse` reads family-specific values first)."""
    known = {f.name: f for f in fields(cls)}
    raw = dict(raw)
    if raw.get("torch_dtype") is None and raw.get("dtype") is not None:  # transformers >= 5 name
        raw["torch_dtype"] = raw["dtype"]
    if raw.get("id2label") is None and raw.get("num_labels") is not None:  # labels by count only
        count = raw["num_labels"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"config key 'num_labels' must be a non-negative int, got {count!r}")
        raw["id2label"] = {i: f"LABEL_{i}" for i in range(count)} or None
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known or value is None:
            continue
        if key == "id2label":
            if not isinstance(value, dict):
                raise ValueError(f"config key 'id2label' must be an object, got {type(value).__name__}")
            try:
                value = {int(k): str(v) for k, v in value.items()}
            except (TypeError, ValueError) as exc:
                raise ValueError(f"config key 'id2label' has a non-integer id: {exc}") from None
        elif key == "architectures":
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"config key 'architectures' must be a list of strings, got {value!r}")
            value = tuple(value)
        else:
            value = _check_type(key, parse(key, value) if parse else value, known[key].type)
        kwargs[key] = value
    return kwargs


def read_json_config(path: str | Path, build: Callable[[dict[str, Any]], T]) -> T:
    """Read a `config.json` object and build a config from it; errors name the file."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object")
    try:
        return build(raw)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
