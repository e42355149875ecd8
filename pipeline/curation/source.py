"""Reading a biomine output folder article by article, streaming (Arrow dataset batches).

A run folder holds `articles/`, `relations/`, `entities/` (and `errors/`); an update state folder
holds the same tables under `current/`. The sink writes every block's rows under one file name
in each table (`part-KEY.parquet`; the update job writes `gen-N.parquet`), so an article's
relations and entities are read from the same-named file of their table, not from a scan of
the whole table (a table whose files do not pair with `articles/` is scanned, filtered by the
chunk's PMIDs). Chunks hold at most `batch_rows` articles with their rows.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from pipeline.storage import Location

ANNOTATION_TABLES = ("relations", "entities")


@dataclass(frozen=True)
class Selection:
    """Which rows to read: tasks (None: all), relation labels, minimum entity score, PMIDs."""

    tasks: tuple[str, ...] | None = None
    relations: tuple[str, ...] | None = None
    min_score: float | None = None
    pmids: frozenset[int] | None = None

    @property
    def with_entities(self) -> bool:
        """Whether entity rows (task ner) are selected."""
        return self.tasks is None or "ner" in self.tasks

    @property
    def relation_tasks(self) -> tuple[str, ...] | None:
        """The relation tasks selected (None: every one)."""
        return None if self.tasks is None else tuple(t for t in self.tasks if t != "ner")


@dataclass
class Chunk:
    """Some articles (dicts, in file order) and their selected rows keyed by PMID."""

    articles: list[dict[str, Any]]
    relations: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    entities: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def rows(self, table: str, pmid: int) -> list[dict[str, Any]]:
        """The rows of one table for one article."""
        return getattr(self, table).get(pmid, [])


def open_folder(output: str | Path | Location) -> Location:
    """An output or state folder that must exist (a clear error with its full URI if not)."""
    out = Location.open(output)
    if not out.is_dir():
        raise FileNotFoundError(f"output folder not found: {out.url()}")
    return out


def table_dir(output: str | Path | Location, name: str) -> Location | None:
    """The folder of one table in a run folder or an update state folder (None if absent)."""
    out = Location.open(output)
    for rel in (name, f"current/{name}"):
        if out.is_dir(rel):
            return out.child(rel)
    return None


def table_files(folder: Location) -> list[str]:
    """The Parquet files of a table folder, nested ones too (hive buckets); `_`/`.` names and
    temporaries left out, as a reader of the folder would."""
    skip = len(folder.path()) + 1
    return [i.path for i in folder.list(recursive=True) if i.path.endswith(".parquet")
            and not any(part.startswith(("_", ".")) for part in i.path[skip:].split("/"))]


def read_pmids_file(path: str | Path) -> frozenset[int]:
    """PMIDs from a text file (local or a URI), one per line ('#' comments and blank lines ignored)."""
    path = str(path)
    folder, name = path.rsplit("/", 1) if "/" in path else (".", path)
    loc = Location.open(folder + "/" if folder.endswith("//") else folder)
    if not loc.is_file(name):
        raise FileNotFoundError(f"PMID list not found: {path}")
    pmids = set()
    for lineno, line in enumerate(loc.read_text(name).splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not text.isdigit():
            raise ValueError(f"{path}:{lineno}: expected a PMID (digits), got {text!r}")
        pmids.add(int(text))
    return frozenset(pmids)


def _row_filter(table: str, sel: Selection, pmids: list[int]) -> pc.Expression:
    expr = pc.field("pmid").isin(pa.array(pmids, pa.int64()))
    if table == "relations":
        if sel.relation_tasks is not None:
            expr = expr & pc.field("task").isin(pa.array(list(sel.relation_tasks), pa.string()))
        if sel.relations is not None:
            expr = expr & pc.field("relation").isin(pa.array(list(sel.relations), pa.string()))
    elif sel.min_score is not None:
        expr = expr & (pc.field("score") >= sel.min_score)
    return expr


def _wanted(table: str, sel: Selection) -> bool:
    if table == "entities":
        return sel.with_entities
    return sel.relation_tasks is None or bool(sel.relation_tasks)


def _group(batches: Iterator[pa.RecordBatch]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for batch in batches:
        for row in batch.to_pylist():
            out.setdefault(row["pmid"], []).append(row)
    return out


def iter_chunks(output: str | Path | Location, sel: Selection = Selection(), batch_rows: int = 1024,
                ) -> Iterator[Chunk]:
    """Articles of an output folder with their selected relation/entity rows, chunk by chunk."""
    out = Location.open(output)
    articles_dir = table_dir(out, "articles")
    if articles_dir is None:
        raise FileNotFoundError(f"{out.url()}: no articles/ table (not a biomine run or state folder)")
    others = {t: table_dir(out, t) for t in ANNOTATION_TABLES if _wanted(t, sel)}
    dataset = pads.dataset(table_files(articles_dir), format="parquet", filesystem=out.fs)
    names = {os.path.basename(f) for f in dataset.files}
    files = {t: set(table_files(d)) for t, d in others.items() if d is not None}
    # a table whose files do not pair with articles/ files is scanned whole (filtered) per chunk
    unpaired = {t: pads.dataset(sorted(files[t]), format="parquet", filesystem=out.fs) for t in files
                if not {os.path.basename(p) for p in files[t]} <= names}
    art_filter = None if sel.pmids is None else pc.field("pmid").isin(
        pa.array(sorted(sel.pmids), pa.int64()))
    for fragment in dataset.get_fragments():
        name = os.path.basename(fragment.path)
        for batch in fragment.to_batches(batch_size=batch_rows, filter=art_filter):
            if batch.num_rows == 0:
                continue
            chunk = Chunk(batch.to_pylist())
            pmids = [a["pmid"] for a in chunk.articles]
            for table, folder in others.items():
                if table in unpaired:
                    source = unpaired[table]
                else:
                    path = None if folder is None else folder.path(name)
                    if path is None or path not in files[table]:
                        continue  # the sink writes no file for a block without rows of this table
                    source = pads.dataset(path, format="parquet", filesystem=out.fs)
                rows = source.to_batches(filter=_row_filter(table, sel, pmids))
                setattr(chunk, table, _group(rows))
            yield chunk
