"""Compaction: rewrite a bucket's live rows into one base file per table and clear its tombstones.

A bucket is due when its tombstones pass `max_dead_ratio` of its article rows or one of its
tables holds `max_files` files; at most `max_compactions` buckets (most due first) per update,
so one update rewrites at most that many buckets whatever the state size. Streams record
batches (memory: one batch, the bucket's tombstone keys and its article rows, which are
written pmid-sorted so updates find PMIDs by binary search).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.state.keys import KEYS, keys_path, keys_table
from pipeline.state.merge import dead_keys, tombstone_path
from pipeline.state.partitions import DATA_TABLES, GEN, TOMBSTONE_SCHEMA, TOMBSTONES, Layout, data_path, row_keys
from pipeline.state.store import StateStore

BATCH_ROWS = 65_536


def due(buckets: dict[str, Any], layout: Layout) -> list[str]:
    """Buckets to compact now, most due first, at most layout.max_compactions."""
    scored = []
    for name, entry in buckets.items():
        ratio = entry["dead"] / max(entry["rows"], 1)
        files = max(len(entry["files"][t]) for t in DATA_TABLES)
        if ratio > layout.max_dead_ratio or files >= layout.max_files:
            scored.append((-max(ratio / layout.max_dead_ratio, files / layout.max_files), name))
    return [name for _, name in sorted(scored)[: layout.max_compactions]]


def _source(store: StateStore, rel: str, gen: int) -> pq.ParquetFile:
    staged = rel.endswith(f"g{gen:06d}.parquet")
    return pq.ParquetFile(store.staged(gen, rel) if staged else store.path(rel), filesystem=store.fs)


def compact(store: StateStore, bucket: str, entry: dict[str, Any], gen: int, width: int) -> tuple[dict[str, Any], int]:
    """Stage the compacted bucket (its rows now all carry gen, its key index is rebuilt); returns
    its new entry and the bytes written."""
    dead = dead_keys(store, entry, gen)
    out = {"files": {t: [] for t in DATA_TABLES + (TOMBSTONES, KEYS)}, "live": entry["live"], "dead": 0, "rows": 0}
    written = 0
    for table in DATA_TABLES:
        sources = [_source(store, rel, gen) for rel in entry["files"][table]]
        if not sources:
            continue
        rel = data_path(table, bucket, gen, base=True)
        schema = sources[0].schema_arrow
        kept, articles = 0, []
        with store.writer(gen, rel, schema) as writer:
            for source in sources:
                for batch in source.iter_batches(batch_size=BATCH_ROWS):
                    keys = row_keys(batch.column("pmid"), batch.column(GEN))
                    batch = batch.filter(pc.invert(pc.is_in(keys, value_set=dead))).cast(schema)
                    batch = batch.set_column(batch.schema.get_field_index(GEN), GEN,  # base rows: one gen
                                             pa.array(np.full(batch.num_rows, gen, np.int32)))
                    kept += batch.num_rows
                    if table == "articles":  # one row per PMID: kept whole and pmid-sorted (binary search)
                        articles.append(batch)
                    elif batch.num_rows:
                        writer.write_batch(batch)
            if table == "articles":
                rows = pa.Table.from_batches(articles, schema).sort_by("pmid")
                writer.write_table(rows)
                index = keys_table(rows.column("pmid").to_numpy(), rows.column("version").to_numpy(),
                                   int(bucket) * width, width, gen)
                written += store.write_staged(index, gen, keys_path(bucket, gen))
                out["files"][KEYS].append(keys_path(bucket, gen))
        written += store.size(rel, gen)
        out["files"][table].append(rel)
        if table == "articles":
            out["rows"] = kept
    rel = tombstone_path(bucket, gen)
    written += store.write_staged(TOMBSTONE_SCHEMA.empty_table(), gen, rel)
    out["files"][TOMBSTONES].append(rel)
    if out["rows"] != out["live"]:
        raise RuntimeError(f"compacting bucket {bucket}: {out['rows']} live article rows, state says {out['live']}")
    return out, written


def ops_for(old: dict[str, Any], new: dict[str, Any]) -> list[list[str]]:
    """Commit steps from the old to the new live lists, ordered so readers never see a row twice."""
    def files(buckets: dict[str, Any], tables: tuple[str, ...]) -> set[str]:
        return {rel for b in buckets.values() for t in tables for rel in b["files"].get(t, [])}

    before_data, after_data = files(old, DATA_TABLES), files(new, DATA_TABLES)
    before_tomb, after_tomb = files(old, (TOMBSTONES, KEYS)), files(new, (TOMBSTONES, KEYS))
    return ([["move", r] for r in sorted(after_tomb - before_tomb)]
            + [["delete", r] for r in sorted(before_data - after_data)]
            + [["delete", r] for r in sorted(before_tomb - after_tomb)]
            + [["move", r] for r in sorted(after_data - before_data)])
