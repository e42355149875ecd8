"""Offline batch generation engine for every model family (model.families): KV cache, continuous batching, greedy and beam.

`Engine.generate(prompts, params)` returns one `Generation` per prompt in prompt order;
`generate_stream` takes any iterable of prompts and yields results as they finish;
`session(params)` gives the step-by-step interface the engine loop feeds from many callers.
`counters` (model.counters) accumulate over the engine's life: steps, live and computed rows.
Conventions: output ids exclude the prompt and the final eos (HF `generate` output includes
the prompt and the eos); the prompt ids are never altered, so a forced prefix such as the RE
prompt `[</s>] + source + learned1..9` is simply part of the prompt and generation continues
after it. A prompt with `len >= max_model_len` is refused with a ValueError before any work;
if prompt + max_new_tokens exceeds max_model_len, generation stops at max_model_len with
finish_reason "length". Timings are seconds since the call started.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import islice
from math import ceil

import numpy as np
import torch
from torch import nn

from model.counters import EngineCounters
from model.kv_cache import SlotKVCache, kv_bytes_per_token
from model.runner import ModelRunner
from model.sampling import SamplingParams
from model.scheduler import Request
from model.stepper import GenerationSession

log = logging.getLogger(__name__)

CPU_DEFAULT_CACHE_BYTES = 2 * 2**30  # CPU cache budget when kv_cache_tokens is not given
DTYPES = {"float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
          "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float32": torch.float32, "fp32": torch.float32, "float": torch.float32}


@dataclass(frozen=True)
class EngineConfig:
    """Engine sizing; validated when built."""

    max_num_seqs: int = 256  # most sequences (beams) decoding at once = most cache slots
    max_model_len: int | None = None  # prompt + output limit; None: max_position_embeddings
    gpu_memory_utilization: float = 0.9  # share of total GPU memory the process may hold
    max_num_batched_tokens: int = 16384  # padded tokens per prefill batch
    dtype: str = "auto"  # auto: float16 on CUDA, float32 on CPU; or float16/bfloat16/float32
    enforce_eager: bool = False  # True: no CUDA graphs
    kv_cache_tokens: int | None = None  # explicit cache size in tokens (slots = this // max_model_len)
    seed: int = 0  # reserved for sampling; greedy and beam search are deterministic
    refill_fraction: float = 1 / 16  # prefill once this share of the request capacity is free

    def __post_init__(self) -> None:
        for name in ("max_num_seqs", "max_num_batched_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"EngineConfig.{name} must be an int >= 1, got {value!r}")
        for name in ("max_model_len", "kv_cache_tokens"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 2):
                raise ValueError(f"EngineConfig.{name} must be None or an int >= 2, got {value!r}")
        if not 0.0 < self.gpu_memory_utilization <= 1.0:
            raise ValueError(f"EngineConfig.gpu_memory_utilization must be in (0, 1], "
                             f"got {self.gpu_memory_utilization!r}")
        if self.dtype != "auto" and self.dtype not in DTYPES:
            raise ValueError(f"EngineConfig.dtype must be 'auto' or one of {sorted(DTYPES)}, got {self.dtype!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"EngineConfig.seed must be an int, got {self.seed!r}")
        if not 0.0 <= self.refill_fraction <= 1.0:
            raise ValueError(f"EngineConfig.refill_fraction must be in [0, 1], got {self.refill_fraction!r}")

    def torch_dtype(self, device: torch.device) -> torch.dtype:
        """The compute dtype on `device`."""
        if self.dtype == "auto":
            return torch.float16 if device.type == "cuda" else torch.float32
        return DTYPES[self.dtype]


@dataclass
class Generation:
    """One prompt's result (token_ids exclude prompt and final eos)."""

    index: int
    prompt_len: int
    token_ids: list[int]
    text: str | None
    finish_reason: str  # "eos" | "length"
    cumulative_logprob: float  # sum of the chosen tokens' log-probs (eos included); greedy: 0.0
    # unless SamplingParams.logprobs
    first_token_s: float
    total_s: float
    score: float = 0.0  # beam: HF sequence score (logprob / len**length_penalty); greedy: = cumulative


class Engine:
    """Holds the model on its device and the preallocated KV cache; reused across calls."""

    def __init__(self, model: nn.Module, tokenizer: object | None = None,
                 config: EngineConfig = EngineConfig()) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.model_config = model.config
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = config.torch_dtype(self.device)
        max_pos = model.config.max_position_embeddings
        self.max_model_len = config.max_model_len or max_pos
        if self.max_model_len > max_pos:
            raise ValueError(f"max_model_len {self.max_model_len} exceeds the model's "
                             f"max_position_embeddings {max_pos}")
        self.model = model.to(device=self.device, dtype=self.dtype).eval()  # in place
        self.runner = ModelRunner(self.model, self.device, model.config.fill_token_id,
                                  use_cuda_graphs=not config.enforce_eager)
        self.cache: SlotKVCache | None = None
        self.counters = EngineCounters()
        self.is_lm = bool(getattr(model, "is_causal_lm", False))
        if self.is_lm:
            self._allocate_cache()

    def _allocate_cache(self) -> None:
        """Size and allocate the KV cache once (free GPU memory on CUDA, else kv_cache_tokens)."""
        cfg = self.config
        slot_bytes = kv_bytes_per_token(self.model_config, self.dtype) * self.max_model_len
        if cfg.kv_cache_tokens is not None:
            slots = cfg.kv_cache_tokens // self.max_model_len
        elif self.device.type == "cuda":
            sampling = 4 * cfg.max_num_seqs * self.model_config.vocab_size * 4
            budget = self.runner.profile_cache_bytes(cfg.max_num_batched_tokens, self.max_model_len,
                                                     cfg.gpu_memory_utilization, sampling,
                                                     cfg.max_num_seqs)
            slots = max(0, budget) // slot_bytes
        else:  # CPU: max_num_seqs slots unless they exceed the CPU budget
            slots = max(1, CPU_DEFAULT_CACHE_BYTES // slot_bytes)
        slots = min(slots, cfg.max_num_seqs)
        if slots < 1:
            raise ValueError(f"not enough memory for one KV-cache slot of {self.max_model_len} tokens "
                             f"({slot_bytes / 2**20:.0f} MiB): raise kv_cache_tokens / "
                             f"gpu_memory_utilization or lower max_model_len")
        self.cache = SlotKVCache(self.model_config, slots, self.max_model_len, self.dtype, self.device)
        self.runner.attach_cache(self.cache)
        self.counters.slots = slots
        log.info("KV cache: %d slots x %d tokens, %.2f GiB %s on %s", slots, self.max_model_len,
                 self.cache.nbytes / 2**30, self.dtype, self.device)

    def _check_prompt(self, index: int, prompt: list[int]) -> None:
        """Refuse empty, too long or out-of-vocabulary prompts with a clear error."""
        n = len(prompt)
        if n == 0:
            raise ValueError(f"prompt {index} is empty")
        if n >= self.max_model_len:
            raise ValueError(f"prompt {index} has {n} tokens; max_model_len is {self.max_model_len} "
                             f"(prompt + output must fit, so at most {self.max_model_len - 1})")
        vocab = self.model_config.vocab_size
        bad = [t for t in prompt if not isinstance(t, int | np.integer) or not 0 <= t < vocab]
        if bad:
            raise ValueError(f"prompt {index} has token ids outside [0, {vocab}): {bad[:5]}")

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Generation]:
        """Generate for every prompt (all validated first); results in prompt order."""
        for i, p in enumerate(prompts):
            self._check_prompt(i, p)
        out = sorted(self.generate_stream(prompts, params), key=lambda g: g.index)
        return out

    def session(self, params: SamplingParams) -> GenerationSession:
        """A fresh step-by-step session over this engine's cache (one at a time per engine)."""
        if not self.is_lm:
            raise ValueError("generate needs a causal-LM model (e.g. BioGptForCausalLM, GPT2LMHeadModel)")
        params = self.resolve(params)
        capacity = self.cache.num_slots // params.num_beams
        return GenerationSession(self.runner, params, self.model_config.vocab_size, self.max_model_len,
                                 self.config.max_num_batched_tokens,
                                 ceil(capacity * self.config.refill_fraction), self.counters)

    def resolve(self, params: SamplingParams) -> SamplingParams:
        """Fill in the model's eos when params leave it None (a model without one never stops on eos)."""
        if params.eos_token_id is not None:
            return params
        eos = self.model_config.eos_token_id
        return replace(params, eos_token_id=0 if eos is None else eos, ignore_eos=params.ignore_eos or eos is None)

    def request(self, index: int, prompt: list[int], params: SamplingParams, tag: object = None) -> Request:
        """A validated request for a session (max_new_tokens capped by max_model_len)."""
        prompt = list(prompt)
        self._check_prompt(index, prompt)
        return Request(index=index, prompt=prompt, tag=tag,
                       max_new_tokens=min(params.max_new_tokens, self.max_model_len - len(prompt)))

    def generate_stream(self, prompts: Iterable[list[int]],
                        params: SamplingParams) -> Iterator[Generation]:
        """Yield results as they finish; prompts are read in chunks (each validated when read)."""
        session = self.session(params)
        source = enumerate(prompts)
        chunk = max(2 * session.sched.max_running, 64)
        exhausted = False
        while True:
            if not session.sched.waiting and not exhausted:
                fresh = list(islice(source, chunk))
                exhausted = len(fresh) < chunk
                session.add([self.request(i, p, params) for i, p in fresh])
            if not session.has_work():
                return
            for req in session.step():
                yield self.result(req, session.start)

    def result(self, req: Request, start: float) -> Generation:
        """The Generation of a finished request (counted in `counters`)."""
        now = time.perf_counter() - start
        if req.beam is not None:
            ids, reason, cum, score = req.beam.result()
        else:
            ids, reason, cum = req.tokens, req.finish_reason or "length", req.cumulative_logprob
            score = cum
        self.counters.record_finished(len(ids))
        text = self.tokenizer.decode(ids, skip_special_tokens=True) if self.tokenizer else None
        return Generation(index=req.index, prompt_len=req.prompt_len, token_ids=list(ids), text=text,
                          finish_reason=reason, cumulative_logprob=cum,
                          first_token_s=req.first_token_s, total_s=now, score=score)

    def check_windows(self, prompts: list[list[int]]) -> None:
        """Refuse empty, too long or out-of-vocabulary tagger windows with a clear error."""
        limit = self.model_config.max_position_embeddings
        vocab = self.model_config.vocab_size
        for i, p in enumerate(prompts):
            if not 0 < len(p) <= limit:
                raise ValueError(f"prompt {i} has {len(p)} tokens; allowed 1..{limit}")
            if min(p) < 0 or max(p) >= vocab:
                raise ValueError(f"prompt {i} has token ids outside [0, {vocab})")

    def classify_tokens(self, prompts: list[list[int]], batch_tokens: int = 16384) -> list[np.ndarray]:
        """Per prompt (T, num_labels) float32 softmax of a token-classification model; no generation."""
        if not hasattr(self.model, "classifier"):
            raise ValueError("classify_tokens needs a token-classification model "
                             "(BioGptForTokenClassification)")
        self.check_windows(prompts)
        return self.runner.classify([list(p) for p in prompts], batch_tokens)
