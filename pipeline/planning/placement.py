"""Where the run's tasks and actors can go: sized from each node's resources, not cluster totals.

Ray places a task or actor on one node, so a request that fits the cluster's totals can still
fit no node (head 1 CPU + worker 1 CPU: a 1-CPU task waits forever once each node lends a
quarter CPU to an actor). Every CPU request of a run therefore comes from here, sized so that
it fits the smallest node that has CPUs, and a cluster that cannot run the plan at all (GPUs
asked and no GPU node, no CPU anywhere) is refused before any work starts.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from pipeline.config import RunConfig
from pipeline.planning.preflight import PreflightError

log = logging.getLogger(__name__)

WHOLE_CPU_NODE = 8  # nodes with at least this many CPUs get whole-CPU tasks and actors
SMALL_SHARE = 0.25  # else a quarter CPU each: whole-CPU reads could wait behind actors (ray #44687)


@dataclass(frozen=True)
class NodeShape:
    """One alive Ray node: id, address and its total CPUs/GPUs."""

    node_id: str
    ip: str
    cpus: float
    gpus: float
    head: bool = False

    def describe(self) -> str:
        """`head 127.0.0.1 (1 CPU, 0 GPU)`."""
        role = "head" if self.head else "worker"
        return f"{role} {self.ip} {self.node_id[:8]} ({_num(self.cpus)} CPU, {_num(self.gpus)} GPU)"


@dataclass(frozen=True)
class Placement:
    """CPU share of every CPU task/actor, the GPU actors' own CPU share and their number."""

    cpu: float
    gpu_actor_cpu: float
    gpu_actors: int
    cpu_actors: int
    nodes: tuple[NodeShape, ...]

    @property
    def index_cpu(self) -> float:
        """CPUs per index task (half a CPU, less when no node has that much)."""
        return min(0.5, max(n.cpus for n in self.nodes))

    def describe(self) -> str:
        """One line for the log."""
        return (f"placement: {self.gpu_actors} GPU actor(s) ({_num(self.gpu_actor_cpu)} CPU each), "
                f"CPU stages {self.cpu_actors} actors max, {_num(self.cpu)} CPU per task/actor; nodes: "
                + "; ".join(n.describe() for n in self.nodes))


def _num(x: float) -> str:
    return f"{x:g}"


def cluster_nodes(ray: Any) -> list[NodeShape]:
    """The alive nodes as Ray reports them (`ray.nodes()`)."""
    nodes = []
    for n in ray.nodes():
        if not n.get("Alive"):
            continue
        res = n.get("Resources") or {}
        nodes.append(NodeShape(node_id=n.get("NodeID", ""), ip=n.get("NodeManagerAddress", "?"),
                               cpus=float(res.get("CPU", 0)), gpus=float(res.get("GPU", 0)),
                               head="node:__internal_head__" in res))
    return nodes


def plan_placement(nodes: list[NodeShape], config: RunConfig) -> Placement:
    """Per-node sizing of the run; PreflightError (one line) when the cluster cannot run it."""
    shown = "; ".join(n.describe() for n in nodes) or "none"
    cpu_nodes = [n for n in nodes if n.cpus > 0]
    if not cpu_nodes:
        raise PreflightError([f"the Ray cluster has no CPU on any node (nodes: {shown}); reading and "
                              f"tokenizing need one: start a worker with `ray start --num-cpus=N`"])
    smallest = min(n.cpus for n in cpu_nodes)
    cpu = 1.0 if smallest >= WHOLE_CPU_NODE else min(SMALL_SHARE, smallest)
    gpu_nodes = [n for n in nodes if n.gpus >= 1]
    gpu_cpu = min([cpu] + [n.cpus for n in gpu_nodes])  # a GPU node with no CPU: the actor asks none
    fit = sum(_actors_on(n, gpu_cpu) for n in gpu_nodes)
    if config.gpus is None:
        gpu_actors = fit
    elif config.gpus > fit:
        if not gpu_nodes:
            raise PreflightError([f"--gpus {config.gpus}: no node of the Ray cluster has a GPU (nodes: "
                                  f"{shown}); start GPU workers (`ray start --num-gpus=N`) or use --gpus 0"])
        raise PreflightError([f"--gpus {config.gpus}: only {fit} GPU actor(s) fit the cluster's nodes "
                              f"({shown}); use --gpus {fit} or add GPU workers"])
    else:
        gpu_actors = config.gpus
    cpu_actors = config.cpu_actors or max(2, 2 * gpu_actors)
    return Placement(cpu=cpu, gpu_actor_cpu=gpu_cpu if gpu_actors else cpu, gpu_actors=gpu_actors,
                     cpu_actors=cpu_actors, nodes=tuple(nodes))


def _actors_on(node: NodeShape, cpu_each: float) -> int:
    """GPU actors one node can hold: one per whole GPU, each with its CPU share."""
    gpus = int(node.gpus)
    if cpu_each <= 0:
        return gpus
    return min(gpus, math.floor(node.cpus / cpu_each + 1e-9))


def check_placement(ray: Any, config: RunConfig) -> Placement:
    """The run's placement on the cluster Ray is connected to (PreflightError if impossible)."""
    placement = plan_placement(cluster_nodes(ray), config)
    log.debug("%s", placement.describe())
    return placement
