"""The main job: PubMed XML -> latest records -> tokens -> GPU actor pool -> Parquet, resumable.

Plan (driver side):
1. index every input file (one Ray task per file): (pmid, version, position, record type);
2. resolve NLM update semantics over the files in NLM order: one record per PMID (highest
   version, last occurrence), minus PMIDs deleted afterwards;
3. `recover()` the output folder: committed blocks are done, uncommitted files are dropped;
4. stream only the pending records: read (one task per file, given only that file's sorted
   keep positions; other records are skipped unparsed) -> tokenize (CPU actors)
   -> generate/tag (GPU actors) -> postprocess (CPU actors) -> ResultSink (atomic commits).
A rerun of a finished run stops after step 3 without starting any model.
"""
from __future__ import annotations

import gc
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

from pipeline.records.accounting import READ_ERROR_COLUMNS
from pipeline.config import RunConfig
from pipeline.curation.report import write_run_report
from pipeline.records.engine_stats import collect_engine_counters
from pipeline.records.manifest import run_manifest, write_json
from pipeline.dataflow.outputs import OUTPUT_TABLES, TABLE_NAMES
from pipeline.pubmed.schema import ERROR_SCHEMA
from pipeline.dataflow.sink import ResultSink, recover
from pipeline.dataflow.stages import PostprocessStage, TokenizeStage
from pipeline.dataflow.ray_session import connect, repartition_rows
from pipeline.planning.placement import Placement, check_placement
from pipeline.storage import Location

log = logging.getLogger(__name__)

MINING_COLUMNS = ["pmid", "version", "title", "abstract", "journal_title", "pub_year",
                  "source_file", "file_seq", "position",
                  "doi", "pmc_id", "mesh_headings", "publication_types",  # carried to articles/
                  "chemicals"]  # ChemicalList: the linker's article indexing (not written)


def index_files(ray: Any, files: list[str], output: str | Location | None = None,
                num_cpus: float = 0.5) -> tuple[pa.Table | None, list[dict]]:
    """Index every file (one task each, or its cached index in OUT/_index/); damaged files give
    error rows. File ranks in `files` (NLM order) are the update order (file_seq)."""
    from pipeline.planning.index_cache import index_files as cached_index

    index, errors, _ = cached_index(ray, files, output, num_cpus=num_cpus)
    return index, errors


def select_pending(index: pa.Table | None, done: pa.Array, limit: int | None) -> tuple[pa.Table, dict]:
    """Latest record per PMID (deleted ones removed), first `limit`, minus committed PMIDs;
    resolved per PMID partition in bounded memory (pipeline/planning/selection.py)."""
    from pipeline.planning.selection import latest_records

    empty = pa.table({"pmid": pa.array([], pa.int64()), "file_seq": pa.array([], pa.int32()),
                      "position": pa.array([], pa.int32())})
    if index is None or index.num_rows == 0:
        return empty, {"records": 0, "deletions": 0, "latest": 0, "done": 0, "pending": 0}
    latest = latest_records(index, done)
    if limit is not None:
        latest = latest.slice(0, limit)
    is_done = latest.column("done")
    pending = latest.filter(pc.invert(is_done))
    kinds = index.column("record_type")
    counts = {"records": int(pc.sum(pc.equal(kinds, "article")).as_py() or 0),
              "deletions": int(pc.sum(pc.equal(kinds, "deletion")).as_py() or 0),
              "latest": latest.num_rows, "done": latest.num_rows - pending.num_rows,
              "pending": pending.num_rows}
    return pending.select(["pmid", "file_seq", "position"]), counts


def keep_lists(files: list[str], pending: pa.Table) -> dict[str, np.ndarray]:
    """Pending records grouped per input file: file name -> sorted record positions (int32)."""
    # one int64 sort key (file_seq high, position low): several times faster than lexsort
    key = pending.column("file_seq").to_numpy().astype(np.int64) << 32
    key |= pending.column("position").to_numpy().astype(np.int64)
    key.sort()
    seq, pos = key >> 32, (key & 0xFFFFFFFF).astype(np.int32)
    ids, starts = np.unique(seq, return_index=True)
    bounds = list(starts[1:]) + [len(seq)]
    return {os.path.basename(files[int(i)]): pos[s:e] for i, s, e in zip(ids, starts, bounds)}


def build_dataset(ray: Any, config: RunConfig, files: list[str], pending: pa.Table, run_id: str,
                  placement: Placement | None = None) -> Any:
    """The lazy Ray Dataset for the pending records (no work happens until it is written).

    Every CPU request is sized per node (`pipeline.planning.placement`), never from cluster totals."""
    from pipeline.dataflow.gpu_stage import GPU_FAULT_ENV, GenerateStage, gpu_pool_options
    from pipeline.pubmed.read import read_pubmed

    placement = placement or check_placement(ray, config)
    keep = keep_lists(files, pending)
    cpu, gpu_actors, cpu_actors = placement.cpu, placement.gpu_actors, placement.cpu_actors
    # each read task gets only its own file's keep-list and parses nothing else; read errors
    # of kept records come along (folded into their article row, counted)
    ds = read_pubmed([f for f in files if os.path.basename(f) in keep], num_cpus=cpu,
                     kinds=("articles", "errors"), columns=MINING_COLUMNS + READ_ERROR_COLUMNS,
                     keep=keep)
    pool = ray.data.ActorPoolStrategy
    ds = ds.map_batches(TokenizeStage, fn_constructor_kwargs={"config": config},
                        batch_size=config.cpu_batch_size, batch_format="pyarrow",
                        compute=pool(min_size=1, max_size=cpu_actors), num_cpus=cpu)
    # one GPU-stage batch per block: Ray runs a task's batches one after another, so blocks of
    # many batches would keep only a few batches in flight (one per task) and starve the engine
    ds = repartition_rows(ds, config.batch_size, cpu)
    with warnings.catch_warnings():
        # Ray 2.60 has no named parameter for bounded actor restarts / task retries (its
        # default is unbounded, so an actor that dies on every try would loop forever).
        warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
        ds = ds.map_batches(GenerateStage,
                            fn_constructor_kwargs={"config": config,
                                                   "die_once": os.environ.get(GPU_FAULT_ENV)},
                            batch_size=config.batch_size, batch_format="pyarrow",
                            compute=pool(size=max(gpu_actors, 1), **gpu_pool_options(config)),
                            num_gpus=1 if gpu_actors > 0 else 0, num_cpus=placement.gpu_actor_cpu,
                            max_restarts=config.max_actor_restarts,
                            max_task_retries=config.max_retries)
    return ds.map_batches(PostprocessStage, fn_constructor_kwargs={"config": config, "run_id": run_id},
                          batch_size=config.cpu_batch_size, batch_format="pyarrow",
                          compute=pool(min_size=1, max_size=cpu_actors), num_cpus=cpu)


def run(config: RunConfig, *, strict: bool = False, break_lease: bool = False, lease: bool = True) -> dict:
    """Run (or resume) the job under OUT/_lease.json; returns the manifest also written to
    OUT/_manifest.json. `lease=False`: the caller holds a lease over OUT (`biomine update`).

    Raises PreflightError (nothing written, before Ray starts), LeaseHeld (another live run works
    in OUT), RunFailed (root cause and advice; also when the record accounting does not add up,
    or, with strict, on any error) or RunInterrupted (Ctrl-C).
    """
    from pipeline.planning.preflight import check_run
    from pipeline.pubmed.read import expand_inputs
    from pipeline.storage.lease import LeaseConfig, hold_lease

    started = time.time()
    files = expand_inputs(config.inputs)  # missing paths fail here, before any work
    check_run(config, files)  # bad models, -o, unreadable inputs: before Ray, nothing written
    out = Location.open(config.output)  # the one resolution of -o; passed on from here
    if not lease:
        return _run(config, files, out, started, strict, None)
    stored = out.read_json("_run.json")["run_id"] if out.is_file("_run.json") else None
    with hold_lease(out, "run", config.run_id or stored, LeaseConfig(ttl_s=config.lease_ttl_s),
                    break_lease) as held:  # one run at a time in OUT, before Ray starts
        return _run(config, files, out, started, strict, held)


def _run(config: RunConfig, files: list[str], out: Location, started: float, strict: bool,
         held: Any) -> dict:
    """The run itself, once OUT is ours (see run)."""
    from pipeline.records.accounting import account, describe
    from pipeline.records.failures import RunFailed, RunInterrupted, explain
    from pipeline.records.manifest import invocation_entry, read_manifest, with_history
    from pipeline.records.progress import Progress

    ray, placement = connect(config)  # a cluster that cannot run the plan: refused, nothing written
    previous = read_manifest(out)
    locked_before = _run_lock_exists(out)
    run_id = _run_id(config, out)
    if held is not None:
        held.set_run_id(run_id)
    status, failure, explained, log_path, details = "failed", None, None, None, None
    index, file_errors, sink, progress = None, [], None, None
    counts = {"records": 0, "deletions": 0, "latest": 0, "done": 0, "pending": 0}
    try:
        done = recover(out, TABLE_NAMES)
        index, file_errors = index_files(ray, files, out, placement.index_cpu)
        _write_file_errors(out, file_errors)
        pending, counts = select_pending(index, done, config.limit)
        log.info("%d files: %d records, %d deletions -> %d latest; %d already done, %d to mine",
                 len(files), counts["records"], counts["deletions"], counts["latest"], counts["done"],
                 counts["pending"])
        if file_errors and counts["records"] == 0 and counts["deletions"] == 0:
            raise ValueError(f"no record could be read from any of the {len(files)} input file(s); "
                             f"first error: {file_errors[0]['message']}")
        if strict and file_errors:
            raise ValueError(f"--strict: {len(file_errors)} file error(s); first: {file_errors[0]['message']}")
        sink = ResultSink(out, OUTPUT_TABLES, run_id, config.rows_per_file)
        progress = Progress(out, counts["pending"], show=config.progress)
        status = "nothing to do"
        if pending.num_rows:
            status = "failed"
            progress.start()
            _execute(ray, config, files, pending, run_id, sink, placement, progress)
            status = "finished"
    except KeyboardInterrupt:
        status, failure = "interrupted", "interrupted by the user (Ctrl-C / SIGINT)"
    except Exception as exc:  # logged in full to OUT/_logs, re-raised below as one clear error
        # the traceback goes in as text: a record holding exc_info (kept by log handlers)
        # would keep the failed dataset, and so its GPU actors, alive
        text = traceback.format_exc()
        explained = explain(exc)
        failure = explained.summary
        log_path = _write_log(out, run_id, text, relative=not os.path.isabs(config.output))
        details = text
        log.debug("run %s failed:\n%s", run_id, text)
    finally:
        written = progress.stop() if progress is not None and progress.started else {}
        if status == "finished" and sink is not None and sink.totals:
            written = {**written, **sink.totals}
        accounting = account(index, counts, written, file_errors)
        if status == "finished" and not accounting["ok"]:
            status, failure = "failed", f"record accounting does not add up: {describe(accounting)}"
        if status == "finished" and strict and written.get("errors", 0):
            status = "failed"
            failure = f"--strict: {written['errors']} record error(s), see {out.url('errors')}/"
        current = run_manifest(config, run_id, status, files, counts, written, file_errors,
                               time.time() - started, failure, accounting)
        current["engine"] = collect_engine_counters(out, started)  # this invocation's GPU actors
        if config.lexicon:  # linked share per type (pipeline.linking.summary)
            current["linking"] = _linking_summary(out)
        entry = invocation_entry(run_id, status, started, time.time(), written, _device(ray, placement, config),
                                 failure, counts["pending"])
        manifest = with_history(previous, current, entry)
        write_json(out, "_manifest.json", manifest)
        write_run_report(out)  # OUT/report.html; logs, never raises
        if not locked_before and status in ("failed", "interrupted") and not _has_commits(out):
            _remove_run_lock(out)  # nothing committed: the folder stays free for any settings
    if status == "interrupted":
        gc.collect()
        raise RunInterrupted(manifest)
    if status == "failed":
        # Ray Data releases a failed run's actors by dropping references, not by killing them;
        # the traceback's frames hold the dataset, so collect them now to free the GPUs.
        gc.collect()
        if explained is not None:
            advice = explained.advice()
        else:
            advice = "this is a bug in biomine or a fault no retry fixed; run the same command again to resume"
        raise RunFailed(f"run {run_id} failed: {failure}", advice, log_path, manifest, details)
    return manifest


def _linking_summary(output: str) -> dict[str, Any]:
    """Linked mentions per type over the whole output; a failure is logged, never fails the run."""
    from pipeline.linking.summary import linking_summary

    try:
        return linking_summary(output)
    except Exception as exc:  # the manifest must be written whatever happens
        log.warning("linking summary of %s failed: %s", output, exc)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _device(ray: Any, placement: Placement, config: RunConfig) -> dict[str, Any]:
    """What the run ran on: cluster CPUs and GPUs, and where."""
    if ray is None or not ray.is_initialized():
        return {"address": config.address or "local"}
    res = ray.cluster_resources()
    return {"address": config.address or "local", "cpus": res.get("CPU", 0), "gpus": res.get("GPU", 0),
            "gpu_actors": placement.gpu_actors, "nodes": len(placement.nodes)}


def _write_log(out: Location, run_id: str, text: str, relative: bool = False) -> str | None:
    """The full traceback of a failure to OUT/_logs/RUN_ID-TIME.log; its name (None if unwritable):
    the full URI (scheme kept) on an object store, relative to here when -o was."""
    try:
        rel = f"_logs/{run_id}-{time.strftime('%Y%m%dT%H%M%S')}.log"
        out.write_text(rel, text)
        return os.path.relpath(out.path(rel)) if relative and out.is_local else out.url(rel)
    except OSError as exc:
        log.warning("cannot write the failure log under %s: %s", out.url(), exc)
        return None


def _run_lock_exists(out: Location) -> bool:
    return out.exists("_run.json")


def _has_commits(out: Location) -> bool:
    return bool(out.files("_commits", ".parquet"))


def _remove_run_lock(out: Location) -> None:
    out.delete("_run.json")


def _execute(ray: Any, config: RunConfig, files: list[str], pending: pa.Table, run_id: str,
             sink: ResultSink, placement: Placement, progress: Any) -> None:
    """Build and write the dataset (its only reference lives in this frame), under the watchdog."""
    from pipeline.dataflow.watchdog import Watchdog, cluster_snapshot, diagnose

    def moved() -> tuple[int, int]:
        return progress.counts["articles"], progress.through_model

    watchdog = Watchdog(moved, config.stall_timeout_s, lambda: diagnose(*cluster_snapshot(ray))).start()
    try:
        ds = build_dataset(ray, config, files, pending, run_id, placement)
        ds.write_datasink(sink, ray_remote_args={"num_cpus": placement.cpu})
    finally:
        watchdog.stop()


def _settings_diff(stored: dict, now: dict) -> str:
    """What differs between a stored run's settings and this start's, one `key stored -> now` each."""
    keys = sorted(set(stored) | set(now))
    return ", ".join(f"{k} {stored.get(k)!r} -> {now.get(k)!r}" for k in keys if stored.get(k) != now.get(k))


def _run_id(config: RunConfig, out: Location) -> str:
    """The run id: from the config, else the one stored by an earlier start of this output."""
    out.makedirs()
    settings = {"tasks": config.tasks, "re_model": config.re_model_id, "ner_model": config.ner_model_id,
                "entities": config.entities}
    if config.lexicon:  # only when set: runs started before --lexicon existed still resume
        settings["lexicon"] = config.lexicon
    if out.exists("_run.json"):
        stored = out.read_json("_run.json")
        if stored["settings"] != settings:
            differs = _settings_diff(stored["settings"], settings)
            raise ValueError(f"{out.url()} holds a run with other settings: {differs}; resume it with its "
                             "settings (a run stored without a lexicon resumes with --lexicon none) or use "
                             "a new output folder")
        if config.run_id and config.run_id != stored["run_id"]:
            raise ValueError(f"{out.url()} belongs to run {stored['run_id']}, not {config.run_id}")
        return stored["run_id"]
    run_id = config.run_id or time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    write_json(out, "_run.json", {"run_id": run_id, "settings": settings})
    return run_id


def _write_file_errors(out: Location, errors: list[dict]) -> None:
    """Whole-file problems go to OUT/errors/files.parquet (rewritten by every start)."""
    out.makedirs("errors")
    if errors:
        rows = {name: [e.get(name) for e in errors] for name in ERROR_SCHEMA.names}
        out.write_table("errors/files.parquet", pa.Table.from_pydict(rows, schema=ERROR_SCHEMA))
    else:
        out.delete("errors/files.parquet")
