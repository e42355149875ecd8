"""Engine counters from the GPU actors to the manifest, without going through the sink.

Each GPU actor writes its engine's counters atomically to OUT/_engine/<actor>.json (every
REPORT_EVERY_S seconds while busy, and whenever it has no batch left in flight, so the last
write follows its last batch). The driver sums the files written since the run started into
the manifest's "engine" entry: the summed counters plus "per_actor".
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time
from typing import Any

from model.counters import sum_counters, with_ratios
from pipeline.storage import Location

log = logging.getLogger(__name__)
FOLDER = "_engine"
REPORT_EVERY_S = 10.0


def actor_name() -> str:
    """This Ray actor's id, or host-pid outside an actor (a stage called directly)."""
    try:
        import ray

        if ray.is_initialized():
            actor = ray.get_runtime_context().get_actor_id()
            if actor:
                return actor
    except Exception as exc:  # no runtime context: fall back to the process
        log.debug("no Ray actor id (%s)", exc)
    return f"{socket.gethostname()}-{os.getpid()}"


def write_actor_counters(output: str | Location, actor: str, started_at: float,
                         counters: dict[str, Any]) -> None:
    """OUT/_engine/<actor>.json, atomically (temporary name, then rename)."""
    record = {"actor": actor, "host": socket.gethostname(), "pid": os.getpid(),
              "started_at": started_at, "written_at": time.time(), "generate": counters}
    Location.open(output).write_text(f"{FOLDER}/{actor}.json", json.dumps(record, sort_keys=True) + "\n")


def collect_engine_counters(output: str | Location, since: float) -> dict[str, Any]:
    """Counters summed over the actors that wrote since `since` (epoch s), plus "per_actor"."""
    out = Location.open(output)
    per_actor: dict[str, dict[str, Any]] = {}
    for path in out.files(FOLDER, ".json"):  # not the temporaries of writes in progress
        try:
            with out.fs.open_input_stream(path) as f:
                record = json.loads(f.read())
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable engine counters (%s); left out of the manifest", path, exc)
            continue
        if record.get("written_at", 0) >= since and record.get("generate"):
            per_actor[record["actor"]] = with_ratios(record["generate"])
    total = sum_counters(per_actor.values())
    total["per_actor"] = per_actor
    return total


def engine_summary(engine: dict[str, Any] | None) -> str:
    """One line for `biomine run`: decode occupancy and row efficiency, steps, GPU actors."""
    if not engine or not engine.get("decode_steps"):
        return "no decode steps"
    feed = (f", up to {engine['peak_calls_in_flight']} batches in flight"
            if engine.get("peak_calls_in_flight") else "")
    return (f"decode_occupancy {engine['decode_occupancy']:.3f}, decode_row_efficiency "
            f"{engine['decode_row_efficiency']:.3f} ({engine['decode_steps']} decode steps, "
            f"{engine['slots']} slots, {len(engine.get('per_actor', {}))} GPU actor(s){feed})")
