"""A run with --lexicon: rows, export, graph, manifest summary and report carry MeSH ids and sources."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from pipeline.curation.graph import EDGE_SCHEMA, build_graph
from pipeline.curation.report import write_report
from pipeline.linking.lexicon import Entry, LexiconBuilder
from pipeline.linking.summary import linking_summary
from pipeline.tasks.pubtator import read_pubtator
from pipeline.tasks.rows import ENTITY_SCHEMA, RELATION_SCHEMA


@pytest.fixture(scope="module")
def linked_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.pipeline.curation.synthetic import make_output

    root = tmp_path_factory.mktemp("linked")
    builder = LexiconBuilder()
    builder.add_all([Entry("Cisplatin", "D002945", "Chemical", "mesh"),
                     Entry("Lithium", "D008094", "Chemical", "mesh"),
                     Entry("nephrotoxicity", "D007674", "Disease", "gold"),
                     Entry("Tremor", "D014202", "Disease", "obo")])
    builder.write(root / "lex")
    return make_output(root / "out", lexicon=str(root / "lex"))


def rows(out: Path, table: str) -> list[dict]:
    return pads.dataset(str(out / table), format="parquet").to_table().to_pylist()


def test_rows_carry_ids_sources_and_scores(linked_run: Path) -> None:
    rels = rows(linked_run, "relations")
    cis = [r for r in rels if r["head_text"] == "cisplatin"]  # generated lower case: level "lowercase"
    assert cis and all((r["head_id"], r["head_id_source"]) == ("D002945", "mesh")
                       and r["head_id_score"] == pytest.approx(0.95)
                       and (r["tail_id"], r["tail_id_source"]) == ("D007674", "gold") for r in cis)
    clonidine = [r for r in rels if r["head_text"] == "clonidine"]
    assert clonidine and all(r["head_id"] is None and r["head_id_source"] is None for r in clonidine)
    ents = rows(linked_run, "entities")
    tremor = [e for e in ents if e["text"].lower() == "tremor"]
    assert tremor and all((e["id"], e["id_source"]) == ("D014202", "obo") for e in tremor)
    assert {f.name for f in ENTITY_SCHEMA} >= {"id", "id_source", "id_score"}
    assert {f.name for f in RELATION_SCHEMA} >= {"head_id_source", "tail_id_score"}


def test_export_carries_ids(linked_run: Path, tmp_path: Path) -> None:
    from pipeline.curation.export import export

    export(linked_run, "pubtator", tmp_path / "x.pubtator")
    docs = {d.pmid: d for d in read_pubtator(tmp_path / "x.pubtator")}
    assert ("CID", "D002945", "D007674") in {(r.type, r.id1, r.id2) for r in docs["9001"].relations}
    assert any(m.concept_id == "D002945" for m in docs["9001"].mentions)


def test_summary_and_report(linked_run: Path) -> None:
    summary = linking_summary(linked_run)
    assert summary["Chemical"]["linked"] < summary["Chemical"]["mentions"]  # clonidine, naloxone
    assert summary["Chemical"]["by_source"]["mesh"] == summary["Chemical"]["linked"]
    assert 0 < summary["Disease"]["linked_share"] < 1
    page = Path(write_report(linked_run)).read_text()
    assert "Linking to MeSH" in page and "mesh" in page


def test_graph_of_an_output_without_relations_is_empty(tmp_path: Path) -> None:
    out = tmp_path / "out"  # what an NER-only run leaves: relations/ files without rows
    for name in ("relations", "articles"):
        (out / name).mkdir(parents=True)
    pq.write_table(RELATION_SCHEMA.empty_table(), out / "relations" / "part-0.parquet")
    pq.write_table(pa.table({"pmid": pa.array([1], pa.int64()), "year": pa.array([2020], pa.int32())}),
                   out / "articles" / "part-0.parquet")
    assert build_graph(out) == {"edges": 0, "nodes": 0}
    assert pq.read_schema(next((out / "graph" / "edges").glob("*.parquet"))).names == EDGE_SCHEMA.names
