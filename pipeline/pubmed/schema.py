"""The one place for the Arrow schemas of parsed PubMed articles, deletions and parse errors."""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa

_s = pa.string()

ABSTRACT_SECTION = pa.struct([("label", _s), ("category", _s), ("text", _s)])
OTHER_ABSTRACT = pa.struct([("type", _s), ("language", _s), ("text", _s),
                            ("sections", pa.list_(ABSTRACT_SECTION))])
AUTHOR = pa.struct([("last_name", _s), ("fore_name", _s), ("initials", _s),
                    ("collective_name", _s), ("affiliations", pa.list_(_s)), ("orcid", _s)])
QUALIFIER = pa.struct([("ui", _s), ("name", _s), ("major", pa.bool_())])
MESH_HEADING = pa.struct([("descriptor_ui", _s), ("name", _s), ("major", pa.bool_()),
                          ("qualifiers", pa.list_(QUALIFIER))])
CHEMICAL = pa.struct([("ui", _s), ("name", _s), ("registry_number", _s)])
GRANT = pa.struct([("grant_id", _s), ("acronym", _s), ("agency", _s), ("country", _s)])

ARTICLE_SCHEMA = pa.schema([
    ("pmid", pa.int64()),
    ("version", pa.int32()),
    ("title", _s),
    ("vernacular_title", _s),
    ("book_title", _s),
    ("abstract", _s),                       # flat text; structured sections as "LABEL: text"
    ("abstract_sections", pa.list_(ABSTRACT_SECTION)),
    ("other_abstracts", pa.list_(OTHER_ABSTRACT)),
    ("languages", pa.list_(_s)),
    ("journal_title", _s),
    ("journal_iso", _s),
    ("issn", _s),
    ("volume", _s),
    ("issue", _s),
    ("pages", _s),
    ("pub_year", pa.int32()),
    ("pub_date", _s),                       # raw: "2026 Jan 07" or a MedlineDate "1998 Dec-1999 Jan"
    ("article_date", _s),                   # ISO "YYYY-MM-DD" (electronic publication)
    ("authors", pa.list_(AUTHOR)),
    ("mesh_headings", pa.list_(MESH_HEADING)),
    ("chemicals", pa.list_(CHEMICAL)),
    ("keywords", pa.list_(_s)),
    ("publication_types", pa.list_(_s)),
    ("grants", pa.list_(GRANT)),
    ("doi", _s),
    ("pmc_id", _s),
    ("citation_status", _s),
    ("date_revised", _s),                   # ISO "YYYY-MM-DD"
    ("is_book", pa.bool_()),
    ("source_file", _s),                    # basename of the XML file
    ("file_seq", pa.int32()),               # NLM file number: pubmed26n1335 -> 1335
    ("position", pa.int64()),               # 0-based index of the top-level record in the file
])

DELETION_SCHEMA = pa.schema([
    ("pmid", pa.int64()),
    ("version", pa.int32()),                # null when the DeleteCitation PMID has no Version
    ("source_file", _s),
    ("file_seq", pa.int32()),
    ("position", pa.int64()),               # index of the DeleteCitation element in the file
])

ERROR_SCHEMA = pa.schema([
    ("source_file", _s),
    ("file_seq", pa.int32()),
    ("pmid", pa.int64()),                   # the failing record's PMID when known
    ("record_index", pa.int64()),           # index the failing/next record has in the file
    ("position", _s),                       # human-readable: "line 12, column 5" / "byte 70000"
    ("line", pa.int64()),
    ("byte_offset", pa.int64()),            # in the decompressed XML stream
    ("stage", _s),                          # "xml" (a record's XML broke, or the file's), "record", "root"
    ("message", _s),
])

# One schema for a Ray Dataset of mixed records: article columns + a discriminator + error info.
RECORD_SCHEMA = ARTICLE_SCHEMA.append(pa.field("record_type", _s)).append(
    pa.field("error_message", _s)).append(pa.field("error_position", _s))

INDEX_SCHEMA = pa.schema([("pmid", pa.int64()), ("version", pa.int32()),
                          ("file_seq", pa.int32()), ("position", pa.int64()),
                          ("record_type", _s)])

_SCHEMAS = {"articles": ARTICLE_SCHEMA, "deletions": DELETION_SCHEMA, "errors": ERROR_SCHEMA,
            "records": RECORD_SCHEMA, "index": INDEX_SCHEMA}
_FILE_SEQ = re.compile(r"n(\d+)\.xml(?:\.gz)?$")


def schema_for(kind: str) -> pa.Schema:
    """Schema by kind name: articles, deletions, errors, records or index."""
    try:
        return _SCHEMAS[kind]
    except KeyError:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {sorted(_SCHEMAS)}") from None


def file_seq_of(name: str) -> int | None:
    """NLM file number from a file name (pubmed26n0001.xml.gz -> 1), None when it has none."""
    m = _FILE_SEQ.search(name.rsplit("/", 1)[-1])
    return int(m.group(1)) if m else None


def file_stem(path: str) -> str:
    """An input's name without folder and .xml/.xml.gz (pubmed26n1335.xml.gz -> pubmed26n1335)."""
    name = path.rsplit("/", 1)[-1]
    for suffix in (".xml.gz", ".xml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def to_table(rows: list[dict[str, Any]], kind: str) -> pa.Table:
    """Rows (dicts keyed by column name; extra keys ignored) -> a table with that kind's schema."""
    schema = schema_for(kind)
    return pa.Table.from_pydict({name: [r.get(name) for r in rows] for name in schema.names},
                                schema=schema)


def articles_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Article dicts -> ARTICLE_SCHEMA table."""
    return to_table(rows, "articles")


def deletions_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Deletion dicts -> DELETION_SCHEMA table."""
    return to_table(rows, "deletions")


def errors_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Error dicts -> ERROR_SCHEMA table."""
    return to_table(rows, "errors")


def records_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Mixed article/deletion/error dicts -> RECORD_SCHEMA table (errors fill error_* columns)."""
    fixed = []
    for r in rows:
        if r.get("record_type") == "error":
            r = {**r, "error_message": r.get("message"), "error_position": r.get("position"),
                 "position": r.get("record_index")}
        fixed.append(r)
    return to_table(fixed, "records")
