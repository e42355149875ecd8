"""Index once: each input file's index (pmid, version, position, record type) cached in OUT/_index/.

A cache entry is `OUT/_index/<file name>.<size>.<mtime ns>.parquet`, so a restart, a second run
or a `--dry-run` on unchanged inputs reads it back instead of parsing the file again, and a
file that changed (another size or mtime) is indexed afresh, its stale entry deleted. Object
stores go through the same pyarrow FileInfo (size, last-modified); pyarrow exposes no ETag,
and an object rewritten in place gets a new last-modified time. Files with damaged records are
not cached: they are indexed again at every start, so their error rows are reported every time.
The same pass collects the MeSH names the articles are indexed with (`pipeline.pubmed.indexing`)
into `OUT/_index_names/<stamp>.parquet`: `biomine lexicon build --index OUT` reads them.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.pubmed.schema import INDEX_SCHEMA
from pipeline.storage import Location

log = logging.getLogger(__name__)

INDEX_DIR = "_index"
NAMES_DIR = "_index_names"
# the driver's copy: positions fit int32 (<= ~30,000 records a file), record type as int8
RECORD_TYPES = pa.array(["article", "deletion"])  # the index holds no error rows
COMPACT_SCHEMA = pa.schema([("pmid", pa.int64()), ("version", pa.int32()),
                            ("file_seq", pa.int32()), ("position", pa.int32()),
                            ("record_type", pa.dictionary(pa.int8(), pa.string()))])


@dataclass(frozen=True)
class IndexStats:
    """How the index of a start was obtained."""

    files: int
    cached: int
    scanned: int


def file_stamp(path: str) -> str:
    """`<name>.<size>.<mtime ns>`: what identifies one version of an input file."""
    info = Location.open(path).info()
    if info.type != pafs.FileType.File:
        raise FileNotFoundError(f"input file not found: {path}")
    return f"{info.base_name}.{info.size}.{info.mtime_ns or 0}"


def scan_file(path: str, names: Any = None) -> tuple[pa.Table, list[dict]]:
    """One file's index rows (INDEX_SCHEMA, file_seq unset) and its error dicts; no Ray.
    `names` (a `NameCollector`) also collects the articles' MeSH indexing names on the way."""
    from pipeline.pubmed.xml import _index_rows, open_xml, scan_records

    rows, errors = [], []
    name = os.path.basename(path)
    try:
        with open_xml(path) as stream:
            records = list(scan_records(stream, path, handler=names or _index_rows))
        for r in records:
            (errors if r["record_type"] == "error" else rows).append(r)
    except Exception as exc:  # unreadable file: reported, the other files go on
        errors.append({"source_file": name, "stage": "index",
                       "message": f"{name}: {type(exc).__name__}: {exc}"})
    table = pa.Table.from_pydict({n: [r.get(n) for r in rows] for n in INDEX_SCHEMA.names},
                                 schema=INDEX_SCHEMA)
    return table, errors


def scan_and_store(path: str, output: str | Location | None, stamp: str) -> tuple[pa.Table, list[dict]]:
    """Index one file and, when it had no errors, cache the result under OUT/_index/."""
    from pipeline.pubmed.indexing import NameCollector
    from pipeline.pubmed.xml import _index_rows

    names = NameCollector(_index_rows)
    table, errors = scan_file(path, names)
    if output is not None and not errors:
        out = Location.open(output)
        out.write_table(f"{NAMES_DIR}/{stamp}.parquet", names.table())
        out.write_table(f"{INDEX_DIR}/{stamp}.parquet", table)
    return table, errors


def compact(table: pa.Table, file_seq: int) -> pa.Table:
    """A file's index in COMPACT_SCHEMA with its rank in the run's file list as file_seq."""
    kinds = table.column("record_type").to_numpy(zero_copy_only=False)
    codes = pa.array((kinds == "deletion").astype(np.int8))
    return pa.table({
        "pmid": table.column("pmid").cast(pa.int64()),
        "version": table.column("version").cast(pa.int32()),
        "file_seq": pa.array(np.full(table.num_rows, file_seq, np.int32)),
        "position": table.column("position").cast(pa.int32()),
        "record_type": pa.DictionaryArray.from_arrays(codes, RECORD_TYPES),
    }, schema=COMPACT_SCHEMA)


def _cached_entries(output: Location | None) -> dict[str, str]:
    """stamp -> path of every cache entry in OUT/_index/ (created when missing)."""
    if output is None:
        return {}
    output.makedirs(INDEX_DIR)
    return {p.rsplit("/", 1)[-1][: -len(".parquet")]: p for p in output.files(INDEX_DIR, ".parquet")}


def _drop_stale(output: Location, entries: dict[str, str], stamps: list[str]) -> None:
    """Delete cache entries of files indexed afresh (same name, other size or mtime)."""
    fs = output.fs
    fresh = set(stamps)
    names = {s.split(".", 1)[0] for s in stamps}
    for stamp, path in entries.items():
        if stamp not in fresh and stamp.split(".", 1)[0] in names:
            fs.delete_file(path)
            stale = path.replace(f"/{INDEX_DIR}/", f"/{NAMES_DIR}/")
            if fs.get_file_info(stale).type == pafs.FileType.File:
                fs.delete_file(stale)


def index_files(ray: Any, files: list[str], output: str | Location | None = None,
                num_cpus: float = 0.5) -> tuple[pa.Table | None, list[dict], IndexStats]:
    """The run's index (COMPACT_SCHEMA, file_seq = rank in `files`): cached files are read back,
    the others indexed in parallel (one Ray task each) and cached; damaged files give error rows."""
    output = Location.open(output) if output is not None else None
    stamps = [file_stamp(p) for p in files]
    entries = _cached_entries(output)
    todo = [i for i, s in enumerate(stamps) if s not in entries]
    scan = ray.remote(num_cpus=num_cpus, max_retries=1)(scan_and_store)
    futures = {i: scan.remote(files[i], output, stamps[i]) for i in todo}
    if output is not None and todo:
        _drop_stale(output, entries, [stamps[i] for i in todo])
    fs = output.fs if output is not None else None
    tables, errors = [], []
    for i, path in enumerate(files):
        if i in futures:
            table, errs = ray.get(futures.pop(i))
            errors.extend(errs)
        else:
            table = pq.read_table(entries[stamps[i]], filesystem=fs)
        tables.append(compact(table, i))
    stats = IndexStats(files=len(files), cached=len(files) - len(todo), scanned=len(todo))
    log.info("index: %d files (%d from %s/%s, %d parsed)", stats.files, stats.cached,
             output, INDEX_DIR, stats.scanned)
    index = pa.concat_tables(tables).combine_chunks() if tables else None
    return index, errors, stats
