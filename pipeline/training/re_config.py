"""What `train-re`'s driver and its Ray Train workers share: the run config and model helpers."""
from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pipeline.training.re_data import recipe_for

log = logging.getLogger(__name__)

TASK_DEFAULTS = {"bc5cdr": (1e-5, 100), "kd-dti": (1e-5, 100), "ddi": (1e-4, 500)}  # lr, warm-up
LOG_FILE = "train_log.jsonl"


@dataclass(frozen=True)
class ReTrainConfig:
    """Settings of one `train-re` run; validated when built."""

    task: str
    train: str
    dev: str | None
    base: str
    out_dir: str
    epochs: int = 100
    lr: float | None = None  # None: the task's (1e-5 BC5CDR / KD-DTI, 1e-4 DDI)
    warmup: int | None = None  # None: the task's (100 / 500 updates)
    tokens_per_update: int = 32768  # fairseq --max-tokens 1024 x --update-freq 32
    micro_batch_tokens: int = 4096  # padded tokens per forward/backward
    keep_last: int = 5
    num_workers: int = 1
    use_gpu: bool = False
    max_docs: int | None = None
    target_only_loss: bool = False
    dev_max_new_tokens: int = 375  # 1024 - 640 - 9, the recipe's target budget
    dev_batch_size: int = 32
    max_failures: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        recipe_for(self.task)
        ints = ("epochs", "tokens_per_update", "micro_batch_tokens", "keep_last", "num_workers",
                "dev_max_new_tokens", "dev_batch_size")
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"train-re: {name} must be an int >= 1, got {value!r}")
        if self.max_failures < 0:
            raise ValueError(f"train-re: max_failures must be >= 0, got {self.max_failures}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"train-re: lr must be > 0, got {self.lr}")
        if self.warmup is not None and self.warmup < 1:
            raise ValueError(f"train-re: warmup must be >= 1, got {self.warmup}")
        if self.max_docs is not None and self.max_docs < 1:
            raise ValueError(f"train-re: max_docs must be >= 1, got {self.max_docs}")

    @property
    def learning_rate(self) -> float:
        """The peak learning rate in use."""
        return self.lr if self.lr is not None else TASK_DEFAULTS[self.task][0]

    @property
    def warmup_updates(self) -> int:
        """The warm-up length in use."""
        return self.warmup if self.warmup is not None else TASK_DEFAULTS[self.task][1]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReTrainConfig:
        """From `asdict` output (unknown keys refused)."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"train-re: unknown settings {sorted(unknown)}")
        return cls(**data)


def prompt_tokenizer(base: str | Path) -> tuple[Any, list[int]]:
    """The base model's tokenizer (bundled vocabulary as a fallback) with learned1..9 added
    (and an eos `</s>` where the family has none: OpenAI GPT)."""
    from model.auto import load_tokenizer
    from model.demo import LEARNED_PROMPT
    from model.tokenizer import BioGptTokenizer

    try:
        tokenizer = load_tokenizer(base)
    except (FileNotFoundError, ValueError, OSError) as exc:
        log.warning("no tokenizer in %s (%s); using the bundled microsoft/biogpt vocabulary", base, exc)
        tokenizer = BioGptTokenizer.from_pretrained("microsoft/biogpt")
    if tokenizer.eos_token_id is None:
        tokenizer.add_special_token("eos_token", "</s>")
    return tokenizer, tokenizer.add_tokens(list(LEARNED_PROMPT))


def grow_embeddings(model: Any, vocab_size: int, seed: int = 0, eos_token_id: int | None = None) -> Any:
    """A causal LM whose tied embedding has `vocab_size` rows; new rows ~ N(0, d**-0.5) (fairseq).

    `eos_token_id` sets the config's eos where the base has none (OpenAI GPT + an added `</s>`)."""
    from dataclasses import replace

    import torch

    from model.families import family_of_model
    from model.loader import build_from_state_dict

    family = family_of_model(model)
    old = model.config.vocab_size
    eos = model.config.eos_token_id if model.config.eos_token_id is not None else eos_token_id
    if vocab_size <= old and eos == model.config.eos_token_id:
        return model
    state = {k: v.detach() for k, v in model.state_dict().items() if k != family.tied_key}
    weight = state[family.embed_key]
    d = weight.shape[1]
    gen = torch.Generator().manual_seed(seed)
    extra = torch.randn((max(0, vocab_size - old), d), generator=gen) * d ** -0.5
    state[family.embed_key] = torch.cat([weight.float().cpu(), extra]).to(weight.dtype)
    config = replace(model.config, eos_token_id=eos, vocab_size=max(vocab_size, old))
    log.info("embedding grown from %d to %d rows (learned prompt tokens)", old, vocab_size)
    return build_from_state_dict(config, family.causal_lm, state, weight.dtype, weight.device)

