"""Self-contained rows: mention ids, relation -> mention links, evidence sentences, title-only records."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.config import RunConfig
from pipeline.dataflow.outputs import OUT_ARTICLE_SCHEMA, OUTPUT_TABLES
from pipeline.dataflow.sink import explode
from pipeline.dataflow.stages import PostprocessStage, TokenizeStage
from pipeline.tasks.evidence import evidence_sentences, link_rows, mention_id, sentence_spans

TITLE = "Clonidine and hypotension."
ABSTRACT = ("Cisplatin was given to rats. Cisplatin-induced nephrotoxicity was severe. "
            "Naloxone reversed the hypotension.")


def test_sentence_spans_cut_at_sentence_ends():
    spans = sentence_spans(ABSTRACT)
    assert [ABSTRACT[s:e] for s, e in spans] == [
        "Cisplatin was given to rats.", "Cisplatin-induced nephrotoxicity was severe.",
        "Naloxone reversed the hypotension."]
    assert sentence_spans("") == []


def test_evidence_prefers_the_sentence_holding_both_names():
    article = {"title": TITLE, "abstract": ABSTRACT}
    head = [{"section": "abstract", "start": 0, "end": 9}, {"section": "abstract", "start": 29, "end": 38}]
    tail = [{"section": "abstract", "start": 47, "end": 61}]
    ev = evidence_sentences(article, head, tail)
    assert ev == [{"section": "abstract", "start": 29, "end": 73,
                   "text": "Cisplatin-induced nephrotoxicity was severe."}]
    # no shared sentence: the first sentence of each side
    tail = [{"section": "title", "start": 14, "end": 25}]
    ev = evidence_sentences(article, head, tail)
    assert [(e["section"], e["text"]) for e in ev] == [("abstract", "Cisplatin was given to rats."),
                                                       ("title", TITLE)]
    assert evidence_sentences(article, [], []) == []


def test_link_rows_points_relations_at_overlapping_entities():
    ents = [{"pmid": 7, "section": "abstract", "start": 29, "end": 38},
            {"pmid": 7, "section": "abstract", "start": 47, "end": 61},
            {"pmid": 7, "section": "title", "start": 0, "end": 9}]
    rels = [{"head_spans": [{"section": "abstract", "start": 29, "end": 38}],
             "tail_spans": [{"section": "abstract", "start": 40, "end": 50}]}]
    link_rows({"title": TITLE, "abstract": ABSTRACT}, rels, ents)
    assert [e["mention_id"] for e in ents] == ["7:abstract:29-38", "7:abstract:47-61", "7:title:0-9"]
    assert rels[0]["head_mentions"] == ["7:abstract:29-38"]
    assert rels[0]["tail_mentions"] == [mention_id(7, "abstract", 47, 61)]
    assert rels[0]["evidence"][0]["text"] == "Cisplatin-induced nephrotoxicity was severe."


def _batch() -> dict:
    return {"pmid": np.array([1, 2, 3]), "version": np.ones(3, dtype=np.int32),
            "title": np.array([TITLE, "Only a title about lithium.", None], dtype=object),
            "abstract": np.array([ABSTRACT, None, None], dtype=object),
            "journal_title": np.array(["J"] * 3, dtype=object), "pub_year": np.full(3, 2020, np.int32),
            "source_file": np.array(["f.xml"] * 3, dtype=object), "file_seq": np.zeros(3, np.int32),
            "position": np.arange(3), "doi": np.array(["10.1/x", None, None], dtype=object)}


def test_title_only_record_is_tagged_and_skipped_for_re_with_a_reason():
    config = RunConfig(inputs=["x"], output="o", tasks=["re-bc5cdr", "ner"], demo_model=True,
                       progress=False)
    out = TokenizeStage(config)(_batch())
    assert out.column("re_prompt").to_pylist()[1] is None
    assert len(out.column("ner_windows").to_pylist()[1]) == 1  # the title window
    assert out.column("re_skipped").to_pylist() == [None, "title only (no abstract)",
                                                    "no title or abstract"]


def test_postprocess_links_relations_and_fills_article_columns():
    config = RunConfig(inputs=["x"], output="o", tasks=["re-bc5cdr", "ner"], demo_model=True,
                       progress=False)
    stage = PostprocessStage(config, "run-z")
    tok = stage.re_task.tokenizer
    ids = tok.encode("the relation between cisplatin and nephrotoxicity exists.", add_special_tokens=False)
    labels = stage.ner_task.task.id2label
    ner_in = stage.ner_task.build_inputs({"title": TITLE, "abstract": ABSTRACT})
    # tag every token "B-Chemical" then "I-Chemical": one entity per section, covering all of it
    b_chem = next(k for k, v in labels.items() if v == "B-Chemical")
    i_chem = next(k for k, v in labels.items() if v == "I-Chemical")
    probs = []
    for window in ner_in.prompts:
        p = np.zeros((len(window), len(labels)), np.float32)
        p[:, i_chem] = 1.0
        p[1, :] = 0.0
        p[1, b_chem] = 1.0
        probs.append(p.tolist())
    b = pa.table({k: v for k, v in _batch().items()}).slice(0, 1)
    b = b.append_column("has_abstract", pa.array([True]))
    b = b.append_column("re_output", pa.array([ids], pa.list_(pa.int32())))
    b = b.append_column("ner_probs", pa.array([probs], pa.list_(pa.list_(pa.list_(pa.float32())))))
    b = b.append_column("errors", pa.array([[]], pa.list_(pa.struct(list(OUTPUT_TABLES[3].schema)))))
    final = stage(b)
    article = explode(final, OUTPUT_TABLES[0]).to_pylist()[0]
    assert explode(final, OUTPUT_TABLES[0]).schema == OUT_ARTICLE_SCHEMA
    assert article["abstract"] == ABSTRACT and article["doi"] == "10.1/x"
    assert article["mesh_headings"] is None and article["re_skipped"] is None
    ents = explode(final, OUTPUT_TABLES[2]).to_pylist()
    rel = explode(final, OUTPUT_TABLES[1]).to_pylist()[0]
    abstract_ids = [e["mention_id"] for e in ents if e["section"] == "abstract"]
    assert abstract_ids and rel["head_mentions"] == abstract_ids == rel["tail_mentions"]
    assert rel["evidence"][0]["text"] == "Cisplatin-induced nephrotoxicity was severe."
