"""The GPU hot path: input prep, prefill/decode forwards, CUDA graphs, KV-cache sizing.

Decode runs row i = cache slot i for rows `[:row_bucket]`, keys `[:key_bucket]`; on CUDA each
(row bucket, key bucket) pair is captured once as a CUDA graph (lazily, on first use) and
replayed with its static input buffers refilled by one pinned, non-blocking host->device copy.
The step's only host sync is the sampling result (`model.sampling`). Prefill and the tagger's
`classify` run eagerly on right-padded, length-sorted batches.
"""
from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch import Tensor, nn

from model.beam import BeamGroup
from model.kv_cache import CausalAttention, SlotKVCache
from model.sampling import SamplingParams, beam_candidates, greedy_pick
from model.scheduler import Request, Scheduler

log = logging.getLogger(__name__)

KEY_GRANULE = 128  # key-length bucket: decode reads at most 127 stale positions per row


def row_bucket(n: int, limit: int) -> int:
    """Decode batch size for n rows: powers of two up to 8, then multiples of 16 (<= limit)."""
    b = 1
    while b < min(n, 8):
        b *= 2
    if n > 8:
        b = -(-n // 16) * 16
    return min(b, limit)


def key_bucket(n: int, limit: int) -> int:
    """Key length read by decode for n needed positions (multiple of KEY_GRANULE, <= limit)."""
    return min(-(-n // KEY_GRANULE) * KEY_GRANULE, limit)


class ModelRunner:
    """Owns the model on its device; turns token lists into logits."""

    def __init__(self, model: nn.Module, device: torch.device, pad_token_id: int,
                 use_cuda_graphs: bool) -> None:
        self.model = model
        self.device = device
        self.pad = pad_token_id
        self.use_graphs = use_cuda_graphs and device.type == "cuda"
        self.cache: SlotKVCache | None = None
        self._graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, Tensor]] = {}
        self._pool = None

    def attach_cache(self, cache: SlotKVCache) -> None:
        """Use this cache; allocate the static decode buffers (once)."""
        self.cache = cache
        n = cache.num_slots
        pin = self.device.type == "cuda"
        self._h_ids = torch.zeros(n, dtype=torch.long, pin_memory=pin)  # host staging
        self._h_pos = torch.zeros(n, dtype=torch.long, pin_memory=pin)
        self._ids = torch.zeros(n, 1, dtype=torch.long, device=self.device)  # (S, 1) static
        self._pos = torch.zeros(n, 1, dtype=torch.long, device=self.device)

    @torch.inference_mode()
    def profile_cache_bytes(self, max_batched_tokens: int, max_model_len: int,
                            utilization: float, sampling_bytes: int) -> int:
        """CUDA: bytes left for the KV cache after a worst-case prefill (nano-vllm's recipe)."""
        torch.cuda.synchronize(self.device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(self.device)
        t = max_model_len
        b = max(1, max_batched_tokens // t)
        ids = torch.full((b, t), self.pad, dtype=torch.long, device=self.device)
        pos = torch.arange(t, device=self.device).expand(b, t)
        hidden = self.model(ids, pos, CausalAttention())  # (B, T, d)
        self.model.compute_logits(hidden[:, -1])
        del hidden
        torch.cuda.synchronize(self.device)
        free, total = torch.cuda.mem_get_info(self.device)
        stats = torch.cuda.memory_stats(self.device)
        activations = stats["allocated_bytes.all.peak"] - stats["allocated_bytes.all.current"]
        return int(total * utilization - (total - free) - activations - sampling_bytes)

    @torch.inference_mode()
    def prefill(self, prompts: list[list[int]], slots: list[int]) -> Tensor:
        """Write prompts into their slots; logits (B, V) float32 at each prompt's last token."""
        b, t = len(prompts), max(len(p) for p in prompts)
        ids = torch.full((b, t), self.pad, dtype=torch.long)
        pos = torch.full((b, t), -1, dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, :len(p)] = torch.tensor(p)
            pos[i, :len(p)] = torch.arange(len(p))
        last = torch.tensor([len(p) - 1 for p in prompts], device=self.device)
        self.cache.set_prefill(torch.tensor(slots, device=self.device))
        hidden = self.model(ids.to(self.device), pos.to(self.device), self.cache)  # (B, T, d)
        rows = hidden[torch.arange(b, device=self.device), last]  # (B, d)
        return self.model.compute_logits(rows).float()  # (B, V)

    @torch.inference_mode()
    def decode(self, tokens: list[int], positions: list[int], key_len: int) -> Tensor:
        """One token per row (row = slot, len(tokens) = row bucket) -> logits (R, V) float32."""
        rows = len(tokens)
        self._h_ids[:rows] = torch.tensor(tokens)
        self._h_pos[:rows] = torch.tensor(positions)
        self._ids[:rows, 0].copy_(self._h_ids[:rows], non_blocking=True)
        self._pos[:rows, 0].copy_(self._h_pos[:rows], non_blocking=True)
        if not self.use_graphs:
            return self._decode_forward(rows, key_len)
        key = (rows, key_len)
        if key not in self._graphs:
            self._graphs[key] = self._capture(rows, key_len)
        graph, out = self._graphs[key]
        graph.replay()
        return out

    def _decode_forward(self, rows: int, key_len: int) -> Tensor:
        ids, pos = self._ids[:rows], self._pos[:rows]  # (R, 1)
        self.cache.set_decode(pos, key_len)
        hidden = self.model(ids, pos, self.cache)  # (R, 1, d)
        return self.model.compute_logits(hidden[:, 0]).float()  # (R, V)

    def _capture(self, rows: int, key_len: int) -> tuple[torch.cuda.CUDAGraph, Tensor]:
        """Capture one decode step; the buffers hold this step's real inputs, so the warm-up
        runs write exactly what the replay writes (idempotent)."""
        log.debug("capturing decode graph rows=%d keys=%d", rows, key_len)
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._decode_forward(rows, key_len)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            out = self._decode_forward(rows, key_len)
        self._pool = graph.pool()
        return graph, out

    @property
    def num_graphs(self) -> int:
        """Decode graphs captured so far."""
        return len(self._graphs)

    @torch.inference_mode()
    def classify(self, prompts: list[list[int]], batch_tokens: int) -> list[np.ndarray]:
        """Token-classification softmax per prompt, (T, num_labels) float32, length-sorted batches."""
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        out: list[np.ndarray | None] = [None] * len(prompts)
        start = 0
        while start < len(order):
            t = len(prompts[order[start]])  # longest in this batch
            b = max(1, min(len(order) - start, batch_tokens // t))
            chunk = order[start:start + b]
            ids = torch.full((b, t), self.pad, dtype=torch.long)
            pos = torch.full((b, t), -1, dtype=torch.long)
            for row, i in enumerate(chunk):
                n = len(prompts[i])
                ids[row, :n] = torch.tensor(prompts[i])
                pos[row, :n] = torch.arange(n)
            hidden = self.model(ids.to(self.device), pos.to(self.device), CausalAttention())
            probs = torch.softmax(self.model.compute_logits(hidden).float(), dim=-1).cpu().numpy()
            for row, i in enumerate(chunk):
                out[i] = probs[row, :len(prompts[i])]
            start += b
        return out  # type: ignore[return-value]


class StepExecutor:
    """One generate call's steps: runs prefill/decode, picks tokens, advances requests."""

    def __init__(self, runner: ModelRunner, sched: Scheduler, params: SamplingParams,
                 vocab_size: int, max_model_len: int, start: float) -> None:
        self.runner = runner
        self.sched = sched
        self.params = params
        self.vocab = vocab_size
        self.max_model_len = max_model_len
        self.start = start
        self.block_eos = params.min_new_tokens > 0 and not params.ignore_eos

    def _eos_rows(self, generated: list[int]) -> Tensor | None:
        """(R,) bool: rows whose eos is blocked by min_new_tokens; None when nothing is blocked."""
        if not self.block_eos or min(generated, default=0) >= self.params.min_new_tokens:
            return None
        flags = [g < self.params.min_new_tokens for g in generated]
        return torch.tensor(flags, device=self.runner.device)

    @torch.inference_mode()
    def prefill(self, batch: list[Request]) -> list[Request]:
        """Prefill new requests (beam: only beam 0's slot) and take their first token."""
        logits = self.runner.prefill([r.prompt for r in batch], [r.slots[0] for r in batch])  # (B, V)
        nb = self.params.num_beams
        for r in batch:
            if nb > 1:
                r.beam = BeamGroup(self.params, r.max_new_tokens)
        if nb == 1:
            picked = greedy_pick(logits, self._eos_rows([0] * len(batch)), self.params.eos_token_id)
            done = self._advance_greedy(batch, picked)
        else:  # each prompt's row stands for all its beams; beams 1.. start at -1e9
            rows = torch.arange(len(batch), device=logits.device).repeat_interleave(nb)
            done = self._advance_beams(batch, logits[rows], [0] * len(batch))
        now = time.perf_counter() - self.start
        for r in batch:
            r.first_token_s = now
        return done

    @torch.inference_mode()
    def decode(self) -> list[Request]:
        """One decode step for every running request."""
        running = self.sched.running
        n_rows = row_bucket(1 + max(s for r in running for s in r.slots), self.runner.cache.num_slots)
        tokens, positions = [self.runner.pad] * n_rows, [0] * n_rows
        for r in running:
            if r.beam is None:
                tokens[r.slots[0]] = r.tokens[-1]
                positions[r.slots[0]] = r.prompt_len + len(r.tokens) - 1
            else:
                for slot, seq in zip(r.slots, r.beam.running):
                    tokens[slot] = seq[-1]
                    positions[slot] = r.prompt_len + r.beam.generated - 1
        key_len = key_bucket(max(positions) + 1, self.max_model_len)
        logits = self.runner.decode(tokens, positions, key_len)  # (R, V)
        if self.params.num_beams == 1:
            gen = [0] * n_rows
            for r in running:
                gen[r.slots[0]] = len(r.tokens)
            picked = greedy_pick(logits, self._eos_rows(gen), self.params.eos_token_id)  # (2, R)
            return self._advance_greedy(list(running), picked[:, [r.slots[0] for r in running]])
        rows = torch.tensor([s for r in running for s in r.slots], device=logits.device)
        return self._advance_beams(list(running), logits[rows], [r.beam.generated for r in running])

    def _advance_greedy(self, reqs: list[Request], picked: Tensor) -> list[Request]:
        p, done = self.params, []
        for r, tok, lp in zip(reqs, picked[0].long().tolist(), picked[1].tolist()):
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
        """logits (G*nb, V) in beam order; reorder the cache slots of the surviving beams."""
        nb = self.params.num_beams
        scores = torch.stack([r.beam.running_scores for r in reqs]).to(logits.device)  # (G, nb)
        eos_rows = self._eos_rows([g for g in generated for _ in range(nb)])
        cand = beam_candidates(logits, scores, eos_rows, self.params.eos_token_id)  # (2, G, 2nb)
        done, src, dst, length = [], [], [], 0
        for g, r in enumerate(reqs):
            parents = r.beam.step(cand[0, g], cand[1, g].long(), self.vocab)
            if r.beam.done:
                self.sched.finish(r)
                done.append(r)
                continue
            for j, parent in enumerate(parents):
                if parent != j:
                    src.append(r.slots[parent])
                    dst.append(r.slots[j])
            length = max(length, r.prompt_len + r.beam.generated - 1)
        self.runner.cache.copy_slots(src, dst, length)
        return done
