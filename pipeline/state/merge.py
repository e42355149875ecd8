"""Fold one update's rows into the touched buckets: new rows as delta files, dead versions as tombstones.

Vectorised (Arrow is_in / numpy binary search over packed keys, no Python object per article).
Reads, per touched bucket, its key index (keys.py), its delta article keys (pmid, version, gen)
and tombstones, all bounded by compaction; writes only the update's own rows plus one
tombstone file per touched bucket.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.state.keys import KEYS, base_rows
from pipeline.state.partitions import (DATA_TABLES, GEN, TOMBSTONE_SCHEMA, TOMBSTONES, Layout, bucket_name,
                                       bucket_of, data_path, row_keys, split_by_bucket, with_gen)
from pipeline.state.store import StateStore

_NO_PMIDS = pa.array([], pa.int64())


def new_bucket() -> dict[str, Any]:
    """The _state.json entry of an empty bucket."""
    return {"files": {t: [] for t in DATA_TABLES + (TOMBSTONES, KEYS)}, "live": 0, "dead": 0, "rows": 0}


def tombstone_path(bucket: str, gen: int) -> str:
    """current/tombstones/bucket=B/g<G>.parquet."""
    return f"current/{TOMBSTONES}/bucket={bucket}/g{gen:06d}.parquet"


def read_files(store: StateStore, rels: list[str], gen: int, columns: list[str] | None = None) -> list[pa.Table]:
    """Tables of live files; those generation gen wrote so far are read from staging."""
    suffix = f"g{gen:06d}.parquet"
    return [store.read(rel, gen if rel.endswith(suffix) else None, columns) for rel in rels]


def dead_keys(store: StateStore, entry: dict[str, Any], gen: int) -> pa.Array:
    """Packed (pmid, gen) keys of every tombstone of a bucket."""
    tables = read_files(store, entry["files"][TOMBSTONES], gen)
    if not tables:
        return pa.array([], pa.int64())
    tombs = pa.concat_tables(tables)
    return row_keys(tombs.column("pmid"), tombs.column(GEN)).combine_chunks()


def live_keys(store: StateStore, entry: dict[str, Any], gen: int, pmids: pa.Array) -> pa.Table:
    """(pmid, version, gen) of the live article rows of a bucket among `pmids`: the base file is
    looked up in its key index, only the (bounded) delta files are read."""
    empty = pa.table({"pmid": _NO_PMIDS, "version": pa.array([], pa.int32()), GEN: pa.array([], pa.int32())})
    wanted = np.unique(pmids.to_numpy(zero_copy_only=False))
    indexed = bool(entry["files"].get(KEYS))
    files = [rel for rel in entry["files"]["articles"] if not (indexed and "/base-" in rel)]
    parts = [_rows_of(table, wanted) for table in read_files(store, files, gen, ["pmid", "version", GEN])]
    if indexed:
        parts.append(base_rows(read_files(store, entry["files"][KEYS], gen)[0], wanted))
    if not parts:
        return empty
    old = pa.concat_tables(parts)
    if old.num_rows and entry["files"][TOMBSTONES]:
        keys = row_keys(old.column("pmid"), old.column(GEN))
        old = old.filter(pc.invert(pc.is_in(keys, value_set=dead_keys(store, entry, gen))))
    return old


def _rows_of(table: pa.Table, wanted: np.ndarray) -> pa.Table:
    """Rows whose pmid is in `wanted` (sorted, unique); a binary search when the file is pmid-sorted
    (one row per pmid, as article files are), else a hash lookup."""
    col = table.column("pmid").to_numpy()
    if len(col) > 1 and bool(np.all(col[1:] > col[:-1])):
        at = np.searchsorted(col, wanted).clip(0, len(col) - 1)
        return table.take(pa.array(at[col[at] == wanted]))
    return table.filter(pc.is_in(table.column("pmid"), value_set=pa.array(wanted)))


def _doomed(old: pa.Table, upserted: pa.Array, deletions: pa.Table) -> pa.Array:
    """Mask of old live rows a revision or a DeleteCitation ends (a versioned one: that version only)."""
    mask = pc.is_in(old.column("pmid"), value_set=upserted)
    if deletions.num_rows:
        version = deletions.column("version")
        every = deletions.filter(pc.is_null(version)).column("pmid").combine_chunks()
        one = deletions.filter(pc.is_valid(version))
        one_keys = row_keys(one.column("pmid"), one.column("version")).combine_chunks()
        mask = pc.or_(mask, pc.is_in(old.column("pmid"), value_set=every))
        mask = pc.or_(mask, pc.is_in(row_keys(old.column("pmid"), old.column("version")), value_set=one_keys))
    return mask


def merge_update(store: StateStore, state: dict[str, Any], gen: int, new: dict[str, pa.Table],
                 deletions: pa.Table) -> tuple[dict[str, Any], dict[str, int]]:
    """Stage generation gen's delta and tombstone files; returns (new bucket entries, counts)."""
    layout = Layout(**state["layout"])
    buckets = copy.deepcopy(state["buckets"])
    upserted = new["articles"].column("pmid").combine_chunks()
    if pc.count_distinct(upserted).as_py() != len(upserted):
        raise ValueError("update articles hold a PMID twice (a run mines one row per PMID)")
    pmids = pa.concat_arrays([upserted, deletions.column("pmid").combine_chunks().cast(pa.int64())])
    touched = np.unique(bucket_of(pmids, layout.bucket_width))
    parts = {t: split_by_bucket(new[t], layout.bucket_width) for t in DATA_TABLES}
    del_buckets = bucket_of(deletions.column("pmid"), layout.bucket_width)
    counts = {"bytes_written": 0, "removed": 0, "revised": 0, "added": 0, "buckets_touched": len(touched)}
    for number in touched:
        bucket = bucket_name(int(number))
        entry = buckets.setdefault(bucket, new_bucket())
        fresh = not entry["files"][TOMBSTONES]
        mine = parts["articles"].get(bucket)
        up = mine.column("pmid").combine_chunks() if mine is not None else _NO_PMIDS
        dels = deletions.filter(pa.array(del_buckets == number))
        old = live_keys(store, entry, gen, pa.concat_arrays([up, dels.column("pmid").combine_chunks()]))
        dead = old.filter(_doomed(old, up, dels)).select(["pmid", GEN]).cast(TOMBSTONE_SCHEMA)
        revised = int(pc.sum(pc.is_in(dead.column("pmid"), value_set=up)).as_py() or 0)
        if dead.num_rows or fresh:  # every bucket keeps >= 1 tombstone file (DuckDB globs need one)
            rel = tombstone_path(bucket, gen)
            counts["bytes_written"] += store.write_staged(dead, gen, rel)
            entry["files"][TOMBSTONES].append(rel)
        for table in DATA_TABLES:
            rows = parts[table].get(bucket)
            if rows is None:
                continue
            rel = data_path(table, bucket, gen)
            counts["bytes_written"] += store.write_staged(with_gen(rows, gen), gen, rel)
            entry["files"][table].append(rel)
        entry["live"] += len(up) - dead.num_rows
        entry["dead"] += dead.num_rows
        entry["rows"] += len(up)
        counts["revised"] += revised
        counts["added"] += len(up) - revised
        counts["removed"] += dead.num_rows - revised
    return buckets, counts
