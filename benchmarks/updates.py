"""Benchmark: one daily update file folded into a whole-PubMed-like state, at several state sizes.

Run: `python -m benchmarks.updates [--sizes 1000000 3000000] [--update 30000] [--out FILE]`;
prints one JSON object (also written to --out). Per size: a synthetic state is written directly
as bucketed Parquet (articles with the run's article schema, ~5 entity rows and ~1 relation row
per article, like a mined state; no model run), then a fresh process folds one update of
`--update` records into it (2/3 new PMIDs above the state, 3/10 revisions and 1/30 deletions
of PMIDs drawn uniformly from the whole state, the worst case for locality; half the deletions
versioned) by calling `pipeline.state.apply.apply_file` directly: the model run that mines an
update file is a separate cost, measured by benchmarks/pipeline.py. Reported per update: wall
time (median of 3 runs of the same update, two on hard-linked copies of the state), peak RSS of that process, bytes written (deltas, tombstones, history) and bytes of the
existing state rewritten (0 unless a bucket is due for compaction); then, in another fresh
process, the cost of compacting one bucket (what an update pays when a bucket is due, at most
`max_compactions` times).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.state.keys import KEYS, keys_path, keys_table
from pipeline.state.partitions import GEN, TOMBSTONE_SCHEMA, Layout, bucket_name, data_path, with_gen
from pipeline.state.store import FORMAT, StateStore

SETTINGS = {"tasks": ["re-bc5cdr", "ner"], "re_model": "demo", "ner_model": "demo", "entities": None}
_WORDS = pa.array([f"term{i}" for i in range(5000)])
_JOURNALS = pa.array([f"Journal {i}" for i in range(1000)])
_SPAN = pa.struct([("section", pa.string()), ("start", pa.int32()), ("end", pa.int32())])


def _pick(vocab: pa.Array, rng: np.random.Generator, n: int) -> pa.Array:
    return vocab.take(pa.array(rng.integers(0, len(vocab), n)))


def _const(value: Any, n: int, type_: pa.DataType) -> pa.Array:
    return pa.array([value], type_).take(pa.array(np.zeros(n, np.int64)))


def _spans(rng: np.random.Generator, n: int) -> pa.Array:
    starts = rng.integers(0, 2000, n).astype(np.int32)
    flat = pa.StructArray.from_arrays([_const("abstract", n, pa.string()), pa.array(starts),
                                       pa.array(starts + 8)], fields=list(_SPAN))
    return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), flat)


def make_rows(pmids: np.ndarray, rng: np.random.Generator, source: str, schemas: dict[str, pa.Schema]) -> dict:
    """Articles, entities (0-10 per article) and relations (0-2) for these PMIDs, vectorised."""
    n = len(pmids)
    n_ent = rng.integers(0, 11, n)
    n_rel = rng.integers(0, 3, n)
    pm = pa.array(pmids.astype(np.int64))
    arts = {"pmid": pm, "version": _const(1, n, pa.int32()),
            "title": pc.binary_join_element_wise(f"{source} title ", pc.cast(pm, pa.string()), ""),
            "journal": _pick(_JOURNALS, rng, n), "year": pa.array((1950 + pmids % 76).astype(np.int32)),
            "has_abstract": pa.array(rng.random(n) < 0.8), "source_file": _const(source, n, pa.string()),
            "position": pa.array((pmids % 30_000).astype(np.int64)), "n_relations": pa.array(n_rel),
            "n_entities": pa.array(n_ent), "n_errors": _const(0, n, pa.int64())}
    e_pm = np.repeat(pmids, n_ent)
    m = len(e_pm)
    starts = rng.integers(0, 2000, m).astype(np.int32)
    ents = {"pmid": pa.array(e_pm), "version": _const(1, m, pa.int32()),
            "section": pa.array(np.where(rng.random(m) < 0.2, "title", "abstract")),
            "start": pa.array(starts), "end": pa.array(starts + rng.integers(3, 30, m).astype(np.int32)),
            "text": _pick(_WORDS, rng, m), "type": _pick(pa.array(["Chemical", "Disease", "Gene"]), rng, m),
            "score": pa.array(rng.random(m).astype(np.float32)), "model_id": _const("demo", m, pa.string()),
            "run_id": _const(source, m, pa.string())}
    r_pm = np.repeat(pmids, n_rel)
    k = len(r_pm)
    rels = {"pmid": pa.array(r_pm), "version": _const(1, k, pa.int32()), "task": _const("re-bc5cdr", k, pa.string()),
            "head_text": _pick(_WORDS, rng, k), "head_id": _pick(_WORDS, rng, k),
            "head_type": _const("Chemical", k, pa.string()), "tail_text": _pick(_WORDS, rng, k),
            "tail_id": _pick(_WORDS, rng, k), "tail_type": _const("Disease", k, pa.string()),
            "relation": _const("CID", k, pa.string()), "head_spans": _spans(rng, k), "tail_spans": _spans(rng, k),
            "clause_index": _const(0, k, pa.int32()), "model_id": _const("demo", k, pa.string()),
            "run_id": _const(source, k, pa.string())}
    out = {"articles": arts, "entities": ents, "relations": rels}
    return {t: pa.table({f.name: out[t][f.name] for f in schemas[t]}).cast(schemas[t]) for t in out}


def build_state(folder: str, n: int, layout: Layout, seed: int = 0) -> dict[str, Any]:
    """State of PMIDs 1..n written bucket by bucket as base files and key indexes (generation 0)."""
    from pipeline.dataflow.outputs import OUTPUT_TABLES

    schemas = {t.name: t.schema for t in OUTPUT_TABLES if t.name != "errors"}
    store = StateStore(folder)
    store.fs.create_dir(store.base, recursive=True)
    rng = np.random.default_rng(seed)
    buckets: dict[str, Any] = {}
    sizes = {"articles": 0, "entities": 0, "relations": 0}
    for b in range(0, n // layout.bucket_width + 1):
        pmids = np.arange(max(1, b * layout.bucket_width), min(n + 1, (b + 1) * layout.bucket_width))
        if not len(pmids):
            continue
        name = bucket_name(b)
        entry = {"files": {}, "live": len(pmids), "dead": 0, "rows": len(pmids)}
        for table, rows in make_rows(pmids, rng, "pubmed26n0001.xml", schemas).items():
            rel = data_path(table, name, 0, base=True)
            store.fs.create_dir(store.path(rel).rsplit("/", 1)[0], recursive=True)
            pq.write_table(with_gen(rows, 0), store.path(rel), filesystem=store.fs, compression="zstd")
            entry["files"][table] = [rel]
            sizes[table] += rows.num_rows
        rel = keys_path(name, 0)
        store.fs.create_dir(store.path(rel).rsplit("/", 1)[0], recursive=True)
        pq.write_table(keys_table(pmids, np.ones(len(pmids), np.int32), b * layout.bucket_width, layout.bucket_width, 0),
                       store.path(rel), filesystem=store.fs)
        entry["files"][KEYS] = [rel]
        rel = f"current/tombstones/bucket={name}/g000000.parquet"
        store.fs.create_dir(store.path(rel).rsplit("/", 1)[0], recursive=True)
        pq.write_table(TOMBSTONE_SCHEMA.empty_table(), store.path(rel), filesystem=store.fs)
        entry["files"]["tombstones"] = [rel]
        buckets[name] = entry
    store.write_state({"format": FORMAT, "settings": SETTINGS, "layout": asdict(layout), "generation": 0,
                       "processed": [], "buckets": buckets, "pending": None})
    return {"rows": sizes, "bytes": _tree_bytes(f"{folder}/current"), "buckets": len(buckets)}


def _tree_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kb / 1024


def _peak_mb() -> float:
    """VmHWM: peak RSS of this process image (ru_maxrss would include the parent's at fork)."""
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kb / 1024


def measure_update(folder: str, n: int, records: int, seed: int = 1, repeats: int = 2) -> dict[str, Any]:
    """(In a fresh process) fold one synthetic update file into the state at folder."""
    from pipeline.state.apply import apply_file

    store = StateStore(folder)
    state = store.open(SETTINGS, Layout())
    schemas = {t: pq.read_schema(store.path(state["buckets"][bucket_name(0)]["files"][t][0]))
               for t in ("articles", "entities", "relations")}
    schemas = {t: s.remove(s.get_field_index(GEN)) for t, s in schemas.items()}
    rss_start = _rss_mb()
    rng = np.random.default_rng(seed)
    n_new, n_rev, n_del = records * 2 // 3, records * 3 // 10, records // 30
    picked = rng.choice(np.arange(1, n + 1), n_rev + n_del, replace=False)
    upserted = np.concatenate([picked[:n_rev], np.arange(n + 1, n + 1 + n_new)])
    new = make_rows(upserted, rng, "pubmed26n1400.xml", schemas)
    deleted = picked[n_rev:]
    deletions = pa.table({"pmid": pa.array(deleted.astype(np.int64)),
                          "version": pa.array(np.where(np.arange(n_del) % 2 == 0, 1, 0).astype(np.int32),
                                              mask=np.arange(n_del) % 2 == 1),
                          "source_file": _const("pubmed26n1400.xml", n_del, pa.string()),
                          "position": pa.array(np.arange(n_del, dtype=np.int64))})
    before = _tree_bytes(f"{folder}/current")
    walls = []
    for rep in range(repeats):  # each on a hard-linked copy (files are never changed in place)
        copy = f"{folder}-rep{rep}"
        shutil.copytree(folder, copy, copy_function=os.link)
        store_copy = StateStore(copy)
        started = time.perf_counter()
        _, counts = apply_file(store_copy, store_copy.open(SETTINGS, Layout()), "pubmed26n1400.xml", new, deletions)
        walls.append(time.perf_counter() - started)
        shutil.rmtree(copy)
    started = time.perf_counter()
    state, counts = apply_file(store, state, "pubmed26n1400.xml", new, deletions)
    walls.append(time.perf_counter() - started)
    wall = float(np.median(walls))
    return {"records": {"new": n_new, "revised": n_rev, "deleted": n_del}, "wall_s": round(wall, 3),
            "wall_s_runs": [round(w, 3) for w in walls],
            "rss_start_mb": round(rss_start, 1), "peak_rss_mb": round(_peak_mb(), 1),
            "bytes_written": counts["bytes_written"], "bytes_compacted": counts["bytes_compacted"],
            "counts": {k: v for k, v in counts.items() if k != "seconds"},
            "current_bytes_before": before, "current_bytes_after": _tree_bytes(f"{folder}/current")}


def measure_compaction(folder: str) -> dict[str, Any]:
    """(In a fresh process) compact bucket 0 into staging (not committed) and time it."""
    from pipeline.state.compact import compact

    store = StateStore(folder)
    state = store.open(SETTINGS, Layout())
    name = bucket_name(0)
    entry = state["buckets"][name]
    read = sum(os.path.getsize(store.path(r)) for files in entry["files"].values() for r in files)
    started = time.perf_counter()
    _, written = compact(store, name, entry, state["generation"] + 1, Layout(**state["layout"]).bucket_width)
    wall = time.perf_counter() - started
    store.recover(state)  # drops the staged result
    return {"bucket": name, "articles": entry["live"], "bytes_read": read, "bytes_written": written,
            "wall_s": round(wall, 3), "peak_rss_mb": round(_peak_mb(), 1)}


def _child(mode: str, folder: str, n: int, records: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.updates", "--child", mode, folder, str(n), str(records)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Build each state size, measure one update and one compaction in fresh processes."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000])
    p.add_argument("--update", type=int, default=30_000, help="records in the update file")
    p.add_argument("--out", default="benchmarks/results/updates-cpu.json")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        mode, folder, n, records = args.child
        result = measure_update(folder, int(n), int(records)) if mode == "update" else measure_compaction(folder)
        print(json.dumps(result))
        return result
    layout = Layout()
    results = []
    for n in args.sizes:
        folder = tempfile.mkdtemp(prefix=f"biomine-state-{n}-")
        try:
            started = time.perf_counter()
            state = build_state(folder, n, layout)
            built = time.perf_counter() - started
            results.append({"state_articles": n, "state": state, "build_s": round(built, 1),
                            "update": _child("update", folder, n, args.update),
                            "compaction": _child("compact", folder, n, args.update)})
            print(json.dumps(results[-1]), file=sys.stderr)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    first, last = results[0]["update"], results[-1]["update"]
    report = {"benchmark": "updates", "layout": asdict(layout), "update_records": args.update,
              "python": platform.python_version(), "pyarrow": pa.__version__, "cpus": os.cpu_count(),
              "results": results,
              "ratio_largest_vs_smallest": {"wall_s": round(last["wall_s"] / first["wall_s"], 2),
                                            "bytes_written": round(last["bytes_written"] / first["bytes_written"], 2),
                                            "peak_rss_mb": round(last["peak_rss_mb"] / first["peak_rss_mb"], 2)}}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
