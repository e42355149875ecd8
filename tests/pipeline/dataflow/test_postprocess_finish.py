"""PostprocessStage: a generation cut at max_new_tokens keeps its complete clauses, and the article
row records finish_reason, n_malformed and the dropped clauses' text."""
from __future__ import annotations

import pyarrow as pa

from pipeline.config import RunConfig
from pipeline.dataflow.outputs import OUT_ARTICLE_SCHEMA, OUTPUT_TABLES
from pipeline.dataflow.sink import explode
from pipeline.dataflow.stages import PostprocessStage

ABSTRACT = "Cisplatin-induced nephrotoxicity and hypotension caused by clonidine were studied."


def test_truncated_generation_keeps_complete_clauses_and_records_why():
    config = RunConfig(inputs=["x"], output="out", tasks=["re-bc5cdr"], demo_model=True,
                       max_new_tokens=5, progress=False)
    stage = PostprocessStage(config, "run-f")
    tok = stage.re_task.tokenizer
    texts = ["the relation between cisplatin and nephrotoxicity exists; "
             "the relation between clonidine and hypotension exists; the relation between clon",
             "the relation between clonidine and hypotension exists",  # ended by eos, no "."
             "the relation between cisplatin and nephrotoxicity exists."]
    n = len(texts)
    b = pa.table({
        "pmid": pa.array([1, 2, 3], pa.int64()), "version": pa.array([1] * n, pa.int32()),
        "title": pa.array(["T"] * n), "abstract": pa.array([ABSTRACT] * n),
        "journal_title": pa.array(["J"] * n), "pub_year": pa.array([2026] * n, pa.int32()),
        "has_abstract": pa.array([True] * n), "source_file": pa.array(["f.xml.gz"] * n),
        "file_seq": pa.array([1] * n, pa.int32()), "position": pa.array(range(n), pa.int64()),
        "re_output": pa.array([tok.encode(t, add_special_tokens=False) for t in texts],
                              pa.list_(pa.int32())),
        "re_finish": pa.array(["length", "eos", None]),
        "ner_probs": pa.array([None] * n, pa.list_(pa.list_(pa.list_(pa.float32())))),
        "errors": pa.array([[]] * n, pa.list_(pa.struct(list(OUTPUT_TABLES[3].schema))))})
    out = stage(b)
    rels = explode(out, OUTPUT_TABLES[1]).to_pylist()
    assert [(r["pmid"], r["head_text"], r["tail_text"]) for r in rels] == [
        (1, "cisplatin", "nephrotoxicity"), (1, "clonidine", "hypotension"),
        (2, "clonidine", "hypotension"), (3, "cisplatin", "nephrotoxicity")]
    articles = explode(out, OUTPUT_TABLES[0])
    assert articles.schema == OUT_ARTICLE_SCHEMA
    assert articles.column("finish_reason").to_pylist() == ["length", "eos", None]
    assert articles.column("n_malformed").to_pylist() == [1, 0, 0]
    assert articles.column("malformed").to_pylist() == [["the relation between clon"], [], []]
    assert articles.column("n_relations").to_pylist() == [2, 1, 1]
