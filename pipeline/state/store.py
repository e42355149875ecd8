"""`STATE/_state.json`, staged writes and the commit protocol of the partitioned current view.

Every file an update writes goes first to `STATE/_staging/g<G>-<token>/<final path>` (outside
`current/`, so no reader sees it; the token keeps two racing updaters apart). The commit point is
the conditional create of `STATE/_generations/g<G>.json` (put-if-absent: `If-None-Match: *` on S3,
an exclusive link locally; pipeline/storage/exclusive.py) holding the new state: the live file
list plus `pending`, the ordered renames/deletes that move the staged files in. Of two updates
that started from generation G-1 exactly one creates it; the other raises StateConflict having
committed nothing. `_state.json` then mirrors the document, the moves run, and `_state.json` is
rewritten without `pending`. Loading takes `_state.json`, then any newer generation records (a
crash right after the commit point). A start after a crash first rolls a recorded `pending`
forward (each step is idempotent), then drops staging folders of generations already decided (an
uncommitted update, simply redone) and any file under `current/` the live list does not name.
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
from pipeline.storage import Location

log = logging.getLogger(__name__)

STATE_FILE = "_state.json"
STAGING = "_staging"
GENERATIONS = "_generations"  # g<G>.json: the commit record of generation G (created once)
FORMAT = 2  # 1: one gen-<G>.parquet per table (before PMID buckets)
FAULT_ENV = "BIOMINE_STATE_FAULT"  # test hook: "staged", "ops:N" or "applied" -> SIGKILL there


class StateConflict(RuntimeError):
    """Another update committed this generation first; this one committed nothing."""


def fault_point(point: str) -> None:
    """Test hook: SIGKILL this process when BIOMINE_STATE_FAULT names this point."""
    if os.environ.get(FAULT_ENV) == point:
        log.warning("%s=%s: killing this process", FAULT_ENV, point)
        os.kill(os.getpid(), signal.SIGKILL)


class StateStore:
    """One state folder: reads/writes `_state.json`, stages files, commits them."""

    def __init__(self, uri: str | Location) -> None:
        self.loc = Location.open(uri)
        self.uri = self.loc.url()  # for messages: scheme kept
        self.fs, self.base = self.loc.fs, self.loc.base
        self.token = uuid.uuid4().hex[:8]  # this updater's staging folders

    # --- the state document -------------------------------------------------------------
    def load(self) -> dict[str, Any] | None:
        """The committed state (with any generation committed after `_state.json`), or None."""
        if not self.loc.exists(STATE_FILE):
            return None
        state = self.loc.read_json(STATE_FILE)
        if state.get("format") != FORMAT:
            raise ValueError(f"{self.loc.url(STATE_FILE)}: state format {state.get('format', 1)} is not "
                             f"{FORMAT} (PMID buckets); rebuild this state folder with this biomine version")
        while self.loc.exists(self._record(state["generation"] + 1)):
            state = self.loc.read_json(self._record(state["generation"] + 1))
        return state

    @staticmethod
    def _record(gen: int) -> str:
        return f"{GENERATIONS}/g{gen:06d}.json"

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
        self.loc.write_text(STATE_FILE, json.dumps(state, indent=1, sort_keys=True) + "\n")

    # --- paths and staged files ---------------------------------------------------------
    def path(self, rel: str) -> str:
        """Absolute path of a state-relative path."""
        return f"{self.base}/{rel}"

    def staging(self, gen: int) -> str:
        """This updater's staging folder for generation gen (relative)."""
        return f"{STAGING}/g{gen:06d}-{self.token}"

    def staged(self, gen: int, rel: str, folder: str | None = None) -> str:
        """Where generation gen stages the file that will live at rel."""
        return self.path(f"{folder or self.staging(gen)}/{rel}")

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
        """Make `state` (generation G, new live lists) current, then move its staged files in;
        raises StateConflict (nothing committed) when another update committed G first."""
        gen = state["generation"]
        pending = {"generation": gen, "ops": ops, "staging": self.staging(gen)}
        doc = {**state, "pending": pending}
        text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
        if not self.loc.create_exclusive(self._record(gen), text.encode()):  # the commit point
            self.loc.delete_dir(self.staging(gen))
            raise StateConflict(f"{self.uri}: generation {gen} was committed by another update while "
                                f"this one ran; this update committed nothing (run it again to go on "
                                f"from the new state)")
        self.write_state(doc)
        return self._roll_forward(doc)

    def _roll_forward(self, state: dict[str, Any]) -> dict[str, Any]:
        pending = state["pending"]
        gen = pending["generation"]
        folder = pending.get("staging", f"{STAGING}/g{gen:06d}")
        for i, (op, rel) in enumerate(pending["ops"]):
            target = self.path(rel)
            if op == "move":
                src = self.staged(gen, rel, folder)
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
        self._drop_staging(gen)
        return state

    def _drop_staging(self, gen: int) -> None:
        """Delete the staging folders of generations <= gen (decided: committed or lost)."""
        stale = [i.path for i in self.loc.list(STAGING) if i.type == pafs.FileType.Directory
                 and int(i.base_name[1:].split("-", 1)[0] or 0) <= gen]
        for path in stale:
            self.fs.delete_dir(path)
        if self.loc.is_dir(STAGING) and not self.loc.list(STAGING):
            self.fs.delete_dir(self.loc.path(STAGING))

    def recover(self, state: dict[str, Any]) -> dict[str, Any]:
        """Finish a committed update, drop an uncommitted one and any stray file in current/."""
        if state.get("pending"):
            log.info("%s: finishing the commit of generation %d", self.uri, state["pending"]["generation"])
            state = self._roll_forward(state)
        self._drop_staging(state["generation"])
        if self.loc.exists(self._record(state["generation"] + 1)):
            return state  # another update committed meanwhile: its files are not strays
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
