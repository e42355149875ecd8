"""The `train-re` job: BioGPT's soft-prompt RE fine-tuning on Ray Train, then checkpoint averaging.

The driver reads and tokenizes the data, runs `re_worker.train_loop` on `num_workers` Ray Train
workers (DDP), each epoch checkpointed by Ray Train under `OUT/checkpoints/train-re/epoch_N`
(the last `keep_last` kept). Afterwards the kept epochs are averaged (fairseq `checkpoint_avg`)
and saved with the tokenizer (learned1..9 added) to OUT, which `biomine run --re-model OUT`
loads. Loss: the whole sequence by default (as the paper); `target_only_loss` scores only the
answer tokens. The same OUT started again resumes after the last checkpointed epoch.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from pipeline.training.re_data import RECIPES, ReDocument, encode_example, load_documents, recipe_for

log = logging.getLogger(__name__)

TASK_DEFAULTS = {"bc5cdr": (1e-5, 100), "kd-dti": (1e-5, 100), "ddi": (1e-4, 500)}  # lr, warm-up
RUN_NAME = "train-re"
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
    """The base model's tokenizer (bundled vocabulary as a fallback) with learned1..9 added."""
    from model.demo import LEARNED_PROMPT
    from model.tokenizer import BioGptTokenizer

    try:
        tokenizer = BioGptTokenizer.from_pretrained(base)
    except (FileNotFoundError, ValueError, OSError) as exc:
        log.warning("no tokenizer in %s (%s); using the bundled microsoft/biogpt vocabulary", base, exc)
        tokenizer = BioGptTokenizer.from_pretrained("microsoft/biogpt")
    return tokenizer, tokenizer.add_tokens(list(LEARNED_PROMPT))


def grow_embeddings(model: Any, vocab_size: int, seed: int = 0) -> Any:
    """A causal LM whose tied embedding has `vocab_size` rows; new rows ~ N(0, d**-0.5) (fairseq)."""
    from dataclasses import replace

    import torch

    from model.loader import build_from_state_dict

    old = model.config.vocab_size
    if vocab_size <= old:
        return model
    weight = model.biogpt.embed_tokens.weight.detach()
    d = weight.shape[1]
    gen = torch.Generator().manual_seed(seed)
    extra = torch.randn((vocab_size - old, d), generator=gen) * d ** -0.5
    state = {k: v.detach() for k, v in model.state_dict().items() if k != "output_projection.weight"}
    state["biogpt.embed_tokens.weight"] = torch.cat([weight.float().cpu(), extra]).to(weight.dtype)
    config = replace(model.config, vocab_size=vocab_size)
    log.info("embedding grown from %d to %d rows (learned prompt tokens)", old, vocab_size)
    return build_from_state_dict(config, "BioGptForCausalLM", state, weight.dtype, weight.device)


def dev_record(doc: ReDocument, prompt: list[int], task: str) -> dict[str, Any]:
    """What a worker needs to score one dev document."""
    gold = ([list(g) for g in doc.gold_ids] if task == "bc5cdr"
            else [list(t) for t in doc.triples])
    return {"id": doc.doc_id, "prompt": prompt, "article": doc.article(), "gold": gold,
            "head_ids": dict(doc.head_ids or {}), "tail_ids": dict(doc.tail_ids or {})}


def prepare_data(cfg: ReTrainConfig, tokenizer: Any, prompt_ids: list[int]) -> dict[str, Any]:
    """Tokenized training sequences and dev prompts for the workers."""
    from pipeline.tasks.relation import build_prompt, source_text

    recipe = RECIPES[cfg.task]
    train_docs = load_documents(cfg.train, cfg.task, cfg.max_docs)
    examples = [encode_example(d, recipe, tokenizer, prompt_ids) for d in train_docs]
    dev = []
    if cfg.dev:
        for doc in load_documents(cfg.dev, cfg.task, cfg.max_docs):
            source = source_text(doc.article(), recipe.title_in_source)
            dev.append(dev_record(doc, build_prompt(source, tokenizer, prompt_ids).prompt_ids, cfg.task))
    n_tokens = sum(len(e.ids) for e in examples)
    log.info("train-re %s: %d training sequences (%d tokens), %d dev documents", cfg.task,
             len(examples), n_tokens, len(dev))
    return {"train": [[e.ids, e.n_prefix] for e in examples], "dev": dev}


def read_log(out_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch records written so far."""
    path = out_dir / LOG_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train_re(cfg: ReTrainConfig) -> list[dict[str, Any]]:
    """Train (or resume), average the last `keep_last` epochs into OUT; the epochs run now."""
    from model.loader import build_from_state_dict, save_pretrained
    from model.config import BioGptConfig
    from pipeline.training import re_worker
    from pipeline.training.trainer import average_checkpoints, epoch_checkpoints, run_ray_training

    out = Path(cfg.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    tokenizer, prompt_ids = prompt_tokenizer(cfg.base)
    data = prepare_data(cfg, tokenizer, prompt_ids)
    before = len(read_log(out))
    loop_config = {"config": asdict(cfg), "out_dir": str(out), **data}
    run_ray_training(re_worker.train_loop, loop_config, storage=out / "checkpoints", name=RUN_NAME,
                     num_workers=cfg.num_workers, use_gpu=cfg.use_gpu, keep_last=cfg.keep_last,
                     max_failures=cfg.max_failures)
    kept = [f for e, f in epoch_checkpoints(out / "checkpoints" / RUN_NAME) if e <= cfg.epochs]
    kept = kept[-cfg.keep_last:]
    if not kept:
        raise ValueError(f"{out}: training produced no epoch checkpoint")
    state = average_checkpoints(kept)
    config = BioGptConfig.from_json_file(kept[-1] / "config.json")
    model = build_from_state_dict(config, "BioGptForCausalLM", state, "float32", "cpu")
    save_pretrained(model, out, tokenizer)
    summary = {"averaged": [f.name for f in kept], "config": asdict(cfg),
               "lr": cfg.learning_rate, "warmup": cfg.warmup_updates}
    (out / "train_re.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("train-re: averaged %s into %s", summary["averaged"], out)
    return read_log(out)[before:]
