"""NLM-like inputs for benchmarks/scale.py: gzip files from the bundled sample, and the same
index built directly in numpy (for sizes whose XML would not fit the box's time)."""
from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

PER_FILE = 30_000
REVISE, DELETE = 20, 100  # every 20th PMID revised (5 %), every 100th deleted (1 %)
FIRST_PMID = 50_000_000


def templates() -> list[tuple[str, str]]:
    """The sample's articles split around their PMID: (text before, text after)."""
    from jobs.run import sample_inputs

    out = []
    for path in sample_inputs():
        text = gzip.decompress(Path(path).read_bytes()).decode()
        for art in re.findall(r"<PubmedArticle>.*?</PubmedArticle>", text, flags=re.S):
            m = re.search(r"(<MedlineCitation[^>]*>\s*<PMID[^>]*>)\d+(</PMID>)", art)
            out.append((art[: m.end(1)], art[m.start(2):]))
    return out


def synthesize(folder: Path, n: int) -> list[str]:
    """Baseline files of PER_FILE records (PMIDs FIRST_PMID..), then update files revising every
    REVISE-th PMID and deleting every DELETE-th one (offset so the two sets differ)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "_complete"
    if done.exists():
        return json.loads(done.read_text())
    parts = templates()
    pmids = range(FIRST_PMID, FIRST_PMID + n)
    revised = [p for p in pmids if p % REVISE == 0]
    deleted = [p for p in pmids if p % DELETE == 7]
    files: list[str] = []

    def write(records: list[int], deletions: list[int]) -> None:
        path = folder / f"pubmed26n{len(files) + 1:04d}.xml.gz"
        with gzip.open(path, "wt", compresslevel=1) as f:
            f.write("<PubmedArticleSet>")
            for p in records:
                head, tail = parts[p % len(parts)]
                f.write(f"{head}{p}{tail}")
            if deletions:
                f.write("<DeleteCitation>" + "".join(f"<PMID Version=\"1\">{p}</PMID>" for p in deletions)
                        + "</DeleteCitation>")
            f.write("</PubmedArticleSet>")
        files.append(str(path))

    for start in range(0, n, PER_FILE):
        write(list(pmids[start:start + PER_FILE]), [])
    n_updates = max(1, -(-len(revised) // PER_FILE))
    for k in range(n_updates):
        write(revised[k::n_updates], deleted[k::n_updates])
    done.write_text(json.dumps(files))
    return files


def synthetic_index(n: int):  # noqa: ANN201
    """The driver index (COMPACT_SCHEMA) that indexing synthesize(n)'s files gives, built
    directly in numpy: for sizes whose XML would take hours to write and parse on this box."""
    import numpy as np
    import pyarrow as pa

    from pipeline.planning.index_cache import COMPACT_SCHEMA, RECORD_TYPES

    pmids = np.arange(FIRST_PMID, FIRST_PMID + n, dtype=np.int64)
    revised = pmids[pmids % REVISE == 0]
    deleted = pmids[pmids % DELETE == 7]
    seq = [np.repeat(np.arange(-(-n // PER_FILE), dtype=np.int32), PER_FILE)[:n]]
    pos = [(np.arange(n) % PER_FILE).astype(np.int32)]
    ids, kinds = [pmids], [np.zeros(n, np.int8)]
    n_updates = max(1, -(-len(revised) // PER_FILE))
    for k in range(n_updates):
        rev, dele = revised[k::n_updates], deleted[k::n_updates]
        file_seq = -(-n // PER_FILE) + k
        ids += [rev, dele]
        seq += [np.full(len(rev) + len(dele), file_seq, np.int32)]
        pos += [np.arange(len(rev), dtype=np.int32), np.full(len(dele), len(rev), np.int32)]
        kinds += [np.zeros(len(rev), np.int8), np.ones(len(dele), np.int8)]
    ids_all = np.concatenate(ids)
    return pa.table({
        "pmid": ids_all, "version": pa.array(np.ones(len(ids_all), np.int32)),
        "file_seq": np.concatenate(seq), "position": np.concatenate(pos),
        "record_type": pa.DictionaryArray.from_arrays(pa.array(np.concatenate(kinds)), RECORD_TYPES),
    }, schema=COMPACT_SCHEMA)
