"""CDR scoring of two files, PubTator or BioC, as the kit's `Evaluate KIND TYPES FORMAT GOLD PRED`."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pipeline.evaluate.cdr import Comparison, compare, compare_documents

FORMATS = ("auto", "PubTator", "BioC")


def file_format(path: str | Path, fmt: str = "auto") -> str:
    """"PubTator" or "BioC": as given, or from the name (`.xml` is BioC)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {list(FORMATS)}")
    if fmt != "auto":
        return fmt
    return "BioC" if str(path).lower().endswith(".xml") else "PubTator"


def compare_files(kind: str, gold: str | Path, pred: str | Path,
                  types: Iterable[str] | None = None, fmt: str = "auto") -> Comparison:
    """The kit's comparison of a gold and a prediction file (kind relation / mention / id)."""
    if file_format(gold, fmt) == "BioC":
        from pipeline.evaluate.bioc import bioc_types, read_bioc_items

        wanted = set(types or ())
        if not wanted:
            wanted = {"CID"} if kind == "relation" else (bioc_types(pred) or bioc_types(gold))
        return compare(read_bioc_items(gold, kind, wanted), read_bioc_items(pred, kind, wanted))
    from pipeline.tasks.pubtator import read_pubtator

    return compare_documents(kind, read_pubtator(gold), read_pubtator(pred), types)
