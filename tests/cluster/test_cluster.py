"""Multi-node runs on one box (issue 24): s3:// in and out, a worker killed, the watchdog, jobs.

One cluster for the module (head 0 CPUs + two 1-CPU, 1-GPU workers; tests/cluster/conftest.py)
whose shape the tests change in order: a clean run sent with `ray job submit` is the baseline;
a worker's raylet is killed mid-run (the cluster left is the shape that used to stall: a single
1-CPU node); export, aggregate and report read the S3 output; a second updater on one S3 state
is refused by the first one's lease; a replacement GPU worker joins and is killed mid-update
(the clean run's rows of that file are the baseline); a plan the cluster cannot place is
refused; losing the only GPU node ends in the watchdog's message. Every driver is a
subprocess; the nodes never see the AWS_* settings.
Measured 2026-12-05 on the shared 2-core box: 7 passed in 5 min 4 s with the box nearly quiet
(setup 22 s, job-submit run 85 s, node-kill run 75 s, update node-kill 37 s, lease 28 s, the
rest 56 s), 10 min 33 s at load average 8-13; 960 articles (3 x 300 synthesized + the 60 of
the sample) to keep it there.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pyarrow.fs import FileType

from tests.cluster.conftest import (BUCKET, FIRST_PMID, ROOT, SYNTH_FILES, SYNTH_PER_FILE, biomine,
                                    committed, s3_fs, shown, wait_until)

pytestmark = pytest.mark.cluster
UPDATE = ["--tasks", "ner", "--demo-model", "--batch-size", "64", "--no-progress"]
MINE = [*UPDATE, "--rows-per-file", "150"]
N_SAMPLE = 60  # latest articles of the bundled sample
TOTAL = SYNTH_FILES * SYNTH_PER_FILE + N_SAMPLE
CLEAN, KILLED = f"s3://{BUCKET}/clean", f"s3://{BUCKET}/killed"


ENTITY_COLUMNS = ["pmid", "section", "start", "end", "text", "type"]


def entity_rows(moto, output: str) -> list[tuple]:
    """Entity rows without run ids, sorted: equal across runs of the same input."""
    t = committed(moto, output, "entities")
    return sorted(zip(*(t.column(c).to_pylist() for c in ENTITY_COLUMNS))) if t.num_rows else []


def live(moto, state: str, table: str, columns: list[str]):  # noqa: ANN201
    """The live rows of an update state's table (pipeline.state.read, no Ray)."""
    from pipeline.state.read import read_current
    from pipeline.storage import Location

    base = state.removeprefix("s3://").rstrip("/")
    return read_current(Location(state, s3_fs(moto), base), table, columns)


def live_pmids(moto, state: str) -> list[int]:
    return live(moto, state, "articles", ["pmid"]).column("pmid").to_pylist()


def pmids(moto, output: str) -> list[int]:
    t = committed(moto, output, "articles")
    return t.column("pmid").to_pylist() if t.num_rows else []


def submit(cluster, driver_env, args: list[str], sid: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`ray job submit` with the repository as working_dir and the S3 settings in runtime_env."""
    s3_env = {k: v for k, v in driver_env.items() if k.startswith("AWS_")}
    cmd = [str(Path(sys.executable).parent / "ray"), "job", "submit", "--address", cluster.dashboard,
           "--submission-id", sid, "--working-dir", str(ROOT),
           "--runtime-env-json", json.dumps({"env_vars": s3_env}), "--",
           "python", "-m", "jobs.cli", *args]
    env = {k: v for k, v in driver_env.items() if not k.startswith("AWS_")}  # the submitter's laptop
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def job_status(cluster, driver_env, sid: str) -> str:
    done = subprocess.run([str(Path(sys.executable).parent / "ray"), "job", "status", "--address",
                           cluster.dashboard, sid], env=driver_env, capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


def test_ray_job_submit_runs_s3_to_s3_and_reports_status(cluster, moto, inputs, driver_env):
    done = submit(cluster, driver_env, ["run", inputs["pubmed"], "-o", CLEAN, *MINE], "biomine-clean")
    assert done.returncode == 0, shown(done)
    assert "succeeded" in job_status(cluster, driver_env, "biomine-clean").lower()
    got = pmids(moto, CLEAN)
    assert len(got) == len(set(got)) == TOTAL
    assert entity_rows(moto, CLEAN)
    # a failing job: its status and a non-zero exit reach the submitter
    bad = submit(cluster, driver_env, ["run", f"s3://{BUCKET}/nothing/", "-o", f"s3://{BUCKET}/bad", *MINE],
                 "biomine-bad", timeout=120)
    assert bad.returncode != 0, shown(bad)
    assert "failed" in job_status(cluster, driver_env, "biomine-bad").lower()


def test_worker_killed_mid_run_every_pmid_once_equal_to_clean(cluster, moto, inputs, driver_env):
    # the driver runs here ('a laptop'), joined with --address; the stall bound ends a hang
    proc = biomine(["run", inputs["pubmed"], "-o", KILLED, *MINE, "--address", cluster.address,
                    "--stall-timeout", "120"], driver_env, wait=False)
    fs = s3_fs(moto)

    def some_commit() -> bool:
        from pyarrow.fs import FileSelector

        infos = fs.get_file_info(FileSelector(f"{BUCKET}/killed/_commits", allow_not_found=True))
        return any(i.base_name.endswith(".parquet") for i in infos) or proc.poll() is not None

    assert wait_until(some_commit, 240)
    assert proc.poll() is None, "the run finished before the worker could be killed"
    cluster.kill_node(cluster.nodes[2])  # worker 2's raylet, SIGKILL
    out, err = proc.communicate(timeout=300)
    if proc.returncode != 0:  # allowed: fail with exit 1, then the rerun finishes
        assert proc.returncode == 1, f"exit {proc.returncode}\n{out[-2000:]}\n{err[-4000:]}"
        done = biomine(["run", inputs["pubmed"], "-o", KILLED, *MINE, "--address", cluster.address,
                        "--stall-timeout", "120"], driver_env, timeout=300)
        assert done.returncode == 0, shown(done)
    got = pmids(moto, KILLED)
    assert len(got) == len(set(got)) == TOTAL
    assert sorted(got) == sorted(pmids(moto, CLEAN))
    assert entity_rows(moto, KILLED) == entity_rows(moto, CLEAN)
    cluster.wait_for_nodes(2)


def test_export_aggregate_and_report_read_the_s3_output(cluster, moto, driver_env, tmp_path):
    out = tmp_path / "entities.jsonl"
    done = biomine(["export", CLEAN, "--format", "jsonl", "-o", str(out)], driver_env)
    assert done.returncode == 0, shown(done)
    lines = out.read_text().splitlines()
    assert len(lines) >= TOTAL - 5  # one line per article (articles without text may be left out)
    done = biomine(["aggregate", CLEAN, "--address", cluster.address], driver_env)
    assert done.returncode == 0, shown(done)
    done = biomine(["report", CLEAN], driver_env)
    assert done.returncode == 0, shown(done)
    fs = s3_fs(moto)
    from pyarrow.fs import FileSelector, FileType

    assert fs.get_file_info(f"{BUCKET}/clean/report.html").type == FileType.File
    assert any(i.base_name.endswith(".parquet") for i in
               fs.get_file_info(FileSelector(f"{BUCKET}/clean/graph", recursive=True)))


def test_update_on_s3_state_a_second_updater_is_refused_by_the_lease(cluster, moto, inputs, driver_env):
    state, lease = f"s3://{BUCKET}/state", f"{BUCKET}/state/_lease.json"
    args = ["update", "-i", inputs["updates"], "-o", state, *UPDATE, "--stall-timeout", "120",
            "--address", cluster.address]
    fs = s3_fs(moto)
    first = biomine(args, driver_env, wait=False)
    assert wait_until(lambda: fs.get_file_info(lease).type == FileType.File or first.poll() is not None, 120)
    assert first.poll() is None, "the first updater ended before the second could start"
    with fs.open_input_stream(lease) as f:
        holder = json.loads(f.read())
    began = time.monotonic()
    second = biomine(args, driver_env, timeout=120)  # at once: no Ray, no work, no stall
    took = time.monotonic() - began
    assert second.returncode == 2, shown(second)
    errors = [line for line in second.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("biomine update: error: s3://bucket/state is in use"), \
        shown(second)
    assert (f"another biomine update (run {holder['run_id']}, host {holder['host']}, pid {first.pid}, "
            f"started {holder['started']}, last heartbeat") in errors[0] and "--break-lease" in errors[0]
    assert took < 90, took  # python start + preflight; the first updater works on meanwhile
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, f"exit {first.returncode}\n{out[-2000:]}\n{err[-4000:]}"
    assert fs.get_file_info(lease).type == FileType.NotFound  # released when the job ended
    rerun = biomine(args, driver_env, timeout=300)
    assert rerun.returncode == 0 and "already processed, skipped" in rerun.stdout, shown(rerun)
    ids = live_pmids(moto, state)
    assert ids and len(ids) == len(set(ids))


def test_update_with_a_worker_killed_every_pmid_once_equal_to_clean(cluster, moto, inputs, driver_env,
                                                                    tmp_path):
    # two GPU workers again (the run above killed one); one GPU actor, so a lost one has a GPU to go to
    spare = cluster.add_worker(cpus=1, gpus=1)
    cluster.wait_for_nodes(3, timeout=120)
    state, name = f"s3://{BUCKET}/state-killed", "pubmed26n0001"
    settings = tmp_path / "update.json"
    settings.write_text(json.dumps({"rows_per_file": 100}))  # 3 state commits of the file's run
    args = ["update", "-i", f"{inputs['pubmed']}{name}.xml.gz", "-o", state, *UPDATE, "--gpus", "1",
            "--config", str(settings), "--stall-timeout", "120", "--address", cluster.address]
    proc = biomine(args, driver_env, wait=False)
    fs = s3_fs(moto)

    def some_commit() -> bool:
        from pyarrow.fs import FileSelector

        infos = fs.get_file_info(FileSelector(f"{BUCKET}/state-killed/runs/{name}/_commits",
                                              allow_not_found=True))
        return any(i.base_name.endswith(".parquet") for i in infos) or proc.poll() is not None

    assert wait_until(some_commit, 240)
    assert proc.poll() is None, "the update finished before the worker could be killed"
    cluster.kill_node(spare)
    out, err = proc.communicate(timeout=300)
    if proc.returncode != 0:  # allowed: fail with exit 1, then the rerun finishes
        assert proc.returncode == 1, f"exit {proc.returncode}\n{out[-2000:]}\n{err[-4000:]}"
        done = biomine(args, driver_env, timeout=300)
        assert done.returncode == 0, shown(done)
    got = live_pmids(moto, state)
    want = list(range(FIRST_PMID, FIRST_PMID + SYNTH_PER_FILE))  # the file's PMIDs, each once
    assert len(got) == len(set(got)) and sorted(got) == want
    ents = live(moto, state, "entities", ENTITY_COLUMNS)
    rows = sorted(zip(*(ents.column(c).to_pylist() for c in ENTITY_COLUMNS)))
    assert rows and rows == [r for r in entity_rows(moto, CLEAN) if r[0] in set(want)]
    assert fs.get_file_info(f"{BUCKET}/state-killed/_lease.json").type == FileType.NotFound
    cluster.wait_for_nodes(2)


def test_a_plan_the_cluster_cannot_place_is_refused_up_front(cluster, inputs, driver_env):
    done = biomine(["run", inputs["updates"], "-o", f"s3://{BUCKET}/refused", *MINE, "--gpus", "2",
                    "--address", cluster.address], driver_env, timeout=120)
    assert done.returncode == 2, shown(done)
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "--gpus 2: only 1 GPU actor(s) fit" in errors[0], shown(done)


def test_losing_the_only_gpu_node_ends_in_the_watchdog_message(cluster, moto, inputs, driver_env):
    cluster.add_worker(cpus=1, gpus=0)  # CPUs stay; the GPU actor can go nowhere once W1 dies
    cluster.wait_for_nodes(3, timeout=120)
    started = time.monotonic()
    proc = biomine(["run", inputs["pubmed"], "-o", f"s3://{BUCKET}/stalled", *MINE, "--limit", "400",
                    "--address", cluster.address, "--stall-timeout", "20"], driver_env, wait=False)
    err: list[str] = []
    placed = threading.Event()

    def follow() -> None:
        for line in proc.stderr:
            err.append(line)
            if "placement:" in line:
                placed.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    assert placed.wait(120), "".join(err)[-3000:]
    cluster.kill_node(cluster.nodes[1])  # worker 1: the only node with a GPU
    code = proc.wait(timeout=240)
    reader.join(timeout=10)
    text = "".join(err)
    assert code == 1, text[-4000:]
    assert "StallError: no block moved for 20 s" in text, text[-4000:]
    assert "Ray cannot place" in text and "GPU: 1" in text and "no node is big enough" in text, text[-4000:]
    assert time.monotonic() - started < 240
