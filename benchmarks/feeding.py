"""Benchmark the GPU stage's feeding: engine counters with several batches in flight vs per-batch drain.

    python -m benchmarks.feeding --records 5000 --batch-size 128 --max-num-seqs 128 --out result.json

The GPU stage (`GenerateStage`, RE only) is fed as Ray Data feeds one actor whose upstream keeps
up: `--in-flight` threads each call the stage on the next Ray-sized batch (Ray's concurrent
calls per actor). Records are real sample abstracts (replicated), tokenized by `TokenizeStage`
before the clock starts. The model is the demo model with eos pushed by `--eos-bias`, so greedy
outputs stop early or run long; the JSON reports the length distribution it gave. The baseline
runs the same stage one batch at a time (each batch drains the engine: the old behaviour) on
the first `--baseline-records` records.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def sample_batches(records: int, batch_size: int, config: Any) -> list[Any]:
    """`records` abstracts (the sample's, repeated) as tokenized Arrow batches of batch_size."""
    import pyarrow as pa

    from jobs.run import sample_inputs
    from pipeline.pubmed.xml import iter_records
    from pipeline.dataflow.stages import TokenizeStage

    articles = []
    for path in sample_inputs():
        for rec in iter_records(path):
            row = rec if isinstance(rec, dict) else vars(rec)
            if row.get("abstract"):
                articles.append(row)
    tokens = TokenizeStage(config)
    rows = {"pmid": [], "version": [], "title": [], "abstract": [], "journal_title": [], "pub_year": [],
            "source_file": [], "file_seq": [], "position": []}
    for i in range(records):
        a = articles[i % len(articles)]
        for key, value in (("pmid", 90_000_000 + i), ("version", 1), ("title", a.get("title")),
                           ("abstract", a["abstract"]), ("journal_title", None), ("pub_year", None),
                           ("source_file", "bench.xml"), ("file_seq", 0), ("position", i)):
            rows[key].append(value)
    table = pa.table(rows)
    return [tokens(table.slice(s, batch_size)) for s in range(0, records, batch_size)]


def feed(stage: Any, batches: list[Any], in_flight: int) -> tuple[list[Any], float, dict[str, Any]]:
    """Run the batches through the stage with `in_flight` concurrent calls; outputs, seconds, counters."""
    before = stage.re_engine.counters.to_dict()
    started = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        outputs = list(pool.map(stage, batches))
    seconds = time.perf_counter() - started
    from benchmarks.engine import counter_delta

    return outputs, seconds, counter_delta(before, stage.re_engine.counters.to_dict())


def lengths(outputs: list[Any], cap: int) -> dict[str, Any]:
    """Output-length distribution of the generated rows."""
    import numpy as np

    n = np.array([v for t in outputs for v, p in zip(t.column("n_generated").to_pylist(),
                                                     t.column("re_finish").to_pylist()) if p])
    return {"mean": round(float(n.mean()), 2), "p50": float(np.percentile(n, 50)),
            "p90": float(np.percentile(n, 90)), "max": int(n.max()), "at_cap": int((n == cap).sum()),
            "zero": int((n == 0).sum())}


def main(argv: list[str] | None = None) -> int:
    """Run both feedings and print one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--baseline-records", type=int, default=1280)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--max-num-seqs", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--in-flight", type=int, default=None, help="default: gpu_stage.batches_in_flight")
    ap.add_argument("--eos-bias", type=float, default=8.0)
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)

    import torch

    from benchmarks.pipeline import stopping_demo_dir
    from pipeline.config import RunConfig
    from pipeline.dataflow.gpu_stage import GenerateStage, batches_in_flight

    with tempfile.TemporaryDirectory() as tmp:
        model = stopping_demo_dir(Path(tmp), args.eos_bias)
        config = RunConfig(inputs=["-"], output=str(Path(tmp) / "out"), tasks=["re-bc5cdr"], re_model=model,
                           max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                           max_num_seqs=args.max_num_seqs, progress=False)
        k = args.in_flight or batches_in_flight(config)
        batches = sample_batches(args.records, args.batch_size, config)
        stage = GenerateStage(config)
        fed, fed_s, fed_counters = feed(stage, batches, k)
        base_batches = batches[: -(-args.baseline_records // args.batch_size)]
        drained, drained_s, drained_counters = feed(GenerateStage(config), base_batches, 1)
    rows = sum(t.num_rows for t in batches)
    out = {
        "benchmark": "feeding", "date": time.strftime("%Y-%m-%d"),
        "machine": {"platform": platform.platform(), "torch": torch.__version__,
                    "cuda": torch.cuda.is_available()},
        "settings": {**vars(args), "in_flight": k},
        "records": rows, "output_lengths": lengths(fed, args.max_new_tokens),
        "in_flight": {"batches": len(batches), "seconds": round(fed_s, 2),
                      "abstracts_per_s": round(rows / fed_s, 2), "counters": fed_counters},
        "per_batch_drain": {"batches": len(base_batches), "records": sum(t.num_rows for t in base_batches),
                            "seconds": round(drained_s, 2), "counters": drained_counters},
    }
    same = all(a.column("re_output").to_pylist() == b.column("re_output").to_pylist()
               for a, b in zip(fed, drained))
    out["outputs_identical_to_drain"] = same
    json.dump(out, sys.stdout, indent=2)
    print()
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
