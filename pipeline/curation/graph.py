"""`biomine aggregate`: the relation graph of an output folder (pair -> articles), with Ray Data.

OUT/graph/edges/: one row per (head, head_type, relation, tail, tail_type), where a node key is
its dictionary id, else its normalised name (lowercase, single spaces): n_articles, n_rows,
pmids, first/last publication year, the names seen, and up to TOP_EVIDENCE evidence sentences
(newest articles first, one per article). OUT/graph/nodes/: one row per (node, type):
n_articles, n_edges (distinct pairs) and n_mentions (distinct evidence spans of its names).
Both are Ray Data groupby/aggregate jobs over `relations/`, so they run on the cluster; the
publication year comes from a PMID -> year table broadcast to the tasks (12 bytes an article).
The graph is rebuilt from the tables each time, so an update's deletions and revisions (which
leave `current/` without them) leave the graph without their contributions.
"""
from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from ray.data.aggregate import AggregateFnV2, CountDistinct, Count, Max, Min, Unique

from pipeline.curation.source import open_folder, table_dir, table_files
from pipeline.storage import Location

log = logging.getLogger(__name__)

TOP_EVIDENCE = 3
EDGE_KEYS = ["head", "head_type", "relation", "tail", "tail_type"]
NODE_KEYS = ["node", "type"]
REL_COLUMNS = ["pmid", "relation", "head_text", "head_id", "head_type", "tail_text", "tail_id",
               "tail_type", "head_spans", "tail_spans", "evidence"]
EVIDENCE_ITEM = pa.struct([("pmid", pa.int64()), ("year", pa.int32()), ("text", pa.string())])
EDGE_SCHEMA = pa.schema([
    ("head", pa.string()), ("head_type", pa.string()), ("relation", pa.string()),
    ("tail", pa.string()), ("tail_type", pa.string()),
    ("head_id", pa.string()), ("tail_id", pa.string()),          # null: the node is a name
    ("head_names", pa.list_(pa.string())), ("tail_names", pa.list_(pa.string())),
    ("n_articles", pa.int64()), ("n_rows", pa.int64()), ("pmids", pa.list_(pa.int64())),
    ("first_year", pa.int32()), ("last_year", pa.int32()),
    ("evidence", pa.list_(EVIDENCE_ITEM)),
])
NODE_SCHEMA = pa.schema([
    ("node", pa.string()), ("type", pa.string()), ("node_id", pa.string()),
    ("names", pa.list_(pa.string())), ("n_articles", pa.int64()), ("n_edges", pa.int64()),
    ("n_mentions", pa.int64()),
])


def normalise(name: str | None) -> str:
    """A node name as the graph keys it: lowercase, single spaces, trimmed."""
    return " ".join((name or "").lower().split())


class TopEvidence(AggregateFnV2):
    """Up to k evidence sentences of a group, one per article, newest (then highest PMID) first."""

    def __init__(self, k: int = TOP_EVIDENCE, alias_name: str = "evidence") -> None:
        self.k = k
        super().__init__(alias_name, zero_factory=list, on="evidence_text", ignore_nulls=False)

    def _best(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen, out = set(), []
        order = sorted(items, key=lambda x: (-(x["year"] or 0), -x["pmid"], x["text"]))
        for item in order:
            if item["pmid"] not in seen:
                seen.add(item["pmid"])
                out.append(item)
        return out[: self.k]

    def aggregate_block(self, block: Any) -> list[dict[str, Any]]:
        from ray.data.block import BlockAccessor

        table = BlockAccessor.for_block(block).to_arrow()
        cols = [table.column(c).to_pylist() for c in ("pmid", "year", "evidence_text")]
        return self._best([{"pmid": p, "year": y, "text": t} for p, y, t in zip(*cols) if t])

    def combine(self, current: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._best(list(current or []) + list(new or []))


class EdgeRows:
    """Relation rows -> edge rows: node keys, year (from the broadcast table), first evidence text."""

    def __init__(self, years: tuple[np.ndarray, np.ndarray]) -> None:
        self.pmids, self.years = years

    def year_of(self, pmids: np.ndarray) -> pa.Array:
        """Publication years of PMIDs (null where unknown)."""
        if len(self.pmids) == 0:
            return pa.nulls(len(pmids), pa.int32())
        at = np.clip(np.searchsorted(self.pmids, pmids), 0, len(self.pmids) - 1)
        found = self.pmids[at] == pmids
        return pa.array(np.where(found, self.years[at], 0).astype(np.int32), mask=~found)

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        out: dict[str, list] = {c: [] for c in (*EDGE_KEYS, "head_id", "tail_id", "head_name",
                                                "tail_name", "pmid", "evidence_text")}
        for r in rows:
            for side in ("head", "tail"):
                name = normalise(r[f"{side}_text"])
                out[side].append(r[f"{side}_id"] or name)
                out[f"{side}_id"].append(r[f"{side}_id"])
                out[f"{side}_name"].append(name)
                out[f"{side}_type"].append(r[f"{side}_type"])
            out["relation"].append(r["relation"])
            out["pmid"].append(r["pmid"])
            out["evidence_text"].append(" ".join(e["text"] for e in r["evidence"] or ()) or None)
        table = pa.table(out, schema=pa.schema(
            [(c, pa.int64() if c == "pmid" else pa.string()) for c in out]))
        return table.append_column("year", self.year_of(np.asarray(out["pmid"], dtype=np.int64)))


def read_relations(batch: pa.Table) -> pa.Table:
    """The relation rows of the Parquet files named in a batch (the graph's columns only)."""
    tables = []
    for uri, path in zip(batch.column("folder").to_pylist(), batch.column("path").to_pylist()):
        fs = Location.open(uri).fs  # re-opened in the worker, with its own credentials
        tables.append(pq.read_table(path, columns=REL_COLUMNS, filesystem=fs))
    return pa.concat_tables(tables)


def node_rows(batch: pa.Table) -> pa.Table:
    """Relation rows -> one row per (node, evidence span) of each side (a side without spans: one row)."""
    out: dict[str, list] = {c: [] for c in ("node", "type", "node_id", "name", "pmid", "edge", "mention")}
    for r in batch.to_pylist():
        keys = {s: r[f"{s}_id"] or normalise(r[f"{s}_text"]) for s in ("head", "tail")}
        edge = "\t".join([keys["head"], r["head_type"], r["relation"], keys["tail"], r["tail_type"]])
        for side in ("head", "tail"):
            spans = r[f"{side}_spans"] or [None]
            for span in spans:
                out["node"].append(keys[side])
                out["type"].append(r[f"{side}_type"])
                out["node_id"].append(r[f"{side}_id"])
                out["name"].append(normalise(r[f"{side}_text"]))
                out["pmid"].append(r["pmid"])
                out["edge"].append(edge)
                out["mention"].append(None if span is None else
                                      f"{r['pmid']}:{span['section']}:{span['start']}-{span['end']}")
    return pa.table(out, schema=pa.schema([(c, pa.int64() if c == "pmid" else pa.string()) for c in out]))


def _finish_edges(batch: pa.Table) -> pa.Table:
    pmids = [sorted(p or []) for p in batch.column("pmids").to_pylist()]
    names = {s: [sorted(n or []) for n in batch.column(f"{s}_names").to_pylist()] for s in ("head", "tail")}
    evidence = [e or [] for e in batch.column("evidence").to_pylist()]
    cols = {name: batch.column(name) for name in batch.column_names}
    cols.update({"pmids": pmids, "head_names": names["head"], "tail_names": names["tail"],
                 "evidence": evidence})
    return pa.table({f.name: pa.array(_plain(cols[f.name]), f.type) for f in EDGE_SCHEMA}, schema=EDGE_SCHEMA)


def _finish_nodes(batch: pa.Table) -> pa.Table:
    cols = {name: batch.column(name) for name in batch.column_names}
    cols["names"] = [sorted(n or []) for n in batch.column("names").to_pylist()]
    return pa.table({f.name: pa.array(_plain(cols[f.name]), f.type) for f in NODE_SCHEMA}, schema=NODE_SCHEMA)


def _plain(values: Any) -> Any:
    return values.to_pylist() if isinstance(values, (pa.Array, pa.ChunkedArray)) else values


def _years(output: Location) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (pmid, year) arrays of a run folder's articles (streamed, two columns)."""
    folder = table_dir(output, "articles")
    if folder is None:
        raise FileNotFoundError(f"{output.url()}: no articles/ table (not a biomine run or state folder)")
    data = pads.dataset(table_files(folder), format="parquet", filesystem=output.fs)
    return _sorted_years(data.to_batches(columns=["pmid", "year"]))


def _sorted_years(batches: Any) -> tuple[np.ndarray, np.ndarray]:
    """(pmid, year) batches -> PMID-sorted arrays (a missing year is 0)."""
    pmids, years = [], []
    for batch in batches:
        pmids.append(batch.column("pmid").to_numpy(zero_copy_only=False))
        years.append(pc.fill_null(batch.column("year"), 0).to_numpy(zero_copy_only=False))
    if not pmids:
        return np.array([], np.int64), np.array([], np.int32)
    p, y = np.concatenate(pmids).astype(np.int64), np.concatenate(years).astype(np.int32)
    order = np.argsort(p, kind="stable")
    return p[order], y[order]


def _inputs(out: Location, work: Location) -> tuple[list[str], tuple[np.ndarray, np.ndarray]]:
    """Relation files and article years: a run folder's own, or an update state's live rows
    (tombstoned rows left out; written bucket by bucket to `work`, so memory is one bucket)."""
    if not out.is_file("_state.json"):
        rel_dir = table_dir(out, "relations")
        return (sorted(table_files(rel_dir)) if rel_dir is not None else []), _years(out)
    from pipeline.state.read import iter_current

    files = []
    for i, rows in enumerate(iter_current(out, "relations")):
        if rows.num_rows:
            work.write_table(f"relations-{i:05d}.parquet", rows)
            files.append(work.path(f"relations-{i:05d}.parquet"))
    return files, _sorted_years(iter_current(out, "articles", columns=["pmid", "year"]))


def build_graph(output_dir: str | Path | Location) -> dict[str, Any]:
    """Rebuild OUT/graph/{edges,nodes} from a run or update state folder (local or object
    store); returns row counts."""
    out = open_folder(output_dir)
    tmp = out.child(f".graph-{uuid.uuid4().hex[:8]}.tmp")
    live = out.child(f".graph-live-{uuid.uuid4().hex[:8]}.tmp")
    try:
        files, years = _inputs(out, live)
        counts = _build(out, tmp, files, years)
    finally:
        live.delete_dir("")
        tmp.delete_dir("")
    return counts


def _swap_in(out: Location, tmp: Location) -> None:
    """Make tmp/ the new OUT/graph/: a rename locally; on an object store the old graph is
    deleted and the new files copied in (a reader may find the graph partial meanwhile)."""
    out.delete_dir("graph")
    if out.is_local:
        out.fs.move(tmp.path(), out.path("graph"))
        return
    for info in tmp.list(recursive=True):
        if info.type.name == "File":
            out.fs.move(info.path, out.path("graph") + info.path[len(tmp.path()):])


def _build(out: Location, tmp: Location, files: list[str], years: tuple[np.ndarray, np.ndarray]) -> dict:
    """Aggregate `files` into tmp/{edges,nodes}, then swap tmp in as OUT/graph."""
    import ray

    if not files:  # no relations: empty tables, no cluster job
        for name, schema in (("edges", EDGE_SCHEMA), ("nodes", NODE_SCHEMA)):
            tmp.write_table(f"{name}/part-0.parquet", schema.empty_table())
    else:
        if not ray.is_initialized():
            ray.init(include_dashboard=False)
        # one read task per file (ray.data.read_parquet's path resolution imports fsspec's
        # HTTP filesystem, which fails without aiohttp)
        paths = ray.data.from_items([{"folder": out.uri, "path": f} for f in files],
                                    override_num_blocks=min(len(files), 1000))
        rels = paths.map_batches(read_relations, batch_size=1, batch_format="pyarrow")
        edges = rels.map_batches(EdgeRows, fn_constructor_kwargs={"years": years}, batch_format="pyarrow",
                                 concurrency=(1, 4))
        parts = max(2, int(ray.cluster_resources().get("CPU", 2)))  # shuffle partitions
        edges = edges.groupby(EDGE_KEYS, num_partitions=parts).aggregate(
            Max("head_id", alias_name="head_id"), Max("tail_id", alias_name="tail_id"),
            Unique("head_name", alias_name="head_names"), Unique("tail_name", alias_name="tail_names"),
            CountDistinct("pmid", alias_name="n_articles"), Count(alias_name="n_rows"),
            Unique("pmid", alias_name="pmids"), Min("year", alias_name="first_year"),
            Max("year", alias_name="last_year"), TopEvidence())
        edges.map_batches(_finish_edges, batch_format="pyarrow").write_parquet(
            tmp.path("edges"), filesystem=out.fs)
        nodes = rels.map_batches(node_rows, batch_format="pyarrow").groupby(
            NODE_KEYS, num_partitions=parts).aggregate(
            Max("node_id", alias_name="node_id"), Unique("name", alias_name="names"),
            CountDistinct("pmid", alias_name="n_articles"), CountDistinct("edge", alias_name="n_edges"),
            CountDistinct("mention", alias_name="n_mentions"))
        nodes.map_batches(_finish_nodes, batch_format="pyarrow").write_parquet(
            tmp.path("nodes"), filesystem=out.fs)
        for name, schema in (("edges", EDGE_SCHEMA), ("nodes", NODE_SCHEMA)):
            if not table_files(tmp.child(name)):  # no rows: Ray Data writes no file
                tmp.write_table(f"{name}/part-0.parquet", schema.empty_table())
    _swap_in(out, tmp)
    graph = out.child("graph")
    counts = {name: pads.dataset(table_files(graph.child(name)), format="parquet",
                                 filesystem=out.fs).count_rows() for name in ("edges", "nodes")}
    log.info("graph of %s: %d edges, %d nodes -> %s", out.url(), counts["edges"], counts["nodes"],
             graph.url())
    return counts
