"""The relation graph (Ray Data groupby/aggregate) against a recount from relations/."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from pipeline.curation.graph import normalise
from pipeline.curation.source import table_dir

pytestmark = pytest.mark.ray


def table(folder: Path) -> list[dict]:
    return pads.dataset(str(folder), format="parquet").to_table().to_pylist()


def recount(out: Path) -> tuple[dict, dict]:
    """Edges and nodes counted from relations/ and articles/ in plain Python (the oracle)."""
    years = {a["pmid"]: a["year"] for a in table(table_dir(out, "articles"))}
    edges: dict = defaultdict(lambda: {"pmids": set(), "rows": 0})
    nodes: dict = defaultdict(lambda: {"pmids": set(), "edges": set(), "mentions": set()})
    for r in table(table_dir(out, "relations")):
        head = r["head_id"] or normalise(r["head_text"])
        tail = r["tail_id"] or normalise(r["tail_text"])
        key = (head, r["head_type"], r["relation"], tail, r["tail_type"])
        edges[key]["pmids"].add(r["pmid"])
        edges[key]["rows"] += 1
        for side, node in (("head", head), ("tail", tail)):
            n = nodes[(node, r[f"{side}_type"])]
            n["pmids"].add(r["pmid"])
            n["edges"].add(key)
            n["mentions"] |= {(r["pmid"], s["section"], s["start"], s["end"]) for s in r[f"{side}_spans"]}
    edge_view = {k: {"n_articles": len(v["pmids"]), "n_rows": v["rows"], "pmids": sorted(v["pmids"]),
                     "first_year": min(years[p] for p in v["pmids"]),
                     "last_year": max(years[p] for p in v["pmids"])} for k, v in edges.items()}
    node_view = {k: {"n_articles": len(v["pmids"]), "n_edges": len(v["edges"]),
                     "n_mentions": len(v["mentions"])} for k, v in nodes.items()}
    return edge_view, node_view


def graph_view(out: Path) -> tuple[dict, dict]:
    edges = {(e["head"], e["head_type"], e["relation"], e["tail"], e["tail_type"]):
             {k: e[k] for k in ("n_articles", "n_rows", "pmids", "first_year", "last_year")}
             for e in table(out / "graph" / "edges")}
    nodes = {(n["node"], n["type"]): {k: n[k] for k in ("n_articles", "n_edges", "n_mentions")}
             for n in table(out / "graph" / "nodes")}
    return edges, nodes


def test_graph_counts_equal_a_recount_from_relations(ray_cluster, synthetic_run, capsys):
    from jobs.cli import main

    assert main(["aggregate", str(synthetic_run)]) == 0  # on the session's cluster
    edges, nodes = graph_view(synthetic_run)
    want_edges, want_nodes = recount(synthetic_run)
    assert edges == want_edges and nodes == want_nodes
    assert f"graph: {len(want_edges)} edges, {len(want_nodes)} nodes" in capsys.readouterr().out
    top = max(table(synthetic_run / "graph" / "edges"), key=lambda e: e["n_articles"])
    assert top["head_names"] == ["cisplatin"] and top["n_articles"] == 3
    assert [e["pmid"] for e in top["evidence"]] == [9004, 9002, 9001]  # newest first
    assert all("cisplatin" in e["text"].lower() for e in top["evidence"])


def live_recount(state: Path) -> tuple[dict, dict]:
    """The recount over the state's live rows (tombstones applied), via a plain run-like folder."""
    from pipeline.state.read import read_current

    flat = state.parent / "live-view"
    for name in ("articles", "relations"):
        (flat / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(read_current(str(state), name), flat / name / "part-0.parquet")
    return recount(flat)


def test_graph_of_an_update_state_drops_deleted_articles(ray_cluster, synthetic_run, tmp_path):
    from pipeline.state.apply import apply_file
    from pipeline.state.partitions import Layout
    from pipeline.state.store import StateStore
    from pipeline.dataflow.update_job import refresh_graph

    state = tmp_path / "state"
    store = StateStore(str(state))
    st = store.open({"tasks": ["re-bc5cdr"]}, Layout(bucket_width=2))  # several buckets
    new = {name: pads.dataset(str(synthetic_run / name), format="parquet").to_table()
           for name in ("articles", "relations", "entities")}
    no_deletions = pa.table({"pmid": pa.array([], pa.int64()), "version": pa.array([], pa.int32()),
                             "source_file": pa.array([], pa.string()), "position": pa.array([], pa.int64())})
    st, _ = apply_file(store, st, "pubmed26n0001.xml", new, no_deletions)
    refresh_graph(str(state))
    before, _ = graph_view(state)
    assert any(9001 in e["pmids"] for e in before.values())
    deletion = pa.table({"pmid": pa.array([9001], pa.int64()), "version": pa.array([None], pa.int32()),
                         "source_file": ["pubmed26n1335.xml"], "position": pa.array([0], pa.int64())})
    empty = {name: t.schema.empty_table() for name, t in new.items()}
    st, _ = apply_file(store, st, "pubmed26n1335.xml", empty, deletion)  # a DeleteCitation
    refresh_graph(str(state))
    edges, nodes = graph_view(state)
    assert (edges, nodes) == live_recount(state)
    assert all(9001 not in e["pmids"] for e in edges.values())
    assert edges[("D002945", "Chemical", "CID", "D007674", "Disease")]["pmids"] == [9002, 9004]
    assert not list(state.glob(".graph-*"))  # temporaries removed
