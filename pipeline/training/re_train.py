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
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline.training import re_worker
from pipeline.training.re_config import LOG_FILE, ReTrainConfig, grow_embeddings, prompt_tokenizer
from pipeline.training.run_record import check_base, file_facts, machine, write_summary
from pipeline.training.re_data import RECIPES, ReDocument, encode_example, load_documents

log = logging.getLogger(__name__)

RUN_NAME = "train-re"
__all__ = ["LOG_FILE", "ReTrainConfig", "grow_embeddings", "prompt_tokenizer", "train_re"]


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
    from model.families import family_of_config, read_config
    from model.loader import build_from_state_dict, save_pretrained
    from pipeline.training.trainer import average_checkpoints, epoch_checkpoints, run_ray_training

    out = Path(cfg.out_dir).resolve()
    check_base(cfg.base, "train-re", ("causal_lm",))
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
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
    config = read_config(kept[-1] / "config.json")
    model = build_from_state_dict(config, family_of_config(config).causal_lm, state, "float32", "cpu")
    save_pretrained(model, out, tokenizer)
    summary = {"averaged": [f.name for f in kept], "config": asdict(cfg),
               "lr": cfg.learning_rate, "warmup": cfg.warmup_updates}
    (out / "train_re.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("train-re: averaged %s into %s", summary["averaged"], out)
    history = read_log(out)
    scored = [r for r in history if r.get("dev_f1") is not None]
    best = max(scored, key=lambda r: r["dev_f1"]) if scored else None
    write_summary(out, {
        "data": {"train": file_facts(cfg.train), "dev": file_facts(cfg.dev), "base": cfg.base,
                 "train_sequences": len(data["train"]), "dev_documents": len(data["dev"])},
        "config": asdict(cfg), "seed": cfg.seed, "machine": machine(),
        "epochs_done": len(history), "steps": sum(r.get("updates", 0) for r in history),
        "seconds_this_session": round(time.perf_counter() - started, 1),
        "train_seconds": round(sum(r.get("train_seconds", 0.0) for r in history), 1),
        "averaged": summary["averaged"], "last": history[-1] if history else None,
        "best_dev_epoch": best["epoch"] if best else None, "best_dev": best, "history": history})
    return history[before:]
