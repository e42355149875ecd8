"""What each Ray Train worker of `train-re` runs: the epoch loop, dev F1 and epoch checkpoints.

Dev F1 is computed with biomine's own engine (greedy, as BioGPT decodes) on a copy of the model,
each worker generating for its share of the dev documents; BC5CDR names are mapped to MeSH ids
through the document's own name -> id maps and scored as (pmid, chemical, disease) sets, DDI and
KD-DTI with BioGPT's hard match (corpus level).
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.training.run_record import epoch_line
from pipeline.training.re_data import IGNORE, RECIPES
from pipeline.training.re_config import LOG_FILE, ReTrainConfig, grow_embeddings, prompt_tokenizer
from pipeline.training.trainer import (OptimConfig, Stepper, build_optimizer, pad_batch, plan_epoch,
                                       token_loss_module)

log = logging.getLogger(__name__)


def generate_texts(model: Any, tokenizer: Any, prompts: list[list[int]], cfg: ReTrainConfig) -> list[str]:
    """Greedy answers of a copy of `model` (the training copy keeps its dtype and mode)."""
    import copy

    import torch

    from model.engine import Engine, EngineConfig
    from model.sampling import SamplingParams

    if not prompts:
        return []
    twin = copy.deepcopy(model).eval()
    max_len = model.config.max_position_embeddings
    cuda = torch.cuda.is_available()
    dtype = ("bfloat16" if torch.cuda.is_bf16_supported() else "float16") if cuda else "auto"
    engine = Engine(twin, tokenizer, EngineConfig(
        max_num_seqs=cfg.dev_batch_size, max_model_len=max_len, enforce_eager=True, dtype=dtype,
        kv_cache_tokens=cfg.dev_batch_size * max_len if cuda else None))
    texts = [g.text or "" for g in engine.generate(prompts, SamplingParams(
        max_new_tokens=cfg.dev_max_new_tokens))]
    del engine, twin
    if cuda:
        torch.cuda.empty_cache()
    return texts


def score_dev(task: str, dev: list[dict[str, Any]], texts: dict[str, str]) -> dict[str, Any]:
    """Dev precision / recall / F1 of the generated answers (see the module docstring)."""
    from pipeline.evaluate import score_sets
    from pipeline.evaluate.hard_match import evaluate
    from pipeline.tasks.relation import parse_generation

    recipe = RECIPES[task]
    malformed = 0
    found: dict[str, list[tuple[str, str, str]]] = {}
    for doc in dev:
        art = doc["article"]
        triples, bad, _ = parse_generation(recipe, texts.get(doc["id"], ""),
                                           f"{art['title']}\n{art['abstract']}")
        malformed += bad
        found[doc["id"]] = [(h, t, r) for _, h, t, r in triples]
    if task == "bc5cdr":
        gold = {(d["id"], c, s) for d in dev for c, s in d["gold"]}
        pred = {(d["id"], d["head_ids"].get(h, "?" + h), d["tail_ids"].get(t, "?" + t))
                for d in dev for h, t, _ in found[d["id"]]}
        scores = score_sets(gold, pred).to_dict()
    else:
        result = evaluate(found, {d["id"]: [tuple(g) for g in d["gold"]] for d in dev})
        scores = {k: result[k] for k in ("tp", "fp", "fn", "precision", "recall", "f1", "sample_f1")}
    return {**{f"dev_{k}": v for k, v in scores.items()}, "dev_malformed": malformed}


def _all_gather(obj: Any, world: int) -> list[Any]:
    if world == 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out


def dev_metrics(model: Any, tokenizer: Any, dev: list[dict[str, Any]], cfg: ReTrainConfig,
                rank: int, world: int) -> dict[str, Any]:
    """Each worker generates for dev[rank::world]; every worker scores the gathered answers."""
    if not dev:
        return {}
    shard = dev[rank::world]
    mine = dict(zip([d["id"] for d in shard], generate_texts(model, tokenizer,
                                                              [d["prompt"] for d in shard], cfg)))
    texts = {k: v for part in _all_gather(mine, world) for k, v in part.items()}
    return score_dev(cfg.task, dev, texts)


def _load_start(cfg: ReTrainConfig, vocab_size: int, device: Any,
                eos_token_id: int | None = None) -> tuple[Any, dict | None]:
    """The model and train state of the last checkpoint, or the base model grown for the prompt."""
    import ray.train
    import torch

    from model.loader import load_model

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        base = load_model(cfg.base, dtype="float32", device="cpu", head="BioGptForCausalLM")
        return grow_embeddings(base, vocab_size, cfg.seed, eos_token_id).to(device), None
    with checkpoint.as_directory() as folder:
        model = load_model(folder, dtype="float32", device=device, head="BioGptForCausalLM")
        state = torch.load(Path(folder) / "train_state.pt", map_location=device, weights_only=True)
    log.info("resuming after epoch %d (%d updates done)", state["epoch"], state["updates_done"])
    return model, state


def train_loop(loop_config: dict[str, Any]) -> None:
    """Ray Train worker entry point (see `re_train.train_re`)."""
    import ray.train
    import torch
    from ray.train.torch import get_device, prepare_model

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = ReTrainConfig.from_dict(loop_config["config"])
    out = Path(loop_config["out_dir"])
    train, dev = loop_config["train"], loop_config["dev"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = get_device()
    tokenizer, prompt_ids = prompt_tokenizer(cfg.base)
    model, state = _load_start(cfg, max(len(tokenizer), max(prompt_ids) + 1), device, tokenizer.eos_token_id)
    model.train()
    module = prepare_model(token_loss_module(model, IGNORE))
    optim_cfg = OptimConfig(lr=cfg.learning_rate, warmup=cfg.warmup_updates)
    stepper = Stepper(module, build_optimizer(model.parameters(), optim_cfg), optim_cfg, device, world)
    start, resumed_from = 1, 0
    if state is not None:
        stepper.load_state_dict(state)
        start = resumed_from = int(state["epoch"])
        start += 1
    lengths = [len(ids) - 1 for ids, _ in train]
    n_labels = [len(ids) - n if cfg.target_only_loss else len(ids) - 1 for ids, n in train]

    def rows(batch: list[int]) -> dict[str, Any]:
        pairs = []
        for i in batch:
            ids, n_prefix = train[i]
            labels = list(ids[1:])
            if cfg.target_only_loss:
                labels[: n_prefix - 1] = [IGNORE] * (n_prefix - 1)
            pairs.append((ids[:-1], labels))
        ids_t, labels_t, mask_t = pad_batch(pairs, device)
        return {"input_ids": ids_t, "labels": labels_t, "attention_mask": mask_t}

    for epoch in range(start, cfg.epochs + 1):
        torch.manual_seed(cfg.seed * 100_003 + epoch * 101 + rank)  # dropout: a resumed epoch replays
        began = time.perf_counter()
        model.train()
        plan = plan_epoch(lengths, cfg.micro_batch_tokens, cfg.tokens_per_update, world, cfg.seed, epoch)
        losses, loss_sum, tokens = [], 0.0, 0
        seen = sum(lengths[i] for update in plan for batch in update for i in batch)
        for update in plan:
            mine = update[rank::world]
            n_targets = sum(n_labels[i] for batch in update for i in batch)
            step_loss = stepper.update([rows(b) for b in mine], n_targets)
            loss_sum += step_loss
            tokens += sum(n_labels[i] for b in mine for i in b)
            losses.append(step_loss / max(1, sum(n_labels[i] for b in mine for i in b)))
        totals = _all_gather((loss_sum, tokens), world)
        loss_sum, tokens = sum(t[0] for t in totals), sum(t[1] for t in totals)
        seconds = time.perf_counter() - began
        record: dict[str, Any] = {
            "epoch": epoch, "loss": loss_sum / max(1, tokens), "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None, "updates": len(plan),
            "updates_total": stepper.updates_done, "loss_tokens": tokens, "train_seconds": seconds,
            "tokens_per_s": seen / seconds if seconds else None, "resumed_from": resumed_from,
            "workers": world}
        record.update(dev_metrics(model, tokenizer, dev, cfg, rank, world))
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if rank == 0:
                from model.loader import save_pretrained

                save_pretrained(model, tmp, tokenizer)
                torch.save({**stepper.state_dict(), "epoch": epoch}, Path(tmp) / "train_state.pt")
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(record, checkpoint=checkpoint, checkpoint_dir_name=f"epoch_{epoch:04d}")
        if rank == 0:
            log.info("train-re %s", epoch_line({**record, "steps": record["updates"],
                                                "seconds": seconds}, cfg.epochs, False))
            with (out / LOG_FILE).open("a") as fh:
                fh.write(json.dumps(record) + "\n")
