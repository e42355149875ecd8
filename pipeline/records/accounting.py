"""Every record accounted for: read errors kept as rows, and the end-of-run identity
`records = articles + errors + skipped (by reason)` checked against what was written.

- A record the index saw but the read could not parse (say a PubmedArticle without <Article>)
  comes out of the read as an error row; `fold_read_errors` turns it into an article row with
  no text and one `errors` entry, so it is committed (and counted) like any other article.
- `account` rebuilds the breakdown from the index alone (copies, deletions, older versions, the
  limit) and compares it with the articles committed; any difference is `unaccounted` and
  fails the run.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.dataflow.outputs import ERROR_STRUCT

log = logging.getLogger(__name__)

READ_ERROR_COLUMNS = ["record_type", "error_message", "error_position"]


def fold_read_errors(table: pa.Table) -> pa.Table:
    """Read error rows of a batch -> article rows with an `errors` entry (stage "read").

    Error rows without a PMID (a stray element, say) cannot become an article: they are logged
    and dropped here. XML errors (a broken record, a cut file) never reach this point: the read
    of the index's keep-lists leaves them to the index, which counts a broken article as rejected.
    """
    if "record_type" not in table.column_names:
        return table
    is_error = pc.fill_null(pc.equal(table.column("record_type"), "error"), False).to_numpy(
        zero_copy_only=False)
    if not is_error.any():
        return table
    pmids = table.column("pmid").to_pylist()
    orphan = is_error & np.array([p is None for p in pmids])
    if orphan.any():
        for msg in table.filter(pa.array(orphan)).column("error_message").to_pylist():
            log.warning("read error without a PMID (its records are missing): %s", msg)
        table = table.filter(pa.array(~orphan))
        is_error = is_error[~orphan]
    get = {c: table.column(c).to_pylist() if c in table.column_names else [None] * table.num_rows
           for c in ("source_file", "file_seq", "pmid", "position", "error_message", "error_position")}
    errors = [[{"source_file": get["source_file"][i], "file_seq": get["file_seq"][i],
                "pmid": get["pmid"][i], "record_index": get["position"][i],
                "position": get["error_position"][i], "line": None, "byte_offset": None,
                "stage": "read", "message": get["error_message"][i]}] if bad else []
              for i, bad in enumerate(is_error)]
    array = pa.array(errors, type=pa.list_(ERROR_STRUCT))
    if "errors" in table.column_names:
        old = table.column("errors").to_pylist()
        array = pa.array([list(o or []) + e for o, e in zip(old, errors)], type=pa.list_(ERROR_STRUCT))
        return table.set_column(table.column_names.index("errors"), "errors", array)
    return table.append_column("errors", array)


def account(index: pa.Table | None, counts: dict[str, int], written: dict[str, int],
            index_errors: list[dict]) -> dict[str, Any]:
    """The record accounting of a run over the whole output folder (done before + written now).

    `counts` are select_pending's (latest after the limit, done, pending); `written` the sink's
    totals of this invocation; `index_errors` the index's error rows (stage "record" rows are
    records the parser rejected, e.g. without a PMID).
    """
    from pipeline.pubmed.updates import resolve_updates

    rejected = sum(1 for e in index_errors if e.get("stage") == "record" or e.get("record_lost"))
    skipped = {"duplicate_copy": 0, "deleted": 0, "older_version": 0, "over_limit": 0}
    records = 0
    if index is not None and index.num_rows:
        articles = index.filter(pc.equal(index.column("record_type"), "article"))
        records = articles.num_rows
        keys = articles.group_by(["pmid", "version"]).aggregate([]).num_rows
        alive = resolve_updates(index)
        latest_all = len(pc.unique(alive.column("pmid")))
        skipped = {"duplicate_copy": records - keys, "deleted": keys - alive.num_rows,
                   "older_version": alive.num_rows - latest_all,
                   "over_limit": latest_all - counts.get("latest", 0)}
    mined = counts.get("done", 0) + int(written.get("articles", 0))
    unaccounted = records - mined - sum(skipped.values())
    return {"records": records + rejected, "articles": mined, "errors": rejected,
            "skipped": skipped, "unaccounted": unaccounted, "ok": unaccounted == 0,
            "pending": counts.get("pending", 0), "written_now": int(written.get("articles", 0))}


def describe(acc: dict[str, Any]) -> str:
    """One line: records = articles + errors + skipped (reasons), and what is missing."""
    skipped = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in acc["skipped"].items() if v)
    text = (f"records {acc['records']} = articles {acc['articles']} + rejected {acc['errors']} + "
            f"skipped {sum(acc['skipped'].values())}" + (f" ({skipped})" if skipped else ""))
    if not acc["ok"]:
        text += (f"; {acc['unaccounted']} unaccounted: {acc['pending']} were to be mined, "
                 f"{acc['written_now']} written")
    return text
