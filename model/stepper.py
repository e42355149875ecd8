"""One generation session over the engine's cache: admit requests, run steps, finish them.

A step is split in two so host work overlaps the device: `launch()` applies the slot moves
queued by finished requests (keeps live slots packed), builds the inputs, queues either a
prefill of newly admitted prompts or one decode step of every running sequence, and starts the
small device->host copy of its choice without waiting; `complete(step)` waits for that copy
(the step's ONE host sync) and advances the requests. Between the two the caller does its own
bookkeeping (the engine loop hands out the previous step's results and takes in new batches)
while the device computes. `step()` is both at once. Requests may be added at any time.
Host syncs per step: greedy ONE (the chosen ids, plus their log-probs only with
`logprobs=True`); beam search ONE (the top-2nb candidates), with the running scores going
host->device without a sync. `counters.host_syncs` counts the waits.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor

from model.beam import BeamGroup
from model.counters import EngineCounters
from model.runner import ModelRunner, key_bucket
from model.sampling import HostCopy, SamplingParams, beam_candidates, greedy_pick
from model.scheduler import Request, Scheduler


@dataclass
class Launched:
    """A step queued on the device: its requests and the host copy of its choice in flight."""

    kind: str  # "prefill" | "decode"
    reqs: list[Request]
    choice: HostCopy  # greedy (1|2, R) ids [, log-probs]; beam (2, G, 2nb) candidates
    rows: list[int] | None = None  # greedy decode: the choice row (= slot) of each request


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

    def step(self) -> list[Request]:
        """One prefill or decode step, waited for; returns the requests that finished in it."""
        return self.complete(self.launch())

    @torch.inference_mode()
    def launch(self) -> Launched:
        """Queue one prefill or decode step on the device; nothing waits for it yet."""
        src, dst, length = self.sched.take_moves()
        if src:
            self.runner.cache.copy_slots(src, dst, length)
        batch = self.sched.schedule_prefill()
        return self._prefill(batch) if batch else self._decode()

    @torch.inference_mode()
    def complete(self, step: Launched) -> list[Request]:
        """Wait for a launched step's choice (the one host sync); the requests that finished."""
        host = step.choice.wait()
        self.counters.host_syncs += 1
        if self.params.num_beams == 1:
            done = self._advance_greedy(step.reqs, host if step.rows is None else host[:, step.rows])
        else:
            done = self._advance_beams(step.reqs, host)
        if step.kind == "prefill":
            now = time.perf_counter() - self.start
            for r in step.reqs:
                r.first_token_s = now
        return done

    def _eos_rows(self, generated: list[int]) -> Tensor | None:
        """(R,) bool: rows whose eos is blocked by min_new_tokens; None when nothing is blocked."""
        if not self.block_eos or min(generated, default=0) >= self.params.min_new_tokens:
            return None
        flags = [g < self.params.min_new_tokens for g in generated]
        return torch.tensor(flags, device=self.runner.device)

    def _prefill(self, batch: list[Request]) -> Launched:
        """Prefill new requests (beam: only beam 0's slot) and queue their first choice."""
        prompts = [r.prompt for r in batch]
        logits = self.runner.prefill(prompts, [r.slots[0] for r in batch])  # (B, V)
        self.counters.record_prefill([len(p) for p in prompts])
        nb = self.params.num_beams
        if nb == 1:
            picked = greedy_pick(logits, self._eos_rows([0] * len(batch)), self.params.eos_token_id,
                                 self.params.logprobs)  # (1|2, B) device
            return Launched("prefill", batch, HostCopy(picked))
        # each prompt's row stands for all its beams; beams 1.. start at -1e9
        for r in batch:
            r.beam = BeamGroup(self.params, r.max_new_tokens)
        rows = torch.arange(len(batch), device=logits.device).repeat_interleave(nb)
        return Launched("prefill", batch, self._beam_choice(batch, logits[rows], [0] * len(batch)))

    def _decode(self) -> Launched:
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
            gen = [0] * n
            for r in running:
                gen[r.slots[0]] = len(r.tokens)
            picked = greedy_pick(logits, self._eos_rows(gen), self.params.eos_token_id,
                                 self.params.logprobs)  # (1|2, n) device, row = slot
            return Launched("decode", running, HostCopy(picked), [r.slots[0] for r in running])
        rows = torch.tensor([s for r in running for s in r.slots], device=logits.device)
        generated = [r.beam.generated for r in running]
        return Launched("decode", running, self._beam_choice(running, logits[rows], generated))

    def _beam_choice(self, reqs: list[Request], logits: Tensor, generated: list[int]) -> HostCopy:
        """logits (G*nb, V) in beam order -> the top-2nb candidates per group, copy in flight."""
        nb = self.params.num_beams
        scores = torch.stack([r.beam.running_scores for r in reqs]).to(logits.device,
                                                                       non_blocking=True)  # (G, nb)
        eos_rows = self._eos_rows([g for g in generated for _ in range(nb)])
        return HostCopy(beam_candidates(logits, scores, eos_rows, self.params.eos_token_id))  # (2, G, 2nb)

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

    def _advance_beams(self, reqs: list[Request], cand: Tensor) -> list[Request]:
        """cand host (2, G, 2nb); reorder the surviving beams' slots, then finish groups."""
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
