"""Benchmark: `biomine export` speed and memory per format on >= N entity rows.

Run: `python -m benchmarks.export --source OUT [--min-entities N]`, where OUT is a finished run
(e.g. `biomine run --sample --demo-model --tasks re-bc5cdr,ner -o OUT`). Its blocks are copied
with shifted PMIDs into a temp folder until it holds >= N entity rows, then each format is
exported once; prints one JSON object (wall and CPU seconds, per mention, output bytes, peak RSS
of the process). On a shared box the CPU figures are the ones to compare.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TABLES = ("articles", "relations", "entities")
SHIFT = 10**9  # PMID offset of each copy


def replicate(source: Path, target: Path, min_entities: int) -> dict[str, int]:
    """Copy the source blocks with shifted PMIDs until >= min_entities entity rows; row counts."""
    blocks = sorted(p.name for p in (source / "articles").glob("part-*.parquet"))
    per_copy = sum(pq.read_metadata(p).num_rows for p in (source / "entities").glob("*.parquet"))
    if not blocks or per_copy == 0:
        raise ValueError(f"{source}: needs committed blocks with entity rows")
    copies = -(-min_entities // per_copy)
    counts = dict.fromkeys(TABLES, 0)
    for table in TABLES:
        (target / table).mkdir(parents=True)
    for k in range(copies):
        for name in blocks:
            for table in TABLES:
                path = source / table / name
                if not path.is_file():
                    continue
                rows = pq.read_table(path)
                pmids = pc.add(rows.column("pmid"), pa.scalar(k * SHIFT, pa.int64()))
                rows = rows.set_column(rows.column_names.index("pmid"), "pmid", pmids)
                if table == "entities":
                    ids = [f"{p}:{s}:{a}-{b}" for p, s, a, b in zip(
                        pmids.to_pylist(), *(rows.column(c).to_pylist() for c in ("section", "start", "end")))]
                    rows = rows.set_column(rows.column_names.index("mention_id"), "mention_id", pa.array(ids))
                pq.write_table(rows, target / table / f"{name[:-8]}-{k}.parquet")
                counts[table] += rows.num_rows
    return counts


def main() -> None:
    """Build the input, export every format once, print the JSON."""
    from pipeline.curation.export import FORMATS, export

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True, help="a finished biomine run folder")
    parser.add_argument("--min-entities", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        counts = replicate(Path(args.source), out, args.min_entities)
        results = {}
        for fmt in FORMATS:
            target = Path(tmp) / ("tsv" if fmt == "tsv" else f"export.{fmt}")
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            done = export(out, fmt, str(target) + ("/" if fmt == "tsv" else ""))  # tsv: all tables
            seconds = time.perf_counter() - started
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
            size = (sum(f.stat().st_size for f in target.iterdir()) if target.is_dir()
                    else target.stat().st_size)
            results[fmt] = {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                            "cpu_us_per_mention": round(cpu / max(done["mentions"], 1) * 1e6, 2),
                            "documents": done["documents"],
                            "mentions": done["mentions"], "output_bytes": size,
                            "mentions_per_s": round(done["mentions"] / seconds),
                            "us_per_mention": round(seconds / max(done["mentions"], 1) * 1e6, 2),
                            "peak_rss_mb_so_far": round(
                                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
            if target.is_dir():
                for f in target.iterdir():
                    f.unlink()
            else:
                target.unlink()
        parquet_bytes = sum(f.stat().st_size for t in TABLES for f in (out / t).glob("*.parquet"))
    print(json.dumps({"benchmark": "export", "rows": counts, "input_parquet_bytes": parquet_bytes,
                      "formats": results, "cpus": os.cpu_count(), "python": platform.python_version(),
                      "note": "one process, all formats in turn; RSS is the running peak"}, indent=2))


if __name__ == "__main__":
    main()
