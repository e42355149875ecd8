"""Shared training pieces: fairseq's Adam + inverse-sqrt (or constant) schedule, token-budget
batching with gradient accumulation (DDP-aware), a token-label loss, mixed precision, checkpoint
averaging, and a Ray Train runner.

Used by `pipeline.training.re_train` (on Ray Train) and `pipeline.training.tagger` (local).
Checkpointing and resume go through Ray Train: each epoch `ray.train.report(metrics, checkpoint)`;
a run started again with the same storage folder and name gets the last one from
`ray.train.get_checkpoint()`.
"""
from __future__ import annotations

import contextlib
import logging
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEDULES = ("inverse_sqrt", "constant")


@dataclass(frozen=True)
class OptimConfig:
    """Adam (fairseq: decoupled weight decay) and the lr schedule; validated when built."""

    lr: float = 1e-5
    warmup: int = 100  # updates of linear warm-up from warmup_init_lr to lr (>= 1 for inverse_sqrt)
    warmup_init_lr: float = 1e-7
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    weight_decay: float = 0.01
    clip_norm: float = 0.0  # 0: no clipping (BioGPT's --clip-norm 0.0)
    schedule: str = "inverse_sqrt"  # or "constant": lr after the warm-up (warmup may be 0)

    def __post_init__(self) -> None:
        if not self.lr > 0 or self.warmup_init_lr < 0:
            raise ValueError(f"lr must be > 0 and warmup_init_lr >= 0, got {self.lr}, {self.warmup_init_lr}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.warmup < (1 if self.schedule == "inverse_sqrt" else 0):
            raise ValueError(f"warmup must be >= 1 (>= 0 for a constant schedule), got {self.warmup}")
        if self.weight_decay < 0 or self.clip_norm < 0:
            raise ValueError("weight_decay and clip_norm must be >= 0")


def inverse_sqrt_lr(updates_done: int, cfg: OptimConfig) -> float:
    """fairseq `inverse_sqrt`: linear warm-up, then lr * sqrt(warmup / updates)."""
    if updates_done < cfg.warmup:
        return cfg.warmup_init_lr + updates_done * (cfg.lr - cfg.warmup_init_lr) / cfg.warmup
    return cfg.lr * math.sqrt(cfg.warmup / updates_done)


def scheduled_lr(updates_done: int, cfg: OptimConfig) -> float:
    """The learning rate of the next update under `cfg.schedule` (both warm up linearly)."""
    if cfg.schedule == "constant":
        if updates_done < cfg.warmup:
            return cfg.warmup_init_lr + updates_done * (cfg.lr - cfg.warmup_init_lr) / cfg.warmup
        return cfg.lr
    return inverse_sqrt_lr(updates_done, cfg)


def build_optimizer(params: Any, cfg: OptimConfig) -> Any:
    """AdamW: fairseq's Adam applies weight decay decoupled (p -= lr * wd * p)."""
    import torch

    return torch.optim.AdamW(params, lr=cfg.warmup_init_lr, betas=cfg.betas, eps=cfg.eps,
                             weight_decay=cfg.weight_decay)


def plan_epoch(lengths: Sequence[int], micro_batch_tokens: int, tokens_per_update: int,
               world_size: int, seed: int, epoch: int, max_rows: int | None = None
               ) -> list[list[list[int]]]:
    """The global plan of one epoch: updates, each a list of micro-batches of example indices.

    As fairseq: shuffle, sort by length, cut into micro-batches of at most `micro_batch_tokens`
    padded tokens (and, given `max_rows`, at most that many examples: fairseq's --batch-size),
    shuffle the batches. Micro-batches are grouped until an update holds
    `tokens_per_update` tokens and a multiple of `world_size` batches (every worker then runs
    the same number of steps); a last group smaller than the world size is dropped.
    """
    if micro_batch_tokens < 1 or tokens_per_update < 1 or world_size < 1:
        raise ValueError("micro_batch_tokens, tokens_per_update and world_size must be >= 1")
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    row_cap = max_rows if max_rows is not None else len(lengths)
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    order.sort(key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < row_cap and \
                (len(batches[-1]) + 1) * lengths[i] <= micro_batch_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    rng.shuffle(batches)
    updates: list[list[list[int]]] = []
    group: list[list[int]] = []
    tokens = 0
    for batch in batches:
        group.append(batch)
        tokens += sum(lengths[i] for i in batch)
        if tokens >= tokens_per_update and len(group) % world_size == 0:
            updates.append(group)
            group, tokens = [], 0
    if group:
        keep = len(group) - len(group) % world_size
        if keep:
            updates.append(group[:keep])
        if keep < len(group):
            log.info("epoch %d: %d micro-batch(es) left over for %d workers, skipped this epoch",
                     epoch, len(group) - keep, world_size)
    return updates


def pad_batch(rows: Sequence[tuple[list[int], list[int]]], device: Any, pad_id: int = 1,
              ignore: int = -100) -> tuple[Any, Any, Any]:
    """Right-padded (input ids, labels, attention mask), each (B, T) long on `device`."""
    import torch

    width = max(len(x) for x, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), ignore, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (x, y) in enumerate(rows):
        ids[r, :len(x)] = torch.tensor(x)
        labels[r, :len(y)] = torch.tensor(y)
        mask[r, :len(x)] = 1
    return ids.to(device), labels.to(device), mask.to(device)


def token_loss_module(model: Any, ignore: int = -100) -> Any:
    """Module whose `(input_ids, labels, attention_mask)` call is the summed token cross-entropy."""
    # any model with forward_padded -> (B, T, C) logits: a causal LM (shifted labels), a token tagger
    import torch
    from torch import nn

    from model.biogpt import BioGptForCausalLM, DenseAttention, positions_from_mask

    lm_head_on_labels = type(model) is BioGptForCausalLM  # its head has no dropout to skip

    class TokenLoss(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, labels: torch.Tensor,
                    attention_mask: torch.Tensor) -> torch.Tensor:
            if lm_head_on_labels:  # a causal LM: the vocabulary projection only where labelled
                attn = DenseAttention(attention_mask, dropout_p=self.inner._attn_dropout())
                hidden = self.inner(input_ids, positions_from_mask(attention_mask), attn)
                keep = labels != ignore
                logits = self.inner.compute_logits(hidden[keep])
                return nn.functional.cross_entropy(logits.float(), labels[keep], reduction="sum")
            logits = self.inner.forward_padded(input_ids, attention_mask)  # (B, T, C)
            return nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(),
                                               ignore_index=ignore, reduction="sum")

    return TokenLoss(model)


def amp_dtype(device: Any) -> Any:
    """bf16 on GPUs that have it, fp16 on older GPUs, None (fp32) on CPU."""
    import torch

    if getattr(device, "type", str(device)) != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class Stepper:
    """Runs updates: accumulate micro-batch gradients (no DDP sync until the last), step."""

    def __init__(self, module: Any, optimizer: Any, cfg: OptimConfig, device: Any,
                 world_size: int = 1, updates_done: int = 0) -> None:
        import torch

        self.module, self.optimizer, self.cfg = module, optimizer, cfg
        self.device, self.world_size, self.updates_done = device, world_size, updates_done
        self.dtype = amp_dtype(device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)

    def _autocast(self) -> Any:
        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.dtype)

    def update(self, micro_batches: list[dict[str, Any]], n_targets: int) -> float:
        """One optimiser update over this worker's micro-batches; `n_targets` counts every worker's
        label tokens, so the gradient is the per-token mean over the whole update. Returns the
        summed loss of this worker's batches."""
        import torch

        lr = scheduled_lr(self.updates_done, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total = 0.0
        for k, batch in enumerate(micro_batches):
            last = k == len(micro_batches) - 1
            sync = contextlib.nullcontext() if last or not hasattr(self.module, "no_sync") \
                else self.module.no_sync()
            with sync:
                with self._autocast():
                    loss = self.module(**batch)  # summed over label tokens
                self.scaler.scale(loss * (self.world_size / max(1, n_targets))).backward()
            total += float(loss.detach())
        self.scaler.unscale_(self.optimizer)
        if self.cfg.clip_norm > 0:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.cfg.clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.updates_done += 1
        return total

    def state_dict(self) -> dict[str, Any]:
        """Optimiser, grad scaler and update count, for a checkpoint."""
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "updates_done": self.updates_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.updates_done = int(state["updates_done"])


def average_checkpoints(folders: Sequence[Path]) -> dict[str, Any]:
    """fairseq `average_checkpoints`: the element-wise mean of the folders' model weights."""
    from model.loader import read_state_dict, weight_files

    if not folders:
        raise ValueError("no checkpoint to average")
    total: dict[str, Any] = {}
    for folder in folders:
        state = read_state_dict(weight_files(Path(folder)))
        if total and state.keys() != total.keys():
            raise ValueError(f"{folder}: its tensors differ from those of {folders[0]}")
        for key, tensor in state.items():
            if not tensor.is_floating_point():
                total.setdefault(key, tensor.clone())  # integer buffers are not averaged
            elif key in total:
                total[key] += tensor.float()
            else:
                total[key] = tensor.float().clone()
    return {k: (v / len(folders) if v.is_floating_point() else v) for k, v in total.items()}


def epoch_checkpoints(run_dir: Path, prefix: str = "epoch_") -> list[tuple[int, Path]]:
    """(epoch, folder) of the complete epoch checkpoints in a Ray Train run folder, by epoch."""
    out = []
    for folder in Path(run_dir).glob(f"{prefix}*"):
        suffix = folder.name[len(prefix):]
        if suffix.isdigit() and (folder / "train_state.pt").is_file():
            out.append((int(suffix), folder))
    return sorted(out)


def run_ray_training(loop: Callable[[dict[str, Any]], None], loop_config: dict[str, Any], *,
                     storage: Path, name: str, num_workers: int, use_gpu: bool, keep_last: int,
                     max_failures: int = 0) -> Any:
    """Fit a `TorchTrainer` (DDP across workers); the same storage + name resumes a run."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    run_config = RunConfig(name=name, storage_path=str(Path(storage).resolve()),
                           checkpoint_config=CheckpointConfig(num_to_keep=keep_last),
                           failure_config=FailureConfig(max_failures=max_failures))
    trainer = TorchTrainer(loop, train_loop_config=loop_config,
                           scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
                           run_config=run_config)
    return trainer.fit()


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most `size` items."""
    for k in range(0, len(items), size):
        yield items[k:k + size]
