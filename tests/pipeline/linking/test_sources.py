"""Lexicon sources: MeSH XML (NLM element names), OBO, PubTator, entities JSON, PubMed indexing."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from pipeline.linking.lexicon import Lexicon, LexiconBuilder
from pipeline.linking.mesh_xml import read_mesh_xml
from pipeline.linking.sources import (read_entities_json, read_obo, read_pubmed_indexing,
                                      read_pubtator_names)
from tests.pipeline.linking.conftest import DATA, GOLD, LEXICONS


def test_descriptors_typed_by_tree_and_only_the_record_ui_read() -> None:
    entries = list(read_mesh_xml(LEXICONS / "desc_fixture.xml"))
    by_id = {}
    for e in entries:
        by_id.setdefault(e.id, set()).add((e.name, e.type))
    assert by_id["D007674"] == {("Kidney Diseases", "Disease"), ("Renal Diseases", "Disease")}
    assert by_id["D003866"] >= {("Depression, Neurotic", "Disease")}  # F03 counts as Disease
    assert ("Omnipaque", "Chemical") in by_id["D007472"]
    assert "D999999" not in by_id  # nested PharmacologicalAction UI is not a record
    assert "D006801" not in by_id  # Humans (B tree) skipped
    assert all(e.source == "mesh" for e in entries)


def test_supplementary_records_gzipped_class_and_mapped_to(tmp_path: Path) -> None:
    gz = tmp_path / "supp2026.xml.gz"
    with open(LEXICONS / "supp_fixture.xml", "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    entries = {(e.id, e.name): e for e in read_mesh_xml(gz)}
    assert entries[("C400082", "Velcade")].type == "Chemical"
    assert entries[("C400082", "bortezomib")].mapped_to == "D001897|D011720"  # '*' stripped
    assert entries[("C562694", "Epilepsy, Idiopathic Generalized")].type == "Disease"  # class 3
    assert not any(i == "C000001" for i, _ in entries)  # class 2 (protocol) skipped


def test_mesh_xml_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "desc.xml"
    bad.write_text("<DescriptorRecordSet><DescriptorRecord><DescriptorName>")
    with pytest.raises(ValueError, match="desc.xml"):
        list(read_mesh_xml(bad))
    other = tmp_path / "other.xml"
    other.write_text("<PubmedArticleSet/>")
    with pytest.raises(ValueError, match="no DescriptorRecord"):
        list(read_mesh_xml(other))


def test_obo_mesh_xrefs_and_errors(tmp_path: Path) -> None:
    entries = list(read_obo(LEXICONS / "disease_ontology_mesh.obo"))
    assert any(e.name == "3-M syndrome" and e.id == "C535314" for e in entries)
    assert all(e.type == "Disease" and e.source == "obo" for e in entries)
    obo = tmp_path / "x.obo"
    obo.write_text('[Term]\nid: X:1\nname: foo disease\nsynonym: "foo syndrome" EXACT []\n'
                   'synonym: "bar" RELATED []\nxref: MESH:D000001\n\n'
                   '[Term]\nid: X:2\nname: gone\nis_obsolete: true\nxref: MESH:D000002\n'
                   '[Term]\nid: X:3\nname oops\n')
    with pytest.raises(ValueError, match=r"x\.obo:15: expected .tag: value."):
        list(read_obo(obo))
    obo.write_text(obo.read_text().replace("name oops\n", ""))
    assert [(e.name, e.id) for e in read_obo(obo)] == [("foo disease", "D000001"),
                                                       ("foo syndrome", "D000001")]


def test_pubtator_and_entities_json() -> None:
    gold = list(read_pubtator_names(GOLD / "CDR_TrainingSet.PubTator.txt"))
    assert all("|" not in e.id and e.id != "-1" for e in gold)
    assert any(e.name == "lithium carbonate" and e.id == "D016651" and e.type == "Chemical" for e in gold)
    ents = list(read_entities_json(GOLD / "biogpt_BC5CDR_train.entities.json"))
    assert any(e.name == "naloxone" and e.id == "D009270" and e.type == "Chemical" for e in ents)
    assert not any(e.name == "nalozone" for e in ents)  # "-1" left out


def test_pubmed_indexing_and_built_lexicon(tmp_path: Path) -> None:
    entries = list(read_pubmed_indexing(DATA / "pubmed" / "pmparser_sample_pubmed26n1334.xml.gz"))
    assert ("Calcium", "D002118", "Chemical") in {(e.name, e.id, e.type) for e in entries}
    assert all(e.source == "corpus-index" for e in entries)
    builder = LexiconBuilder()
    builder.add_all(entries)
    builder.add_all(read_mesh_xml(LEXICONS / "desc_fixture.xml"))
    meta = builder.write(tmp_path / "lex", inputs=["x"])
    lex = Lexicon(tmp_path / "lex")
    assert meta["concepts"] == len(lex) and meta["names_by_source"]["mesh"] > 0
    hits = lex.candidates(1, "renal diseases")
    assert [lex.concept_id(c) for c, _, _ in hits] == ["D007674"]
    assert lex.candidates(1, "no such name") == []


def test_index_pass_collects_names_for_the_corpus_lexicon(tmp_path: Path) -> None:
    from pipeline.linking.sources import read_index_names
    from pipeline.planning.index_cache import file_stamp, scan_and_store

    out = tmp_path / "out"
    (out / "_index").mkdir(parents=True)
    path = str(DATA / "pubmed" / "pmparser_sample_pubmed26n1335_update.xml.gz")
    table, errors = scan_and_store(path, str(out), file_stamp(path))
    assert table.num_rows and not errors
    from_index = {(e.name, e.id, e.type) for e in read_index_names(out)}
    from_parse = {(e.name, e.id, e.type) for e in read_pubmed_indexing(path)}
    assert from_index == from_parse and len(from_index) > 50
    assert any(t == "Chemical" for _, _, t in from_index)
    with pytest.raises(FileNotFoundError, match="dry-run"):
        list(read_index_names(tmp_path))
