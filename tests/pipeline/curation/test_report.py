"""The run report: numbers from the tables, written by every run, loaded in headless Chromium."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from pipeline.curation.report import write_report
from pipeline.curation.report_data import collect
from tests.pipeline.curation.browser import chromium, load_page

IMAGES = ("Array.from(document.images).map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0,"
          " src: i.src.slice(0, 22)}))")


def test_report_numbers_match_the_tables(synthetic_run):
    data = collect(synthetic_run)
    relations = pads.dataset(str(synthetic_run / "relations")).to_table().to_pylist()
    entities = pads.dataset(str(synthetic_run / "entities")).to_table().to_pylist()
    assert data.articles == 6 and data.with_abstract == 5
    assert data.re_skipped == {"title only (no abstract)": 1}
    assert data.n_relations == len(relations) and data.n_entities == len(entities)
    assert int(data.scores.sum()) == len(entities)
    assert data.top_pairs.most_common(1)[0] == (("cisplatin", "CID", "nephrotoxicity"), 3)
    assert len(data.examples) == 3 and all(a["entities"] for a in data.examples)
    by_text = Counter((e["type"], e["id"] or "", e["text"].lower() if not e["id"] else "") for e in entities)
    assert sum(data.top_entities.values()) == sum(n for _, n in by_text.most_common(len(data.top_entities)))
    assert {(t, i) for t, i, _ in data.top_entities} == {(t, i) for t, i, _ in by_text}  # few: all kept
    page = Path(write_report(synthetic_run)).read_text()
    assert "<h2>Top entities</h2>" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page  # self-contained
    assert len(re.findall(r'<img class="plot" alt="[^"]+" src="data:image/png;base64,', page)) == 6
    assert page.count("<mark") >= sum(len(a["entities"]) for a in data.examples)


@pytest.mark.ray
def test_every_run_writes_a_report_that_loads_in_chromium(sample_run):
    path = sample_run / "report.html"
    assert path.is_file()  # written by the run itself
    exe = chromium()
    if exe is None:
        pytest.skip("chromium is not installed")
    images, errors = load_page(path, exe, IMAGES)
    assert errors == []
    assert len(images) == 6 and all(i["ok"] and i["src"] == "data:image/png;base64," for i in images)
    assert {i["alt"] for i in images} >= {"Entities by type", "Entity scores", "Throughput (cumulative articles)"}
