"""Real sample files folded file by file into a bucketed state = the in-memory NLM update semantics."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipeline.pubmed.updates import latest_records
from pipeline.pubmed.xml import iter_records
from pipeline.state.apply import apply_file
from pipeline.state.partitions import Layout
from pipeline.state.read import read_current
from pipeline.state.store import StateStore
from tests.pipeline.state.synth import ARTICLES, DELETIONS, ENTITIES, RELATIONS, rows

SAMPLE = Path(__file__).parents[2] / "data" / "pubmed"
FILES = ["pmparser_sample_pubmed26n1334.xml.gz", "pmparser_sample_pubmed26n1335_update.xml.gz"]
COLUMNS = ["pmid", "version", "title", "source_file"]


def third_file(first: list[dict]) -> list[dict]:
    """A later update built from the baseline sample: revisions, versioned/unversioned deletions, a re-add."""
    arts = [r for r in first if r["record_type"] == "article"]
    name, out = "pubmed26n1336.xml", []

    def emit(rec: dict) -> None:
        out.append({**rec, "source_file": name, "position": len(out)})

    for rec in arts[0:9:3]:
        emit({**rec, "title": f"revised: {rec['title']}"})
    emit({**arts[1], "version": 2, "title": "second version"})       # a new version replaces v1
    emit({"record_type": "deletion", "pmid": arts[2]["pmid"], "version": 1})
    emit({"record_type": "deletion", "pmid": arts[4]["pmid"], "version": None})
    emit({"record_type": "deletion", "pmid": arts[5]["pmid"], "version": 2})  # no such version: kept
    emit({"record_type": "deletion", "pmid": arts[7]["pmid"], "version": 1})
    emit({**arts[7], "title": "re-added after its deletion"})         # same file, after: kept
    emit({**arts[8], "title": "revised, then deleted"})
    emit({"record_type": "deletion", "pmid": arts[8]["pmid"], "version": 1})
    return out


def one_per_pmid(articles: list[dict]) -> list[dict]:
    """Highest version per PMID, as `biomine run` keeps (last occurrence among equals)."""
    best: dict[int, dict] = {}
    for rec in articles:
        if rec["pmid"] not in best or rec["version"] >= best[rec["pmid"]]["version"]:
            best[rec["pmid"]] = rec
    return list(best.values())


def mined(records: list[dict]) -> dict:
    """What a run of one file hands the state: its winners, their entity/relation rows, its deletions."""
    arts = one_per_pmid(latest_records(records)[0])
    dels = [{**r, "source_file": "x", "position": r.get("position", 0)} for r in records
            if r["record_type"] == "deletion"]
    return {"articles": pa.Table.from_pylist([{c: a[c] for c in COLUMNS} for a in arts], ARTICLES),
            "entities": pa.Table.from_pylist(entity_rows(arts), ENTITIES),
            "relations": pa.Table.from_pylist([{"pmid": a["pmid"], "version": a["version"],
                                                "head_text": (a["title"] or "")[:12]} for a in arts], RELATIONS),
            "deletions": pa.Table.from_pylist([{c: d[c] for c in DELETIONS.names} for d in dels], DELETIONS)}


def entity_rows(arts: list[dict]) -> list[dict]:
    return [{"pmid": a["pmid"], "version": a["version"], "start": k, "text": f"{(a['title'] or '')[:20]}#{k}"}
            for a in arts for k in range(2)]


def test_sample_files_match_in_memory_semantics(tmp_path):
    files = [list(iter_records(str(SAMPLE / f))) for f in FILES]
    files.append(third_file(files[0]))
    store = StateStore(str(tmp_path))
    state = store.open({"tasks": ["ner"]}, Layout(bucket_width=10_000))
    for i, records in enumerate(files):
        batch = mined(records)
        deletions = batch.pop("deletions")
        state, counts = apply_file(store, state, f"file{i}", batch, deletions)

    expected = one_per_pmid(latest_records([r for f in files for r in f])[0])
    got = read_current(str(tmp_path), "articles")
    assert rows(got.select(COLUMNS)) == sorted(tuple(a[c] for c in COLUMNS) for a in expected)
    assert counts["current_articles"] == len(expected) == 30 + 30 - 3
    assert rows(read_current(str(tmp_path), "entities")) == rows(pa.Table.from_pylist(entity_rows(expected), ENTITIES))
    assert len(state["buckets"]) > 10  # PMIDs 26.2 M - 41.6 M over 10 k-PMID buckets
    assert counts["revised"] == 5 and counts["removed"] == 3
