"""Export round trips: the official kit and `biomine evaluate` read PubTator, `bioc` reads BioC."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.dataset as pads
import pytest
from bioc import biocjson, biocxml

from jobs.evaluate import evaluate
from pipeline.curation.export import export
from pipeline.curation.source import Selection
from pipeline.tasks.pubtator import read_pubtator
from tests.pipeline.curation.conftest import run_kit


def rows(out: Path, table: str) -> list[dict]:
    return pads.dataset(str(out / table), format="parquet").to_table().to_pylist()


@pytest.mark.ray
def test_pubtator_export_is_read_by_the_official_kit_and_evaluate(sample_run, tmp_path):
    target = tmp_path / "run.pubtator"
    counts = export(sample_run, "pubtator", target)
    entities = rows(sample_run, "entities")
    articles = {a["pmid"]: a for a in rows(sample_run, "articles")}
    assert counts["documents"] == len(articles) and counts["mentions"] == len(entities) > 0
    docs = read_pubtator(target)
    assert {int(d.pmid) for d in docs} == set(articles)
    for doc in docs:  # offsets index "title abstract" and the mention text is there
        art = articles[int(doc.pmid)]
        assert doc.title == (art["title"] or "").replace("\n", " ")
        for m in doc.mentions:
            assert doc.text[m.start:m.end] == m.text
    types = "|".join(sorted({e["type"] for e in entities}))
    kit = run_kit("mention", types, "PubTator", target, target)
    assert kit["TP"] == len(entities) and kit["FP"] == kit["FN"] == 0 and kit["F-score"] == 1.0
    ours = evaluate("bc5cdr-mention", str(target), str(target))
    assert ours["tp"] == len(entities) and ours["f1"] == 1.0


@pytest.mark.ray
@pytest.mark.parametrize("fmt,name", [("bioc-xml", "run.xml"), ("bioc-json", "run.json.gz")])
def test_bioc_export_has_every_entity_at_its_text(sample_run, tmp_path, fmt, name):
    target = tmp_path / name
    export(sample_run, fmt, target)
    opener = gzip.open if name.endswith(".gz") else open
    with opener(target, "rt", encoding="utf-8") as fh:
        collection = (biocxml if fmt == "bioc-xml" else biocjson).load(fh)
    articles = {a["pmid"]: a for a in rows(sample_run, "articles")}
    entities = rows(sample_run, "entities")
    assert sorted(int(d.id) for d in collection.documents) == sorted(articles)
    n_annotations = 0
    for doc in collection.documents:
        art = articles[int(doc.id)]
        title, abstract = doc.passages
        assert (title.infons["type"], title.offset, title.text) == ("title", 0, art["title"] or "")
        assert abstract.offset == len(art["title"] or "") + 1 and abstract.text == (art["abstract"] or "")
        for passage in doc.passages:
            for ann in passage.annotations:
                loc = ann.locations[0]
                assert passage.text[loc.offset - passage.offset: loc.end - passage.offset] == ann.text
                n_annotations += 1
    assert n_annotations == len(entities)
    ids = {ann.id for d in collection.documents for p in d.passages for ann in p.annotations}
    assert ids == {e["mention_id"] for e in entities}


def test_relations_round_trip_through_the_kit_and_bioc(synthetic_run, tmp_path):
    relations = rows(synthetic_run, "relations")
    target = tmp_path / "rel.pubtator.gz"
    counts = export(synthetic_run, "pubtator", target)
    expected = {(r["pmid"], r["relation"], r["head_id"], r["tail_id"]) for r in relations}
    assert counts["relations"] == len(expected) == 6
    plain = tmp_path / "rel.pubtator"
    plain.write_bytes(gzip.decompress(target.read_bytes()))
    got = {(int(r.pmid), r.type, r.id1, r.id2) for d in read_pubtator(plain) for r in d.relations}
    assert got == expected
    kit = run_kit("relation", "CID", "PubTator", plain, plain)
    assert kit["TP"] == len(expected) and kit["F-score"] == 1.0
    assert evaluate("bc5cdr-relation", str(plain), str(plain))["f1"] == 1.0
    # BioC: every relation node points at an annotation of its document
    export(synthetic_run, "bioc-xml", tmp_path / "rel.xml")
    with open(tmp_path / "rel.xml", encoding="utf-8") as fh:
        collection = biocxml.load(fh)
    n_nodes = 0
    for doc in collection.documents:
        ids = {a.id for p in doc.passages for a in p.annotations}
        for rel in doc.relations:
            assert rel.infons["relation"] == "CID"
            assert {n.refid for n in rel.nodes} <= ids
            n_nodes += len(rel.nodes)
    assert n_nodes == sum(len(r["head_mentions"]) + len(r["tail_mentions"]) for r in relations) > 0


def test_relation_only_export_uses_the_evidence_spans_as_mentions(synthetic_run, tmp_path):
    target = tmp_path / "re.pubtator"
    export(synthetic_run, "pubtator", target, Selection(tasks=("re-bc5cdr",)))
    docs = {int(d.pmid): d for d in read_pubtator(target)}
    spans = {(r["pmid"], s["section"], s["start"]) for r in rows(synthetic_run, "relations")
             for side in ("head_spans", "tail_spans") for s in r[side]}
    assert sum(len(d.mentions) for d in docs.values()) == len(spans)
    assert all(m.concept_id.startswith("D") for d in docs.values() for m in d.mentions)


def test_filters_select_rows(synthetic_run, tmp_path):
    entities = rows(synthetic_run, "entities")
    cut = sorted(e["score"] for e in entities)[len(entities) // 2]
    counts = export(synthetic_run, "jsonl", tmp_path / "a.jsonl", Selection(min_score=cut))
    assert counts["mentions"] == sum(e["score"] >= cut for e in entities)
    counts = export(synthetic_run, "jsonl", tmp_path / "b.jsonl",
                    Selection(pmids=frozenset({9002, 9003}), relations=("CID",)))
    lines = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert sorted(x["pmid"] for x in lines) == [9002, 9003] and counts["relations"] == 4
    assert all(e["pmid"] == x["pmid"] for x in lines for e in x["entities"] + x["relations"])
    assert lines[0]["abstract"] and lines[0]["doi"].startswith("10.0/")
    counts = export(synthetic_run, "jsonl", tmp_path / "c.jsonl", Selection(relations=("advise",)))
    assert counts["relations"] == 0 and counts["documents"] == 6
    counts = export(synthetic_run, "jsonl", tmp_path / "d.jsonl", Selection(tasks=("ner",)))
    assert counts["relations"] == 0 and counts["mentions"] == len(entities)


def test_tsv_folder_holds_one_file_per_table(synthetic_run, tmp_path):
    export(synthetic_run, "tsv", str(tmp_path / "tsv") + "/")
    for table in ("articles", "relations", "entities"):
        lines = (tmp_path / "tsv" / f"{table}.tsv").read_text().splitlines()
        header = lines[0].split("\t")
        assert all(len(x.split("\t")) == len(header) for x in lines[1:])
        assert len(lines) - 1 == len(rows(synthetic_run, table))
    rel = (tmp_path / "tsv" / "relations.tsv").read_text().splitlines()
    first = dict(zip(rel[0].split("\t"), rel[1].split("\t")))
    assert first["relation"] == "CID" and first["evidence"] and first["head_mentions"]


def test_unknown_format_and_missing_folder_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="unknown export format"):
        export(tmp_path, "csv", tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="output folder not found"):
        export(tmp_path / "nope", "jsonl", tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="no articles"):
        export(tmp_path, "jsonl", tmp_path / "x")
