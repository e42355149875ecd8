"""PubMed update semantics over baseline + update files in NLM order.

What "the latest record per PMID" means here (both functions agree):
- A citation is keyed by (pmid, version). Versions are separate citations: a PMID with
  Version 1 and Version 2 keeps one record for each.
- For each key the last occurrence wins, order being (file_seq, position), i.e. NLM file order
  then place in the file. A revised citation is a full new PubmedArticle, so it replaces.
- A DeleteCitation entry removes every record of that key seen before it (same file earlier,
  or earlier files); without a Version it removes every version of the PMID. A record of that
  key appearing after the deletion (a later file) is kept: the PMID was re-added.
- Error rows are ignored.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.pubmed.schema import INDEX_SCHEMA

log = logging.getLogger(__name__)

_SHIFT = 1 << 32  # order = file_seq * 2**32 + position (positions stay far below 2**32)


def latest_records(records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """In-memory resolution of records given in NLM order.

    Returns (articles, deletions): the surviving article dicts, one per (pmid, version),
    ordered by where each winner occurred; and every deletion dict seen, in order (to apply
    to stores built from earlier files).
    """
    latest: dict[tuple[int, int | None], tuple[int, dict[str, Any]]] = {}
    by_pmid: dict[int, set[int | None]] = {}
    deletions: list[dict[str, Any]] = []
    for i, rec in enumerate(records):
        kind = rec.get("record_type", "article")
        if kind == "article":
            key = (rec["pmid"], rec["version"])
            latest.pop(key, None)  # re-insert so dict order follows the winner's position
            latest[key] = (i, rec)
            by_pmid.setdefault(rec["pmid"], set()).add(rec["version"])
        elif kind == "deletion":
            deletions.append(rec)
            pmid, version = rec["pmid"], rec.get("version")
            versions = by_pmid.get(pmid, set())
            doomed = set(versions) if version is None else {version} & versions
            for v in doomed:
                latest.pop((pmid, v), None)
            versions -= doomed
    return [rec for _, rec in latest.values()], deletions


def _order(table: pa.Table) -> pa.Array:
    """(file_seq, position) packed into one sortable int64."""
    seq = pc.cast(table["file_seq"], pa.int64())
    return pc.add(pc.multiply(seq, _SHIFT), pc.cast(table["position"], pa.int64()))


def resolve_updates(index: pa.Table) -> pa.Table:
    """Winners of an index (pmid, version, file_seq, position, record_type) -> table of
    (pmid, version, file_seq, position) sorted by pmid, version. Vectorised (Arrow group-by
    and joins, no Python loop per row); same semantics as `latest_records`.
    """
    missing = {"pmid", "version", "file_seq", "position", "record_type"} - set(index.column_names)
    if missing:
        raise ValueError(f"index lacks columns {sorted(missing)}")
    nulls = index["file_seq"].null_count
    if nulls:
        raise ValueError(f"{nulls} index row(s) have no file_seq (a file name without an NLM "
                         "number such as pubmed26n0001): their update order is unknown")
    index = index.append_column("order", _order(index))
    kind = index["record_type"]
    articles = index.filter(pc.equal(kind, "article"))
    deletes = index.filter(pc.equal(kind, "deletion"))

    winners = articles.group_by(["pmid", "version"]).aggregate([("order", "max")])
    winners = winners.rename_columns(["pmid", "version", "order"])
    by_key = deletes.filter(pc.is_valid(deletes["version"]))
    by_key = by_key.group_by(["pmid", "version"]).aggregate([("order", "max")])
    by_key = by_key.rename_columns(["pmid", "version", "del_key"])
    by_pmid = deletes.filter(pc.is_null(deletes["version"]))
    by_pmid = by_pmid.group_by(["pmid"]).aggregate([("order", "max")])
    by_pmid = by_pmid.rename_columns(["pmid", "del_all"])

    joined = winners.join(by_key, ["pmid", "version"], join_type="left outer")
    joined = joined.join(by_pmid, ["pmid"], join_type="left outer")
    order = joined["order"]
    alive = pc.and_(
        pc.fill_null(pc.greater(order, joined["del_key"]), True),
        pc.fill_null(pc.greater(order, joined["del_all"]), True))
    kept = joined.filter(alive)
    order = kept["order"]
    out = pa.table({
        "pmid": pc.cast(kept["pmid"], pa.int64()),
        "version": pc.cast(kept["version"], pa.int32()),
        "file_seq": pc.cast(pc.divide(order, _SHIFT), pa.int32()),
        "position": pc.bit_wise_and(order, _SHIFT - 1),
    })
    return out.sort_by([("pmid", "ascending"), ("version", "ascending")])


def scan_index(path: str) -> pa.Table:
    """INDEX_SCHEMA rows (pmid, version, file_seq, position, record_type) of one file.

    Cost: one full XML parse of the file (lxml, runs of whole records; see scan.py) but no
    field extraction and no Arrow conversion of text, so about the iterparse floor; tiny
    output (~21 bytes/row). Error rows are logged as warnings, not returned.
    """
    from pipeline.pubmed.xml import iter_index

    rows = []
    for r in iter_index(path):
        if r["record_type"] == "error":
            log.warning("scan_index: %s", r["message"])
        else:
            rows.append(r)
    return pa.Table.from_pydict({n: [r.get(n) for r in rows] for n in INDEX_SCHEMA.names},
                                schema=INDEX_SCHEMA)
