"""PubTator reader/writer: CDR gold round trip, our entity/relation rows written and scored."""
from __future__ import annotations

import pytest

from pipeline.evaluate.cdr import score_id, score_mention, score_relation
from pipeline.tasks.pubtator import (entity_rows_to_documents, format_document, parse_pubtator,
                                     read_pubtator, relation_rows_to_documents, write_pubtator)
from pipeline.tasks.rows import ENTITY_SCHEMA, rows_to_table


def test_cdr_training_set_reads_and_round_trips(data_dir, tmp_path):
    docs = read_pubtator(data_dir / "gold" / "CDR_TrainingSet.PubTator.txt")
    assert len(docs) == 500
    for doc in docs:  # every mention's offsets point at its text in title + " " + abstract
        for m in doc.mentions:
            assert doc.text[m.start:m.end] == m.text
    assert sum(len(d.relations) for d in docs) == 1038
    write_pubtator(tmp_path / "copy.PubTator", docs)
    again = read_pubtator(tmp_path / "copy.PubTator")
    assert [(d.pmid, d.title, d.abstract, d.mentions, d.relations) for d in again] == \
        [(d.pmid, d.title, d.abstract, d.mentions, d.relations) for d in docs]


def _entity_rows(docs):
    """Gold mentions as our entity rows (section-relative offsets)."""
    rows = []
    for d in docs:
        for m in d.mentions:
            in_title = m.end <= len(d.title)
            shift = 0 if in_title else len(d.title) + 1
            rows.append({"pmid": int(d.pmid), "version": 1, "section": "title" if in_title else "abstract",
                         "start": m.start - shift, "end": m.end - shift, "text": m.text, "type": m.type,
                         "score": 0.5, "model_id": "m", "run_id": "r"})
    return rows


def test_entity_rows_written_score_like_gold(data_dir, tmp_path):
    gold = read_pubtator(data_dir / "gold" / "evalkit_CDR_sample.gold.PubTator")
    rows = _entity_rows(gold)
    assert rows_to_table(rows, "ner").schema == ENTITY_SCHEMA
    articles = [{"pmid": int(d.pmid), "title": d.title, "abstract": d.abstract} for d in gold]
    docs = entity_rows_to_documents(rows[:-40], articles)  # drop the last 40 mentions
    write_pubtator(tmp_path / "ner.PubTator", docs)
    from_file = read_pubtator(tmp_path / "ner.PubTator")
    types = ["Chemical", "Disease"]
    in_memory = score_mention(gold, docs, types)
    assert score_mention(gold, from_file, types) == in_memory
    assert (in_memory.tp, in_memory.fp, in_memory.fn) == (len(rows) - 40, 0, 40)
    assert score_id(gold, from_file, types).fp == 0  # rows carry no ids: "-1" is never scored


def test_relation_rows_write_cid_lines_and_evidence_mentions():
    article = {"pmid": 5, "title": "Lithium toxicity.", "abstract": "Lithium caused goitre."}
    row = {"pmid": 5, "relation": "CID", "head_id": "D008094", "tail_id": None,
           "head_type": "Chemical", "tail_type": "Disease",
           "head_spans": [{"section": "title", "start": 0, "end": 7},
                          {"section": "abstract", "start": 0, "end": 7}],
           "tail_spans": [{"section": "abstract", "start": 15, "end": 21}]}
    (doc,) = relation_rows_to_documents([row, dict(row)], [article])
    text = format_document(doc)
    assert "5\tCID\tD008094\t-1" in text and text.count("\tCID\t") == 1
    assert "5\t18\t25\tLithium\tChemical\tD008094" in text
    assert "5\t33\t39\tgoitre\tDisease\t-1" in text
    assert score_relation(parse_pubtator(text.splitlines()), [doc]).f1 == 1.0


def test_entity_row_text_must_match_its_offsets():
    article = {"pmid": 1, "title": "Aspirin.", "abstract": "Ulcers."}
    bad = {"pmid": 1, "section": "abstract", "start": 0, "end": 6, "text": "Ulcer", "type": "Disease"}
    with pytest.raises(ValueError, match="PMID 1"):
        entity_rows_to_documents([bad], [article])
    with pytest.raises(ValueError, match="section"):
        entity_rows_to_documents([dict(bad, section="body")], [article])
