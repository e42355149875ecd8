"""Reading `STATE/current`: live rows = data rows anti-joined with tombstones on (pmid, gen).

`read_current` reads the files `_state.json` lists (a consistent snapshot even while an update
commits), one bucket at a time. Any engine can read the folders directly between updates:
`current/<table>/` and `current/tombstones/` are hive-partitioned (`bucket=NNNNN/`) Parquet
datasets; `duckdb_sql` gives the query (Spark: `.join(tombstones, ["pmid", "gen"], "left_anti")`).
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipeline.state.partitions import DATA_TABLES, GEN, TOMBSTONES, row_keys
from pipeline.state.store import StateStore
from pipeline.storage import Location


def _entries(state_dir: str | Location, table: str) -> tuple[StateStore, dict[str, Any]]:
    if table not in DATA_TABLES:
        raise ValueError(f"unknown state table {table!r}; expected one of {list(DATA_TABLES)}")
    store = StateStore(state_dir)
    state = store.load()
    if state is None:
        raise FileNotFoundError(f"{store.uri}: no _state.json (not a biomine update state folder)")
    return store, state["buckets"]


def iter_current(state_dir: str | Location, table: str, columns: list[str] | None = None, keep_gen: bool = False):
    """Live rows of a table, one Arrow table per bucket (bucket order)."""
    store, buckets = _entries(state_dir, table)
    for name in sorted(buckets):
        entry = buckets[name]
        files = [store.path(rel) for rel in entry["files"][table]]
        if not files:
            continue
        wanted = None if columns is None else list(dict.fromkeys([*columns, "pmid", GEN]))
        rows = ds.dataset(files, format="parquet", filesystem=store.fs).to_table(columns=wanted)
        tombs = [store.path(rel) for rel in entry["files"][TOMBSTONES]]
        dead = ds.dataset(tombs, format="parquet", filesystem=store.fs).to_table()
        if dead.num_rows:
            keys = row_keys(rows.column("pmid"), rows.column(GEN))
            rows = rows.filter(pc.invert(pc.is_in(keys, value_set=row_keys(dead["pmid"], dead[GEN]).combine_chunks())))
        if columns is not None:
            rows = rows.select(columns + ([GEN] if keep_gen and GEN not in columns else []))
        elif not keep_gen:
            rows = rows.drop_columns([GEN])
        yield rows


def read_current(state_dir: str, table: str, columns: list[str] | None = None, keep_gen: bool = False) -> pa.Table:
    """All live rows of a table (for tests and small states; stream with iter_current otherwise)."""
    parts = list(iter_current(state_dir, table, columns, keep_gen))
    if not parts:
        raise FileNotFoundError(f"{state_dir}: table {table} holds no files yet")
    return pa.concat_tables(parts, promote_options="default")


def duckdb_sql(state_dir: str, table: str) -> str:
    """DuckDB query of the live rows of a table, reading the folders directly (hive partitions)."""
    def scan(name: str) -> str:
        return f"read_parquet('{state_dir}/current/{name}/*/*.parquet', hive_partitioning = true)"

    return (f"SELECT r.* EXCLUDE (gen, bucket) FROM {scan(table)} r "
            f"ANTI JOIN {scan(TOMBSTONES)} t ON r.pmid = t.pmid AND r.gen = t.gen")
