"""`STATE/_state.json`, staged writes and the commit protocol of the partitioned current view.

Every file an update writes goes first to `STATE/_staging/g<G>/<final path>` (outside `current/`,
so no reader sees it). The commit point is the atomic rewrite of `_state.json` holding the new
live file list plus `pending`: the ordered renames/deletes that move the staged files in. Those
run next, then `_state.json` is rewritten without `pending`. A start after a crash first rolls a
recorded `pending` forward (each step is idempotent), then drops `_staging/` (an uncommitted
update, simply redone) and any file under `current/` the live list does not name.
Steps are ordered so a reader listing `current/` mid-commit may miss rows for a moment but
never sees a row twice: new tombstones, then deletes of compacted data, then old tombstones,
then new data files.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import uuid
from dataclasses import asdict
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.state.partitions import DATA_TABLES, TOMBSTONES, Layout

log = logging.getLogger(__name__)

STATE_FILE = "_state.json"
STAGING = "_staging"
FORMAT = 2  # 1: one gen-<G>.parquet per table (before PMID buckets)
FAULT_ENV = "BIOMINE_STATE_FAULT"  # test hook: "staged", "ops:N" or "applied" -> SIGKILL there


def open_output(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and base path for a local folder or an object-store URI (as pipeline.dataflow.sink,
    without importing Ray)."""
    return pafs.FileSystem.from_uri(uri if "://" in uri else os.path.abspath(uri))


def write_text_atomic(fs: pafs.FileSystem, text: str, path: str) -> None:
    """Write text under a temporary name, then rename."""
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    with fs.open_output_stream(tmp) as out:
        out.write(text.encode())
    fs.move(tmp, path)


def fault_point(point: str) -> None:
    """Test hook: SIGKILL this process when BIOMINE_STATE_FAULT names this point."""
    if os.environ.get(FAULT_ENV) == point:
        log.warning("%s=%s: killing this process", FAULT_ENV, point)
        os.kill(os.getpid(), signal.SIGKILL)


class StateStore:
    """One state folder: reads/writes `_state.json`, stages files, commits them."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.fs, self.base = open_output(uri)

    # --- the state document -------------------------------------------------------------
    def load(self) -> dict[str, Any] | None:
        """The committed state, or None for a new folder."""
        path = f"{self.base}/{STATE_FILE}"
        if self.fs.get_file_info(path).type == pafs.FileType.NotFound:
            return None
        with self.fs.open_input_stream(path) as f:
            state = json.loads(f.read())
        if state.get("format") != FORMAT:
            raise ValueError(f"{path}: state format {state.get('format', 1)} is not {FORMAT} (PMID buckets); "
                             "rebuild this state folder with this biomine version")
        return state

    def open(self, settings: dict[str, Any], layout: Layout) -> dict[str, Any]:
        """Load (and repair) the state, or create it; refuses other mining settings."""
        self.fs.create_dir(self.base, recursive=True)
        state = self.load()
        if state is None:
            state = {"format": FORMAT, "settings": settings, "layout": asdict(layout),
                     "generation": 0, "processed": [], "buckets": {}, "pending": None}
            self.write_state(state)
        if state["settings"] != settings:
            raise ValueError(f"{self.uri} was built with {state['settings']}; this update asks for {settings}")
        return self.recover(state)

    def layout(self, state: dict[str, Any]) -> Layout:
        """The state's fixed bucketing/compaction settings."""
        return Layout(**state["layout"])

    def write_state(self, state: dict[str, Any]) -> None:
        """Atomically replace `_state.json` (callers other than commit: new folders, bulk loads)."""
        text = json.dumps(state, indent=1, sort_keys=True) + "\n"
        write_text_atomic(self.fs, text, f"{self.base}/{STATE_FILE}")

    # --- paths and staged files ---------------------------------------------------------
    def path(self, rel: str) -> str:
        """Absolute path of a state-relative path."""
        return f"{self.base}/{rel}"

    def staged(self, gen: int, rel: str) -> str:
        """Where generation gen stages the file that will live at rel."""
        return f"{self.base}/{STAGING}/g{gen:06d}/{rel}"

    def write_staged(self, table: pa.Table, gen: int, rel: str) -> int:
        """Write a Parquet file to staging; returns its size in bytes."""
        path = self.staged(gen, rel)
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        pq.write_table(table, path, filesystem=self.fs, compression="zstd")
        return self.fs.get_file_info(path).size

    def writer(self, gen: int, rel: str, schema: pa.Schema) -> pq.ParquetWriter:
        """A streaming Parquet writer into staging (the caller closes it)."""
        path = self.staged(gen, rel)
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        return pq.ParquetWriter(path, schema, filesystem=self.fs, compression="zstd")

    def read(self, rel: str, gen: int | None = None, columns: list[str] | None = None) -> pa.Table:
        """A live file (or, with gen, a file staged by that generation)."""
        path = self.path(rel) if gen is None else self.staged(gen, rel)
        return pq.read_table(path, columns=columns, filesystem=self.fs)

    def size(self, rel: str, gen: int) -> int:
        """Size of a staged file."""
        return self.fs.get_file_info(self.staged(gen, rel)).size

    # --- commit and recovery ------------------------------------------------------------
    def commit(self, state: dict[str, Any], ops: list[list[str]]) -> dict[str, Any]:
        """Make `state` (generation G, new live lists) current, then move its staged files in."""
        pending = {"generation": state["generation"], "ops": ops}
        self.write_state({**state, "pending": pending})  # the commit point
        return self._roll_forward({**state, "pending": pending})

    def _roll_forward(self, state: dict[str, Any]) -> dict[str, Any]:
        pending = state["pending"]
        gen = pending["generation"]
        for i, (op, rel) in enumerate(pending["ops"]):
            target = self.path(rel)
            if op == "move":
                src = self.staged(gen, rel)
                if self.fs.get_file_info(src).type == pafs.FileType.File:
                    self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
                    self.fs.move(src, target)
                elif self.fs.get_file_info(target).type != pafs.FileType.File:
                    raise RuntimeError(f"{self.uri}: committed file {rel} is neither staged nor in place")
            elif op == "delete":
                if self.fs.get_file_info(target).type == pafs.FileType.File:
                    self.fs.delete_file(target)
            else:
                raise ValueError(f"{self.uri}/{STATE_FILE}: unknown pending op {op!r}")
            fault_point(f"ops:{i + 1}")
        fault_point("applied")
        state = {**state, "pending": None}
        self.write_state(state)
        self._drop_staging()
        return state

    def _drop_staging(self) -> None:
        staging = f"{self.base}/{STAGING}"
        if self.fs.get_file_info(staging).type == pafs.FileType.Directory:
            self.fs.delete_dir(staging)

    def recover(self, state: dict[str, Any]) -> dict[str, Any]:
        """Finish a committed update, drop an uncommitted one and any stray file in current/."""
        if state.get("pending"):
            log.info("%s: finishing the commit of generation %d", self.uri, state["pending"]["generation"])
            state = self._roll_forward(state)
        self._drop_staging()
        live = {rel for b in state["buckets"].values() for files in b["files"].values() for rel in files}
        removed = 0
        for table in DATA_TABLES + (TOMBSTONES, "_keys"):
            selector = pafs.FileSelector(f"{self.base}/current/{table}", allow_not_found=True, recursive=True)
            for info in self.fs.get_file_info(selector):
                rel = info.path[len(self.base) + 1:]
                if info.type == pafs.FileType.File and rel not in live:
                    self.fs.delete_file(info.path)
                    removed += 1
        if removed:
            log.info("%s: removed %d file(s) no commit lists", self.uri, removed)
        return state
