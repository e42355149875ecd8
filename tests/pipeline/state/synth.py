"""Small synthetic update files (articles + entities + relations per PMID) and a dict model of them."""
from __future__ import annotations

import random
from typing import Any

import pyarrow as pa

ARTICLES = pa.schema([("pmid", pa.int64()), ("version", pa.int32()), ("title", pa.string()),
                      ("source_file", pa.string())])
ENTITIES = pa.schema([("pmid", pa.int64()), ("version", pa.int32()), ("start", pa.int32()), ("text", pa.string())])
RELATIONS = pa.schema([("pmid", pa.int64()), ("version", pa.int32()), ("head_text", pa.string())])
DELETIONS = pa.schema([("pmid", pa.int64()), ("version", pa.int32()), ("source_file", pa.string()),
                       ("position", pa.int64())])


def update_file(seed: int, name: str, pmid_max: int = 300, n: int = 40, n_del: int = 8) -> dict[str, Any]:
    """Random upserts (some with version 2) and deletions (some versioned) of PMIDs 0..pmid_max."""
    rng = random.Random(seed)
    pmids = rng.sample(range(pmid_max), n)
    arts = [{"pmid": p, "version": rng.choice([1, 1, 1, 2]), "title": f"{name}:{p}", "source_file": name}
            for p in pmids]
    ents = [{"pmid": a["pmid"], "version": a["version"], "start": k, "text": f"{a['title']}#{k}"}
            for a in arts for k in range(rng.randint(0, 3))]
    rels = [{"pmid": a["pmid"], "version": a["version"], "head_text": a["title"]} for a in arts if a["pmid"] % 3 == 0]
    dels = [{"pmid": p, "version": rng.choice([None, 1, 2]), "source_file": name, "position": n + i}
            for i, p in enumerate(rng.sample(range(pmid_max), n_del))]
    return {"name": name,
            "new": {"articles": pa.Table.from_pylist(arts, ARTICLES),
                    "entities": pa.Table.from_pylist(ents, ENTITIES),
                    "relations": pa.Table.from_pylist(rels, RELATIONS)},
            "deletions": pa.Table.from_pylist(dels, DELETIONS)}


def apply_model(model: dict[int, dict[str, list]], upd: dict[str, Any]) -> None:
    """The intended semantics on plain dicts: deletions end the old version, upserts replace."""
    for d in upd["deletions"].to_pylist():
        old = model.get(d["pmid"])
        if old is not None and (d["version"] is None or old["articles"][0]["version"] == d["version"]):
            del model[d["pmid"]]
    for table, rows in upd["new"].items():
        for row in rows.to_pylist():
            if table == "articles":
                model[row["pmid"]] = {"articles": [], "entities": [], "relations": []}
    for table, rows in upd["new"].items():
        for row in rows.to_pylist():
            model[row["pmid"]][table].append(row)


def model_rows(model: dict[int, dict[str, list]], table: str) -> list[tuple]:
    """Sorted row tuples of one table of the model."""
    return sorted(tuple(r.values()) for entry in model.values() for r in entry[table])


def rows(table: pa.Table) -> list[tuple]:
    """Sorted row tuples of an Arrow table."""
    return sorted(tuple(r.values()) for r in table.to_pylist())
