"""pipeline.storage: one Location API for local folders and S3 (moto on loopback)."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.storage import Location, StorageError, env_vars, storage_env


def test_round_trip_text_json_parquet_listing(loc):
    loc.write_text("a/b.txt", "hello")
    loc.write_json("_manifest.json", {"x": 1})
    loc.write_table("articles/part-1.parquet", pa.table({"pmid": [1, 2]}))
    assert loc.read_text("a/b.txt") == "hello"
    assert loc.read_json("_manifest.json") == {"x": 1}
    assert loc.is_file("a/b.txt") and loc.is_dir("a") and not loc.exists("nope")
    assert pq.read_table(loc.path("articles/part-1.parquet"), filesystem=loc.fs).num_rows == 2
    sub = loc.child("articles")
    assert [p.rsplit("/", 1)[1] for p in sub.files(suffix=".parquet")] == ["part-1.parquet"]
    assert not [i for i in loc.list(recursive=True) if i.base_name.endswith(".tmp")]
    loc.delete("a/b.txt")
    assert not loc.exists("a/b.txt")
    with pytest.raises(FileNotFoundError, match=f"not found: {loc.url('nope')}"):
        loc.read_text("nope")


def test_names_keep_the_scheme_and_pickle_as_the_uri(loc):
    again = pickle.loads(pickle.dumps(loc.child("x")))
    assert again.uri == loc.child("x").uri and again.path() == loc.path("x")
    if loc.scheme == "s3":
        assert loc.url("_logs/a.log").startswith("s3://biomine-test/test_storage/") and loc.url("_logs/a.log").endswith("/_logs/a.log")
        assert "AWS_ENDPOINT_URL" in env_vars(loc.uri)
        assert storage_env([loc.uri])["AWS_ENDPOINT_URL"] == os.environ["AWS_ENDPOINT_URL"]
    else:
        assert loc.url("a") == os.path.join(loc.base, "a") and env_vars(loc.uri) == ()


def test_query_options_reach_the_filesystem(s3):
    host = os.environ["AWS_ENDPOINT_URL"].split("://", 1)[1]
    loc = Location.open(f"{s3.uri('q')}?endpoint_override={host}&scheme=http")
    loc.write_text("f.txt", "x")
    assert loc.child("sub").options()["endpoint_override"] == host
    assert loc.url("f.txt") == "s3://biomine-test/q/f.txt"
    assert Location.open(s3.uri("q")).read_text("f.txt") == "x"
    with pytest.raises(StorageError, match="s3://"):
        Location.open("s3://b/x?bogus=1")


def test_a_writer_raising_mid_write_publishes_nothing(loc):
    loc.write_text("f.txt", "old")
    with pytest.raises(RuntimeError):
        with loc.open_output("f.txt") as out:
            out.write(b"new, half")
            raise RuntimeError("boom")
    with pytest.raises(pa.ArrowException):
        loc.write_table("t.parquet", pa.table({"a": [1]}), compression="nope")
    assert loc.read_text("f.txt") == "old"
    assert not loc.exists("t.parquet")
    assert [i.base_name for i in loc.list()] == ["f.txt"]  # temporaries removed


def test_a_writer_killed_mid_upload_publishes_nothing(s3):
    loc = Location.open(s3.uri("killed"))
    code = textwrap.dedent(f"""
        import os, signal
        from pipeline.storage import Location
        loc = Location.open({loc.uri!r})
        with loc.open_output("big.bin") as out:
            out.write(b"x" * (6 << 20))  # past one multipart part: an upload is under way
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], env=os.environ, capture_output=True)
    assert proc.returncode == -9, proc.stderr
    assert not loc.exists("big.bin")
    assert not loc.files()  # not even a temporary object


def test_create_exclusive_lets_one_writer_win(loc):
    assert loc.create_exclusive("_gen/g1.json", b"first")
    assert not loc.create_exclusive("_gen/g1.json", b"second")
    assert loc.read_text("_gen/g1.json") == "first"
    assert [i.base_name for i in loc.list("_gen")] == ["g1.json"]


def test_upload_copies_a_local_folder(loc, tmp_path):
    src = tmp_path / "model"
    (src / "last").mkdir(parents=True)
    (src / "checkpoints").mkdir()
    (src / "config.json").write_text("{}")
    (src / "last" / "w.bin").write_bytes(b"\0" * 10)
    (src / "checkpoints" / "big").write_bytes(b"x")
    assert loc.upload(str(src), "m", skip=("checkpoints",)) == 2
    assert loc.read_bytes("m/last/w.bin") == b"\0" * 10 and not loc.exists("m/checkpoints")
    work = loc.work_dir()
    assert work == loc.base if loc.is_local else work.startswith("/") and work != loc.base


def test_a_failure_log_on_s3_is_named_with_its_scheme(s3):
    from pipeline.dataflow.build import _write_log

    out = Location.open(s3.uri("failed-run"))
    name = _write_log(out, "r1", "Traceback ...", relative=True)
    assert name.startswith("s3://biomine-test/failed-run/_logs/r1-") and name.endswith(".log")
    assert Location.open(name.rsplit("/", 1)[0]).read_text(name.rsplit("/", 1)[1]) == "Traceback ..."
