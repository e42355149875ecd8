"""Entity dictionary lookups and evidence spans in the original title/abstract."""
from __future__ import annotations

import pytest

from pipeline.tasks.linking import EntityDictionary, find_spans


def test_biogpt_entities_file(data_dir):
    d = EntityDictionary.from_json(data_dir / "gold" / "biogpt_BC5CDR_valid.entities.json")
    assert d.lookup("Chemical", "lithium carbonate") == "D016651"
    assert d.lookup("chemical", " Lithium Carbonate ") == "D016651"
    assert d.lookup("Disease", "lithium carbonate") is None
    assert d.lookup("Target", "anything") is None
    assert d.lookup("Chemical", "no such chemical") is None


def test_bad_dictionaries_name_the_problem(tmp_path):
    path = tmp_path / "e.json"
    path.write_text('{"chemicals": {}}')
    with pytest.raises(ValueError, match="e.json.*chemical2id"):
        EntityDictionary.from_json(path)
    path.write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        EntityDictionary.from_json(path)
    with pytest.raises(FileNotFoundError):
        EntityDictionary.from_json(tmp_path / "missing.json")


def test_spans_case_insensitive_whole_words_in_both_sections():
    title = "Lithium and Lithium-induced goitre"
    abstract = "Serum LITHIUM rose; dilithium is not lithium. NMDA receptor (NR2B) blockade."
    spans = find_spans("lithium", title, abstract)
    assert spans == [{"section": "title", "start": 0, "end": 7},
                     {"section": "title", "start": 12, "end": 19},
                     {"section": "abstract", "start": 6, "end": 13},
                     {"section": "abstract", "start": 37, "end": 44}]
    for s in spans:
        text = title if s["section"] == "title" else abstract
        assert text[s["start"]:s["end"]].lower() == "lithium"
    # a detokenized name with spaces around brackets still finds its evidence
    (span,) = find_spans("nmda receptor ( nr2b )", None, abstract)
    assert abstract[span["start"]:span["end"]] == "NMDA receptor (NR2B)"
    assert find_spans("goitre", title, None) == [{"section": "title", "start": 28, "end": 34}]
    assert find_spans("   ", title, abstract) == [] and find_spans("absent", title, abstract) == []
