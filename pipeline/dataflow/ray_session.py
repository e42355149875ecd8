"""The driver's Ray session: start or join Ray, size the run per node, and Ray knobs the API lacks."""
from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

from pipeline.config import RunConfig
from pipeline.planning.placement import Placement, check_placement

log = logging.getLogger(__name__)


def start_ray(config: RunConfig) -> Any:
    """Join the cluster at config.address, or start a local Ray (reusing one already up)."""
    import ray

    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    if not ray.is_initialized():
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token chatter on a local run
        if not verbose:  # no core-worker lines; failures are reported once, by their root cause
            os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": verbose}
        if config.address:
            kwargs["address"] = config.address
        env = node_env(config)
        if env:  # object-store settings reach every node's workers, not only this driver
            kwargs["runtime_env"] = {"env_vars": env}
        if not verbose:
            kwargs["logging_level"] = logging.WARNING
        with _stderr_silenced(not verbose):  # the core worker's start-up line ("Set ray log level")
            ray.init(**kwargs)
    if not verbose:  # biomine's own progress line and failure report instead of Ray Data's logs
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = config.progress and verbose
    ctx.enable_auto_log_stats = False
    if config.object_store_memory_gb:
        ctx.execution_options.resource_limits = ctx.execution_options.resource_limits.copy(
            object_store_memory=int(config.object_store_memory_gb * 2**30))
    return ray


def node_env(config: RunConfig) -> dict[str, str]:
    """The storage variables the run's inputs and output need on every node."""
    return storage_node_env([*config.inputs, config.output])


def storage_node_env(uris: list[str]) -> dict[str, str]:
    """The storage variables set here that these locations need on every node (documented
    list: `pipeline.storage.location.ENV_VARS`), minus those a submitted job already sets."""
    from pipeline.storage.location import storage_env

    env = storage_env(uris)
    job = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")  # under `ray job submit`: Ray refuses a
    if job:  # driver runtime_env that repeats a variable of the job's own runtime_env
        try:
            given = (json.loads(job).get("runtime_env") or {}).get("env_vars") or {}
        except (ValueError, AttributeError):
            given = {}
        env = {k: v for k, v in env.items() if k not in given}
    return env


@contextlib.contextmanager
def _stderr_silenced(enabled: bool) -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block (C++ logs bypass Python's logging)."""
    if not enabled:
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def repartition_rows(ds: Any, rows: int, num_cpus: float) -> Any:
    """`ds.repartition(target_num_rows_per_block=rows)` whose tasks ask `num_cpus`.

    Ray 2.60's streaming repartition takes no resource arguments, so its tasks ask Ray's default
    of one whole CPU: on a cluster whose nodes each lend part of their CPU to the stage actors
    (head 1 CPU + worker 1 CPU) no node ever has a whole CPU free and the run stalls at 0."""
    out = ds.repartition(target_num_rows_per_block=rows)
    op = out._logical_plan.dag  # the StreamingRepartition just added (private: no public knob)
    if isinstance(getattr(op, "ray_remote_args", None), dict):
        op.ray_remote_args["num_cpus"] = num_cpus
    else:
        log.warning("cannot size the repartition tasks (Ray changed): they ask a whole CPU each")
    return out


def connect(config: RunConfig) -> tuple[Any, Placement]:
    """Start/join Ray and size the run per node; PreflightError when the cluster cannot run it."""
    from pipeline.records.failures import RunFailed, explain

    try:
        ray = start_ray(config)
    except Exception as exc:  # noqa: BLE001 - one line: where and why Ray could not start or be joined
        where = f"the Ray cluster at {config.address}" if config.address else "a local Ray"
        raise RunFailed(f"cannot start or join {where}: {explain(exc).summary}",
                        "check --address and that the cluster is up (`ray status --address ...`)",
                        None, {}) from exc
    placement = check_placement(ray, config)
    log.info("%s", placement.describe())
    return ray, placement
