"""Request and slot bookkeeping for continuous batching: pure Python, no torch.

A request needs `num_beams` cache slots. Free slots are handed out lowest-first so running
sequences stay packed at the front of the cache (decode reads rows `[:max slot + 1]` only).
Each engine step is either a prefill of waiting prompts or one decode step of all running
ones; prefill wins when enough slots are free, so new prompts interleave with decoding.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    """One prompt in flight: its slots, generated ids and timing."""

    index: int
    prompt: list[int]
    max_new_tokens: int  # effective: min(params.max_new_tokens, max_model_len - prompt_len)
    slots: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)  # greedy: generated ids so far
    cumulative_logprob: float = 0.0
    beam: Any = None  # BeamGroup for beam search
    first_token_s: float = 0.0
    finish_reason: str | None = None

    @property
    def prompt_len(self) -> int:
        """Number of prompt tokens."""
        return len(self.prompt)


class SlotAllocator:
    """Free cache slots, always handing out the lowest ones."""

    def __init__(self, num_slots: int) -> None:
        self.num_slots = num_slots
        self._free = list(range(num_slots))
        heapq.heapify(self._free)

    @property
    def num_free(self) -> int:
        """Number of free slots."""
        return len(self._free)

    def allocate(self, n: int) -> list[int]:
        """Take the n lowest free slots (sorted)."""
        if n > len(self._free):
            raise RuntimeError(f"asked for {n} slots, {len(self._free)} free")
        return sorted(heapq.heappop(self._free) for _ in range(n))

    def release(self, slots: list[int]) -> None:
        """Give slots back."""
        for slot in slots:
            heapq.heappush(self._free, slot)


class Scheduler:
    """Waiting queue (longest prompt first, so a prefill batch pads little) and running set."""

    def __init__(self, num_slots: int, slots_per_request: int, max_batched_tokens: int) -> None:
        if num_slots < slots_per_request:
            raise ValueError(f"the KV cache has {num_slots} slots but one request needs "
                             f"{slots_per_request} (num_beams); raise kv_cache_tokens or lower num_beams")
        self.allocator = SlotAllocator(num_slots)
        self.per_request = slots_per_request
        self.max_batched_tokens = max_batched_tokens
        self.max_running = num_slots // slots_per_request
        self.waiting: list[Request] = []
        self.running: list[Request] = []

    def add(self, requests: list[Request]) -> None:
        """Queue requests; the queue stays sorted by prompt length, longest first."""
        self.waiting.extend(requests)
        self.waiting.sort(key=lambda r: r.prompt_len)  # popped from the end

    def has_work(self) -> bool:
        """Whether anything waits or runs."""
        return bool(self.waiting or self.running)

    def schedule_prefill(self) -> list[Request]:
        """Requests to prefill now (slots assigned), or [] to run a decode step instead.

        Prefill when nothing runs, or when at least a quarter of the request capacity (or all
        that waits, if less) is free: fewer, larger prefills between decode steps.
        """
        if not self.waiting:
            return []
        free = self.allocator.num_free // self.per_request
        want = min(len(self.waiting), max(1, self.max_running // 4))
        if free == 0 or (self.running and free < want):
            return []
        batch: list[Request] = []
        longest = self.waiting[-1].prompt_len
        while self.waiting and len(batch) < free:
            if batch and (len(batch) + 1) * longest > self.max_batched_tokens:
                break
            req = self.waiting.pop()
            req.slots = self.allocator.allocate(self.per_request)
            batch.append(req)
        self.running.extend(batch)
        return batch

    def finish(self, req: Request) -> None:
        """Drop a finished request from the running set and free its slots."""
        self.running.remove(req)
        self.allocator.release(req.slots)
        req.slots = []
