"""Build a small state from the synthetic update files 0..N-1 (skipping done ones); optionally arm a fault.

Run as `python -m tests.pipeline.state.crash_driver STATE N [FAULT_AT FAULT]`: the fault (a
`BIOMINE_STATE_FAULT` value) is armed only while update FAULT_AT is applied.
"""
from __future__ import annotations

import os
import sys

from pipeline.state.apply import apply_file
from pipeline.state.partitions import Layout
from pipeline.state.store import FAULT_ENV, StateStore
from tests.pipeline.state.synth import update_file

LAYOUT = Layout(bucket_width=40, max_dead_ratio=0.3, max_files=3, max_compactions=1)


def build(folder: str, n: int, fault_at: int | None = None, fault: str | None = None) -> dict:
    """Apply updates 0..n-1 not yet processed; returns the final state."""
    store = StateStore(folder)
    state = store.open({"tasks": ["ner"]}, LAYOUT)
    done = {p["file"] for p in state["processed"]}
    for i in range(n):
        upd = update_file(i, f"pubmed26n{i:04d}.xml")
        if upd["name"] in done:
            continue
        if i == fault_at:
            os.environ[FAULT_ENV] = fault
        state, _ = apply_file(store, state, upd["name"], upd["new"], upd["deletions"])
        os.environ.pop(FAULT_ENV, None)
    return state


if __name__ == "__main__":
    args = sys.argv[1:]
    build(args[0], int(args[1]), int(args[2]) if len(args) > 2 else None, args[3] if len(args) > 3 else None)
