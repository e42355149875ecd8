"""Per-node sizing of a run and the up-front refusal of clusters that cannot run it (no Ray)."""
from __future__ import annotations

import pytest

from pipeline.config import RunConfig
from pipeline.planning.placement import NodeShape, cluster_nodes, plan_placement
from pipeline.planning.preflight import PreflightError


def cfg(**kw) -> RunConfig:
    return RunConfig(inputs=["x.xml"], output="out", tasks=["ner"], demo_model=True, **kw)


def node(cpus: float, gpus: float = 0, head: bool = False, i: int = 0) -> NodeShape:
    return NodeShape(node_id=f"{i:08x}" * 7, ip="127.0.0.1", cpus=cpus, gpus=gpus, head=head)


def test_head_1_cpu_and_worker_1_cpu_1_gpu_gets_quarter_cpus_everywhere():
    p = plan_placement([node(1, head=True), node(1, 1, i=1)], cfg())
    assert (p.cpu, p.gpu_actor_cpu, p.gpu_actors, p.cpu_actors) == (0.25, 0.25, 1, 2)


def test_whole_cpus_only_when_every_cpu_node_has_eight():
    big = [node(0, head=True), node(16, 1, i=1), node(16, 1, i=2)]
    assert plan_placement(big, cfg()).cpu == 1.0
    mixed = big + [node(2, i=3)]  # cluster total 34, but one small node
    assert plan_placement(mixed, cfg()).cpu == 0.25


def test_gpu_node_without_cpu_gets_cpu_free_gpu_actors():
    p = plan_placement([node(4, head=True), node(0, 2, i=1)], cfg())
    assert (p.gpu_actors, p.gpu_actor_cpu, p.cpu) == (2, 0.0, 0.25)


def test_gpus_asked_without_gpu_node_is_refused_in_one_line():
    with pytest.raises(PreflightError) as err:
        plan_placement([node(0, head=True), node(2, i=1)], cfg(gpus=1))
    assert len(err.value.problems) == 1
    assert "--gpus 1: no node of the Ray cluster has a GPU" in str(err.value)
    assert "--gpus 0" in str(err.value)


def test_more_gpus_than_fit_is_refused():
    with pytest.raises(PreflightError, match="only 1 GPU actor"):
        plan_placement([node(1, head=True), node(1, 1, i=1)], cfg(gpus=2))


def test_no_cpu_anywhere_is_refused():
    with pytest.raises(PreflightError, match="no CPU on any node"):
        plan_placement([node(0, head=True), node(0, 1, i=1)], cfg())


def test_gpus_0_runs_the_model_stage_on_a_cpu_actor():
    p = plan_placement([node(2, 1, head=True)], cfg(gpus=0))
    assert (p.gpu_actors, p.gpu_actor_cpu) == (0, 0.25)


def test_cluster_nodes_reads_alive_nodes_only():
    class FakeRay:
        @staticmethod
        def nodes():
            return [{"Alive": True, "NodeID": "a" * 56, "NodeManagerAddress": "127.0.0.1",
                     "Resources": {"CPU": 1.0, "node:__internal_head__": 1.0}},
                    {"Alive": False, "NodeID": "b" * 56, "NodeManagerAddress": "127.0.0.1",
                     "Resources": {"CPU": 2.0, "GPU": 1.0}},
                    {"Alive": True, "NodeID": "c" * 56, "NodeManagerAddress": "127.0.0.1",
                     "Resources": {"CPU": 1.0, "GPU": 1.0}}]

    nodes = cluster_nodes(FakeRay)
    assert [(n.cpus, n.gpus, n.head) for n in nodes] == [(1.0, 0.0, True), (1.0, 1.0, False)]
