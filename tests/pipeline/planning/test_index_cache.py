"""Index once: OUT/_index/ entries keyed by file name, size and mtime; reused, or redone on change."""
from __future__ import annotations

import gzip
import os
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.planning.index_cache import INDEX_DIR, file_stamp, index_files

SAMPLE = resources.files("pipeline") / "data" / "sample"
pytestmark = pytest.mark.ray


@pytest.fixture()
def inputs(tmp_path) -> list[str]:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("pubmed26n1334.xml.gz", "pubmed26n1335.xml.gz"):
        (folder / name).write_bytes((SAMPLE / name).read_bytes())
    return [str(folder / "pubmed26n1334.xml.gz"), str(folder / "pubmed26n1335.xml.gz")]


def test_second_start_reuses_the_index_without_parsing(ray_cluster, inputs, tmp_path):
    out = str(tmp_path / "out")
    first, errors, stats = index_files(ray_cluster, inputs, out)
    assert errors == [] and (stats.cached, stats.scanned) == (0, 2)
    assert sorted(p.name for p in (tmp_path / "out" / INDEX_DIR).iterdir()) == sorted(
        f"{file_stamp(p)}.parquet" for p in inputs)
    # same name, size and mtime, but unreadable content: only a cache hit can still index it
    path = Path(inputs[0])
    st = path.stat()
    path.write_bytes(b"\0" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    second, errors, stats = index_files(ray_cluster, inputs, out)
    assert errors == [] and (stats.cached, stats.scanned) == (2, 0)
    assert second.equals(first)
    assert first.column("file_seq").to_pylist() == [0] * 30 + [1] * 36
    assert pa.types.is_dictionary(first.schema.field("record_type").type)


def test_changed_file_is_indexed_again(ray_cluster, inputs, tmp_path):
    out = str(tmp_path / "out")
    first, _, _ = index_files(ray_cluster, inputs, out)
    path = Path(inputs[1])
    text = gzip.decompress(path.read_bytes()).decode()
    cut = text.index("<DeleteCitation>")
    path.write_bytes(gzip.compress((text[:cut] + "</PubmedArticleSet>").encode()))  # no deletions
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    again, errors, stats = index_files(ray_cluster, inputs, out)
    assert errors == [] and (stats.cached, stats.scanned) == (1, 1)
    kinds = again.column("record_type").to_pylist()
    assert kinds.count("deletion") == 0 and first.column("record_type").to_pylist().count("deletion") == 6
    entries = sorted(p.name for p in (tmp_path / "out" / INDEX_DIR).iterdir())
    assert entries == sorted(f"{file_stamp(p)}.parquet" for p in inputs)  # the stale one is gone


def test_damaged_file_is_not_cached(ray_cluster, inputs, tmp_path):
    out = str(tmp_path / "out")
    raw = Path(inputs[0]).read_bytes()
    Path(inputs[0]).write_bytes(raw[: len(raw) // 2])
    for _ in range(2):  # reported at every start
        _, errors, stats = index_files(ray_cluster, inputs, out)
        assert len(errors) == 1 and "pubmed26n1334.xml.gz" in errors[0]["message"]
    assert stats.scanned == 1
    assert [p.name.split(".")[0] for p in (tmp_path / "out" / INDEX_DIR).iterdir()] == ["pubmed26n1335"]
