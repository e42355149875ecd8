"""Linked share per entity type of an output folder (manifest and report): entity rows and both
relation ends, counted in Arrow from the id columns only."""
from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from pipeline.curation.source import table_dir, table_files
from pipeline.storage import Location

SIDES = {"entities": [("type", "id", "id_source")],
         "relations": [("head_type", "head_id", "head_id_source"),
                       ("tail_type", "tail_id", "tail_id_source")]}


def _count(table: pa.Table, type_col: str, id_col: str, source_col: str, total: Counter,
           linked: Counter, sources: Counter) -> None:
    for row in table.group_by([type_col]).aggregate([(id_col, "count"), ([], "count_all")]).to_pylist():
        total[row[type_col] or "?"] += row["count_all"]
        linked[row[type_col] or "?"] += row[f"{id_col}_count"]
    has = table.filter(pc.is_valid(table.column(id_col)))
    if has.num_rows:
        for row in has.group_by([type_col, source_col]).aggregate([([], "count_all")]).to_pylist():
            sources[(row[type_col] or "?", row[source_col] or "unknown")] += row["count_all"]


def linking_summary(output: str | Location) -> dict[str, Any]:
    """{type: {mentions, linked, linked_share, by_source}} over entity rows and relation ends."""
    total, linked, sources = Counter(), Counter(), Counter()
    for name, sides in SIDES.items():
        folder = table_dir(output, name)
        files = table_files(folder) if folder is not None else []
        if not files:
            continue
        dataset = pads.dataset(files, format="parquet", filesystem=folder.fs)
        columns = [c for side in sides for c in side]
        if any(c not in dataset.schema.names for c in columns):
            continue  # written before linking columns existed
        for batch in dataset.to_batches(columns=columns):
            table = pa.Table.from_batches([batch])
            for side in sides:
                _count(table, *side, total, linked, sources)
    return {t: {"mentions": total[t], "linked": linked[t],
                "linked_share": round(linked[t] / total[t], 4) if total[t] else None,
                "by_source": {s: n for (tt, s), n in sorted(sources.items()) if tt == t}}
            for t in sorted(total)}
