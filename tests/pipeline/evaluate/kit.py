"""Running the official BC5CDR kit's jar in tests, and batching many scenarios into one run.

Scenarios are batched by renaming PMIDs: scenario i's document p becomes (i + 1) * 10**9 + p,
so one JVM scores them all and its INFO lines split back per scenario (the kit compares
per-document keys only, so scenarios never interact).
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from pipeline.tasks.pubtator import Document

KIT = Path(__file__).resolve().parents[2] / "data" / "bc5cdr_eval"
JAR = KIT / "bc5cdr_eval.jar"
JAVA = shutil.which("java")
SHIFT = 10**9


def rename(docs: list[Document], scenario: int) -> list[Document]:
    """Documents of one scenario with PMIDs moved into its range."""
    out = []
    for d in docs:
        pmid = str((scenario + 1) * SHIFT + int(d.pmid))
        out.append(Document(pmid, d.title, d.abstract, [replace(m, pmid=pmid) for m in d.mentions],
                            [replace(r, pmid=pmid) for r in d.relations]))
    return out


def scenario_of(pmid: str) -> int:
    """The scenario index of a renamed PMID."""
    return int(pmid) // SHIFT - 1


def _key(kind: str, fmt: str, cols: list[str]) -> tuple:
    if kind == "relation":
        pmid, rel, a, b = cols
        return (pmid, rel, None if a == "null" else a, None if b == "null" else b)
    if kind == "mention":
        if fmt == "BioC":  # the kit's BioC key order: doc, type, start, end
            pmid, kind_of, start, end = cols
        else:
            pmid, start, end, kind_of = cols
        return (pmid, int(start), int(end), kind_of)
    pmid, kind_of, concept = cols
    return (pmid, kind_of, concept)


def run_jar(kind: str, types: str, fmt: str, gold: Path, pred: Path) -> dict[str, set[tuple]]:
    """The jar's TP/FP/FN keys (from its INFO lines); its printed totals are checked against them."""
    done = subprocess.run([JAVA, "-cp", str(JAR), "ncbi.bc5cdr_eval.Evaluate", kind, types, fmt,
                           str(Path(gold).resolve()), str(Path(pred).resolve())], cwd=KIT,
                          capture_output=True, text=True, timeout=300)  # the jar reads ./BioC.dtd
    assert done.returncode == 0, done.stderr[-2000:]
    items: dict[str, set[tuple]] = {"TP": set(), "FP": set(), "FN": set()}
    totals = {}
    for line in done.stdout.splitlines():
        cols = line.split("\t")
        if cols[0] == "INFO":
            items[cols[1]].add(_key(kind, fmt, cols[3:]))
        elif line[:3] in ("TP:", "FP:", "FN:"):
            totals[line[:2]] = int(line.split(":")[1])
    assert totals == {k: len(v) for k, v in items.items()}, (totals, done.stdout[-500:])
    return items


def write_bioc(path: Path, docs: list[Document]) -> None:
    """Documents as BioC XML the way the kit's samples lay it out (title, abstract passages)."""
    out = ["<?xml version='1.0' encoding='UTF-8'?><!DOCTYPE collection SYSTEM 'BioC.dtd'>",
           "<collection><source>test</source><date>0</date><key>test.key</key>"]
    for d in docs:
        out.append(f"<document><id>{d.pmid}</id>")
        bounds = [("title", 0, d.title), ("abstract", len(d.title) + 1, d.abstract)]
        for i, (name, offset, text) in enumerate(bounds):
            out.append(f'<passage><infon key="type">{name}</infon><offset>{offset}</offset>'
                       f"<text>{escape(text)}</text>")
            for j, m in enumerate(d.mentions):
                if (m.start < bounds[1][1]) == (i == 0):
                    out.append(f"<annotation id='{j}'><infon key=\"type\">{escape(m.type)}</infon>"
                               f"<infon key=\"MESH\">{escape(m.concept_id)}</infon>"
                               f"<location offset={quoteattr(str(m.start))} "
                               f"length={quoteattr(str(m.end - m.start))} />"
                               f"<text>{escape(m.text)}</text></annotation>")
            out.append("</passage>")
        for j, r in enumerate(d.relations):
            out.append(f"<relation id='R{j}'><infon key=\"relation\">{escape(r.type)}</infon>"
                       f"<infon key=\"Chemical\">{escape(r.id1)}</infon>"
                       f"<infon key=\"Disease\">{escape(r.id2)}</infon></relation>")
        out.append("</document>")
    out.append("</collection>")
    path.write_text("\n".join(out), encoding="utf-8")
