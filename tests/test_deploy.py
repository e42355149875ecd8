"""Deployment files: cluster.yaml against Ray's own schema, KubeRay manifests' required fields."""
from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

from jobs.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def ray_schema() -> dict:
    """The cluster-launcher JSON schema shipped inside the installed ray package."""
    import ray.autoscaler

    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def load(path: str) -> dict:
    return yaml.safe_load((ROOT / path).read_text())


def test_cluster_yaml_validates_against_rays_schema():
    config = load("cluster.yaml")
    jsonschema.validate(config, ray_schema())
    # Ray's own checks after filling in the provider defaults (what `ray up` does first)
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(config)))
    nodes = config["available_node_types"]
    head = nodes[config["head_node_type"]]
    assert "GPU" not in head["resources"]
    gpu = [n for n in nodes.values() if n["resources"].get("GPU", 0) >= 1]
    assert len(gpu) == 1 and gpu[0]["min_workers"] == 0
    assert 0 < gpu[0]["max_workers"] <= config["max_workers"]
    assert gpu[0]["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert config["provider"]["type"] == "aws" and "2.60" in config["docker"]["image"]
    assert any("pip install" in c and "biomine" in c for c in config["setup_commands"])
    # the schema does catch mistakes: a typo'd key is refused
    broken = {**config, "max_worker": 3}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, ray_schema())


def check_cluster_spec(spec: dict, where: str) -> None:
    """The parts of a RayClusterSpec KubeRay needs, and a GPU worker group."""
    head = spec["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict), where
    assert head["template"]["spec"]["containers"][0]["image"], where
    groups = spec["workerGroupSpecs"]
    assert groups, where
    for g in groups:
        assert g["groupName"] and isinstance(g["rayStartParams"], dict), where
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"], where
        containers = g["template"]["spec"]["containers"]
        assert containers and all(c["name"] and c["image"] for c in containers), where
    gpus = [c["resources"]["limits"].get("nvidia.com/gpu") for g in groups
            for c in g["template"]["spec"]["containers"]]
    assert any(int(n or 0) >= 1 for n in gpus), f"{where}: no worker group asks for a GPU"
    assert str(spec["rayVersion"]).startswith("2.60"), where


def entry_argv(entrypoint: str) -> list[str]:
    """The `biomine ...` command inside an entrypoint (bare, or in `bash -c '...; biomine ...'`)."""
    words = shlex.split(entrypoint)
    if words[:2] == ["bash", "-c"]:
        words = shlex.split(words[2].split(";")[-1])
    assert words[0] == "biomine", entrypoint
    return words[1:]


def test_rayjob_manifest():
    doc = load("deploy/k8s/rayjob.yaml")
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob"
    assert doc["metadata"]["name"]
    spec = doc["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] >= 0
    check_cluster_spec(spec["rayClusterSpec"], "rayjob")
    args = build_parser().parse_args(entry_argv(spec["entrypoint"]))  # a valid biomine command
    assert args.command == "run" and args.output.startswith("s3://")
    assert all(i.startswith("s3://") for i in args.inputs)


def test_raycronjob_manifest():
    text = (ROOT / "deploy/k8s/raycronjob.yaml").read_text()
    assert "alpha" in text.lower() and "RayCronJob" in text  # the feature gate is documented
    doc = yaml.safe_load(text)
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayCronJob"
    assert doc["metadata"]["name"]
    assert len(doc["spec"]["schedule"].split()) == 5
    job = doc["spec"]["jobTemplate"]
    assert job["shutdownAfterJobFinishes"] is True
    check_cluster_spec(job["rayClusterSpec"], "raycronjob")
    args = build_parser().parse_args(entry_argv(job["entrypoint"]))
    assert args.command == "update" and args.state
