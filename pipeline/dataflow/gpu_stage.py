"""The GPU stage: each actor builds its engine(s) once and keeps them fed across batches.

Several Ray batches are in flight per actor (`gpu_pool_options`: concurrent calls in threads);
every call hands its prompts to the actor's one engine loop (`model.engine_loop`), which admits
them as soon as slots free up, and returns as soon as its own rows are done, so the engine
never drains between batches. Failures stay local: an out-of-memory error halves the chunk and
retries; any other failure retries the chunk record by record, and a record that still fails
becomes an `errors` entry. The actor sees token ids only (tokenizing and detokenizing run in
the CPU stages). Engine counters go to OUT/_engine/ (`pipeline.records.engine_stats`).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from math import ceil
from typing import Any, Callable, Mapping, Sequence

import pyarrow as pa

from pipeline.config import RunConfig
from pipeline.records.engine_stats import REPORT_EVERY_S, actor_name, write_actor_counters
from pipeline.storage import Location
from pipeline.dataflow.outputs import ERROR_STRUCT, error_row
from pipeline.dataflow.stages import IDS, _errors, _set, as_table, require

log = logging.getLogger(__name__)
GPU_FAULT_ENV = "BIOMINE_FAULT_GPU_DIE_ONCE"  # test hook: a marker path; the first actor to see it dies


def batches_in_flight(config: RunConfig) -> int:
    """Ray batches per GPU actor at once (at least 16, and 8x the slots in rows).

    A batch returns only when its longest output is done, so most batches in flight are held
    by a few long outputs while their other rows are finished; the rest must still hold enough
    waiting prompts to refill the slots through Ray's dispatch gap (~0.2 s) between batches."""
    if config.gpu_batches_in_flight is not None:
        return config.gpu_batches_in_flight
    return max(16, ceil(8 * config.max_num_seqs / config.batch_size))


def gpu_pool_options(config: RunConfig) -> dict[str, Any]:
    """ActorPoolStrategy keywords for the GPU stage: several concurrent calls per actor."""
    k = batches_in_flight(config)
    return {"max_tasks_in_flight_per_actor": k, "max_concurrent_calls_per_actor": k,
            "enable_true_multi_threading": True}


def re_model_len(config: RunConfig, window: int) -> int:
    """The RE engine's max_model_len: `[</s>]` + source cut + learned1..9 + max_new_tokens,
    at most the model's window (each KV slot reserves this many positions)."""
    from pipeline.tasks.relation import N_LEARNED

    return min(window, 1 + config.max_source_tokens + N_LEARNED + config.max_new_tokens)


def _dtype(name: str, device: str) -> Any:
    import torch

    if name == "auto":
        if device != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return getattr(torch, name)


class GenerateStage:
    """RE generation (greedy, BioGPT recipe) and NER token scoring on one GPU (or the CPU)."""

    requires = ("pmid", "re_prompt", "ner_windows", "errors")
    adds = ("re_output", "re_finish", "ner_probs", "n_generated", "n_prompt_tokens", "n_gpu_busy_us")

    def __init__(self, config: RunConfig, die_once: str | None = None) -> None:
        import torch

        from model.engine import Engine, EngineConfig, SamplingParams
        from model.engine_loop import ClassifyLoop, GenerateLoop

        self.config = config
        self.die_once = die_once
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = _dtype(config.dtype, self.device)
        engine_cfg = EngineConfig(max_num_seqs=config.max_num_seqs, dtype=str(dtype).removeprefix("torch."),
                                  gpu_memory_utilization=config.gpu_memory_utilization,
                                  kv_cache_tokens=config.kv_cache_tokens)
        self.params = SamplingParams(max_new_tokens=config.max_new_tokens, num_beams=1)
        self.re_engine = self.ner_engine = None
        self.re_loop = self.ner_loop = None
        started = time.perf_counter()
        # the tagger first: the RE engine sizes its KV cache from the GPU memory still free
        if "ner" in config.tasks:
            model = _load(config.ner_model, config.demo_model, "ner", dtype, self.device)
            self.ner_engine = Engine(model, None, engine_cfg)
            self.ner_loop = ClassifyLoop(self.ner_engine)
        if config.re_task:
            model = _load(config.re_model, config.demo_model, "re", dtype, self.device)
            max_len = re_model_len(config, model.config.max_position_embeddings)
            self.re_engine = Engine(model, None, replace(engine_cfg, max_model_len=max_len))
            self.re_loop = GenerateLoop(self.re_engine, self.params)
        self.actor = actor_name()
        self.output = Location.open(config.output)  # opened once per actor
        self.started_at = time.time()
        self._report_lock = threading.Lock()
        self._reported_at = 0.0
        self._calls = self._rows = self._in_flight = self._peak_in_flight = 0  # Ray batches (counters)
        log.info("GPU stage ready on %s (%s) in %.1fs", self.device, dtype, time.perf_counter() - started)

    def __call__(self, batch: pa.Table | Mapping[str, Any]) -> pa.Table:
        self._maybe_die()
        with self._report_lock:
            self._calls += 1
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        out = None
        try:
            out = self._mine(batch)
            return out
        finally:
            with self._report_lock:
                self._in_flight -= 1
                self._rows += out.num_rows if out is not None else 0
            self._report()

    def _mine(self, batch: pa.Table | Mapping[str, Any]) -> pa.Table:
        table = as_table(batch)
        require(table, self.requires, type(self).__name__)
        errors = _errors(table)
        n = table.num_rows
        outputs: list[list[int] | None] = [None] * n
        finish: list[str | None] = [None] * n
        probs: list[list | None] = [None] * n
        n_gen = [0] * n
        n_prompt = [0] * n
        if self.re_engine is not None:
            prompts = table.column("re_prompt").to_pylist()
            rows = [i for i, p in enumerate(prompts) if p]
            gens = self._resilient(lambda ps: self.re_loop.generate(ps),
                                   [prompts[i] for i in rows], rows, table, errors, "generate")
            for i, gen in zip(rows, gens):
                if gen is not None:
                    outputs[i], finish[i] = list(gen.token_ids), gen.finish_reason
                    n_gen[i], n_prompt[i] = len(gen.token_ids), len(prompts[i])
        if self.ner_engine is not None:
            windows = table.column("ner_windows").to_pylist()
            rows = [i for i, w in enumerate(windows) if w]
            flat = [w for i in rows for w in windows[i]]
            owner = [i for i in rows for _ in windows[i]]
            scored = self._resilient(lambda ws: self.ner_loop.classify(ws), flat, owner,
                                     table, errors, "tag")
            start = 0
            for i in rows:  # windows are laid out record by record
                mine = scored[start:start + len(windows[i])]
                start += len(windows[i])
                if all(s is not None for s in mine):
                    probs[i] = [s.tolist() for s in mine]
        table = _set(table, "re_output", outputs, IDS)
        table = _set(table, "re_finish", finish, pa.string())
        table = _set(table, "ner_probs", probs, pa.list_(pa.list_(pa.list_(pa.float32()))))
        table = _set(table, "n_generated", n_gen, pa.int64())
        table = _set(table, "n_prompt_tokens", n_prompt, pa.int64())
        table = _set(table, "errors", errors, pa.list_(ERROR_STRUCT))
        # summed by the sink: the engine threads' stepping time, each second claimed by one batch
        busy_us = int(sum(loop.claim_busy_s() for loop in (self.re_loop, self.ner_loop) if loop) * 1e6)
        table = _set(table, "n_gpu_busy_us", [busy_us if i == 0 else 0 for i in range(n)], pa.int64())
        return table.drop_columns([c for c in ("re_prompt", "ner_windows") if c in table.column_names])

    def _report(self) -> None:
        """Write the counters every REPORT_EVERY_S, and whenever no batch is left in flight
        (the engine's, if it generates, plus the stage's calls and rows, which progress follows)."""
        loop = self.re_loop or self.ner_loop
        with self._report_lock:
            now = time.time()
            if (loop.in_flight or self._in_flight) and now - self._reported_at < REPORT_EVERY_S:
                return
            self._reported_at = now
            engine = self.re_engine.counters.to_dict() if self.re_engine is not None else {}
            counters = {**engine, "stage_calls": self._calls, "stage_rows": self._rows,
                        "peak_calls_in_flight": self._peak_in_flight}
            write_actor_counters(self.output, self.actor, self.started_at, counters)

    def _maybe_die(self) -> None:
        """Test hook: kill this actor's process once (simulates a GPU actor crash)."""
        if self.die_once and not os.path.exists(self.die_once):
            with open(self.die_once, "w") as marker:
                marker.write(str(os.getpid()))
            log.error("GPU actor %d: injected crash", os.getpid())
            os._exit(1)

    def _resilient(self, fn: Callable[[list], Sequence], items: list, rows: list[int],
                   table: pa.Table, errors: list[list[dict]], stage: str) -> list:
        """Run fn over items in chunks; halve on OOM, isolate records on other errors."""
        import torch

        results: list = [None] * len(items)
        start, chunk, isolate_until = 0, max(len(items), 1), -1
        while start < len(items):
            size = 1 if start < isolate_until else chunk
            part = list(range(start, min(start + size, len(items))))
            try:
                for j, out in zip(part, fn([items[j] for j in part])):
                    results[j] = out
                start += len(part)
            except torch.OutOfMemoryError as exc:
                if self.device == "cuda":
                    torch.cuda.empty_cache()
                if size > 1:
                    chunk = max(1, size // 2)
                    log.warning("%s: out of memory on %d records; retrying in chunks of %d", stage, size, chunk)
                    continue
                errors[rows[start]].append(error_row(table, rows[start], stage, exc))
                start += 1
            except Exception as exc:  # a bad record: retry this chunk one record at a time
                if size > 1:
                    log.warning("%s failed on a chunk of %d (%s); isolating records", stage, size, exc)
                    isolate_until = start + size
                    continue
                errors[rows[start]].append(error_row(table, rows[start], stage, exc))
                start += 1
        return results


def _load(model_id: str | None, demo: bool, kind: str, dtype: Any, device: str) -> Any:
    """Our BioGPT from a hub id / local folder, or the tiny demo model."""
    if model_id is None:
        if not demo:
            raise ValueError(f"no model given for {kind}")
        from model.demo import build_demo_model

        return build_demo_model(kind, device=device).to(dtype)
    from model.loader import load_model

    head = "BioGptForCausalLM" if kind == "re" else "BioGptForTokenClassification"
    return load_model(model_id, dtype=dtype, device=device, head=head)
