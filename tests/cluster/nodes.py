"""Several `ray start` nodes (and a moto S3 server) on loopback, started and stopped by one owner.

Every process is started in its own session and its cluster uses its own temp dir and ports, so
stopping kills exactly what was started here (process groups, then any process naming the temp
dir), never `ray stop`, which would stop every Ray on the machine.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
FAST_DEATH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3",
              "RAY_health_check_initial_delay_ms": "1000"}


def free_ports(n: int) -> list[int]:
    """n distinct TCP ports free on loopback right now."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def pids_naming(text: str) -> list[int]:
    """Processes whose command line contains `text` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if text in cmd:
                found.append(int(entry.name))
    return found


def kill_all(pgids: list[int], marker: str) -> None:
    """SIGTERM then SIGKILL the process groups and every process naming `marker`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pgid in pgids:
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in pids_naming(marker):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 8
        while pids_naming(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not pids_naming(marker):
            return


@dataclass
class Node:
    """One started raylet: its node-manager port finds its raylet process."""

    name: str
    node_manager_port: int
    pgid: int


@dataclass
class LocalCluster:
    """A head and workers started with `ray start` on 127.0.0.1, with their own temp dir."""

    env: dict[str, str]
    temp_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="bmcl"))
    port: int = 0
    dashboard_port: int | None = None
    nodes: list[Node] = field(default_factory=list)

    @property
    def address(self) -> str:
        """GCS address for `--address` / ray.init."""
        return f"127.0.0.1:{self.port}"

    @property
    def dashboard(self) -> str:
        """Job-submission address (http://127.0.0.1:PORT)."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    def _start(self, name: str, args: list[str], timeout: float = 180, tries: int = 3) -> Node:
        """`ray start` one node; a start that times out (a loaded box: Ray waits 30 s for the
        raylet to register) is killed and tried again under a new name."""
        for attempt in range(tries):
            label = name if attempt == 0 else f"{name}r{attempt}"
            nm, om, agent_grpc, metrics, env_agent = free_ports(5)
            # one temp dir per node: nodes sharing one share runtime_resources/, and one node's
            # runtime-env agent deletes a job's working_dir while the others still use it
            cmd = [str(BIN / "ray"), "start", "--node-ip-address=127.0.0.1",
                   f"--temp-dir={self.temp_dir}/{label}", f"--node-manager-port={nm}",
                   f"--object-manager-port={om}", "--dashboard-agent-listen-port=0",
                   f"--dashboard-agent-grpc-port={agent_grpc}", f"--metrics-export-port={metrics}",
                   f"--runtime-env-agent-port={env_agent}", "--min-worker-port=0", "--max-worker-port=0",
                   "--disable-usage-stats", *args]
            proc = subprocess.Popen(cmd, env=self.env, start_new_session=True, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            node = Node(label, nm, proc.pid)
            self.nodes.append(node)
            out, _ = proc.communicate(timeout=timeout)
            if proc.returncode == 0:
                return node
            if attempt + 1 < tries and "timed out during startup" in out and "--head" not in args:
                kill_all([proc.pid], f"{self.temp_dir}/{label}/")
                self.nodes.remove(node)
                continue
            raise RuntimeError(f"`ray start` of {label} failed ({proc.returncode}): {out[-1500:]}")
        raise AssertionError("unreachable")

    def start_head(self, cpus: int, gpus: int = 0, dashboard: bool = False,
                   object_store_mb: int = 150) -> Node:
        """The head node (dashboard + job server when `dashboard`)."""
        self.port, dash, client = free_ports(3)
        args = ["--head", f"--port={self.port}", f"--num-cpus={cpus}", f"--num-gpus={gpus}",
                f"--object-store-memory={object_store_mb * 10**6}"]
        if dashboard:
            self.dashboard_port = dash
            args += ["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}"]
        else:
            args += ["--include-dashboard=false"]
        from ray._private.utils import get_ray_client_dependency_error

        if get_ray_client_dependency_error() is None:  # ray[client] would take port 10001
            args.append(f"--ray-client-server-port={client}")
        return self._start("head", args)

    def add_worker(self, cpus: int, gpus: int = 0, object_store_mb: int = 150) -> Node:
        """A worker node joined to the head."""
        name = f"w{len(self.nodes)}"
        return self._start(name, [f"--address={self.address}", f"--num-cpus={cpus}",
                                  f"--num-gpus={gpus}", f"--object-store-memory={object_store_mb * 10**6}"])

    def raylet_pid(self, node: Node) -> int | None:
        """PID of a node's raylet (found by its node-manager port)."""
        pids = [p for p in pids_naming(f"--node_manager_port={node.node_manager_port}")
                if "raylet" in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0].decode()]
        return pids[0] if pids else None

    def kill_node(self, node: Node) -> None:
        """Kill a node's raylet with SIGKILL (its workers and agents fate-share)."""
        pid = self.raylet_pid(node)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)

    def wait_for_nodes(self, alive: int, timeout: float = 60) -> None:
        """Until `alive` nodes are alive (asked through a subprocess: this process stays Ray-free)."""
        code = ("import ray,sys;ray.init(address=sys.argv[1],logging_level='ERROR');"
                "print(sum(n['Alive'] for n in ray.nodes()))")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run([sys.executable, "-c", code, self.address], env=self.env,
                                  capture_output=True, text=True, timeout=60)
            if done.returncode == 0 and done.stdout.strip().splitlines()[-1:] == [str(alive)]:
                return
            time.sleep(1)
        raise TimeoutError(f"{alive} alive nodes not seen within {timeout} s")

    def stop(self) -> None:
        """Kill every process of this cluster; remove its temp dir."""
        kill_all([n.pgid for n in self.nodes], self.temp_dir)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@dataclass
class Moto:
    """`moto_server` on 127.0.0.1 at a free port."""

    proc: subprocess.Popen
    endpoint: str

    @classmethod
    def start(cls, timeout: float = 60) -> "Moto":
        """Start it and wait until it answers."""
        (port,) = free_ports(1)
        proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                                start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=2)
                return cls(proc, endpoint)
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("moto_server exited at start") from None
                time.sleep(0.3)
        kill_all([proc.pid], f"-p {port}")
        raise TimeoutError("moto_server did not answer")

    def env(self) -> dict[str, str]:
        """The AWS_* settings that point pyarrow/boto3 at this server."""
        return {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_EC2_METADATA_DISABLED": "true"}

    def stop(self) -> None:
        """Kill the server."""
        kill_all([self.proc.pid], f"-p {self.endpoint.rsplit(':', 1)[1]}")
        self.proc.wait(timeout=10)


def job_info(cluster: LocalCluster) -> list[dict]:
    """Jobs known to the head's job server (for debugging output)."""
    with urllib.request.urlopen(cluster.dashboard + "/api/jobs/", timeout=10) as r:
        return json.loads(r.read())
