"""Update semantics: last (pmid, version) wins, versions kept apart, deletions apply backwards."""
from __future__ import annotations

import random

import pyarrow as pa
import pytest

from pipeline.pubmed.xml import iter_records
from pipeline.pubmed.schema import INDEX_SCHEMA
from pipeline.pubmed.updates import latest_records, resolve_updates, scan_index

DELETED = {41456105, 41557076, 41616784, 41618748, 41618749, 41618779}


def art(pmid, version, seq, pos, tag=""):
    return {"record_type": "article", "pmid": pmid, "version": version, "file_seq": seq,
            "position": pos, "title": tag}


def dele(pmid, version, seq, pos):
    return {"record_type": "deletion", "pmid": pmid, "version": version, "file_seq": seq,
            "position": pos}


def index_of(recs):
    return pa.Table.from_pylist([{k: r[k] for k in INDEX_SCHEMA.names} for r in recs],
                                schema=INDEX_SCHEMA)


def winners(recs):
    return [(r["pmid"], r["version"], r["file_seq"], r["position"]) for r in recs]


CASE = [
    art(1, 1, 1, 0, "old"), art(2, 1, 1, 1), art(3, 1, 1, 2), art(3, 2, 1, 3), art(4, 1, 1, 4),
    art(1, 1, 2, 0, "revised"),          # revision in a later file replaces
    art(5, 1, 2, 1),
    dele(2, 1, 2, 2),                    # deletes 2 (seen before)
    dele(3, None, 2, 2),                 # no version: every version of 3
    dele(5, 1, 2, 2),                    # same file, after the article: deleted
    art(2, 1, 3, 0, "re-added"),         # re-added after its deletion: kept
    dele(4, 2, 3, 1),                    # version 2 never existed: 4 v1 stays
    art(6, 1, 3, 2), art(6, 2, 3, 3),    # versions are separate citations
]
EXPECTED = [(1, 1, 2, 0), (2, 1, 3, 0), (4, 1, 1, 4), (6, 1, 3, 2), (6, 2, 3, 3)]


def test_latest_records_semantics():
    arts, dels = latest_records(CASE)
    assert sorted(winners(arts)) == EXPECTED
    assert {r["pmid"]: r["title"] for r in arts}[1] == "revised"
    assert len(dels) == 4


def test_resolve_updates_matches_latest_records():
    out = resolve_updates(index_of(CASE))
    assert out.column_names == ["pmid", "version", "file_seq", "position"]
    assert winners(out.to_pylist()) == EXPECTED


def test_resolve_updates_agrees_on_random_histories():
    rng = random.Random(7)
    for _ in range(20):
        recs = []
        for seq in range(1, 6):
            for pos in range(rng.randint(1, 12)):
                pmid, v = rng.randint(1, 8), rng.choice([1, 1, 2])
                if rng.random() < 0.25:
                    recs.append(dele(pmid, rng.choice([1, 2, None]), seq, pos))
                else:
                    recs.append(art(pmid, v, seq, pos))
        arts, _ = latest_records(recs)
        assert winners(resolve_updates(index_of(recs)).to_pylist()) == sorted(winners(arts))


def test_resolve_updates_needs_file_seq():
    with pytest.raises(ValueError, match="file_seq"):
        resolve_updates(index_of([art(1, 1, None, 0)]))


def test_samples_baseline_then_update(tmp_path, data_dir):
    paths = []
    for src, name in [("pmparser_sample_pubmed26n1334.xml.gz", "pubmed26n1334.xml.gz"),
                      ("pmparser_sample_pubmed26n1335_update.xml.gz", "pubmed26n1335.xml.gz")]:
        (tmp_path / name).write_bytes((data_dir / "pubmed" / src).read_bytes())
        paths.append(str(tmp_path / name))
    index = pa.concat_tables([scan_index(p) for p in paths])
    assert index.schema == INDEX_SCHEMA and index.num_rows == 66
    out = resolve_updates(index)
    arts, dels = latest_records(r for p in paths for r in iter_records(p))
    # the samples share no PMID and none of the 6 deleted PMIDs is in them: all 60 survive
    assert out.num_rows == len(arts) == 60
    assert {d["pmid"] for d in dels} == DELETED
    assert not DELETED & set(out["pmid"].to_pylist())
    assert sorted(winners(arts)) == winners(out.to_pylist())
    # replaying the baseline after the update as a "later file" re-adds nothing deleted
    replay = index.append_column("x", pa.array([0] * index.num_rows)).drop_columns(["x"])
    assert resolve_updates(pa.concat_tables([replay, index])).num_rows == 60
