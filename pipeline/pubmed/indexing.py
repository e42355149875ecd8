"""The MeSH names an article is indexed with, collected while the index is built (no extra parse):
ChemicalList (Chemical), SupplMeshList (Disease for Type="Disease"), MeshHeadingList (type unknown)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
from lxml import etree

NAMES_SCHEMA = pa.schema([("name", pa.string()), ("ui", pa.string()), ("type", pa.string()),
                          ("n_articles", pa.int32())])
_SUPPL_TYPES = {"Disease": "Disease"}  # Protocol and Organism SCRs are no entity type of ours


def _citation(el: etree._Element) -> etree._Element | None:
    return el if el.tag == "MedlineCitation" else el.find("MedlineCitation")


def article_names(el: etree._Element) -> set[tuple[str, str, str]]:
    """(name, UI, type) of one record element's MeSH indexing."""
    citation = _citation(el)
    out: set[tuple[str, str, str]] = set()
    if citation is None:
        return out
    for node in citation.iterfind("ChemicalList/Chemical/NameOfSubstance"):
        if node.get("UI") and node.text:
            out.add((node.text.strip(), node.get("UI"), "Chemical"))
    for node in citation.iterfind("SupplMeshList/SupplMeshName"):
        kind = _SUPPL_TYPES.get(node.get("Type", ""))
        if kind and node.get("UI") and node.text:
            out.add((node.text.strip(), node.get("UI"), kind))
    for node in citation.iterfind("MeshHeadingList/MeshHeading/DescriptorName"):
        if node.get("UI") and node.text:
            out.add((node.text.strip(), node.get("UI"), ""))
    return out


class NameCollector:
    """Wraps a per-record handler (the index's) and counts each record's indexing names."""

    def __init__(self, handler: Callable[..., list[dict[str, Any]]]) -> None:
        self.inner = handler
        self.counts: dict[tuple[str, str, str], int] = {}

    def __call__(self, el: etree._Element, *args: Any) -> list[dict[str, Any]]:
        rows = self.inner(el, *args)
        if el.tag != "DeleteCitation":
            for item in article_names(el):
                self.counts[item] = self.counts.get(item, 0) + 1
        return rows

    def table(self) -> pa.Table:
        """The names met, with the number of articles naming each (NAMES_SCHEMA)."""
        items = sorted(self.counts.items())
        return pa.table({"name": [k[0] for k, _ in items], "ui": [k[1] for k, _ in items],
                         "type": [k[2] for k, _ in items], "n_articles": [n for _, n in items]},
                        schema=NAMES_SCHEMA)
