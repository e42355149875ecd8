"""Entity linking for RE output: names -> IDs through a dictionary, and evidence spans in the text.

The dictionary is BioGPT's `*.entities.json` layout, `{"chemical2id": {name: MeSH}, "disease2id":
{...}}`: the key for an entity type is its lowercased name + "2id". Unknown names link to None.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.jsonfile import read_json


@dataclass(frozen=True)
class EntityDictionary:
    """Per-type name -> identifier maps (names matched exactly, then lowercased)."""

    maps: Mapping[str, Mapping[str, str]]

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], source: str = "<dict>") -> "EntityDictionary":
        """Build from `{"<type>2id": {name: id}}`, checking the layout."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"{source}: entity dictionary must be a JSON object")
        maps: dict[str, dict[str, str]] = {}
        for key, table in raw.items():
            if not key.endswith("2id") or not isinstance(table, Mapping):
                raise ValueError(f"{source}: expected keys like 'chemical2id' mapping names to ids, "
                                 f"got {key!r}")
            clean: dict[str, str] = {}
            for name, ident in table.items():
                clean[str(name)] = str(ident)
                clean.setdefault(str(name).lower(), str(ident))
            maps[key[:-3].lower()] = clean
        return cls(maps)

    @classmethod
    def from_json(cls, path: str | Path) -> "EntityDictionary":
        """Read a `*.entities.json` file."""
        return cls.from_mapping(read_json(path, "entity dictionary"), str(path))

    def lookup(self, entity_type: str, name: str) -> str | None:
        """The identifier of a name of one type, or None."""
        table = self.maps.get(entity_type.lower())
        if table is None:
            return None
        name = name.strip()
        return table.get(name) or table.get(name.lower())


def _name_pattern(name: str) -> re.Pattern[str] | None:
    parts = name.split()
    if not parts:
        return None
    body = r"\s*".join(re.escape(p) for p in parts)  # "( nr2b )" also finds "(NR2B)"
    return re.compile(rf"(?<![0-9A-Za-z]){body}(?![0-9A-Za-z])", re.IGNORECASE)


def find_spans(name: str, title: str | None, abstract: str | None) -> list[dict[str, Any]]:
    """Every case-insensitive whole-word occurrence of a name: [{section, start, end}]."""
    pattern = _name_pattern(name)
    if pattern is None:
        return []
    spans = []
    for section, text in (("title", title), ("abstract", abstract)):
        for m in pattern.finditer(text or ""):
            spans.append({"section": section, "start": m.start(), "end": m.end()})
    return spans
