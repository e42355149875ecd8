"""Where rows live in `STATE/current`: PMID-range buckets (hive `bucket=NNNNN/` folders) and file names.

Layout (paths relative to STATE):
- `current/{articles,relations,entities}/bucket=B/g<G>.parquet`: rows one update (generation G)
  added to bucket B; `base-g<G>.parquet`: a bucket compacted at generation G.
- `current/tombstones/bucket=B/g<G>.parquet`: (pmid, gen) of row versions that generation G made
  dead (revised or deleted). Every bucket holds at least one (maybe empty) tombstone file.
- `current/_keys/bucket=B/g<G>.parquet`: which PMIDs the bucket's base file holds (keys.py).
Every data row carries `gen`, the generation that wrote it. A row is live unless its (pmid, gen)
is a tombstone: one equi anti-join, the same in pyarrow, DuckDB and Spark.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DATA_TABLES = ("articles", "relations", "entities")
TOMBSTONES = "tombstones"
GEN = "gen"  # column: generation that wrote the row
TOMBSTONE_SCHEMA = pa.schema([("pmid", pa.int64()), (GEN, pa.int32())])
_KEY_SHIFT = 1 << 24  # key = pmid * 2**24 + gen (gen < 16.7 M updates, pmid < 5e11)


@dataclass(frozen=True)
class Layout:
    """Bucketing and compaction settings of one state folder (fixed when it is created)."""

    bucket_width: int = 1_000_000     # PMIDs per bucket: bucket = pmid // bucket_width
    max_dead_ratio: float = 0.2       # compact a bucket when tombstones exceed this share of it
    max_files: int = 16               # ... or when one of its tables holds this many files
    max_compactions: int = 2          # buckets compacted per update at most (bounds its cost)

    def __post_init__(self) -> None:
        if self.bucket_width < 1:
            raise ValueError(f"bucket_width must be >= 1, got {self.bucket_width}")
        if not 0 < self.max_dead_ratio <= 1:
            raise ValueError(f"max_dead_ratio must be in (0, 1], got {self.max_dead_ratio}")
        if self.max_files < 2 or self.max_compactions < 0:
            raise ValueError(f"max_files must be >= 2 and max_compactions >= 0: {self}")


def bucket_name(bucket: int) -> str:
    """5 -> '00005' (the value of the hive `bucket=` folder)."""
    return f"{bucket:05d}"


def bucket_of(pmids: pa.Array | pa.ChunkedArray, width: int) -> np.ndarray:
    """Bucket number of each PMID (int64 numpy array)."""
    values = pmids.to_numpy() if isinstance(pmids, pa.ChunkedArray) else pmids.to_numpy(zero_copy_only=False)
    if len(values) and values.min() < 0:
        raise ValueError("negative PMID in update rows")
    return values.astype(np.int64) // width


def data_path(table: str, bucket: str, gen: int, base: bool = False) -> str:
    """current/<table>/bucket=B/[base-]g<G>.parquet."""
    return f"current/{table}/bucket={bucket}/{'base-' if base else ''}g{gen:06d}.parquet"


def row_keys(pmids: pa.Array | pa.ChunkedArray, gens: pa.Array | pa.ChunkedArray) -> pa.Array:
    """(pmid, gen) packed into one int64, for vectorised is_in."""
    return pc.add(pc.multiply(pc.cast(pmids, pa.int64()), _KEY_SHIFT), pc.cast(gens, pa.int64()))


def split_by_bucket(table: pa.Table, width: int) -> dict[str, pa.Table]:
    """Rows grouped by bucket, each group sorted by pmid (stable), in bucket order."""
    if table.num_rows == 0:
        return {}
    buckets = bucket_of(table.column("pmid"), width)
    order = np.lexsort((table.column("pmid").to_numpy(), buckets))  # stable: bucket, then pmid
    table, buckets = table.take(pa.array(order)), buckets[order]
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(buckets)]
    return {bucket_name(int(buckets[s])): table.slice(s, e - s) for s, e in zip(starts, ends)}


def with_gen(table: pa.Table, gen: int) -> pa.Table:
    """The table with a `gen` column (int32) equal to gen."""
    return table.append_column(pa.field(GEN, pa.int32()), pa.array(np.full(table.num_rows, gen, np.int32)))
