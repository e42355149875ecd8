"""Fixtures of the multi-node module: moto S3 and a head (0 CPUs) + two fake-GPU workers on loopback.

Nothing here calls `ray.init()`: every driver is a `python -m jobs.cli` subprocess given
`--address` (or a job sent with `ray job submit`), so the session's local Ray (tests/conftest.py)
is never joined or started by this module. The nodes start WITHOUT the AWS_* settings; the
drivers have them, so every S3 access on a worker proves that they travel with the job.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from tests.cluster.nodes import FAST_DEATH, LocalCluster, Moto

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "bucket"
SYNTH_FILES, SYNTH_PER_FILE = 3, 300  # + the bundled sample (60 articles)
FIRST_PMID = 50_000_000


def node_env() -> dict[str, str]:
    """Environment of `ray start`: this venv active and biomine importable (as if installed on
    every node), no AWS_* at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAY_ADDRESS"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(RAY_AUTH_MODE="disabled", RAY_DATA_DISABLE_PROGRESS_BARS="1", PYTHONPATH=str(ROOT),
               RAY_USAGE_STATS_ENABLED="0", **FAST_DEATH)
    return env


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    """moto_server on 127.0.0.1 with an empty bucket."""
    if not (Path(sys.executable).parent / "moto_server").exists():
        pytest.skip("moto_server (moto[server]) is not installed next to this Python")
    server = Moto.start()
    try:
        s3_fs(server).create_dir(BUCKET)
        yield server
    finally:
        server.stop()


def s3_fs(server: Moto) -> pafs.S3FileSystem:
    """A pyarrow client of the moto server (this process's environment is left alone)."""
    return pafs.S3FileSystem(endpoint_override=server.endpoint.split("://", 1)[1], scheme="http",
                             region="us-east-1", access_key="test", secret_key="test",
                             allow_bucket_creation=True)


@pytest.fixture(scope="module")
def driver_env(moto: Moto) -> dict[str, str]:
    """Environment of a driver on 'a laptop': the node env plus the S3 settings."""
    return {**node_env(), **moto.env()}


@pytest.fixture(scope="module")
def cluster(moto: Moto) -> Iterator[LocalCluster]:
    """Head (0 CPUs, dashboard + job server) and two workers with 1 CPU and 1 fake GPU each: once a
    worker is lost, the shape that stalled silently before (every CPU node a single CPU)."""
    for exe in ("ray",):
        if not (Path(sys.executable).parent / exe).exists():
            pytest.skip(f"the `{exe}` command line is not installed next to this Python")
    if not Path("/proc").is_dir():
        pytest.skip("stopping only our own nodes needs /proc (Linux)")
    cl = LocalCluster(env=node_env())
    try:
        cl.start_head(cpus=0, dashboard=True)
        cl.add_worker(cpus=1, gpus=1)
        cl.add_worker(cpus=1, gpus=1)
        cl.wait_for_nodes(3)
        yield cl
    finally:
        cl.stop()


def synthesize(folder: Path) -> list[Path]:
    """SYNTH_FILES gzip files of SYNTH_PER_FILE records, each a sample article under a new PMID."""
    from jobs.run import sample_inputs

    parts = []
    for path in sample_inputs():
        text = gzip.decompress(Path(path).read_bytes()).decode()
        for art in re.findall(r"<PubmedArticle>.*?</PubmedArticle>", text, flags=re.S):
            m = re.search(r"(<MedlineCitation[^>]*>\s*<PMID[^>]*>)\d+(</PMID>)", art)
            parts.append((art[: m.end(1)], art[m.start(2):]))
    files = []
    for k in range(SYNTH_FILES):
        path = folder / f"pubmed26n{k + 1:04d}.xml.gz"
        with gzip.open(path, "wt", compresslevel=1) as f:
            f.write("<PubmedArticleSet>")
            for i in range(SYNTH_PER_FILE):
                pmid = FIRST_PMID + k * SYNTH_PER_FILE + i
                head, tail = parts[pmid % len(parts)]
                f.write(f"{head}{pmid}{tail}")
            f.write("</PubmedArticleSet>")
        files.append(path)
    return files


@pytest.fixture(scope="module")
def inputs(moto: Moto, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """s3://bucket/pubmed/ (sample + synthesized) and s3://bucket/updates/ (one small file)."""
    from jobs.run import sample_inputs

    local = tmp_path_factory.mktemp("pubmed")
    fs = s3_fs(moto)
    for path in [*synthesize(local), *map(Path, sample_inputs())]:
        fs.create_dir(f"{BUCKET}/pubmed")
        with fs.open_output_stream(f"{BUCKET}/pubmed/{path.name}", compression=None) as f:  # as is
            f.write(path.read_bytes())
    sample = sorted(map(Path, sample_inputs()))[-1]  # the sample's update file (with deletions)
    with fs.open_output_stream(f"{BUCKET}/updates/{sample.name}", compression=None) as f:
        f.write(sample.read_bytes())
    return {"pubmed": f"s3://{BUCKET}/pubmed/", "updates": f"s3://{BUCKET}/updates/"}


def biomine(args: list[str], env: dict[str, str], timeout: float = 240,
            wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    """`python -m jobs.cli ARGS` from the repository root (a Popen when not wait)."""
    cmd = [sys.executable, "-m", "jobs.cli", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def shown(done: subprocess.CompletedProcess) -> str:
    """Exit status and output tails, for assertion messages."""
    return f"exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-5000:]}"


def committed(moto: Moto, output: str, table: str) -> pa.Table:
    """The committed rows of one output table (files named by the commit log only)."""
    fs, base = s3_fs(moto), output.removeprefix("s3://").rstrip("/")
    infos = fs.get_file_info(pafs.FileSelector(f"{base}/_commits", allow_not_found=True))
    paths = []
    for info in infos:
        if info.base_name.endswith(".parquet"):
            marker = json.loads(pq.read_schema(info.path, filesystem=fs).metadata[b"biomine.commit"])
            if table in marker.get("files", {}):
                paths.append(f"{base}/{table}/{marker['files'][table]}")
    if not paths:
        return pa.table({})
    return pa.concat_tables([pq.read_table(p, filesystem=fs) for p in sorted(paths)])


def wait_until(check, timeout: float, step: float = 1.0) -> bool:  # noqa: ANN001
    """Poll check() until it is truthy or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return False
