"""Compile a lexicon folder from source files (`biomine lexicon build`), timed and measured."""
from __future__ import annotations

import logging
import resource
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.linking.lexicon import Entry, LexiconBuilder
from pipeline.linking.mesh_xml import read_mesh_xml
from pipeline.linking.sources import (read_entities_json, read_index_names, read_obo,
                                      read_pubmed_indexing, read_pubtator_names)

log = logging.getLogger(__name__)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def source_entries(kind: str, path: str, obo_type: str = "Disease") -> Iterator[Entry]:
    """The entries of one input of a kind: mesh, obo, pubtator, entities, pubmed or index (a folder)."""
    if kind == "mesh":
        return read_mesh_xml(path)
    if kind == "obo":
        return read_obo(path, obo_type)
    if kind == "pubtator":
        return read_pubtator_names(path)
    if kind == "entities":
        return read_entities_json(path)
    if kind == "pubmed":
        return read_pubmed_indexing(path)
    if kind == "index":
        return read_index_names(path)
    raise ValueError(f"unknown lexicon source kind {kind!r}")


def build_lexicon(inputs: Sequence[tuple[str, str]], output: str | Path,
                  obo_type: str = "Disease") -> dict[str, Any]:
    """Build from (kind, path) pairs into `output`; returns lexicon.json plus timings and peak memory."""
    if not inputs:
        raise ValueError("no lexicon source given (--mesh, --obo, --pubtator, --entities, --pubmed, --index)")
    for kind, path in inputs:
        if not (Path(path).is_dir() if kind == "index" else Path(path).is_file()):
            raise FileNotFoundError(f"lexicon source not found: {path}")
    started = time.time()
    builder = LexiconBuilder()
    for kind, path in inputs:
        t = time.time()
        n = builder.add_all(source_entries(kind, path, obo_type))
        log.info("%s (%s): %d names in %.1fs", path, kind, n, time.time() - t)
    parsed = time.time() - started
    meta = builder.write(output, [f"{kind}:{Path(path).name}" for kind, path in inputs])
    return {**meta, "seconds_parse": round(parsed, 2), "seconds_total": round(time.time() - started, 2),
            "peak_rss_mb": round(_peak_rss_mb(), 1)}
