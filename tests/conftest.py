"""Shared fixtures: one local Ray cluster per test session (fake GPU slot), GPU-test skipping, a
loopback S3 server (`s3`, tests/s3.py: its settings are in os.environ from import on)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import s3 as s3_server

s3_server.reserve()  # before any Ray worker starts: every process gets the test S3 endpoint
DATA = Path(__file__).parent / "data"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `gpu`-marked tests cleanly when CUDA is absent."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """tests/data: checked-in fixtures (PubMed samples, gold sets)."""
    return DATA


@pytest.fixture(scope="session")
def ray_cluster():
    """A shared local Ray: 2 CPUs, one fake GPU slot, small object store, no progress bars."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray

    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False,
             object_store_memory=256 * 1024 * 1024, log_to_driver=True,
             runtime_env={"env_vars": {"RAY_AUTH_MODE": "disabled"}})
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.execution_options.preserve_order = True
    ctx.execution_no_progress_timeout_s = 120
    ctx.enable_auto_log_stats = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def s3():
    """A moto S3 server on 127.0.0.1 (tests/s3.py) with an empty bucket; `s3.uri("key")`."""
    server = s3_server.start()
    yield server
    s3_server.stop()
