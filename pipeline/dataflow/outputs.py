"""Schemas of the run's output dataset (OUT/articles, relations, entities, errors), fixed in code."""
from __future__ import annotations

import traceback

import pyarrow as pa

from pipeline.pubmed.schema import ERROR_SCHEMA, MESH_HEADING
from pipeline.dataflow.sink import OutputTable
from pipeline.tasks.rows import ENTITY_SCHEMA, RELATION_SCHEMA

OUT_ARTICLE_SCHEMA = pa.schema([
    ("pmid", pa.int64()),
    ("version", pa.int32()),
    ("title", pa.string()),
    ("journal", pa.string()),
    ("year", pa.int32()),
    ("has_abstract", pa.bool_()),
    ("source_file", pa.string()),
    ("position", pa.int64()),          # record index in source_file
    ("n_relations", pa.int64()),
    ("n_entities", pa.int64()),
    ("n_errors", pa.int64()),
    ("n_malformed", pa.int64()),       # RE answer clauses that missed the template (dropped)
    ("malformed", pa.list_(pa.string())),  # their text, for inspection
    ("finish_reason", pa.string()),    # RE generation: "eos" | "length" (max_new_tokens) | null
    # what a curator reads (so articles/ is self-contained; offsets of entities/relations index these)
    ("abstract", pa.string()),
    ("doi", pa.string()),
    ("pmc_id", pa.string()),
    ("mesh_headings", pa.list_(MESH_HEADING)),
    ("publication_types", pa.list_(pa.string())),
    ("re_skipped", pa.string()),       # why relation extraction did not run (null: it ran / no RE task)
])
CURATION_COLUMNS = ("abstract", "doi", "pmc_id", "mesh_headings", "publication_types", "re_skipped")

ERROR_STRUCT = pa.struct(list(ERROR_SCHEMA))
RELATION_STRUCT = pa.struct(list(RELATION_SCHEMA))
ENTITY_STRUCT = pa.struct(list(ENTITY_SCHEMA))

OUTPUT_TABLES = [
    OutputTable("articles", OUT_ARTICLE_SCHEMA),
    OutputTable("relations", RELATION_SCHEMA, nested="relations"),
    OutputTable("entities", ENTITY_SCHEMA, nested="entities"),
    OutputTable("errors", ERROR_SCHEMA, nested="errors"),
]
TABLE_NAMES = [t.name for t in OUTPUT_TABLES]


def with_curation_columns(table: pa.Table) -> pa.Table:
    """Add the curation columns a batch lacks (as nulls), so every article row has them."""
    for name in CURATION_COLUMNS:
        if name not in table.column_names:
            field = OUT_ARTICLE_SCHEMA.field(name)
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table


def error_row(table: pa.Table, i: int, stage: str, exc: BaseException) -> dict:
    """An ERROR_SCHEMA row for record i of a batch that failed in `stage`."""
    def col(name: str):  # noqa: ANN202
        return table.column(name)[i].as_py() if name in table.column_names else None

    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    message = f"{type(exc).__name__}: {exc}"
    if where is not None:
        message += f" (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})"
    return {"source_file": col("source_file"), "file_seq": col("file_seq"), "pmid": col("pmid"),
            "record_index": col("position"), "position": None, "line": None, "byte_offset": None,
            "stage": stage, "message": message}
