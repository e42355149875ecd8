"""Key index of a bucket's base file: which PMIDs it holds, as a bitmap (1 bit per PMID of the range).

`current/_keys/bucket=B/g<G>.parquet` is one row: the bucket's first PMID, a packed bitmap of
the PMIDs present in its base (compacted) article file, the generation every base row carries,
and the few (pmid, version) pairs whose version is not 1. An update asks it which of its PMIDs
the base holds instead of scanning the base's pmid column: 1 M PMIDs cost 125 kB, so finding the
live version of a revised PMID costs the update, not the state. (`_` prefix: not a data table.)
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.state.partitions import GEN

KEYS = "_keys"
KEYS_SCHEMA = pa.schema([("start", pa.int64()), ("width", pa.int64()), (GEN, pa.int32()), ("bits", pa.binary()),
                         ("odd_pmids", pa.list_(pa.int64())), ("odd_versions", pa.list_(pa.int32()))])


def keys_path(bucket: str, gen: int) -> str:
    """current/_keys/bucket=B/g<G>.parquet."""
    return f"current/{KEYS}/bucket={bucket}/g{gen:06d}.parquet"


def keys_table(pmids: np.ndarray, versions: np.ndarray, start: int, width: int, gen: int) -> pa.Table:
    """The key index of a base holding these (pmid, version) rows of PMIDs start..start+width-1."""
    offsets = pmids.astype(np.int64) - start
    if len(offsets) and (offsets.min() < 0 or offsets.max() >= width):
        raise ValueError(f"PMIDs outside bucket range {start}..{start + width - 1}")
    bits = np.zeros(width, dtype=bool)
    bits[offsets] = True
    order = np.argsort(pmids, kind="stable")
    pmids, versions = pmids[order], versions[order]
    odd = versions != 1
    return pa.Table.from_pydict({"start": [start], "width": [width], GEN: [gen],
                                 "bits": [np.packbits(bits).tobytes()],
                                 "odd_pmids": [pmids[odd].astype(np.int64).tolist()],
                                 "odd_versions": [versions[odd].astype(np.int32).tolist()]}, schema=KEYS_SCHEMA)


def base_rows(keys: pa.Table, wanted: np.ndarray) -> pa.Table:
    """(pmid, version, gen) of the base rows among `wanted` PMIDs (sorted, unique)."""
    row = keys.to_pylist()[0]
    bits = np.unpackbits(np.frombuffer(row["bits"], dtype=np.uint8), count=row["width"]).astype(bool)
    offsets = wanted - row["start"]
    inside = (offsets >= 0) & (offsets < row["width"])
    found = wanted[inside][bits[offsets[inside]]]
    versions = np.ones(len(found), dtype=np.int32)
    odd_pmids, odd_versions = np.array(row["odd_pmids"], np.int64), np.array(row["odd_versions"], np.int32)
    if len(odd_pmids) and len(found):  # sorted: versions other than 1 by binary search
        at = np.searchsorted(odd_pmids, found).clip(0, len(odd_pmids) - 1)
        hit = odd_pmids[at] == found
        versions[hit] = odd_versions[at[hit]]
    return pa.table({"pmid": pa.array(found, pa.int64()), "version": pa.array(versions),
                     GEN: pa.array(np.full(len(found), row[GEN], np.int32))})
