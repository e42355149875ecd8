"""A small output folder with relations, made by the product's own postprocess stage and sink.

The demo model's random generations never form a BC5CDR answer, so these articles get a given
answer text (tokenized as the model's output would be) and tagger probabilities that mark the
names of a small lexicon; PostprocessStage parses and links them, ResultSink writes the blocks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.config import RunConfig
from pipeline.dataflow.outputs import ERROR_STRUCT, OUTPUT_TABLES
from pipeline.dataflow.sink import ResultSink
from pipeline.dataflow.stages import PostprocessStage
from pipeline.tasks.relation import render_answer
from pipeline.tasks.re_bc5cdr import RECIPE

DATA = Path(__file__).parents[2] / "data"
ENTITIES_JSON = DATA / "gold" / "biogpt_BC5CDR_train.entities.json"
LEXICON = {"cisplatin": "Chemical", "lithium": "Chemical", "clonidine": "Chemical",
           "naloxone": "Chemical", "nephrotoxicity": "Disease", "tremor": "Disease",
           "hypotension": "Disease", "seizures": "Disease"}

# pmid, year, title, abstract, answer pairs (chemical, disease)
ARTICLES = [
    (9001, 2019, "Cisplatin and the kidney.",
     "Cisplatin caused nephrotoxicity in rats. Lithium was not tested.",
     [("cisplatin", "nephrotoxicity")]),
    (9002, 2021, "Lithium tremor.", "Lithium induced tremor. Later, cisplatin caused nephrotoxicity.",
     [("lithium", "tremor"), ("cisplatin", "nephrotoxicity")]),
    (9003, 2023, "Clonidine overdose.", "Clonidine led to hypotension. Naloxone reversed it.",
     [("clonidine", "hypotension"), ("lithium", "seizures")]),
    (9004, 2024, "Cisplatin again.", "Nephrotoxicity after cisplatin was common.",
     [("cisplatin", "nephrotoxicity")]),
    (9005, 2020, "No relations here.", "Tremor was rare.", []),
    (9006, 2022, "A title only record about lithium and tremor.", None, []),
]


def config(out: Path, lexicon: str | None = None) -> RunConfig:
    """The run configuration the synthetic blocks are made under (a lexicon replaces --entities)."""
    return RunConfig(inputs=["synthetic"], output=str(out), tasks=["re-bc5cdr", "ner"], demo_model=True,
                     entities=None if lexicon else str(ENTITIES_JSON), lexicon=lexicon, progress=False)


def _probs(stage: PostprocessStage, article: dict) -> list:
    """Tagger probabilities (one array per window) marking the lexicon's names as B-/I- tokens."""
    task = stage.ner_task.task
    label = {v: k for k, v in task.id2label.items()}
    windows = []
    for section, text, ids, offsets, ranges in task._layout(article):
        lowered = text.lower()
        tags = np.full(len(ids), label["O"])
        for name, kind in LEXICON.items():
            at = lowered.find(name)
            while at >= 0:
                inside = [t for t, (s, e) in enumerate(offsets) if e > s and s < at + len(name) and e > at]
                for j, t in enumerate(inside):
                    tags[t] = label[("B-" if j == 0 else "I-") + kind]
                at = lowered.find(name, at + 1)
        for s, e in ranges:
            p = np.full((e - s + 1, len(label)), 0.0, np.float32)
            p[0, label["O"]] = 1.0
            p[np.arange(1, e - s + 1), tags[s:e]] = 0.9
            p[np.arange(1, e - s + 1), (tags[s:e] + 1) % len(label)] += 0.1
            windows.append(p.tolist())
    return windows


def make_output(out: Path, blocks: int = 2, lexicon: str | None = None) -> Path:
    """Write the synthetic articles as `blocks` committed blocks under `out`."""
    cfg = config(out, lexicon)
    stage = PostprocessStage(cfg, "synthetic-run")
    tok = stage.re_task.tokenizer
    rows = []
    for pmid, year, title, abstract, pairs in ARTICLES:
        article = {"pmid": pmid, "version": 1, "title": title, "abstract": abstract}
        answer = render_answer(RECIPE, [(c, d, "CID") for c, d in pairs]) if pairs else None
        rows.append({**article, "journal_title": "J Synth", "pub_year": year, "has_abstract": bool(abstract),
                     "source_file": "synthetic.xml", "file_seq": 0, "position": len(rows),
                     "doi": f"10.0/{pmid}", "pmc_id": None, "publication_types": ["Journal Article"],
                     "mesh_headings": None,
                     "re_skipped": None if abstract else "title only (no abstract)",
                     "re_output": tok.encode(answer, add_special_tokens=False) if answer else None,
                     "ner_probs": _probs(stage, article), "errors": []})
    sink = ResultSink(str(out), OUTPUT_TABLES, "synthetic-run")
    sink.on_write_start()
    step = -(-len(rows) // blocks)
    for i in range(0, len(rows), step):
        part = rows[i:i + step]
        table = pa.Table.from_pylist([{k: v for k, v in r.items() if k not in ("re_output", "ner_probs",
                                                                               "errors")} for r in part])
        table = table.append_column("re_output", pa.array([r["re_output"] for r in part],
                                                           pa.list_(pa.int32())))
        table = table.append_column("ner_probs", pa.array(
            [r["ner_probs"] for r in part], pa.list_(pa.list_(pa.list_(pa.float32())))))
        table = table.append_column("errors", pa.array([[] for _ in part], pa.list_(ERROR_STRUCT)))
        sink.write([stage(table)], None)
    return out
