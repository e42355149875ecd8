"""Pipeline stages called directly on dict/Arrow batches, no Ray cluster."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipeline.config import RunConfig
from pipeline.dataflow.outputs import OUTPUT_TABLES
from pipeline.dataflow.sink import explode
from pipeline.dataflow.stages import PostprocessStage, TokenizeStage

ABSTRACT = ("Cisplatin-induced nephrotoxicity was studied in rats. Naloxone reversed the "
            "hypotension caused by clonidine & the effect lasted 2 h.")


def cfg(**kw) -> RunConfig:
    base = dict(inputs=["x"], output="out", tasks=["re-bc5cdr", "ner"], demo_model=True,
                max_new_tokens=5, progress=False)
    return RunConfig(**{**base, **kw})


def batch(n: int = 3) -> dict:
    return {"pmid": np.arange(100, 100 + n), "version": np.ones(n, dtype=np.int32),
            "title": np.array(["Clonidine and hypotension."] * (n - 1) + [None], dtype=object),
            "abstract": np.array([ABSTRACT] * (n - 1) + [None], dtype=object),
            "journal_title": np.array(["J Test"] * n, dtype=object),
            "pub_year": np.full(n, 2026, dtype=np.int32),
            "source_file": np.array(["pubmed26n0001.xml.gz"] * n, dtype=object),
            "file_seq": np.ones(n, dtype=np.int32), "position": np.arange(n)}


def test_stage_reports_missing_columns():
    with pytest.raises(ValueError, match="needs column"):
        TokenizeStage(cfg())({"pmid": np.array([1])})


def test_tokenize_builds_re_prompt_and_ner_windows():
    out = TokenizeStage(cfg())(batch())
    prompts = out.column("re_prompt").to_pylist()
    assert prompts[0][0] == 2 and prompts[0][-9:] == list(range(42384, 42393))
    assert prompts[2] is None  # no abstract: nothing to mine
    assert out.column("has_abstract").to_pylist() == [True, True, False]
    windows = out.column("ner_windows").to_pylist()
    assert len(windows[0]) == 2 and all(w[0] == 2 for w in windows[0])  # title + abstract
    assert out.column("errors").to_pylist()[0] == []


def test_tokenize_records_overlong_prompt_as_error():
    long = dict(batch(2))
    long["abstract"] = np.array([" ".join(["word"] * 2000), ABSTRACT], dtype=object)
    out = TokenizeStage(cfg(tasks=["re-bc5cdr"], max_source_tokens=3000))(long)
    errors = out.column("errors").to_pylist()
    assert "does not fit" in errors[0][0]["message"] and errors[0][0]["pmid"] == 100
    assert errors[0][0]["stage"] == "tokenize"
    assert out.column("re_prompt").to_pylist()[0] is None and errors[1] == []


def test_generate_and_postprocess_make_output_rows(tmp_path):
    from pipeline.dataflow.gpu_stage import GenerateStage

    config = cfg(output=str(tmp_path))
    tokens = TokenizeStage(config)(batch())
    generated = GenerateStage(config)(tokens)
    assert generated.column("n_generated").to_pylist()[:2] == [5, 5]
    assert generated.column("re_output").to_pylist()[2] is None
    probs = generated.column("ner_probs").to_pylist()
    assert len(probs[0]) == 2 and len(probs[0][1]) == len(tokens.column("ner_windows")[0][1])
    assert np.allclose(np.sum(probs[0][1], axis=1), 1.0, atol=1e-4)
    final = PostprocessStage(config, "run-x")(generated)
    for table in OUTPUT_TABLES:  # every output table can be cut from the block
        rows = explode(final, table)
        assert rows.schema == table.schema
    articles = explode(final, OUTPUT_TABLES[0])
    assert articles.column("journal").to_pylist() == ["J Test"] * 3
    ents = explode(final, OUTPUT_TABLES[2]).to_pylist()
    for e in ents:
        text = ABSTRACT if e["section"] == "abstract" else "Clonidine and hypotension."
        assert text[e["start"]:e["end"]] == e["text"] and e["run_id"] == "run-x"


def test_generate_stage_isolates_a_failing_record(monkeypatch, tmp_path):
    from pipeline.dataflow.gpu_stage import GenerateStage

    config = cfg(tasks=["re-bc5cdr"], output=str(tmp_path))
    rows = batch()
    rows["abstract"] = np.array([ABSTRACT, "Lithium caused tremor.", None], dtype=object)
    tokens = TokenizeStage(config)(rows)
    stage = GenerateStage(config)
    real = stage.re_loop.generate
    bad = tokens.column("re_prompt")[1].as_py()

    def flaky(prompts):
        if len(prompts) > 1:
            raise RuntimeError("boom on a chunk")
        if prompts[0] == bad:
            raise RuntimeError("this record breaks the engine")
        return real(prompts)

    monkeypatch.setattr(stage.re_loop, "generate", flaky)
    out = stage(tokens)
    assert out.column("n_generated").to_pylist() == [5, 0, 0]  # record 0 retried alone
    errors = out.column("errors").to_pylist()
    assert errors[0] == [] and errors[2] == []
    assert errors[1][0]["pmid"] == 101 and "breaks the engine" in errors[1][0]["message"]
    assert errors[1][0]["stage"] == "generate"


def test_postprocess_parses_template_text():
    config = cfg(tasks=["re-bc5cdr"])
    stage = PostprocessStage(config, "run-y")
    tok = stage.re_task.tokenizer
    text = "the relation between cisplatin and nephrotoxicity exists."
    ids = tok.encode(text, add_special_tokens=False)
    b = pa.table({**{k: v for k, v in batch(1).items()},
                  "abstract": pa.array([ABSTRACT]), "title": pa.array(["Clonidine and hypotension."]),
                  "re_output": pa.array([ids], pa.list_(pa.int32())),
                  "ner_probs": pa.array([None], pa.list_(pa.list_(pa.list_(pa.float32())))),
                  "errors": pa.array([[]], pa.list_(pa.struct(list(OUTPUT_TABLES[3].schema))))})
    rels = explode(stage(b), OUTPUT_TABLES[1]).to_pylist()
    assert [(r["head_text"], r["tail_text"], r["relation"]) for r in rels] == [
        ("cisplatin", "nephrotoxicity", "CID")]
    assert rels[0]["head_spans"][0]["section"] == "abstract"


def test_generate_stage_halves_the_chunk_on_out_of_memory(monkeypatch, caplog, tmp_path):
    import torch

    from pipeline.dataflow.gpu_stage import GenerateStage

    config = cfg(tasks=["re-bc5cdr"], output=str(tmp_path))
    rows = batch(5)
    rows["abstract"] = np.array([ABSTRACT] * 5, dtype=object)
    tokens = TokenizeStage(config)(rows)
    stage = GenerateStage(config)
    real = stage.re_loop.generate
    sizes: list[int] = []

    def small_memory(prompts):
        sizes.append(len(prompts))
        if len(prompts) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(prompts)

    monkeypatch.setattr(stage.re_loop, "generate", small_memory)
    out = stage(tokens)
    assert out.column("n_generated").to_pylist() == [5] * 5
    assert all(e == [] for e in out.column("errors").to_pylist())
    assert sizes[:2] == [5, 2] and max(sizes[2:]) <= 2
    assert "out of memory" in caplog.text


def test_generate_stage_with_several_batches_in_flight_returns_each_batchs_rows(tmp_path):
    import json
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.dataflow.gpu_stage import GenerateStage, gpu_pool_options, re_model_len

    config = cfg(output=str(tmp_path), max_num_seqs=4, batch_size=3, max_new_tokens=6)
    assert gpu_pool_options(config)["max_concurrent_calls_per_actor"] == 16  # the floor
    words = ["Lithium caused tremor.", "Aspirin reduced fever in mice.", ABSTRACT,
             "Naloxone reversed hypotension.", "Cocaine and seizures."]
    batches = []
    for k in range(4):  # four Ray batches, tokenized apart, of different records
        rows = batch(3)
        rows["pmid"] = np.arange(3) + 100 * (k + 1)
        rows["abstract"] = np.array([words[(k + j) % 5] for j in range(3)], dtype=object)
        batches.append(TokenizeStage(config)(rows))
    stage = GenerateStage(config)
    assert stage.re_engine.cache.num_slots == 4  # max_num_seqs honoured on the CPU
    assert stage.re_engine.max_model_len == re_model_len(config, 1024) == 1 + 640 + 9 + 6
    alone = [stage(b) for b in batches]  # one batch at a time (each drains the engine)
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(stage, batches))  # all four share the engine loop
    for b, one, many in zip(batches, alone, together):
        assert many.column("pmid").to_pylist() == b.column("pmid").to_pylist()
        assert many.column("re_output").to_pylist() == one.column("re_output").to_pylist()
        assert many.column("re_finish").to_pylist() == one.column("re_finish").to_pylist()
        for got, want in zip(many.column("ner_probs").to_pylist(), one.column("ner_probs").to_pylist()):
            assert [len(w) for w in got] == [len(w) for w in want]  # windows shared batches: fp noise only
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, atol=1e-5)
    [report] = (tmp_path / "_engine").glob("*.json")
    counters = json.loads(report.read_text())["generate"]
    assert counters["sequences"] == 24 and counters["slots"] == 4
    assert counters["stage_calls"] == 8 and 1 <= counters["peak_calls_in_flight"] <= 4
    assert counters["generated_tokens"] == sum(
        sum(t.column("n_generated").to_pylist()) for t in alone + together)
