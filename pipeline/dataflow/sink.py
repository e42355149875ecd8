"""Result sink: a Parquet dataset per table, written in file-groups committed atomically, so runs
resume exactly once.

Why our own commit protocol rather than Ray Data's `CheckpointConfig`: that API is beta, works
only for a single Read -> ... -> Write plan, re-reads every input and takes seconds to load,
while one biomine group must land in four tables (articles, relations, entities, errors) at
once. Ray hands each write task at least `rows_per_file` rows (`Datasink.min_rows_per_write`;
a small run gets one task). The task streams them into one zstd Parquet file per table
(temporary names), then renames them to `TABLE/part-KEY.parquet` (KEY = hash of the group's
PMIDs, so a retried task overwrites its own files) and commits the group last, with one small
record `_commits/KEY.parquet`: the group's sorted PMIDs (delta-encoded, ~0.2-2 bytes each) with
its file list and counts in the file metadata. On start, `recover()` reads only the commit log,
deletes data files of uncommitted groups (a crash mid-group) and returns the committed PMIDs,
which the driver removes from the work list: every PMID lands exactly once, whatever was killed
when. Every table also holds `part-schema.parquet` (no rows), so an empty table reads back with
its columns in pyarrow, pandas, DuckDB or Spark.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from ray.data import Datasink
from ray.data.block import Block

from pipeline.storage import Location

log = logging.getLogger(__name__)

COMMITS = "_commits"
SCHEMA_FILE = "part-schema.parquet"  # no rows: every table reads back with its columns
ROWS_PER_FILE = 100_000
ROW_GROUP_ROWS = 65_536
META_KEY = b"biomine.commit"
FAULT_ENV = "BIOMINE_FAULT_AFTER_COMMITS"  # test hook: crash a group after N commits exist
KILL_ENV = "BIOMINE_KILL_AFTER_FILES"  # test hook: SIGKILL the writer after N data files of a group


@dataclass(frozen=True)
class OutputTable:
    """One output table: its folder, schema, and the list<struct> column holding its rows."""

    name: str
    schema: pa.Schema
    nested: str | None = None  # None: the block's own columns (one row per article)


def block_key(pmids: pa.Array) -> str:
    """Stable name of a block: a hash of its sorted PMIDs."""
    ordered = pc.sort_indices(pmids)
    data = pc.take(pmids, ordered).to_numpy(zero_copy_only=False).astype("int64").tobytes()
    return hashlib.sha1(data).hexdigest()[:24]


def explode(block: pa.Table, table: OutputTable) -> pa.Table:
    """The rows of `table` held in `block` (flat columns, or a flattened list<struct> column)."""
    if table.nested is None:
        return block.select(table.schema.names).cast(table.schema)
    flat = pc.list_flatten(block.column(table.nested))
    if len(flat) == 0:
        return table.schema.empty_table()
    structs = flat.combine_chunks() if isinstance(flat, pa.ChunkedArray) else flat
    return pa.Table.from_struct_array(structs).select(table.schema.names).cast(table.schema)


class _GroupFiles:
    """One write task's open files: rows streamed per table into temporary Parquet files."""

    def __init__(self, fs: pafs.FileSystem, base: str, tables: list[OutputTable]) -> None:
        self.fs, self.base, self.tables = fs, base, tables
        self.tmp = {t.name: f"{base}/{t.name}/_inflight-{uuid.uuid4().hex[:12]}.tmp" for t in tables}
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.buffers: dict[str, list[pa.Table]] = {t.name: [] for t in tables}
        self.rows = {t.name: 0 for t in tables}

    def add(self, name: str, rows: pa.Table) -> None:
        """Buffer rows of a table; write a row group when enough are buffered."""
        if rows.num_rows == 0:
            return
        self.buffers[name].append(rows)
        self.rows[name] += rows.num_rows
        if sum(t.num_rows for t in self.buffers[name]) >= ROW_GROUP_ROWS:
            self._flush(name)

    def _flush(self, name: str) -> None:
        parts = self.buffers[name]
        if not parts:
            return
        table = pa.concat_tables(parts)
        if name not in self.writers:
            self.writers[name] = pq.ParquetWriter(self.tmp[name], table.schema, filesystem=self.fs,
                                                  compression="zstd")
        self.writers[name].write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.buffers[name] = []

    def discard(self) -> None:
        """Close and delete the temporary files of a failed group."""
        for name, writer in list(self.writers.items()):
            writer.close()
            self.writers.pop(name)
        for path in self.tmp.values():
            if self.fs.get_file_info(path).type != pafs.FileType.NotFound:
                self.fs.delete_file(path)

    def publish(self, key: str, kill_after: int | None) -> dict[str, str]:
        """Close every file and rename it to TABLE/part-KEY.parquet; returns table -> file name."""
        for t in self.tables:
            self._flush(t.name)
            if t.name in self.writers:
                self.writers.pop(t.name).close()
        files = {}
        for t in self.tables:
            if self.rows[t.name] == 0:
                continue
            files[t.name] = f"part-{key}.parquet"
            self.fs.move(self.tmp[t.name], f"{self.base}/{t.name}/{files[t.name]}")
            if kill_after is not None and len(files) >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)  # test hook: die mid-group, like kill -9
        return files


class ResultSink(Datasink[dict]):
    """Writes the article/relation/entity/error rows of each file-group, then its commit record."""

    def __init__(self, output: str | Location, tables: list[OutputTable], run_id: str,
                 rows_per_file: int = ROWS_PER_FILE) -> None:
        if rows_per_file < 1:
            raise ValueError(f"rows_per_file must be >= 1, got {rows_per_file}")
        self.output = Location.open(output)  # pickled as its URI: each worker re-opens it
        self.tables = tables
        self.run_id = run_id
        self.rows_per_file = rows_per_file
        self.totals: dict[str, int] = {}
        self.fault_after = int(os.environ[FAULT_ENV]) if os.environ.get(FAULT_ENV) else None
        self.kill_after = int(os.environ[KILL_ENV]) if os.environ.get(KILL_ENV) else None

    @property
    def min_rows_per_write(self) -> int:
        """Ray bundles at least this many rows into each write task (one file per table)."""
        return self.rows_per_file

    def on_write_start(self, schema: pa.Schema | None = None) -> None:
        ensure_tables(self.output, self.tables)

    def write(self, blocks: Iterable[Block], ctx: Any) -> dict:
        group = _GroupFiles(self.output.fs, self.output.base, self.tables)
        try:
            return self._write_group(self.output, group, blocks)
        except BaseException:
            group.discard()  # a retry writes the group again; the next start removes any leftover
            raise

    def _write_group(self, out: Location, group: _GroupFiles, blocks: Iterable[Block]) -> dict:
        counts: dict[str, int] = {}
        pmids: list[pa.Array] = []
        for block in blocks:
            if block.num_rows == 0:
                continue
            pmids.extend(block.column("pmid").cast(pa.int64()).chunks)
            for table in self.tables:
                rows = explode(block, table)
                counts[table.name] = counts.get(table.name, 0) + rows.num_rows
                group.add(table.name, rows)
            for c in block.column_names:
                if c.startswith("n_"):
                    counts[c] = counts.get(c, 0) + int(pc.sum(block.column(c)).as_py() or 0)
            counts["blocks"] = counts.get("blocks", 0) + 1
        if not pmids:
            return counts
        done = pa.chunked_array(pmids, pa.int64()).combine_chunks()
        key = block_key(done)
        files = group.publish(key, self.kill_after)
        self._maybe_fault(out)
        record = {"key": key, "rows": len(done), "run_id": self.run_id, "time": time.time(),
                  "files": files, "counts": counts}
        commit = pa.table({"pmid": pc.take(done, pc.sort_indices(done))})
        commit = commit.replace_schema_metadata({META_KEY: json.dumps(record).encode()})
        out.write_table(f"{COMMITS}/{key}.parquet", commit, use_dictionary=False,
                        column_encoding={"pmid": "DELTA_BINARY_PACKED"})
        counts["groups"] = 1
        return counts

    def _maybe_fault(self, out: Location) -> None:
        if self.fault_after is None:
            return
        done = out.files(COMMITS, ".parquet")
        if len(done) >= self.fault_after:
            raise RuntimeError(f"injected fault ({FAULT_ENV}={self.fault_after}) before a commit")

    def on_write_complete(self, write_result: Any) -> None:
        totals: dict[str, int] = {}
        for counts in write_result.write_returns:
            for k, v in (counts or {}).items():
                totals[k] = totals.get(k, 0) + v
        self.totals = totals

    def get_name(self) -> str:
        return "BiomineResults"


def ensure_tables(output: str | Location, tables: list[OutputTable]) -> None:
    """Create every table folder with its schema file, and the commit log folder."""
    out = Location.open(output)
    for table in tables:
        out.makedirs(table.name)
        if not out.exists(f"{table.name}/{SCHEMA_FILE}"):
            out.write_table(f"{table.name}/{SCHEMA_FILE}", table.schema.empty_table())
    out.makedirs(COMMITS)


def commit_log(output: str | Location) -> list[dict]:
    """The commit records of an output (key, rows, run_id, time, files, counts), oldest first."""
    out = Location.open(output)
    records = []
    for path in out.files(COMMITS, ".parquet"):
        meta = pq.read_schema(path, filesystem=out.fs).metadata or {}
        records.append(json.loads(meta[META_KEY]))
    return sorted(records, key=lambda r: r["time"])


def recover(output: str | Location, table_names: list[str], delete: bool = True) -> pa.Array:
    """Drop data files of uncommitted groups and temporaries (unless delete=False); return the
    PMIDs of committed groups, read from the commit log only (never from the data files)."""
    out = Location.open(output)
    fs, base = out.fs, out.base
    if not out.exists():
        return pa.array([], pa.int64())
    commits = out.list(COMMITS)
    logs = sorted(i.path for i in commits if i.base_name.endswith(".parquet"))
    if any(i.base_name.endswith(".json") for i in commits):  # never delete another layout's data
        raise ValueError(f"{out.url()} was written by an older biomine (one _commits/*.json marker "
                         f"per block); finish it with that version or use a new output folder")
    keys = {os.path.basename(p)[: -len(".parquet")] for p in logs}
    if delete:
        _remove_uncommitted(fs, base, table_names, keys)
    if not logs:
        return pa.array([], pa.int64())
    import pyarrow.dataset as ds

    pmids = ds.dataset(logs, format="parquet", filesystem=fs).to_table(columns=["pmid"])
    return pmids.column("pmid").combine_chunks()


def _remove_uncommitted(fs: pafs.FileSystem, base: str, table_names: list[str], keys: set[str]) -> None:
    removed = 0
    for name in table_names + [COMMITS]:
        for info in fs.get_file_info(pafs.FileSelector(f"{base}/{name}", allow_not_found=True)):
            stem = info.base_name
            orphan = stem.endswith(".tmp") or (
                stem.startswith("part-") and stem != SCHEMA_FILE
                and stem[5:].split(".")[0] not in keys)
            if orphan:
                fs.delete_file(info.path)
                removed += 1
    if removed:
        log.info("resume: removed %d uncommitted file(s) from %s", removed, base)
