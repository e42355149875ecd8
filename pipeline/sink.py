"""Result sink: one Ray Data write per block, committed atomically, so runs resume exactly once.

Why our own commit protocol rather than Ray Data's `CheckpointConfig`: that API is beta, works
only for a single Read -> ... -> Write plan, re-reads every input and takes seconds to load,
while one biomine block must land in four tables (articles, relations, entities, errors) at
once. Each block is written as `TABLE/part-KEY.parquet` files (KEY = hash of the block's PMIDs,
so a retried block overwrites its own files), each via a temporary name and a rename, and is
committed by a marker `_commits/KEY.json` written last. On start, `recover()` deletes part
files without a marker (a crash mid-block) and returns the PMIDs of committed blocks, which the
driver removes from the work list: every PMID lands exactly once, whatever was killed when.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
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

log = logging.getLogger(__name__)

COMMITS = "_commits"
FAULT_ENV = "BIOMINE_FAULT_AFTER_COMMITS"  # test hook: crash a block after N commits exist


@dataclass(frozen=True)
class OutputTable:
    """One output table: its folder, schema, and the list<struct> column holding its rows."""

    name: str
    schema: pa.Schema
    nested: str | None = None  # None: the block's own columns (one row per article)


def open_output(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and base path for a local folder or an object-store URI."""
    if "://" not in uri:
        uri = os.path.abspath(uri)
    return pafs.FileSystem.from_uri(uri)


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


def write_table_atomic(fs: pafs.FileSystem, table: pa.Table, path: str) -> None:
    """Write Parquet under a temporary name, then rename (readers never see half a file)."""
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    pq.write_table(table, tmp, filesystem=fs, compression="zstd")
    fs.move(tmp, path)


def write_text_atomic(fs: pafs.FileSystem, text: str, path: str) -> None:
    """Write text under a temporary name, then rename."""
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    with fs.open_output_stream(tmp) as out:
        out.write(text.encode())
    fs.move(tmp, path)


class ResultSink(Datasink[dict]):
    """Writes article/relation/entity/error rows of each block, then its commit marker."""

    def __init__(self, output: str, tables: list[OutputTable], run_id: str) -> None:
        self.output = output
        self.tables = tables
        self.run_id = run_id
        self.totals: dict[str, int] = {}
        self.fault_after = int(os.environ[FAULT_ENV]) if os.environ.get(FAULT_ENV) else None

    def on_write_start(self, schema: pa.Schema | None = None) -> None:
        fs, base = open_output(self.output)
        for name in [t.name for t in self.tables] + [COMMITS]:
            fs.create_dir(f"{base}/{name}", recursive=True)

    def write(self, blocks: Iterable[Block], ctx: Any) -> dict:
        fs, base = open_output(self.output)
        counts: dict[str, int] = {}
        for block in blocks:
            if block.num_rows == 0:
                continue
            key = block_key(block.column("pmid"))
            for table in self.tables:
                rows = explode(block, table)
                counts[table.name] = counts.get(table.name, 0) + rows.num_rows
                if rows.num_rows:
                    write_table_atomic(fs, rows, f"{base}/{table.name}/part-{key}.parquet")
            self._maybe_fault(fs, base)
            extra = {c: int(pc.sum(block.column(c)).as_py() or 0)
                     for c in block.column_names if c.startswith("n_")}
            for c, v in extra.items():
                counts[c] = counts.get(c, 0) + v
            marker = {"key": key, "rows": block.num_rows, "run_id": self.run_id,
                      "time": time.time(), "counts": extra}
            write_text_atomic(fs, json.dumps(marker), f"{base}/{COMMITS}/{key}.json")
            counts["blocks"] = counts.get("blocks", 0) + 1
        return counts

    def _maybe_fault(self, fs: pafs.FileSystem, base: str) -> None:
        if self.fault_after is None:
            return
        done = len(fs.get_file_info(pafs.FileSelector(f"{base}/{COMMITS}")))
        if done >= self.fault_after:
            raise RuntimeError(f"injected fault ({FAULT_ENV}={self.fault_after}) before a commit")

    def on_write_complete(self, write_result: Any) -> None:
        totals: dict[str, int] = {}
        for counts in write_result.write_returns:
            for k, v in (counts or {}).items():
                totals[k] = totals.get(k, 0) + v
        self.totals = totals

    def get_name(self) -> str:
        return "BiomineResults"


def recover(output: str, table_names: list[str]) -> pa.Array:
    """Drop uncommitted part files and temporaries; return the PMIDs of committed blocks."""
    fs, base = open_output(output)
    if fs.get_file_info(base).type == pafs.FileType.NotFound:
        return pa.array([], pa.int64())
    commits = fs.get_file_info(pafs.FileSelector(f"{base}/{COMMITS}", allow_not_found=True))
    keys = {info.base_name[:-5] for info in commits if info.base_name.endswith(".json")}
    removed = 0
    for name in table_names + [COMMITS]:
        for info in fs.get_file_info(pafs.FileSelector(f"{base}/{name}", allow_not_found=True)):
            stem = info.base_name
            orphan = stem.endswith(".tmp") or (
                stem.startswith("part-") and stem[5:].split(".")[0] not in keys)
            if orphan:
                fs.delete_file(info.path)
                removed += 1
    if removed:
        log.info("resume: removed %d uncommitted file(s) from %s", removed, output)
    paths = [f"{base}/articles/part-{k}.parquet" for k in sorted(keys)]
    if not paths:
        return pa.array([], pa.int64())
    pmids = [pq.read_table(p, columns=["pmid"], filesystem=fs).column("pmid") for p in paths]
    return pa.chunked_array([c for col in pmids for c in col.chunks], pa.int64()).combine_chunks()
