"""Request and slot bookkeeping for continuous batching: pure Python, no torch.

A request needs `num_beams` cache slots. Live slots are kept packed: slots `[0, used)` are
all busy, so a decode step runs exactly `used` rows (no holes up to the highest slot). When a
request finishes, the highest live slots move into its holes; the moves are queued
(`take_moves`) and the executor copies those slots' keys/values before the next forward.
Waiting requests are admitted as soon as enough slots are free (`refill_min` request
capacities, or everything that waits, or anything when nothing runs): the oldest waiting one
always, the rest picked from the next `ADMIT_WINDOW x free` by the nearest prompt length, so a
prefill batch pads little while no request waits behind more than that window.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

ADMIT_WINDOW = 4  # admission looks this many times the free request capacity into the queue


@dataclass
class Request:
    """One prompt in flight: its slots, generated ids and timing."""

    index: int
    prompt: list[int]
    max_new_tokens: int  # effective: min(params.max_new_tokens, max_model_len - prompt_len)
    slots: list[int] = field(default_factory=list)  # slots[j] holds beam j (greedy: one slot)
    tokens: list[int] = field(default_factory=list)  # greedy: generated ids so far
    cumulative_logprob: float = 0.0
    beam: Any = None  # BeamGroup for beam search
    first_token_s: float = 0.0
    finish_reason: str | None = None
    tag: Any = None  # caller's handle (the engine loop's batch and row)

    @property
    def prompt_len(self) -> int:
        """Number of prompt tokens."""
        return len(self.prompt)

    @property
    def cached_len(self) -> int:
        """Positions of this request's slots holding keys/values (prompt + fed tokens)."""
        generated = self.beam.generated if self.beam is not None else len(self.tokens)
        return self.prompt_len + max(generated - 1, 0)


class Scheduler:
    """Waiting queue (arrival order), running set and the packed slot table."""

    def __init__(self, num_slots: int, slots_per_request: int, max_batched_tokens: int,
                 refill_min: int = 1) -> None:
        if num_slots < slots_per_request:
            raise ValueError(f"the KV cache has {num_slots} slots but one request needs "
                             f"{slots_per_request} (num_beams); raise kv_cache_tokens or lower num_beams")
        self.num_slots = num_slots
        self.per_request = slots_per_request
        self.max_batched_tokens = max_batched_tokens
        self.max_running = num_slots // slots_per_request
        self.refill_min = max(1, min(refill_min, self.max_running))
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.used = 0  # slots [0, used) are live
        self._owner: list[tuple[Request, int] | None] = [None] * num_slots
        self._moves: dict[int, int] = {}  # destination slot -> slot whose data it must receive

    def add(self, requests: list[Request]) -> None:
        """Queue requests (in arrival order)."""
        self.waiting.extend(requests)

    def has_work(self) -> bool:
        """Whether anything waits or runs."""
        return bool(self.waiting or self.running)

    @property
    def free_requests(self) -> int:
        """How many more requests fit in the free slots."""
        return (self.num_slots - self.used) // self.per_request

    def schedule_prefill(self) -> list[Request]:
        """Requests to prefill now (slots assigned), or [] to run a decode step instead.

        Prefill when nothing runs, or when at least `refill_min` requests (or all that wait,
        if fewer) fit in the free slots; one prefill holds at most max_batched_tokens padded
        tokens (always at least one request).
        """
        free = self.free_requests
        if not self.waiting or free == 0:
            return []
        if self.running and free < min(len(self.waiting), self.refill_min):
            return []
        head = self.waiting[0]
        window = list(islice(self.waiting, ADMIT_WINDOW * free))
        order = [head] + sorted(window[1:], key=lambda r: abs(r.prompt_len - head.prompt_len))
        batch: list[Request] = []
        longest = 0
        for req in order:  # the oldest first, then the nearest lengths (ties: older first)
            if len(batch) == free:
                break
            n = req.prompt_len
            if batch and (len(batch) + 1) * max(longest, n) > self.max_batched_tokens:
                continue
            longest = max(longest, n)
            batch.append(req)
        taken = {id(r) for r in batch}
        self.waiting = deque(r for r in self.waiting if id(r) not in taken)
        for req in batch:
            req.slots = list(range(self.used, self.used + self.per_request))
            for j, slot in enumerate(req.slots):
                self._owner[slot] = (req, j)
            self.used += self.per_request
        self.running.extend(batch)
        return batch

    def finish(self, req: Request) -> None:
        """Drop a finished request, free its slots and move the highest live slots into the holes."""
        self.running.remove(req)
        for slot in req.slots:
            self._owner[slot] = None
            self._moves.pop(slot, None)  # data queued for a slot nobody owns any more
        for hole in sorted(req.slots):
            self._trim()
            if hole >= self.used:
                continue
            src = self.used - 1
            owner = self._owner[src]
            self._owner[hole], self._owner[src] = owner, None
            owner[0].slots[owner[1]] = hole
            self._moves[hole] = self._moves.pop(src, src)  # chains keep the original source
            self.used -= 1
        self._trim()
        req.slots = []

    def _trim(self) -> None:
        while self.used and self._owner[self.used - 1] is None:
            self.used -= 1

    def take_moves(self) -> tuple[list[int], list[int], int]:
        """(sources, destinations, positions to copy) of the queued slot moves; clears them."""
        if not self._moves:
            return [], [], 0
        dst = sorted(self._moves)
        src = [self._moves[d] for d in dst]
        length = max(self._owner[d][0].cached_len for d in dst)
        self._moves.clear()
        return src, dst, length

    def abort_all(self) -> list[Request]:
        """Drop every waiting and running request (after a failed step); returns them."""
        dropped = list(self.running) + list(self.waiting)
        self.running.clear()
        self.waiting.clear()
        self.used = 0
        self._owner = [None] * self.num_slots
        self._moves.clear()
        for req in dropped:
            req.slots = []
        return dropped
