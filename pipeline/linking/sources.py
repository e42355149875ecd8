"""Lexicon sources besides MeSH XML: OBO files with MESH: xrefs, PubTator gold files, BioGPT
`*.entities.json` dictionaries and the MeSH indexing of PubMed XML (ChemicalList, MeshHeading)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pipeline.jsonfile import read_json
from pipeline.linking.lexicon import CHEMICAL, Entry, lexicon_type
from pipeline.storage import Location

_SYNONYM = re.compile(r'^synonym:\s*"((?:[^"\\]|\\.)*)"\s*(EXACT|RELATED|NARROW|BROAD)?')
_MESH_XREF = re.compile(r"^xref:\s*MESH:\s*([CD]\d{6,9})\b", re.IGNORECASE)


def _need(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def read_obo(path: str | Path, entity_type: str = "Disease") -> Iterator[Entry]:
    """Name and EXACT synonyms of every non-obsolete [Term] with MESH: xrefs, one entry per xref."""
    path = _need(path, "OBO file")
    stanza: dict | None = None
    found = 0

    def flush() -> Iterator[Entry]:
        if stanza and stanza["xrefs"] and not stanza["obsolete"] and stanza["names"]:
            for ui in stanza["xrefs"]:
                for i, name in enumerate(stanza["names"]):
                    yield Entry(name, ui, entity_type, "obo", 0.5 if i == 0 else 0.3)

    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.strip()
            if line.startswith("["):
                yield from flush()
                stanza = ({"names": [], "xrefs": [], "obsolete": False, "line": lineno}
                          if line == "[Term]" else None)
                continue
            if stanza is None or not line or line.startswith("!"):
                continue
            if ":" not in line:
                raise ValueError(f"{path}:{lineno}: expected 'tag: value' in an OBO stanza, got {line[:60]!r}")
            if line.startswith("name:"):
                stanza["names"].insert(0, line[5:].strip())
            elif line.startswith("synonym:"):
                m = _SYNONYM.match(line)
                if m is None:
                    raise ValueError(f"{path}:{lineno}: malformed synonym line {line[:60]!r}")
                if (m.group(2) or "EXACT") == "EXACT":
                    stanza["names"].append(m.group(1).replace('\\"', '"'))
            elif line.startswith("xref:"):
                m = _MESH_XREF.match(line)
                if m:
                    stanza["xrefs"].append(m.group(1).upper())
                    found += 1
            elif line.startswith("is_obsolete:"):
                stanza["obsolete"] = line.split(":", 1)[1].strip() == "true"
    yield from flush()
    if not found:
        raise ValueError(f"{path}: no 'xref: MESH:...' line in any [Term]: not an OBO file with MeSH xrefs")


def read_pubtator_names(path: str | Path) -> Iterator[Entry]:
    """Every gold mention with a single MeSH id (composites and -1 left out): text -> id."""
    from pipeline.tasks.pubtator import read_pubtator

    for doc in read_pubtator(_need(path, "PubTator file")):
        for m in doc.mentions:
            ident = m.concept_id.strip().removeprefix("MESH:")
            if ident in ("", "-1") or "|" in ident:
                continue
            yield Entry(m.text, ident, lexicon_type(m.type) or m.type, "gold", 1.0)


def read_entities_json(path: str | Path) -> Iterator[Entry]:
    """BioGPT's `{"chemical2id": {name: id}, ...}` (ids "-1" left out)."""
    path = _need(path, "entity dictionary")
    raw = read_json(path, "entity dictionary")
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object like {{'chemical2id': {{name: id}}}}")
    for key, table in raw.items():
        if not key.endswith("2id") or not isinstance(table, dict):
            raise ValueError(f"{path}: expected keys like 'chemical2id' mapping names to ids, got {key!r}")
        type_ = lexicon_type(key[:-3]) or key[:-3].capitalize()
        for name, ident in table.items():
            ident = str(ident).strip()
            if ident not in ("", "-1") and "|" not in ident:
                yield Entry(str(name), ident, type_, "entities", 1.0)


def indexing_names(mesh_headings: list | None, chemicals: list | None) -> Iterator[tuple[str, str, str]]:
    """(name, UI, type) of one article's MeSH indexing: ChemicalList -> Chemical, headings -> ""."""
    for chem in chemicals or []:
        if chem and chem.get("ui") and chem.get("name"):
            yield chem["name"], chem["ui"], CHEMICAL
    for head in mesh_headings or []:
        if head and head.get("descriptor_ui") and head.get("name"):
            yield head["name"], head["descriptor_ui"], ""


def _index_entries(counts: dict[tuple[str, str, str], int]) -> Iterator[Entry]:
    for (name, ui, type_), n in sorted(counts.items()):
        yield Entry(name, ui, type_, "corpus-index", 0.1 * n)


def read_pubmed_indexing(path: str | Path) -> Iterator[Entry]:
    """The MeSH names and UIs a PubMed XML file's articles are indexed with (ChemicalList,
    SupplMeshList, MeshHeadingList; weight grows with the articles naming them)."""
    from pipeline.pubmed.indexing import NameCollector
    from pipeline.pubmed.xml import open_xml, scan_records

    names = NameCollector(lambda *args: [])
    with open_xml(str(_need(path, "PubMed XML file"))) as stream:
        for rec in scan_records(stream, str(path), handler=names):
            if rec.get("record_type") == "error":
                raise ValueError(rec.get("message"))
    yield from _index_entries(names.counts)


def read_index_names(output: str | Path | Location) -> Iterator[Entry]:
    """The indexing names a run collected while indexing its inputs (OUT/_index_names/, written
    by `biomine run` or `biomine run --dry-run`): no extra parse of the XML."""
    import pyarrow.parquet as pq

    from pipeline.planning.index_cache import INDEX_DIR, NAMES_DIR

    folder = Location.open(output)
    stamps = {p.rsplit("/", 1)[-1] for p in folder.files(INDEX_DIR, ".parquet")}
    files = sorted(p for p in folder.files(NAMES_DIR, ".parquet") if p.rsplit("/", 1)[-1] in stamps)
    if not files:
        raise FileNotFoundError(f"{folder.url()}: no {NAMES_DIR}/ names of indexed inputs; run "
                                f"`biomine run --dry-run INPUTS -o {folder.url()}` first")
    counts: dict[tuple[str, str, str], int] = {}
    for path in files:
        for row in pq.read_table(path, filesystem=folder.fs).to_pylist():
            item = (row["name"], row["ui"], row["type"] or "")
            counts[item] = counts.get(item, 0) + int(row["n_articles"])
    yield from _index_entries(counts)
