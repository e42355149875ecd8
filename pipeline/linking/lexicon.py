"""The lexicon: name keys -> MeSH concepts, compiled once into Arrow IPC files, memory-mapped.

A lexicon is a folder: `concepts.arrow` (id, type, name, mapped_to: one row per concept),
`keys.arrow` (hash, levels, concept, source, weight: one row per distinct (key, concept), sorted
by hash; `levels` is a bit mask of the variant levels that give the key) and `lexicon.json`
(what went in). Keys are 64-bit BLAKE2b hashes of each name's normalised forms
(`normalize.keys`), so a lookup is one vectorised binary search in a memory-mapped column:
every actor maps the same pages, nothing is rebuilt per actor. (Two different keys sharing a
64-bit hash: odds ~1e-7 at MeSH's ~3 M keys.)
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401 (pa.compute)

from pipeline.linking.normalize import keys, permuted

log = logging.getLogger(__name__)

CHEMICAL, DISEASE = "Chemical", "Disease"
BUNDLED_LEXICONS = Path(__file__).resolve().parents[1] / "data" / "lexicons"  # bundled:NAME
SOURCES = ("gold", "mesh", "obo", "entities", "corpus-index")  # source code = index
KEYS_SCHEMA = pa.schema([("hash", pa.uint64()), ("levels", pa.uint8()), ("concept", pa.int32()),
                         ("source", pa.uint8()), ("weight", pa.float32())])
CONCEPTS_SCHEMA = pa.schema([("id", pa.string()), ("type", pa.string()), ("name", pa.string()),
                             ("mapped_to", pa.string())])
_TYPE_ALIASES = {"chemical": CHEMICAL, "chemicals": CHEMICAL, "drug": CHEMICAL, "drugs": CHEMICAL,
                 "disease": DISEASE, "diseases": DISEASE}


def lexicon_type(entity_type: str | None) -> str | None:
    """The lexicon type an entity type links to (Chemical, Disease) or None (any type)."""
    return _TYPE_ALIASES.get((entity_type or "").strip().lower())


def bundled_lexicons() -> list[str]:
    """The names of the lexicons shipped in the package (`bundled:NAME`)."""
    return sorted(p.parent.name for p in BUNDLED_LEXICONS.glob("*/lexicon.json"))


def lexicon_folder(name: str | Path) -> Path:
    """The folder of a lexicon: a path, or `bundled:NAME` for one shipped in the package."""
    text = str(name)
    if not text.startswith("bundled:"):
        return Path(name)
    bundled = text[len("bundled:"):]
    folder = BUNDLED_LEXICONS / bundled
    if "/" in bundled or bundled.startswith(".") or not (folder / "lexicon.json").is_file():
        raise FileNotFoundError(f"{text!r}: no such bundled lexicon; the package ships "
                                f"{['bundled:' + n for n in bundled_lexicons()] or 'none'}")
    return folder


def key_hash(key: str) -> int:
    """The 64-bit hash of a key."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class Entry:
    """One name of one concept from one source (weight: how much this name counts as evidence)."""

    name: str
    id: str
    type: str
    source: str
    weight: float = 1.0
    mapped_to: str | None = None


class LexiconBuilder:
    """Collects entries, then writes the lexicon folder."""

    def __init__(self) -> None:
        self.concepts: dict[tuple[str, str], int] = {}
        self.concept_rows: list[list[Any]] = []
        self.key_rows: dict[tuple[int, int], list[float]] = {}  # (hash, concept) -> [source, weight, levels]
        self.counts: dict[str, int] = {}

    def _concept(self, entry: Entry) -> int:
        k = (entry.id, entry.type)
        index = self.concepts.get(k)
        if index is None:
            index = self.concepts[k] = len(self.concept_rows)
            self.concept_rows.append([entry.id, entry.type, entry.name, entry.mapped_to])
        elif entry.mapped_to and not self.concept_rows[index][3]:
            self.concept_rows[index][3] = entry.mapped_to
        if entry.source == "mesh" and entry.weight >= 1.0:  # the record's preferred term names it
            self.concept_rows[index][2] = entry.name
        return index

    def add(self, entry: Entry) -> None:
        """Add one name (and its permuted form, for "X, Y" names)."""
        if entry.source not in SOURCES:
            raise ValueError(f"unknown lexicon source {entry.source!r}; expected one of {SOURCES}")
        name = entry.name.strip()
        if not name or not entry.id:
            return
        concept = self._concept(entry)
        code = SOURCES.index(entry.source)
        self.counts[entry.source] = self.counts.get(entry.source, 0) + 1
        names = [name]
        flipped = permuted(name)
        if flipped:
            names.append(flipped)
        for variant in names:
            masks: dict[str, int] = {}
            for level, key in keys(variant).items():
                masks[key] = masks.get(key, 0) | (1 << level)
            for key, mask in masks.items():
                slot = self.key_rows.setdefault((key_hash(key), concept), [code, 0.0, 0])
                slot[0] = min(slot[0], code)
                slot[1] += entry.weight
                slot[2] = int(slot[2]) | mask

    def add_all(self, entries: Iterable[Entry]) -> int:
        """Add many entries; returns how many."""
        n = 0
        for entry in entries:
            self.add(entry)
            n += 1
        return n

    def tables(self) -> tuple[pa.Table, pa.Table]:
        """(concepts, keys) as Arrow tables, keys sorted by hash."""
        concepts = pa.Table.from_pylist(
            [dict(zip(CONCEPTS_SCHEMA.names, row)) for row in self.concept_rows], schema=CONCEPTS_SCHEMA)
        n = len(self.key_rows)
        hashes, levels, ids = array("Q"), array("B"), array("i")
        sources, weights = array("B"), array("f")
        for (h, concept), (code, weight, mask) in self.key_rows.items():
            hashes.append(h)
            levels.append(int(mask))
            ids.append(concept)
            sources.append(int(code))
            weights.append(weight)
        order = np.argsort(np.frombuffer(hashes, np.uint64), kind="stable") if n else np.array([], int)
        cols = [np.frombuffer(a, dt)[order] for a, dt in ((hashes, np.uint64), (levels, np.uint8),
                                                          (ids, np.int32), (sources, np.uint8),
                                                          (weights, np.float32))]
        return concepts, pa.Table.from_arrays([pa.array(c) for c in cols], schema=KEYS_SCHEMA)

    def write(self, folder: str | Path, inputs: list[str] | None = None) -> dict[str, Any]:
        """Write the lexicon folder; returns its description (also lexicon.json)."""
        started = time.time()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        concepts, keys_table = self.tables()
        for name, table in (("concepts.arrow", concepts), ("keys.arrow", keys_table)):
            tmp = folder / f".{name}.tmp"
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            tmp.replace(folder / name)
        types = concepts.column("type").value_counts().to_pylist() if concepts.num_rows else []
        meta = {"format": "biomine-lexicon/1", "inputs": inputs or [], "names_by_source": self.counts,
                "concepts": concepts.num_rows, "keys": keys_table.num_rows,
                "concepts_by_type": {t["values"]: t["counts"] for t in types},
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (folder / "lexicon.json").write_text(json.dumps(meta, indent=2) + "\n")
        log.info("lexicon %s: %d concepts, %d keys (%.1fs to write)", folder, concepts.num_rows,
                 keys_table.num_rows, time.time() - started)
        return meta


def _map(path: Path) -> pa.Table:
    if not path.is_file():
        raise FileNotFoundError(f"lexicon file not found: {path} (build one with `biomine lexicon build`)")
    with pa.memory_map(str(path), "r") as source:
        return pa.ipc.open_file(source).read_all()


class Lexicon:
    """A built lexicon, memory-mapped: `candidates(level, key)` -> [(concept, source, weight)]."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = lexicon_folder(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"lexicon folder not found: {self.folder} "
                                    "(build one with `biomine lexicon build`)")
        self.meta = json.loads((self.folder / "lexicon.json").read_text())
        concepts = _map(self.folder / "concepts.arrow")
        table = _map(self.folder / "keys.arrow")
        self.hashes = table.column("hash").chunk(0).to_numpy() if table.num_rows else np.zeros(0, np.uint64)
        self.levels = _column(table, "levels", np.uint8)
        self.concept = _column(table, "concept", np.int32)
        self.source = _column(table, "source", np.uint8)
        self.weight = _column(table, "weight", np.float32)
        self.ids = concepts.column("id").combine_chunks() if len(concepts) else pa.array([], pa.string())
        self.names = concepts.column("name")
        encoded = pa.compute.dictionary_encode(concepts.column("type")).combine_chunks()
        self.type_names = [t or "" for t in encoded.dictionary.to_pylist()]
        self.type_codes = encoded.indices.to_numpy(zero_copy_only=False) if len(concepts) else np.zeros(0, int)

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, level_keys: dict[int, str], max_level: int = 7
               ) -> tuple[int, list[tuple[int, str, float]]] | None:
        """The first level (up to max_level) whose key names concepts: (level, [(concept, source,
        weight)]); one vectorised search for all the distinct keys."""
        wanted = {lv: k for lv, k in level_keys.items() if lv <= max_level}
        distinct = list(dict.fromkeys(wanted.values()))
        if not distinct or not len(self.hashes):
            return None
        hs = np.array([key_hash(k) for k in distinct], np.uint64)
        starts = self.hashes.searchsorted(hs, "left").tolist()
        ends = self.hashes.searchsorted(hs, "right").tolist()
        found = {key: (s, e) for key, s, e in zip(distinct, starts, ends) if e > s}
        if not found:
            return None
        for level in sorted(wanted):
            span = found.get(wanted[level])
            if span is None:
                continue
            s, e = span
            bit = 1 << level
            rows = [(c, SOURCES[src], w) for lv, c, src, w in zip(
                self.levels[s:e].tolist(), self.concept[s:e].tolist(), self.source[s:e].tolist(),
                self.weight[s:e].tolist()) if lv & bit]
            if rows:
                return level, rows
        return None

    def candidates(self, level: int, key: str) -> list[tuple[int, str, float]]:
        """Every concept a key of one level names: (concept index, source, weight)."""
        found = self.lookup({level: key})
        return found[1] if found else []

    def concept_id(self, index: int) -> str:
        """The MeSH id of a concept index."""
        return self.ids[index].as_py()

    def concept_type(self, index: int) -> str:
        """The type (Chemical, Disease, or "" when unknown) of a concept index."""
        return self.type_names[self.type_codes[index]]


def _column(table: pa.Table, name: str, dtype: Any) -> np.ndarray:
    if not table.num_rows:
        return np.zeros(0, dtype)
    return table.column(name).chunk(0).to_numpy()
