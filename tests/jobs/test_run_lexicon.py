"""`biomine run --lexicon` end to end (local Ray, demo model): the corpus-index lexicon from a
dry run, ids in the rows and the manifest, and `biomine aggregate` of an NER-only output."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from jobs.cli import main

pytestmark = pytest.mark.ray


def test_run_with_a_corpus_index_lexicon(ray_cluster, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out, lex = tmp_path / "out", tmp_path / "lex"
    assert main(["run", "--sample", "-o", str(out), "--dry-run", "--demo-model", "--tasks", "ner"]) == 0
    capsys.readouterr()  # the plan
    assert main(["lexicon", "build", "--index", str(out), "-o", str(lex)]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["names_by_source"]["corpus-index"] > 100
    assert main(["run", "--sample", "-o", str(out), "--demo-model", "--tasks", "ner", "--lexicon", str(lex),
                 "--batch-size", "16", "--cpu-batch-size", "16", "--no-progress"]) in (0, 3)
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["config"]["lexicon"] == str(lex)
    assert set(manifest["linking"]) and all("linked_share" in v for v in manifest["linking"].values())
    ents = pads.dataset(str(out / "entities"), format="parquet").to_table(
        columns=["id", "id_source"]).to_pylist()
    assert ents and all((e["id"] is None) == (e["id_source"] is None) for e in ents)
    assert main(["aggregate", str(out)]) == 0  # no relation rows: empty graph tables, not exit 2
    assert pads.dataset(str(out / "graph" / "edges"), format="parquet").count_rows() == 0

