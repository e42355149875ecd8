"""Never a silent hang: fail a run whose progress stands still, naming what Ray cannot place.

A driver-side thread follows the run's progress line (`pipeline.records.progress`: articles
committed, and articles through the model stage as the GPU actors report them). When neither
moves for `stall_timeout_s`, it asks Ray's GCS what is waiting for resources and on which nodes,
and raises `StallError` with that diagnosis in the thread running the dataset; the run then
fails like any other (exit 1, committed work kept).
"""
from __future__ import annotations

import ctypes
import logging
import threading
import time
from typing import Any, Callable

log = logging.getLogger(__name__)


class StallError(RuntimeError):
    """No block moved for the watchdog's bound; the message says what Ray cannot place."""

    message = "no progress"

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or (self.message,)))


def _fmt(resources: dict[str, float]) -> str:
    keep = {k: v for k, v in sorted(resources.items()) if k in ("CPU", "GPU") or not (
        k.startswith("node:") or k in ("memory", "object_store_memory") or k.startswith("accelerator"))}
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in keep.items()) + "}"


def cluster_snapshot(ray: Any) -> tuple[list[dict], list[tuple[dict, int]]]:
    """Alive nodes (ip, id, head, total, available) and pending requests (resources, count)."""
    from ray.autoscaler.v2.sdk import get_cluster_resource_state

    state = get_cluster_resource_state(ray._private.worker.global_worker.gcs_client)
    nodes = [{"ip": n.node_ip_address, "id": n.node_id.hex(), "total": dict(n.total_resources),
              "available": dict(n.available_resources),
              "head": "node:__internal_head__" in n.total_resources}
             for n in state.node_states if dict(n.total_resources)]
    pending = [(dict(r.request.resources_bundle), int(r.count)) for r in state.pending_resource_requests]
    return nodes, pending


def diagnose(nodes: list[dict], pending: list[tuple[dict, int]]) -> str:
    """What Ray cannot place, where it would have to go, and the fix."""
    def where(n: dict) -> str:
        free = {k: n["available"].get(k, 0.0) for k in n["total"] if k in ("CPU", "GPU")}
        total = {k: v for k, v in n["total"].items() if k in ("CPU", "GPU")}
        return f"{'head' if n['head'] else 'worker'} {n['ip']} {n['id'][:8]} free {_fmt(free)} of {_fmt(total)}"

    shown = "; ".join(where(n) for n in nodes) or "no alive node"
    if not pending:
        return (f"Ray reports nothing waiting for resources (nodes: {shown}); a task or actor may be "
                f"stuck: see the Ray logs of those nodes, then run the same command again to resume")
    asks = ", ".join(f"{_fmt(res)} x{count}" for res, count in pending)
    too_big = [res for res, _ in pending
               if not any(all(n["total"].get(k, 0.0) >= v for k, v in res.items()) for n in nodes)]
    if too_big:
        fix = (f"no node is big enough for {_fmt(too_big[0])}: add a node that has it "
               f"(`ray start --num-cpus/--num-gpus`), or lower --gpus")
    else:
        fix = ("each node holds part of it for this run's other tasks and actors, and no single node "
               "has it free: give the nodes more CPUs/GPUs (or fewer, larger nodes), or lower --gpus")
    return f"Ray cannot place {asks} on any node (nodes: {shown}); fix: {fix}"


class Watchdog:
    """Raises StallError in `target` (a thread id) when `moved()` stays the same for `timeout_s`."""

    def __init__(self, moved: Callable[[], Any], timeout_s: float, explain: Callable[[], str],
                 target: int | None = None, poll_s: float | None = None) -> None:
        self.moved, self.timeout_s, self.explain = moved, timeout_s, explain
        self.target = target if target is not None else threading.get_ident()
        self.poll_s = poll_s or min(5.0, max(timeout_s / 10, 0.2))
        self.reason: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> "Watchdog":
        """Follow progress in a daemon thread (nothing happens when timeout_s is 0)."""
        if self.timeout_s > 0:
            self._thread = threading.Thread(target=self._loop, name="biomine-watchdog", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching; no exception is sent after this returns."""
        with self._lock:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        last, since = self._read(), time.monotonic()
        while not self._stop.wait(self.poll_s):
            now = self._read()
            if now != last:
                last, since = now, time.monotonic()
                continue
            if time.monotonic() - since < self.timeout_s:
                continue
            if self.reason is None:
                try:
                    detail = self.explain()
                except Exception as exc:  # noqa: BLE001 - the stall is reported even if the probe fails
                    detail = f"(Ray's resource state could not be read: {type(exc).__name__}: {exc})"
                self.reason = f"no block moved for {self.timeout_s:g} s; {detail}"
                log.error("watchdog: %s", self.reason)
            self._raise()
            self._stop.wait(10)  # again every 10 s until the run has left the dataset

    def _read(self) -> Any:
        try:
            return self.moved()
        except Exception as exc:  # noqa: BLE001 - an unreadable count is no movement
            log.debug("watchdog: progress not readable (%s)", exc)
            return None

    def _raise(self) -> None:
        cls = type("StallError", (StallError,), {"message": self.reason})
        with self._lock:
            if self._stop.is_set():
                return
            done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self.target), ctypes.py_object(cls))
            if done != 1:  # 0: the thread is gone (the run ended meanwhile)
                if done > 1:
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.target), None)
                self._stop.set()
