"""The main job: PubMed XML -> latest records -> tokens -> GPU actor pool -> Parquet, resumable.

Plan (driver side):
1. index every input file (one Ray task per file): (pmid, version, position, record type);
2. resolve NLM update semantics over the files in NLM order: one record per PMID (highest
   version, last occurrence), minus PMIDs deleted afterwards;
3. `recover()` the output folder: committed blocks are done, uncommitted files are dropped;
4. stream only the pending records: read (one task per file) -> select -> tokenize (CPU actors)
   -> generate/tag (GPU actors) -> postprocess (CPU actors) -> ResultSink (atomic commits).
A rerun of a finished run stops after step 3 without starting any model.
"""
from __future__ import annotations

import gc
import json
import logging
import os
import time
import traceback
import uuid
import warnings
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from pipeline.config import RunConfig
from pipeline.engine_stats import collect_engine_counters
from pipeline.manifest import run_manifest, write_json
from pipeline.outputs import OUTPUT_TABLES, TABLE_NAMES
from pipeline.pubmed.schema import ERROR_SCHEMA
from pipeline.sink import ResultSink, open_output, recover, write_table_atomic
from pipeline.stages import PostprocessStage, SelectStage, TokenizeStage, record_keys

log = logging.getLogger(__name__)

MINING_COLUMNS = ["pmid", "version", "title", "abstract", "journal_title", "pub_year",
                  "source_file", "file_seq", "position"]


def start_ray(config: RunConfig) -> Any:
    """Join the cluster at config.address, or start a local Ray (reusing one already up)."""
    import ray

    if not ray.is_initialized():
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        if config.address:
            kwargs["address"] = config.address
        ray.init(**kwargs)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = config.progress
    ctx.enable_auto_log_stats = False
    if config.object_store_memory_gb:
        ctx.execution_options.resource_limits = ctx.execution_options.resource_limits.copy(
            object_store_memory=int(config.object_store_memory_gb * 2**30))
    return ray


def index_files(ray: Any, files: list[str]) -> tuple[pa.Table | None, list[dict]]:
    """Index every file in parallel (one task each); damaged files give error rows."""

    @ray.remote(num_cpus=0.5, max_retries=1)
    def scan(path: str) -> tuple[pa.Table, list[dict]]:
        from pipeline.pubmed.xml import iter_index
        from pipeline.pubmed.schema import INDEX_SCHEMA

        rows, errors = [], []
        try:
            for r in iter_index(path):
                (errors if r["record_type"] == "error" else rows).append(r)
        except Exception as exc:  # unreadable file: reported, the other files go on
            errors.append({"source_file": os.path.basename(path), "stage": "index",
                           "message": f"{os.path.basename(path)}: {type(exc).__name__}: {exc}"})
        table = pa.Table.from_pydict({n: [r.get(n) for r in rows] for n in INDEX_SCHEMA.names},
                                     schema=INDEX_SCHEMA)
        return table, errors

    tables, errors = [], []
    for file_id, (table, errs) in enumerate(ray.get([scan.remote(p) for p in files])):
        errors.extend(errs)
        # files are already in NLM order: their rank is the update order (names need no number)
        tables.append(table.set_column(table.column_names.index("file_seq"), "file_seq",
                                       pa.array(np.full(table.num_rows, file_id, np.int32))))
    index = pa.concat_tables(tables) if tables else None
    return index, errors


def select_pending(index: pa.Table | None, done: pa.Array, limit: int | None) -> tuple[pa.Table, dict]:
    """Latest record per PMID (deleted ones removed), first `limit`, minus committed PMIDs."""
    from pipeline.pubmed.updates import resolve_updates

    empty = pa.table({"pmid": pa.array([], pa.int64()), "file_seq": pa.array([], pa.int32()),
                      "position": pa.array([], pa.int64())})
    if index is None or index.num_rows == 0:
        return empty, {"records": 0, "deletions": 0, "latest": 0, "done": 0, "pending": 0}
    winners = resolve_updates(index)
    # one row per PMID: the highest version, then the latest occurrence
    order = pc.sort_indices(winners, [("pmid", "ascending"), ("version", "descending"),
                                      ("file_seq", "descending"), ("position", "descending")])
    winners = winners.take(order)
    pmids = winners.column("pmid").to_numpy()
    first = np.ones(len(pmids), dtype=bool)
    first[1:] = pmids[1:] != pmids[:-1]
    latest = winners.filter(pa.array(first))
    latest = latest.take(pc.sort_indices(latest, [("file_seq", "ascending"), ("position", "ascending")]))
    if limit is not None:
        latest = latest.slice(0, limit)
    pending = latest.filter(pc.invert(pc.is_in(latest.column("pmid"), value_set=done)))
    kinds = index.column("record_type")
    counts = {"records": int(pc.sum(pc.equal(kinds, "article")).as_py() or 0),
              "deletions": int(pc.sum(pc.equal(kinds, "deletion")).as_py() or 0),
              "latest": latest.num_rows, "done": latest.num_rows - pending.num_rows,
              "pending": pending.num_rows}
    return pending.select(["pmid", "file_seq", "position"]), counts


def _cpu_share(ray: Any) -> float:
    """CPUs per task/actor: whole cores on real machines, a quarter on tiny boxes, where whole-CPU
    read tasks could wait forever behind the stage actors (ray #44687)."""
    return 1.0 if ray.cluster_resources().get("CPU", 1) >= 8 else 0.25


def build_dataset(ray: Any, config: RunConfig, files: list[str], pending: pa.Table, run_id: str) -> Any:
    """The lazy Ray Dataset for the pending records (no work happens until it is written)."""
    from pipeline.gpu_stage import GPU_FAULT_ENV, GenerateStage, gpu_pool_options
    from pipeline.pubmed.read import read_pubmed

    file_ids = {os.path.basename(f): i for i, f in enumerate(files)}
    needed = sorted(set(pending.column("file_seq").to_pylist()))
    keys = record_keys(pending.column("file_seq").to_numpy(), pending.column("position").to_numpy())
    cpu = _cpu_share(ray)
    gpus_total = int(ray.cluster_resources().get("GPU", 0))
    gpu_actors = config.gpus if config.gpus is not None else gpus_total
    cpu_actors = config.cpu_actors or max(2, 2 * gpu_actors)
    ds = read_pubmed([files[i] for i in needed], num_cpus=cpu, columns=MINING_COLUMNS)
    pool = ray.data.ActorPoolStrategy
    ds = ds.map_batches(SelectStage, fn_constructor_kwargs={"keys": keys, "file_ids": file_ids},
                        batch_size=config.cpu_batch_size, batch_format="pyarrow",
                        compute=pool(size=1), num_cpus=cpu)
    ds = ds.map_batches(TokenizeStage, fn_constructor_kwargs={"config": config},
                        batch_size=config.cpu_batch_size, batch_format="pyarrow",
                        compute=pool(min_size=1, max_size=cpu_actors), num_cpus=cpu)
    with warnings.catch_warnings():
        # Ray 2.60 has no named parameter for bounded actor restarts / task retries (its
        # default is unbounded, so an actor that dies on every try would loop forever).
        warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
        ds = ds.map_batches(GenerateStage,
                            fn_constructor_kwargs={"config": config,
                                                   "die_once": os.environ.get(GPU_FAULT_ENV)},
                            batch_size=config.batch_size, batch_format="pyarrow",
                            compute=pool(size=max(gpu_actors, 1), **gpu_pool_options(config)),
                            num_gpus=1 if gpu_actors > 0 else 0, num_cpus=cpu,
                            max_restarts=config.max_actor_restarts,
                            max_task_retries=config.max_retries)
    return ds.map_batches(PostprocessStage, fn_constructor_kwargs={"config": config, "run_id": run_id},
                          batch_size=config.cpu_batch_size, batch_format="pyarrow",
                          compute=pool(min_size=1, max_size=cpu_actors), num_cpus=cpu)


def run(config: RunConfig) -> dict:
    """Run (or resume) the job; returns the manifest also written to OUT/_manifest.json."""
    from pipeline.pubmed.read import expand_inputs

    started = time.time()
    files = expand_inputs(config.inputs)  # missing paths fail here, before any work
    run_id = _run_id(config)
    ray = start_ray(config)
    done = recover(config.output, TABLE_NAMES)
    index, file_errors = index_files(ray, files)
    _write_file_errors(config.output, file_errors)
    pending, counts = select_pending(index, done, config.limit)
    log.info("%d files: %d records, %d deletions -> %d latest; %d already done, %d to mine",
             len(files), counts["records"], counts["deletions"], counts["latest"], counts["done"],
             counts["pending"])
    sink = ResultSink(config.output, OUTPUT_TABLES, run_id)
    status = "nothing to do"
    failure: str | None = None
    try:
        if pending.num_rows:
            status = "failed"
            _execute(ray, config, files, pending, run_id, sink)
            status = "finished"
    except Exception as exc:  # logged in full here, re-raised below as one clear error
        # the traceback goes in as text: a record holding exc_info (kept by log handlers)
        # would keep the failed dataset, and so its GPU actors, alive
        log.error("run %s failed:\n%s", run_id, traceback.format_exc())
        failure = f"{type(exc).__name__}: {exc}"
    finally:
        manifest = run_manifest(config, run_id, status, files, counts, sink.totals, file_errors,
                                time.time() - started, failure)
        manifest["engine"] = collect_engine_counters(config.output, started)
        write_json(config.output, "_manifest.json", manifest)
    if failure is not None:
        # Ray Data releases a failed run's actors by dropping references, not by killing them;
        # the traceback's frames hold the dataset, so collect them now to free the GPUs.
        gc.collect()
        raise RuntimeError(f"run {run_id} failed: {failure}\n"
                           f"committed work is kept: run the same command again to resume")
    return manifest


def _execute(ray: Any, config: RunConfig, files: list[str], pending: pa.Table, run_id: str,
             sink: ResultSink) -> None:
    """Build and write the dataset (its only reference lives in this frame)."""
    ds = build_dataset(ray, config, files, pending, run_id)
    ds.write_datasink(sink, ray_remote_args={"num_cpus": _cpu_share(ray)})


def _run_id(config: RunConfig) -> str:
    """The run id: from the config, else the one stored by an earlier start of this output."""
    fs, base = open_output(config.output)
    fs.create_dir(base, recursive=True)
    path = f"{base}/_run.json"
    settings = {"tasks": config.tasks, "re_model": config.re_model_id, "ner_model": config.ner_model_id,
                "entities": config.entities}
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        with fs.open_input_stream(path) as f:
            stored = json.loads(f.read())
        if stored["settings"] != settings:
            raise ValueError(f"{config.output} holds a run with other settings {stored['settings']}; "
                             f"use a new output folder")
        if config.run_id and config.run_id != stored["run_id"]:
            raise ValueError(f"{config.output} belongs to run {stored['run_id']}, not {config.run_id}")
        return stored["run_id"]
    run_id = config.run_id or time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    write_json(config.output, "_run.json", {"run_id": run_id, "settings": settings})
    return run_id


def _write_file_errors(output: str, errors: list[dict]) -> None:
    """Whole-file problems go to OUT/errors/files.parquet (rewritten by every start)."""
    fs, base = open_output(output)
    fs.create_dir(f"{base}/errors", recursive=True)
    path = f"{base}/errors/files.parquet"
    if errors:
        rows = {name: [e.get(name) for e in errors] for name in ERROR_SCHEMA.names}
        write_table_atomic(fs, pa.Table.from_pydict(rows, schema=ERROR_SCHEMA), path)
    elif fs.get_file_info(path).type != pafs.FileType.NotFound:
        fs.delete_file(path)
