"""Selection: the driver's keep-lists hold exactly the latest record per PMID, and a read task
given its file's keep-list parses exactly those records."""
from __future__ import annotations

import gzip
import re
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.dataflow.build import keep_lists, select_pending
from pipeline.planning.index_cache import compact, scan_file
from pipeline.pubmed.read import keep_positions_handler
from pipeline.pubmed.updates import latest_records
from pipeline.pubmed.xml import iter_records, open_xml, scan_records

SAMPLE = resources.files("pipeline") / "data" / "sample"


def articles_of(path: Path) -> list[str]:
    text = gzip.decompress(path.read_bytes()).decode()
    return re.findall(r"<PubmedArticle>.*?</PubmedArticle>", text, flags=re.S)


def with_version(article: str, version: int) -> str:
    return re.sub(r'(<MedlineCitation[^>]*>\s*<PMID Version=")\d+', rf"\g<1>{version}", article, count=1)


def pmid_of(article: str) -> int:
    return int(re.search(r"<MedlineCitation[^>]*>\s*<PMID[^>]*>(\d+)<", article).group(1))


@pytest.fixture()
def inputs(tmp_path) -> list[str]:
    """The bundled baseline + update sample, plus a later update file that revises some
    baseline records (same version, and a version 2), deletes others, and re-adds one."""
    base = SAMPLE / "pubmed26n1334.xml.gz"
    upd = SAMPLE / "pubmed26n1335.xml.gz"
    arts = articles_of(Path(str(base)))
    pm = [pmid_of(a) for a in arts]
    later = [arts[0], with_version(arts[1], 2), arts[2]]
    deletes = (f'<DeleteCitation><PMID Version="1">{pm[2]}</PMID><PMID Version="1">{pm[3]}</PMID>'
               f"<PMID>{pm[4]}</PMID></DeleteCitation>")
    body = "".join(later) + deletes + arts[5] + arts[4]  # pm[4] deleted, then re-added
    (tmp_path / "pubmed26n1334.xml.gz").write_bytes(Path(str(base)).read_bytes())
    (tmp_path / "pubmed26n1335.xml.gz").write_bytes(Path(str(upd)).read_bytes())
    (tmp_path / "pubmed26n1336.xml.gz").write_bytes(
        gzip.compress(f"<PubmedArticleSet>{body}</PubmedArticleSet>".encode()))
    return [str(tmp_path / f"pubmed26n{n}.xml.gz") for n in (1334, 1335, 1336)]


def driver_index(files: list[str]) -> pa.Table:
    return pa.concat_tables([compact(scan_file(p)[0], i) for i, p in enumerate(files)])


def oracle(files: list[str]) -> dict[int, tuple[str, int]]:
    """updates.py's in-memory semantics, then one record per PMID: highest version, last seen."""
    records = [r for p in files for r in iter_records(p)]
    survivors, _ = latest_records(records)
    best: dict[int, dict] = {}
    for rec in survivors:  # ordered by where each winner occurred
        old = best.get(rec["pmid"])
        if old is None or rec["version"] >= old["version"]:
            best[rec["pmid"]] = rec
    return {p: (r["source_file"], r["position"]) for p, r in best.items()}


def test_selection_keeps_latest_version_per_pmid(inputs):
    pending, counts = select_pending(driver_index(inputs), pa.array([], pa.int64()), None)
    names = [Path(p).name for p in inputs]
    got = {r["pmid"]: (names[r["file_seq"]], r["position"]) for r in pending.to_pylist()}
    want = oracle(inputs)
    assert got == want
    assert counts["deletions"] == 6 + 3 and counts["latest"] == len(want) == counts["pending"]
    # the revised records come from the last file, the deleted ones are gone
    assert sum(1 for f, _ in got.values() if f == "pubmed26n1336.xml.gz") == 5 - 1


def test_committed_pmids_are_not_pending(inputs):
    index = driver_index(inputs)
    everything, _ = select_pending(index, pa.array([], pa.int64()), None)
    done = everything.column("pmid").slice(0, 7)
    pending, counts = select_pending(index, done.combine_chunks(), None)
    assert counts["done"] == 7 and pending.num_rows == everything.num_rows - 7
    assert not set(done.to_pylist()) & set(pending.column("pmid").to_pylist())


def test_read_with_keep_list_parses_only_the_pending_records(inputs):
    pending, _ = select_pending(driver_index(inputs), pa.array([], pa.int64()), None)
    keep = keep_lists(inputs, pending)
    assert all(list(v) == sorted(v) for v in keep.values())
    assert sum(len(v) for v in keep.values()) == pending.num_rows  # nothing dropped or doubled
    got = set()
    for path in inputs:
        name = Path(path).name
        with open_xml(path) as f:
            rows = list(scan_records(f, path, handler=keep_positions_handler(keep.get(name, []))))
        assert [r["record_type"] for r in rows] == ["article"] * len(rows)
        got |= {(name, r["position"], r["pmid"]) for r in rows}
    want = {(names, pos, pmid) for pmid, (names, pos) in oracle(inputs).items()}
    assert got == want


def test_keep_handler_rejects_negative_positions():
    with pytest.raises(ValueError, match=">= 0"):
        keep_positions_handler([-1, 3])


@pytest.mark.ray
def test_read_pubmed_filters_inside_the_read_task(ray_cluster, inputs):
    from pipeline.pubmed.read import read_pubmed

    keep = {"pubmed26n1334.xml.gz": [0, 5, 29], "pubmed26n1336.xml.gz": [1]}
    ds = read_pubmed(inputs[::2], keep=keep, columns=["pmid", "source_file", "position"])
    rows = pa.concat_tables(ray_cluster.get(ds.to_arrow_refs())).to_pylist()
    assert sorted((r["source_file"], r["position"]) for r in rows) == [
        ("pubmed26n1334.xml.gz", 0), ("pubmed26n1334.xml.gz", 5), ("pubmed26n1334.xml.gz", 29),
        ("pubmed26n1336.xml.gz", 1)]


def test_partitioned_resolution_equals_one_partition(inputs, monkeypatch):
    index = driver_index(inputs)
    done = pa.array([pmid_of(a) for a in articles_of(Path(str(SAMPLE / "pubmed26n1334.xml.gz")))][::4])
    whole = select_pending(index, done, 50)
    monkeypatch.setattr("pipeline.planning.selection.PARTITION_ROWS", 7)  # ~10 PMID partitions
    parts = select_pending(index, done, 50)
    assert parts[1] == whole[1] and parts[0].equals(whole[0])
    assert whole[1]["done"] > 0 and whole[1]["latest"] == 50


def test_keep_lists_group_shuffled_pending_rows_by_file_in_position_order():
    import numpy as np

    rng = np.random.default_rng(3)
    files = [f"/in/pubmed26n{i:04d}.xml.gz" for i in range(1, 6)]
    seq = rng.integers(0, 5, 2000)
    pos = rng.permutation(40_000)[:2000]  # distinct positions, in no order
    pending = pa.table({"pmid": pa.array(np.arange(2000), pa.int64()),
                        "file_seq": pa.array(seq, pa.int32()), "position": pa.array(pos, pa.int64())})
    want: dict[str, list[int]] = {}
    for s, p in zip(seq.tolist(), pos.tolist()):
        want.setdefault(Path(files[s]).name, []).append(p)
    got = keep_lists(files, pending)
    assert {k: v.tolist() for k, v in got.items()} == {k: sorted(v) for k, v in want.items()}
    assert all(v.dtype == np.int32 for v in got.values())
