"""`biomine run --address` against a second Ray cluster that this test starts and stops itself.

The cluster is a separate `ray start --head` on loopback with its own temp dir and ports; the
job runs in a subprocess (the test session keeps its own Ray from tests/conftest.py). It is
stopped without `ray stop`, which would stop every Ray on the machine: by killing the process
group `ray start` ran in, then any process whose command line names this cluster's temp dir.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.cluster.nodes import free_ports, kill_all

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def second_cluster() -> Iterator[tuple[str, str]]:
    """A one-node Ray cluster on 127.0.0.1 (2 CPUs, one fake GPU slot): (address, temp dir)."""
    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    if not os.path.exists(ray_bin):
        pytest.skip("the `ray` command line is not installed next to this Python")
    if not Path("/proc").is_dir():
        pytest.skip("stopping only our own cluster needs /proc (Linux)")
    # short path: Ray puts unix sockets under it (~107-byte limit)
    temp_dir = tempfile.mkdtemp(prefix="bmray")
    port, agent, grpc, metrics, env_agent, client = free_ports(6)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_AUTH_MODE"] = "disabled"
    cmd = [ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
           "--num-cpus=2", "--num-gpus=1", "--include-dashboard=false", f"--temp-dir={temp_dir}",
           f"--dashboard-agent-listen-port={agent}",
           f"--dashboard-agent-grpc-port={grpc}", f"--metrics-export-port={metrics}",
           f"--runtime-env-agent-port={env_agent}", "--object-store-memory=200000000",
           "--disable-usage-stats"]
    from ray._private.utils import get_ray_client_dependency_error

    if get_ray_client_dependency_error() is None:  # with ray[client] it would take port 10001
        cmd.append(f"--ray-client-server-port={client}")
    starter = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = starter.communicate(timeout=90)
        if starter.returncode != 0:
            pytest.skip(f"`ray start --head` failed here (exit {starter.returncode}): {output[-800:]}")
        yield f"127.0.0.1:{port}", temp_dir
    finally:
        if starter.poll() is None:
            starter.kill()
        kill_all([starter.pid], temp_dir)  # only this cluster: its group, then stragglers naming its dir
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_run_joins_a_second_local_node(second_cluster, tmp_path):
    address, temp_dir = second_cluster
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="disabled", RAY_DATA_DISABLE_PROGRESS_BARS="1")
    cmd = [sys.executable, "-m", "jobs.cli", "run", "--sample", "--demo-model", "--tasks",
           "re-bc5cdr", "--max-new-tokens", "4", "--batch-size", "16", "-o", str(out),
           "--address", address, "--no-progress"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "finished" in done.stdout
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["status"] == "finished"
    latest = manifest["counts"]["index"]["latest"]
    articles = pq.read_table(out / "articles").num_rows
    assert latest > 0 and articles == latest == manifest["counts"]["written"]["articles"]
    # the driver ran on our cluster: its log sits in that cluster's session folder
    logs = Path(temp_dir) / "session_latest" / "logs"
    assert list(logs.glob("python-core-driver-*.log")), sorted(p.name for p in logs.iterdir())
