"""The lexicon shipped in the package (`bundled:cdr-do`): runs link with it by default, it is
small, it rebuilds byte for byte from its sources, and 'none' turns linking off."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.cli import main
from pipeline.config import DEFAULT_LEXICON, RunConfig
from pipeline.linking.lexicon import BUNDLED_LEXICONS, Lexicon, lexicon_folder
from pipeline.linking.linker import Linker
from tests.pipeline.linking.conftest import GOLD, LEXICONS

FOLDER = BUNDLED_LEXICONS / "cdr-do"


def test_runs_link_with_it_by_default_and_none_turns_it_off() -> None:
    assert DEFAULT_LEXICON == "bundled:cdr-do" and lexicon_folder(DEFAULT_LEXICON) == FOLDER
    assert RunConfig(inputs=["x"], output="o", tasks=["ner"]).lexicon == DEFAULT_LEXICON
    for off in ("none", "None", ""):
        assert RunConfig(inputs=["x"], output="o", tasks=["ner"], lexicon=off).lexicon is None
    with pytest.raises(FileNotFoundError, match="no such bundled lexicon.*bundled:cdr-do"):
        Lexicon("bundled:nope")


def test_small_and_links_real_names() -> None:
    assert sum(f.stat().st_size for f in FOLDER.iterdir()) < 2 * 2**20
    linker = Linker(Lexicon(DEFAULT_LEXICON))
    assert linker.link("cisplatin", "Chemical").id == "D002945"
    assert linker.link("Nephrotoxicity", "Disease").id == "D007674"
    assert "not" in (FOLDER / "README.md").read_text() and "CC0" in (FOLDER / "README.md").read_text()


def test_rebuilds_byte_for_byte(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["lexicon", "build", "--pubtator", str(GOLD / "CDR_TrainingSet.PubTator.txt"),
                 "--pubtator", str(GOLD / "CDR_DevelopmentSet.PubTator.txt"),
                 "--obo", str(LEXICONS / "disease_ontology_mesh.obo"), "-o", str(tmp_path / "lex")]) == 0
    built = json.loads(capsys.readouterr().out)
    shipped = json.loads((FOLDER / "lexicon.json").read_text())
    assert {k: built[k] for k in ("inputs", "names_by_source", "concepts", "keys")} == {
        k: shipped[k] for k in ("inputs", "names_by_source", "concepts", "keys")}
    for name in ("concepts.arrow", "keys.arrow"):
        assert (tmp_path / "lex" / name).read_bytes() == (FOLDER / name).read_bytes(), name
