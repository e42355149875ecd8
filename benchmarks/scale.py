"""Scale benchmark: cost per record of every data-plane phase from 10 k towards PubMed's 40 M.

    python -m benchmarks.scale --sizes 10000,100000,1000000 --run-sizes 10000,100000 \\
        --workdir /tmp/biomine-scale -o benchmarks/results/scale-cpu.json

Input: NLM-like gzip baseline files of 30,000 records built from the bundled sample (fresh,
unique PMIDs), plus update files that revise ~5 % of the PMIDs and delete ~1 %. Per size N, in
a fresh driver process each (so peak RSS is that phase set's own): index (cold, then from the
OUT/_index cache), resolve (update semantics + selection), keep-lists, recover on an empty and
on a full commit log (N committed PMIDs), and the per-batch cost of selection. For the run
sizes, the whole `biomine run --tasks ner --demo-model` (the CPU demo model as the "GPU"
stage), its driver and worker peak RSS, files per table and rows per file; then a run killed
(SIGKILL) at ~50 % committed and restarted: seconds until mining resumes. Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.scale_inputs import PER_FILE, synthesize, synthetic_index


def peak_rss_mb() -> float:
    """This process's peak resident memory (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's resident memory now (MiB)."""
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(x.split()[1]) for x in status if x.startswith("VmRSS:")) / 1024


def timed(fn, *args, **kw):  # noqa: ANN001, ANN202
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def peaked(fn, *args, **kw):  # noqa: ANN001, ANN202
    """(result, seconds, MiB of RSS the call added at its peak): VmHWM reset via clear_refs."""
    Path("/proc/self/clear_refs").write_text("5")
    before = rss_mb()
    out, secs = timed(fn, *args, **kw)
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(int(x.split()[1]) for x in status if x.startswith("VmHWM:")) / 1024
    return out, secs, peak - before


def fake_commits(output: str, pmids, rows_per_file: int) -> None:  # noqa: ANN001
    """A commit log of len(pmids) committed PMIDs in groups of rows_per_file (one tiny table)."""
    import pyarrow as pa

    from pipeline.dataflow.sink import OutputTable, ResultSink

    tables = [OutputTable("articles", pa.schema([("pmid", pa.int64())]))]
    sink = ResultSink(output, tables, "bench", rows_per_file)
    sink.on_write_start()
    for start in range(0, len(pmids), rows_per_file):
        sink.write([pa.table({"pmid": pmids.slice(start, rows_per_file)})], None)


def plan_phases(n: int, workdir: Path, xml_max: int) -> dict:
    """Every planning phase at size n, in this (fresh) process. Up to xml_max records the index
    comes from real gzip XML files (cold, then cached); above, from synthetic_index(n)."""
    import numpy as np
    import pyarrow as pa
    import ray

    from pipeline.dataflow.build import keep_lists, select_pending
    from pipeline.planning.index_cache import index_files
    from pipeline.pubmed.read import keep_positions_handler
    from pipeline.dataflow.sink import recover

    out = workdir / f"plan-{n}"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    warm = synthetic_index(2 * PER_FILE)  # load every kernel once: the RSS baseline is warm
    fake_commits(str(out / "warm"), select_pending(warm, pa.array([], pa.int64()), None)[0]
                 .column("pmid").combine_chunks(), 10_000)
    select_pending(warm, recover(str(out / "warm"), ["articles"]), None)
    del warm
    res: dict = {"n": n, "index_source": "xml" if n <= xml_max else "synthetic (numpy, same rows)"}
    if n <= xml_max:
        files = synthesize(workdir / f"in-{n}", n)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        (index, errors, stats), res["index_cold_s"] = timed(index_files, ray, files, str(out))
        assert not errors and stats.scanned == len(files), (errors, stats)
        (index, _, stats), res["index_cached_s"] = timed(index_files, ray, files, str(out))
        assert stats.cached == len(files)
        assert index.equals(synthetic_index(n)), "synthetic_index disagrees with the XML index"
    else:
        index = synthetic_index(n)
        files = [f"pubmed26n{i + 1:04d}.xml.gz" for i in range(int(index["file_seq"][-1].as_py()) + 1)]
    res["files"] = len(files)
    res["records"] = index.num_rows
    res["driver_index_bytes_per_record"] = round(index.nbytes / index.num_rows, 1)
    empty = pa.array([], pa.int64())
    (pending, counts), res["resolve_s"], extra = peaked(select_pending, index, empty, None)
    res["resolve_peak_extra_bytes_per_record"] = round(extra * 2**20 / n, 1)
    res["counts"] = counts
    res["driver_pending_bytes_per_record"] = round(pending.nbytes / pending.num_rows, 1)
    keep, res["keep_lists_s"], extra = peaked(keep_lists, files, pending)
    res["keep_lists_peak_extra_bytes_per_record"] = round(extra * 2**20 / n, 1)
    _, res["recover_empty_s"] = timed(recover, str(out), ["articles"])
    fake_commits(str(out / "full"), pending.column("pmid").combine_chunks(), 100_000)
    done, res["recover_full_s"], extra = peaked(recover, str(out / "full"), ["articles"])
    res["recover_full_peak_extra_bytes_per_record"] = round(extra * 2**20 / n, 1)
    assert len(done) == pending.num_rows
    (_, after), res["resolve_with_done_s"], extra = peaked(select_pending, index, done, None)
    res["resolve_with_done_peak_extra_bytes_per_record"] = round(extra * 2**20 / n, 1)
    assert after["pending"] == 0
    # selection per 256-record batch: inside the read task, one mask lookup per record
    positions = next(iter(keep.values()))
    handler = keep_positions_handler(positions)
    probes = 200 * 256
    t = time.perf_counter()
    for pos in range(probes):
        handler(None, None, None, PER_FILE + pos)  # not kept: the lookup alone
    res["select_per_batch_us"] = round((time.perf_counter() - t) / 200 * 1e6, 1)
    # the old design for comparison: np.isin of a batch against every pending key
    keys = np.sort((pending.column("file_seq").to_numpy().astype(np.int64) << 32)
                   | pending.column("position").to_numpy().astype(np.int64))
    batch = keys[:: max(1, len(keys) // 256)][:256]
    t = time.perf_counter()
    for _ in range(5):
        np.isin(batch, keys)
    res["old_select_stage_per_batch_us"] = round((time.perf_counter() - t) / 5 * 1e6, 1)
    res["driver_peak_rss_mb"] = round(peak_rss_mb(), 1)
    res["arrow_peak_mb"] = round(pa.default_memory_pool().max_memory() / 2**20, 1)
    for key in ("index_cold_s", "index_cached_s", "resolve_s", "keep_lists_s", "recover_empty_s",
                "recover_full_s", "resolve_with_done_s"):
        if key in res:
            res[key.replace("_s", "_us_per_record")] = round(res[key] / n * 1e6, 3)
            res[key] = round(res[key], 4)
    if ray.is_initialized():
        ray.shutdown()
    return res


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process."""
    out = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                out[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return out


def _rss_watch(pid: int, stop: threading.Event, peaks: dict) -> None:
    """Poll /proc: peak RSS (MiB) of the driver `pid` and of each Ray process it started (its
    descendants: the local Ray's raylet and workers), by process title."""
    while not stop.is_set():
        parents = _parents()
        for child in parents:
            up, seen = child, 0
            while up not in (pid, 0, 1) and up in parents and seen < 50:
                up, seen = parents[up], seen + 1
            if up != pid:
                continue
            try:
                title = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
                rss = next(int(line.split()[1]) for line in Path(f"/proc/{child}/status").read_text()
                           .splitlines() if line.startswith("VmRSS:")) / 1024
            except (OSError, StopIteration, ValueError):
                continue
            name = "driver" if child == pid else title
            if name == "driver" or name.startswith("ray::"):
                peaks[name] = max(peaks.get(name, 0.0), round(rss, 1))
        stop.wait(1.0)


def _cli(files: list[str], out: Path, rows_per_file: int) -> list[str]:
    return [sys.executable, "-m", "jobs.cli", "run", *files, "-o", str(out), "--tasks", "ner",
            "--demo-model", "--no-progress", "--rows-per-file", str(rows_per_file)]


def whole_run(n: int, workdir: Path, rows_per_file: int) -> dict:
    """`biomine run --tasks ner --demo-model` on the size-n inputs: wall, RSS, file layout."""
    from pipeline.dataflow.sink import commit_log

    files = synthesize(workdir / f"in-{n}", n)
    out = workdir / f"run-{n}"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    peaks: dict = {}
    stop = threading.Event()
    t = time.perf_counter()
    proc = subprocess.Popen(_cli(files, out, rows_per_file), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    watch = threading.Thread(target=_rss_watch, args=(proc.pid, stop, peaks), daemon=True)
    watch.start()
    log, _ = proc.communicate()
    wall = time.perf_counter() - t
    stop.set()
    if proc.returncode:
        raise RuntimeError(f"run at {n} failed:\n{log[-3000:]}")
    manifest = json.loads((out / "_manifest.json").read_text())
    records = commit_log(str(out))
    layout = {}
    for table in ("articles", "relations", "entities", "errors"):
        import pyarrow.parquet as pq

        rows = [pq.ParquetFile(p).metadata.num_rows for p in sorted((out / table).glob("part-*.parquet"))
                if p.name != "part-schema.parquet"]
        layout[table] = {"files": len(rows), "rows_per_file": rows}
    size = sum(p.stat().st_size for t in layout for p in (out / t).glob("*.parquet"))
    workers = {k: v for k, v in peaks.items() if k != "driver"}
    return {"n": n, "wall_s": round(wall, 1), "us_per_record": round(wall / n * 1e6, 1),
            "articles_per_s": round(n / wall, 1), "written": manifest["counts"]["written"],
            "index": manifest["counts"]["index"], "commit_groups": len(records),
            "layout": layout, "output_bytes": size,
            "output_bytes_per_article": round(size / max(manifest["counts"]["written"].get("articles", 1), 1), 1),
            "driver_peak_rss_mb": peaks.get("driver"),
            "worker_peak_rss_mb": dict(sorted(workers.items(), key=lambda kv: -kv[1])[:8])}


def kill_and_restart(n: int, workdir: Path, rows_per_file: int) -> dict:
    """Kill -9 a run once ~50 % of its records are committed; time the restart until mining
    resumes (the driver has planned and streams the rest) and until its first new commit."""
    from pipeline.dataflow.sink import commit_log

    files = synthesize(workdir / f"in-{n}", n)
    out = workdir / f"kill-{n}"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    proc = subprocess.Popen(_cli(files, out, rows_per_file), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    committed = 0
    while proc.poll() is None:
        time.sleep(1.0)
        committed = sum(r["rows"] for r in commit_log(str(out))) if (out / "_commits").exists() else 0
        if committed >= n // 2:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
            break
    proc.wait()
    time.sleep(5)  # let the dead cluster's processes go
    before = len(commit_log(str(out)))
    t = time.perf_counter()
    again = subprocess.Popen(_cli(files, out, rows_per_file), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    resumed = first_commit = None
    lines = []
    for line in again.stdout:
        lines.append(line)
        if resumed is None and "to mine" in line:
            resumed = time.perf_counter() - t
        if first_commit is None and resumed is not None and len(commit_log(str(out))) > before:
            first_commit = time.perf_counter() - t
    again.wait()
    total = time.perf_counter() - t
    from pipeline.dataflow.sink import recover

    pmids = recover(str(out), ["articles"]).to_pylist()
    return {"n": n, "killed_at_committed": committed, "restart_to_mining_s": round(resumed or -1, 1),
            "restart_to_first_commit_s": round(first_commit, 1) if first_commit else None,
            "restart_total_s": round(total, 1), "rc": again.returncode,
            "exactly_once": len(pmids) == len(set(pmids)), "committed_after": len(pmids)}


def main(argv: list[str] | None = None) -> int:
    """Run the phases for each size (each in its own process) and print/write JSON."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--run-sizes", default="10000,100000")
    ap.add_argument("--xml-max", type=int, default=100_000,
                    help="largest size indexed from real XML files (above: synthetic index)")
    ap.add_argument("--kill-size", type=int, default=10000, help="size of the kill/restart run (0: skip)")
    ap.add_argument("--workdir", default="/tmp/biomine-scale")
    ap.add_argument("-o", "--output", help="also write the JSON here")
    ap.add_argument("--phase", choices=["plan"], help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    workdir = Path(args.workdir)
    if args.phase == "plan":
        print(json.dumps(plan_phases(args.n, workdir, args.xml_max)))
        return 0
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    result: dict = {"box": {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "load_avg_at_start": os.getloadavg()}, "plan": [], "run": [], "kill": None}
    for n in [int(s) for s in args.sizes.split(",") if s]:
        if n <= args.xml_max:
            t = time.perf_counter()
            synthesize(workdir / f"in-{n}", n)
            print(f"synthesized {n} records in {time.perf_counter() - t:.0f}s", file=sys.stderr)
        proc = subprocess.run([sys.executable, "-m", "benchmarks.scale", "--phase", "plan", "--n", str(n),
                               "--workdir", str(workdir), "--xml-max", str(args.xml_max)],
                              capture_output=True, text=True, env=env)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-3000:])
        result["plan"].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(result["plan"][-1]), file=sys.stderr)
    for n in [int(s) for s in args.run_sizes.split(",") if s]:
        result["run"].append(whole_run(n, workdir, 100_000))
        print(json.dumps(result["run"][-1]), file=sys.stderr)
    if args.kill_size:
        result["kill"] = kill_and_restart(args.kill_size, workdir, max(1000, args.kill_size // 10))
    result["box"]["load_avg_at_end"] = os.getloadavg()
    if args.output and Path(args.output).exists():  # keep the parts this invocation did not run
        old = json.loads(Path(args.output).read_text())
        kept = [part for part in ("plan", "run", "kill") if not result[part] and old.get(part)]
        for part in kept:
            result[part] = old[part]
        if kept:
            result["box_of_kept_parts"] = old.get("box_of_kept_parts", old["box"])
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
