"""The end-of-run summary `biomine run` prints, and its exit code (0 clean, 3 with errors)."""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)
FIRST_ERRORS = 5


def first_record_errors(output: str, limit: int = FIRST_ERRORS) -> list[str]:
    """Messages of the first record errors committed under OUT/errors/ (part files)."""
    import pyarrow.parquet as pq

    from pipeline.storage import Location

    out = Location.open(output)
    messages: list[str] = []
    for path in out.files("errors", ".parquet"):
        if not path.rsplit("/", 1)[-1].startswith("part-"):
            continue
        table = pq.read_table(path, filesystem=out.fs, columns=["source_file", "record_index", "pmid",
                                                                  "stage", "message"])
        for row in table.slice(0, limit - len(messages)).to_pylist():
            messages.append(f"{row['source_file']} record {row['record_index']} (PMID {row['pmid']}, "
                            f"{row['stage']}): {row['message']}")
        if len(messages) >= limit:
            break
    return messages


def print_summary(manifest: dict[str, Any], output: str) -> int:
    """Print what the run did (for the whole output folder); return the exit code."""
    from pipeline.records.accounting import describe
    from pipeline.records.engine_stats import engine_summary
    from pipeline.storage import Location

    shown_out = output if "://" not in output else Location.open(output).url()

    totals = manifest["totals"]
    index = manifest["counts"]["index"]
    now = manifest["counts"]["this_invocation"]
    last = manifest["history"][-1]
    print(f"run {manifest['run_id']}: {manifest['status']} ({last['did']})")
    print(f"  files {manifest['inputs']['files']}, records {index['records']}, deletions "
          f"{index['deletions']}, latest {index['latest']}, already done {index['done']}")
    if manifest.get("accounting"):
        print(f"  {describe(manifest['accounting'])}")
    print(f"  output: articles {totals['articles']}, relations {totals['relations']}, entities "
          f"{totals['entities']}, record errors {totals['errors']}, file errors "
          f"{manifest['counts']['file_errors']}  (this invocation: {now['articles']} articles)")
    print(f"  engine: {engine_summary(manifest.get('engine'))}")
    rate = manifest.get("abstracts_per_s")
    print(f"  {manifest['wall_s']:.1f}s wall, {rate if rate is not None else '-'} articles/s -> "
          f"{shown_out}/_manifest.json")
    file_errors = manifest["counts"]["file_errors"]
    record_errors = totals["errors"]
    if not (file_errors or record_errors):
        return 0
    shown = [e["message"] for e in manifest.get("errors", [])[:FIRST_ERRORS]]
    if len(shown) < FIRST_ERRORS and record_errors:
        shown += first_record_errors(output, FIRST_ERRORS - len(shown))
    print(f"finished with {file_errors} file error(s) and {record_errors} record error(s); first "
          f"{len(shown)}:")
    for message in shown:
        print(f"  - {message}")
    print(f"  all of them: {shown_out}/errors/ (files.parquet: whole files; part-*.parquet: records)")
    return 3
