"""One generation session over the engine's cache: admit requests, run steps, finish them.

Each `step()` first applies the slot moves queued by finished requests (keeps live slots
packed), then runs either a prefill of newly admitted prompts or one decode step of every
running sequence. Requests may be added between steps (the engine loop feeds several callers'
batches into one session). Host syncs per decode step: greedy ONE (the chosen ids, plus their
log-probs only with `logprobs=True`); beam search ONE device->host (the top-2nb candidates),
with the running scores going host->device without a sync.
"""
from __future__ import annotations

import time

import torch
from torch import Tensor

from model.beam import BeamGroup
from model.counters import EngineCounters
from model.runner import ModelRunner, key_bucket
from model.sampling import SamplingParams, beam_candidates, greedy_pick
from model.scheduler import Request, Scheduler


class GenerationSession:
    """Steps of one SamplingParams over the runner's cache; counters bumped per step."""

    def __init__(self, runner: ModelRunner, params: SamplingParams, vocab_size: int,
                 max_model_len: int, max_batched_tokens: int, refill_min: int,
                 counters: EngineCounters) -> None:
        self.runner = runner
        self.params = params
        self.vocab = vocab_size
        self.max_model_len = max_model_len
        self.counters = counters
        self.sched = Scheduler(runner.cache.num_slots, params.num_beams, max_batched_tokens,
                               refill_min=refill_min)
        self.start = time.perf_counter()
        self.block_eos = params.min_new_tokens > 0 and not params.ignore_eos

    def add(self, requests: list[Request]) -> None:
        """Queue validated requests (their max_new_tokens already capped by max_model_len)."""
        self.sched.add(requests)

    def has_work(self) -> bool:
        """Whether anything waits or runs."""
        return self.sched.has_work()

    def abort(self) -> list[Request]:
        """Drop all requests (after a failed step); the cache content is simply forgotten."""
        return self.sched.abort_all()

    @torch.inference_mode()
    def step(self) -> list[Request]:
        """One prefill or decode step; returns the requests that finished in it."""
        src, dst, length = self.sched.take_moves()
        if src:
            self.runner.cache.copy_slots(src, dst, length)
        batch = self.sched.schedule_prefill()
        return self._prefill(batch) if batch else self._decode()

    def _eos_rows(self, generated: list[int]) -> Tensor | None:
        """(R,) bool: rows whose eos is blocked by min_new_tokens; None when nothing is blocked."""
        if not self.block_eos or min(generated, default=0) >= self.params.min_new_tokens:
            return None
        flags = [g < self.params.min_new_tokens for g in generated]
        return torch.tensor(flags, device=self.runner.device)

    def _prefill(self, batch: list[Request]) -> list[Request]:
        """Prefill new requests (beam: only beam 0's slot) and take their first token."""
        prompts = [r.prompt for r in batch]
        logits = self.runner.prefill(prompts, [r.slots[0] for r in batch])  # (B, V)
        self.counters.record_prefill([len(p) for p in prompts])
        nb = self.params.num_beams
        if nb == 1:
            picked = greedy_pick(logits, self._eos_rows([0] * len(batch)), self.params.eos_token_id,
                                 self.params.logprobs)
            done = self._advance_greedy(batch, picked)
        else:  # each prompt's row stands for all its beams; beams 1.. start at -1e9
            for r in batch:
                r.beam = BeamGroup(self.params, r.max_new_tokens)
            rows = torch.arange(len(batch), device=logits.device).repeat_interleave(nb)
            done = self._advance_beams(batch, logits[rows], [0] * len(batch))
        now = time.perf_counter() - self.start
        for r in batch:
            r.first_token_s = now
        return done

    def _decode(self) -> list[Request]:
        """One decode step for every running request: rows = slots [0, used), all live."""
        running = list(self.sched.running)
        n = self.sched.used
        tokens, positions = [self.runner.pad] * n, [0] * n
        for r in running:
            if r.beam is None:
                tokens[r.slots[0]] = r.tokens[-1]
                positions[r.slots[0]] = r.prompt_len + len(r.tokens) - 1
            else:
                for slot, seq in zip(r.slots, r.beam.running):
                    tokens[slot] = seq[-1]
                    positions[slot] = r.prompt_len + r.beam.generated - 1
        key_len = key_bucket(max(positions) + 1, self.max_model_len)
        logits, computed = self.runner.decode(tokens, positions, key_len)  # (n, V)
        self.counters.record_decode(n, computed, fed=bool(self.sched.waiting))
        if self.params.num_beams == 1:
            slot = [r.slots[0] for r in running]
            gen = [0] * n
            for r in running:
                gen[r.slots[0]] = len(r.tokens)
            picked = greedy_pick(logits, self._eos_rows(gen), self.params.eos_token_id,
                                 self.params.logprobs)  # (1|2, n) host
            return self._advance_greedy(running, picked[:, slot])
        rows = torch.tensor([s for r in running for s in r.slots], device=logits.device)
        return self._advance_beams(running, logits[rows], [r.beam.generated for r in running])

    def _advance_greedy(self, reqs: list[Request], picked: Tensor) -> list[Request]:
        p, done = self.params, []
        tokens = picked[0].long().tolist()
        logprobs = picked[1].tolist() if picked.shape[0] > 1 else [0.0] * len(tokens)
        for r, tok, lp in zip(reqs, tokens, logprobs):
            r.cumulative_logprob += lp
            if tok == p.eos_token_id and not p.ignore_eos:
                r.finish_reason = "eos"
            else:
                r.tokens.append(tok)
                if len(r.tokens) >= r.max_new_tokens:
                    r.finish_reason = "length"
            if r.finish_reason:
                self.sched.finish(r)
                done.append(r)
        return done

    def _advance_beams(self, reqs: list[Request], logits: Tensor, generated: list[int]) -> list[Request]:
        """logits (G*nb, V) in beam order; reorder the surviving beams' slots, then finish groups."""
        nb = self.params.num_beams
        scores = torch.stack([r.beam.running_scores for r in reqs]).to(logits.device,
                                                                       non_blocking=True)  # (G, nb)
        eos_rows = self._eos_rows([g for g in generated for _ in range(nb)])
        cand = beam_candidates(logits, scores, eos_rows, self.params.eos_token_id)  # (2, G, 2nb)
        done, src, dst, length = [], [], [], 0
        for g, r in enumerate(reqs):
            parents = r.beam.step(cand[0, g], cand[1, g].long(), self.vocab)
            if r.beam.done:
                done.append(r)
                continue
            for j, parent in enumerate(parents):
                if parent != j:
                    src.append(r.slots[parent])
                    dst.append(r.slots[j])
            length = max(length, r.prompt_len + r.beam.generated - 1)
        # reorder before finishing: a finish moves slots (applied at the next step's start)
        self.runner.cache.copy_slots(src, dst, length)
        for r in done:
            self.sched.finish(r)
        return done
