"""Which record of each PMID a run mines, resolved on the driver in bounded memory.

NLM update semantics are per PMID, so the index is split by PMID hash into partitions of about
PARTITION_ROWS rows and each is resolved on its own (`pipeline.pubmed.updates.resolve_updates`,
vectorised Arrow): the transient memory of the group-bys, joins and the committed-PMID hash set
is that of one partition, whatever the size of the run. What stays is the index itself (~21
bytes/record) and the result (pmid, file_seq, position, done: ~21 bytes/record).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.pubmed.updates import resolve_updates

PARTITION_ROWS = 1_000_000
LATEST_SCHEMA = pa.schema([("pmid", pa.int64()), ("file_seq", pa.int32()), ("position", pa.int32()),
                           ("done", pa.bool_())])


def _latest(part: pa.Table, done: pa.Array) -> pa.Table:
    """One partition: the record to mine per PMID (highest version, then latest occurrence),
    deleted ones removed, flagged `done` when the PMID is committed."""
    winners = resolve_updates(part)
    order = pc.sort_indices(winners, [("pmid", "ascending"), ("version", "descending"),
                                      ("file_seq", "descending"), ("position", "descending")])
    winners = winners.take(order)
    pmids = winners.column("pmid").to_numpy()
    first = np.ones(len(pmids), dtype=bool)
    first[1:] = pmids[1:] != pmids[:-1]
    latest = winners.filter(pa.array(first))
    return pa.table({"pmid": latest.column("pmid"),
                     "file_seq": latest.column("file_seq").cast(pa.int32()),
                     "position": latest.column("position").cast(pa.int32()),
                     "done": pc.is_in(latest.column("pmid"), value_set=done)}, schema=LATEST_SCHEMA)


def _split(pmids: np.ndarray, parts: int) -> tuple[np.ndarray, np.ndarray]:
    """Row order grouping `pmids` by pmid % parts, and each group's bounds in it."""
    bucket = (pmids % parts).astype(np.int32)
    order = np.argsort(bucket, kind="stable")
    bounds = np.searchsorted(bucket[order], np.arange(parts + 1))
    return order, bounds


def latest_records(index: pa.Table, done: pa.Array) -> pa.Table:
    """LATEST_SCHEMA rows of an index, sorted in NLM order (file_seq, position)."""
    parts = max(1, -(-index.num_rows // PARTITION_ROWS))
    done = done.combine_chunks() if isinstance(done, pa.ChunkedArray) else done
    if parts == 1:
        chunks = [_latest(index, done)]
    else:
        order, bounds = _split(index.column("pmid").to_numpy(), parts)
        d_order, d_bounds = _split(done.to_numpy(zero_copy_only=False), parts)
        chunks = [_latest(index.take(order[a:b]), done.take(d_order[c:d]))
                  for a, b, c, d in zip(bounds[:-1], bounds[1:], d_bounds[:-1], d_bounds[1:])]
        del order, d_order
    latest = pa.concat_tables(chunks).combine_chunks()
    del chunks
    return latest.take(pc.sort_indices(latest, [("file_seq", "ascending"), ("position", "ascending")]))
