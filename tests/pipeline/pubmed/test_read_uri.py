"""Inputs given as URIs (file://, object stores through pyarrow.fs): listing, globs, opening."""
from __future__ import annotations

import gzip

import pyarrow.fs as pafs
import pytest
from pyarrow._fs import _MockFileSystem

from pipeline.pubmed.read import _expand_uri, expand_inputs, input_filesystem, nlm_order_key, open_input

NAMES = ["pubmed26n1335.xml.gz", "pubmed26n0002.xml", "pubmed26n0010.xml.gz", "other.xml", "notes.txt"]


def test_file_uris_list_folders_and_globs_in_nlm_order(tmp_path):
    for name in NAMES:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pubmed26n0001.xml").write_bytes(b"")  # not listed: folders are flat
    got = expand_inputs([f"file://{tmp_path}"])
    assert got == [str(tmp_path / n) for n in
                   ["pubmed26n0002.xml", "pubmed26n0010.xml.gz", "pubmed26n1335.xml.gz", "other.xml"]]
    assert got == expand_inputs([str(tmp_path)])  # same as the local path
    globbed = expand_inputs([f"file://{tmp_path}/pubmed26n00*", str(tmp_path / "pubmed26n0002.xml")])
    assert globbed == [str(tmp_path / "pubmed26n0002.xml"), str(tmp_path / "pubmed26n0010.xml.gz")]
    assert expand_inputs([f"file://{tmp_path}/other.xml"]) == [str(tmp_path / "other.xml")]


def test_uri_errors_name_the_input(tmp_path):
    (tmp_path / "notes.txt").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="does not exist: 'file://.*nope.xml'"):
        expand_inputs([f"file://{tmp_path}/nope.xml"])
    with pytest.raises(FileNotFoundError, match="no \\*.xml .*in directory"):
        expand_inputs([f"file://{tmp_path}"])
    with pytest.raises(FileNotFoundError, match="match 'file://.*x\\*.xml'"):
        expand_inputs([f"file://{tmp_path}/x*.xml"])
    with pytest.raises(ValueError, match="not a PubMed XML file"):
        expand_inputs([f"file://{tmp_path}/notes.txt"])
    with pytest.raises(ValueError, match="only the file name may hold wildcards"):
        expand_inputs([f"file://{tmp_path}/*/a.xml"])


def test_object_store_listing_keeps_the_scheme():
    fs = _MockFileSystem()  # an in-memory pyarrow filesystem standing in for a bucket
    fs.create_dir("bucket/updates")
    for name in NAMES:
        with fs.open_output_stream(f"bucket/updates/{name}") as out:
            out.write(b"<PubmedArticleSet/>")

    def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
        assert uri.startswith("s3://")
        return fs, uri.removeprefix("s3://")

    listed = sorted(_expand_uri("s3://bucket/updates", resolve), key=nlm_order_key)
    assert listed == [f"s3://bucket/updates/{n}" for n in
                      ["pubmed26n0002.xml", "pubmed26n0010.xml.gz", "pubmed26n1335.xml.gz", "other.xml"]]
    assert _expand_uri("s3://bucket/updates/pubmed26n13*.xml.gz", resolve) == [
        "s3://bucket/updates/pubmed26n1335.xml.gz"]
    assert _expand_uri("s3://bucket/updates/other.xml", resolve) == ["s3://bucket/updates/other.xml"]
    with pytest.raises(FileNotFoundError, match="s3://bucket/nothing"):
        _expand_uri("s3://bucket/nothing", resolve)


def test_open_input_gunzips_by_magic_for_paths_and_uris(tmp_path, data_dir):
    src = data_dir / "pubmed" / "pmparser_sample_pubmed26n1334.xml.gz"
    plain = gzip.decompress(src.read_bytes())
    (tmp_path / "a.xml.gz").write_bytes(src.read_bytes())
    (tmp_path / "b.xml").write_bytes(plain)
    for path in [str(tmp_path / "a.xml.gz"), f"file://{tmp_path}/a.xml.gz", f"file://{tmp_path}/b.xml"]:
        with open_input(path) as f:
            assert f.read() == plain, path


def test_input_filesystem_one_kind_only(tmp_path):
    assert input_filesystem([str(tmp_path / "a.xml")]) is None
    assert isinstance(input_filesystem([f"file://{tmp_path}/a.xml"]), pafs.LocalFileSystem)
    with pytest.raises(ValueError, match="inputs mix filesystems"):
        input_filesystem([str(tmp_path / "a.xml"), "gs://bucket/b.xml"])
