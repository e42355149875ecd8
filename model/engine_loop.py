"""One engine thread fed by many callers: batches submitted concurrently share the slots.

`GenerateLoop.generate(prompts)` may be called from several threads at once (the GPU actor's
concurrent Ray batches); one background thread owns the engine, admits every caller's prompts
into a single session the moment slots free up, and completes each caller's future as soon
as its own prompts are done. Host work overlaps the device: while step t runs, the loop hands
out step t-1's results and takes in new batches (`GenerationSession.launch`/`complete`).
`ClassifyLoop` does the same for the tagger: windows of all waiting callers go through the
same length-sorted prefill batches.

A failing step fails every batch in flight (their callers retry or isolate records); the
loop then starts a fresh session and goes on.
"""
from __future__ import annotations

import abc
import logging
import queue
import threading
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from model.engine import Engine, Generation
from model.sampling import SamplingParams

log = logging.getLogger(__name__)
IDLE_POLL_S = 0.5  # how long the idle thread waits for work before checking it should stop


@dataclass
class _Batch:
    """One caller's submission: its future and the results so far."""

    future: Future
    results: list[Any]
    remaining: int
    requests: list[Any] = field(default_factory=list)


class _Loop(abc.ABC):
    """The thread, the inbox and the busy-time account shared by both loops."""

    def __init__(self, name: str) -> None:
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._busy_s = 0.0
        self._claimed_s = 0.0
        self._live: dict[int, _Batch] = {}  # id(future) -> batch, until its future is done
        self._closed = False
        self._thread = threading.Thread(target=self._guarded, name=name, daemon=True)
        self._started = False

    def _submit(self, batch: _Batch) -> Future:
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine loop is closed")
            self._live[id(batch.future)] = batch
            if not self._started:
                self._thread.start()
                self._started = True
        batch.future.add_done_callback(self._done)
        self._inbox.put(batch)
        return batch.future

    def _done(self, future: Future) -> None:
        with self._lock:
            self._live.pop(id(future), None)

    @property
    def in_flight(self) -> int:
        """Batches submitted and not yet completed."""
        with self._lock:
            return len(self._live)

    def _guarded(self) -> None:
        """The thread body: a crash of the loop itself fails every waiting caller, never hangs one."""
        try:
            self._run()
        except BaseException as exc:
            log.error("engine loop %s died:\n%s", self._thread.name, traceback.format_exc())
            with self._lock:
                self._closed = True
                live = list(self._live.values())
            for batch in live:
                if not batch.future.done():
                    batch.future.set_exception(RuntimeError(f"engine loop died: {type(exc).__name__}: {exc}"))

    def claim_busy_s(self) -> float:
        """Seconds the thread spent stepping since the last claim (each second claimed once)."""
        with self._lock:
            delta = self._busy_s - self._claimed_s
            self._claimed_s = self._busy_s
            return delta

    def _add_busy(self, seconds: float) -> None:
        with self._lock:
            self._busy_s += seconds

    def close(self) -> None:
        """Stop the thread once it is idle (batches in flight still complete)."""
        with self._lock:
            self._closed = True
        self._inbox.put(None)

    def _take(self, block: bool) -> list[_Batch] | None:
        """Every queued batch (waiting up to IDLE_POLL_S for one if block); None: closed."""
        items: list = []
        try:
            items.append(self._inbox.get(timeout=IDLE_POLL_S) if block else self._inbox.get_nowait())
            while True:
                items.append(self._inbox.get_nowait())
        except queue.Empty:
            pass
        if None in items:
            self._inbox.put(None)  # keep the stop mark until the work is done
            items = [i for i in items if i is not None]
            if not items and block:
                return None
        return items

    @abc.abstractmethod
    def _run(self) -> None:
        """The thread's work loop (returns once the loop is closed and idle)."""


class GenerateLoop(_Loop):
    """Continuous generation over one engine for every caller's prompts."""

    def __init__(self, engine: Engine, params: SamplingParams) -> None:
        super().__init__("generate-loop")
        self.engine = engine
        self.params = params

    def submit(self, prompts: list[list[int]]) -> Future:
        """Queue prompts (validated here: a bad one raises ValueError in the caller)."""
        future: Future = Future()
        batch = _Batch(future, [None] * len(prompts), len(prompts))
        batch.requests = [self.engine.request(i, p, self.params, tag=batch) for i, p in enumerate(prompts)]
        if not prompts:
            future.set_result([])
            return future
        return self._submit(batch)

    def generate(self, prompts: list[list[int]]) -> list[Generation]:
        """Results in prompt order (blocks until this caller's prompts are done)."""
        return self.submit(prompts).result()

    def _run(self) -> None:
        """Launch step t, then hand out step t-1's results and take in new batches while the
        device computes, then wait for step t (its one host sync)."""
        session = self.engine.session(self.params)
        done: list = []  # finished in the last completed step, not yet handed out
        while True:
            if not session.has_work():  # idle: hand out the rest, then wait for a batch
                self._deliver(done, session.start)
                done = []
                fresh = self._take(block=True)
                if fresh is None:
                    return
                for batch in fresh:
                    session.add(batch.requests)
                continue
            started = time.perf_counter()
            try:
                launched = session.launch()
                self._deliver(done, session.start)  # overlaps the launched step
                done = []
                for batch in self._take(block=False) or []:
                    session.add(batch.requests)
                done = session.complete(launched)
            except Exception as exc:  # every batch in flight fails; the callers decide
                log.warning("engine step failed (%s: %s); failing the batches in flight",
                            type(exc).__name__, exc)
                self._deliver(done, session.start)
                done = []
                failed = {id(r.tag): r.tag for r in session.abort()}
                for batch in failed.values():
                    if not batch.future.done():
                        batch.future.set_exception(exc)
                session = self.engine.session(self.params)
                continue
            finally:
                self._add_busy(time.perf_counter() - started)

    def _deliver(self, finished: list, start: float) -> None:
        """Hand finished requests to their batches; complete each batch whose rows are all done."""
        for req in finished:
            batch = req.tag
            batch.results[req.index] = self.engine.result(req, start)
            batch.remaining -= 1
            if batch.remaining == 0:
                batch.future.set_result(batch.results)


class ClassifyLoop(_Loop):
    """The tagger: windows of every waiting caller scored in shared length-sorted batches."""

    def __init__(self, engine: Engine, batch_tokens: int = 16384) -> None:
        super().__init__("classify-loop")
        self.engine = engine
        self.batch_tokens = batch_tokens

    def classify(self, windows: list[list[int]]) -> list[Any]:
        """Per window (T, num_labels) float32 probabilities (blocks until done)."""
        if not windows:
            return []
        windows = [list(w) for w in windows]
        self.engine.check_windows(windows)  # a bad window fails its own caller only
        future: Future = Future()
        batch = _Batch(future, [], len(windows), requests=windows)
        return self._submit(batch).result()

    def _run(self) -> None:
        while True:
            fresh = self._take(block=True)
            if fresh is None:
                return
            if not fresh:
                continue
            flat = [w for b in fresh for w in b.requests]
            started = time.perf_counter()
            try:
                probs = self.engine.classify_tokens(flat, self.batch_tokens)
            except Exception as exc:  # fail these callers; they isolate records themselves
                for b in fresh:
                    b.future.set_exception(exc)
                continue
            finally:
                self._add_busy(time.perf_counter() - started)
            start = 0
            for b in fresh:
                b.future.set_result(probs[start:start + b.remaining])
                start += b.remaining
