"""PubMed query or PMID list -> `DIR/fetch_0001.xml ...` (PubmedArticleSet files `biomine run` reads).

Batches are fixed by the source and the batch size: a query's batches are slices
(retstart, retmax) of its esearch result set, a PMID list's are consecutive chunks of it. Each
batch file is written atomically (temporary name, then rename) and recorded in `DIR/_fetch.json`
right after, so a fetch started again with the same source skips the finished batches. A
different source (or batch size) for the same DIR is refused. A query is searched again on
resume (history result sets expire); if it now matches a different number of records the
resume is refused, since its slices would no longer line up: pin such queries with a date
range (`... AND 2000:2024[dp]`).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.pubmed.entrez import MAX_BATCH, EntrezClient, EntrezError, SearchResult
from pipeline.pubmed.xml import PubmedParseError, scan_records
from pipeline.storage import Location

log = logging.getLogger(__name__)

STATE = "_fetch.json"
STATE_FORMAT = 1
BODY_TRIES = 3  # a reply that is not a readable PubmedArticleSet is fetched again this often


@dataclass(frozen=True)
class FetchSpec:
    """What to fetch: a query or a PMID list (exactly one), into which folder, in what batches."""

    output: str
    query: str | None = None
    pmids: tuple[int, ...] | None = None
    batch_size: int = MAX_BATCH
    db: str = "pubmed"

    def __post_init__(self) -> None:
        if (self.query is None) == (self.pmids is None):
            raise ValueError("give exactly one of a query or a PMID list")
        if self.query is not None and not self.query.strip():
            raise ValueError("the query is empty")
        if self.pmids is not None and not self.pmids:
            raise ValueError("the PMID list is empty")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH}, got {self.batch_size}")

    def source(self) -> dict[str, Any]:
        """The identity of the fetch stored in the state file (a PMID list by its hash)."""
        if self.query is not None:
            return {"db": self.db, "query": self.query, "batch_size": self.batch_size}
        digest = hashlib.sha1(",".join(map(str, self.pmids or ())).encode()).hexdigest()
        return {"db": self.db, "pmids_sha1": digest, "n_pmids": len(self.pmids or ()),
                "batch_size": self.batch_size}


@dataclass(frozen=True)
class FetchResult:
    """Outcome of one `fetch` call."""

    output: str
    count: int  # records the source stands for (query hits or PMIDs asked for)
    files: list[str] = field(default_factory=list)  # every batch file, in order
    fetched: int = 0  # batches fetched by this call
    skipped: int = 0  # batches already done by an earlier call
    articles: int = 0  # articles in all batch files


def read_pmids(path: str) -> tuple[int, ...]:
    """PMIDs from a text file: one per line (blank lines and `#` comments skipped), deduplicated."""
    seen: dict[int, None] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            if not text.isdigit() or int(text) <= 0:
                raise ValueError(f"{path}:{lineno}: not a PMID (a positive integer): {text!r}")
            seen[int(text)] = None
    if not seen:
        raise ValueError(f"{path}: no PMIDs in the file")
    return tuple(seen)


def batch_name(index: int, n_batches: int) -> str:
    """File name of batch `index` (1-based), zero-padded so name order is batch order."""
    return f"fetch_{index:0{max(4, len(str(n_batches)))}d}.xml"


def load_state(out: Location) -> dict[str, Any] | None:
    """The state of an earlier fetch into this folder, or None."""
    if not out.exists(STATE):
        return None
    try:
        state = out.read_json(STATE)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{out.url(STATE)}: damaged fetch state ({exc}); fetch into a new folder") from exc
    if state.get("format") != STATE_FORMAT or "source" not in state:
        raise ValueError(f"{out.url(STATE)}: not a biomine fetch state (format {state.get('format')!r})")
    return state


def check_articles(body: bytes, name: str) -> list[int]:
    """PMIDs of the articles in an efetch reply; PubmedParseError unless clean PubMed XML."""
    pmids: list[int] = []
    for rec in scan_records(io.BytesIO(body), name, strict=True):
        if rec["record_type"] == "article":
            pmids.append(rec["pmid"])
        else:
            raise PubmedParseError(f"{name}: efetch reply holds a {rec['record_type']} record")
    return pmids


def fetch(spec: FetchSpec, client: EntrezClient,
          on_batch: Callable[[str, int], None] | None = None) -> FetchResult:
    """Fetch every batch of `spec` not yet in its folder; returns what the folder now holds."""
    out = Location.open(spec.output)  # local folder, s3:// or gs://
    out.makedirs()
    state = load_state(out)
    source = spec.source()
    if state is not None and state["source"] != source:
        raise ValueError(f"{spec.output} holds a fetch of {state['source']}, not {source}; "
                         f"use a new output folder")
    search: SearchResult | None = None
    if spec.query is not None:
        search = client.esearch(spec.query, db=spec.db)
        count = search.count
        if state is not None and state["count"] != count:
            raise ValueError(f"query {spec.query!r} now matches {count} records, but the fetch in "
                             f"{spec.output} began when it matched {state['count']}; its batches "
                             f"no longer line up: fetch into a new folder (or pin a date range)")
        log.info("query %r: %d records", spec.query, count)
    else:
        count = len(spec.pmids or ())
    if state is None:
        state = {"format": STATE_FORMAT, "source": source, "count": count, "batches": {}}
        out.write_bytes(STATE, json.dumps(state, indent=1).encode())
    n_batches = -(-count // spec.batch_size)
    files, fetched, skipped = [], 0, 0
    for i in range(n_batches):
        name = batch_name(i + 1, n_batches)
        files.append(out.url(name))  # scheme kept: `biomine run` reads them as given
        done = state["batches"].get(name)
        if done is not None and out.is_file(name):
            skipped += 1
            continue
        start, size = i * spec.batch_size, min(spec.batch_size, count - i * spec.batch_size)
        body, pmids = _fetch_batch(client, spec, search, start, size, name)
        out.write_bytes(name, body)
        state["batches"][name] = {"start": start, "size": size, "articles": len(pmids)}
        out.write_bytes(STATE, json.dumps(state, indent=1).encode())
        fetched += 1
        log.info("%s: %d articles (batch %d/%d)", name, len(pmids), i + 1, n_batches)
        if on_batch is not None:
            on_batch(name, len(pmids))
    articles = sum(b["articles"] for b in state["batches"].values())
    return FetchResult(spec.output, count, files, fetched, skipped, articles)


def _fetch_batch(client: EntrezClient, spec: FetchSpec, search: SearchResult | None,
                 start: int, size: int, name: str) -> tuple[bytes, list[int]]:
    """One batch's reply and its PMIDs, fetched again if the reply is not clean XML."""
    wanted: Sequence[int] | None = None if spec.pmids is None else spec.pmids[start:start + size]
    for attempt in range(1, BODY_TRIES + 1):
        if search is not None:
            body = client.efetch_history(search, start, size, db=spec.db)
        else:
            body = client.efetch_ids(wanted or (), db=spec.db)
        try:
            pmids = check_articles(body, name)
        except PubmedParseError as exc:
            if attempt == BODY_TRIES:
                raise EntrezError(f"{name}: efetch replies stay unreadable after {BODY_TRIES} "
                                  f"tries: {exc}") from exc
            log.warning("%s: unreadable efetch reply (%s); fetching again", name, exc)
            continue
        if wanted is not None:
            missing = sorted(set(wanted) - set(pmids))
            if missing:
                log.warning("%s: %d PMIDs not returned by NCBI (unknown or deleted): %s",
                            name, len(missing), missing[:20])
        elif len(pmids) != size:
            log.warning("%s: asked for %d records, got %d", name, size, len(pmids))
        return body, pmids
    raise AssertionError("unreachable")
