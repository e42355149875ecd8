"""The relation graph (Ray Data groupby/aggregate) against a recount from relations/."""
from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from pipeline.curation.graph import build_graph, normalise
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


def test_graph_of_a_state_folder_drops_deleted_articles(ray_cluster, synthetic_run, tmp_path):
    state = tmp_path / "state"
    for name in ("articles", "relations", "entities"):  # the update job's current/ layout
        rows = pads.dataset(str(synthetic_run / name), format="parquet").to_table()
        rows = rows.filter(pc.invert(pc.equal(rows.column("pmid"), 9001)))  # 9001 deleted
        (state / "current" / name).mkdir(parents=True)
        pq.write_table(rows, state / "current" / name / "gen-000002.parquet")
    build_graph(state)
    edges, nodes = graph_view(state)
    assert (edges, nodes) == recount(state)
    assert all(9001 not in e["pmids"] for e in edges.values())
    assert edges[("D002945", "Chemical", "CID", "D007674", "Disease")]["pmids"] == [9002, 9004]
    shutil.rmtree(state / "current" / "relations")  # no relations at all: an empty graph
    assert build_graph(state) == {"edges": 0, "nodes": 0}
