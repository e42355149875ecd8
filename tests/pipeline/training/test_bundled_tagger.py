"""The shipped tagger `bundled:cdr-small`: small enough, loads by name, is what `ner` uses by
default, and its published dev scores (kit and official jar) and first updates reproduce."""
from __future__ import annotations

import json

import pytest

from model.bundled import BUNDLED_DIR, bundled_dir
from pipeline.tasks.pubtator import read_pubtator, write_pubtator
from pipeline.training.cdr_small import mention_scores, predict_documents, weights_probe
from pipeline.training.run_record import cpu_model
from tests.pipeline.evaluate.kit import JAVA, run_jar

FOLDER = BUNDLED_DIR / "cdr-small"
SUMMARY = json.loads((FOLDER / "train_summary.json").read_text())


def test_small_enough_and_says_what_it_is():
    size = sum(f.stat().st_size for f in FOLDER.iterdir())
    assert size <= 20 * 2**20, size
    assert "trained from scratch here" in SUMMARY["what"] and "not BioGPT" in (FOLDER / "README.md").read_text()
    assert SUMMARY["shipped"]["dtype"] == "float16" and SUMMARY["config"]["seed"] == 0


def test_names_resolve_and_ner_defaults_to_it(tmp_path):
    from model.loader import load_model
    from pipeline.config import RunConfig
    from pipeline.planning.preflight import check_model

    assert bundled_dir("bundled:cdr-small") == FOLDER
    with pytest.raises(FileNotFoundError, match="bundled:cdr-small"):
        load_model("bundled:nope")
    assert check_model("bundled:cdr-small", "ner", "--ner-model") == []
    [problem] = check_model("bundled:nope", "ner", "--ner-model")
    assert "no such bundled model" in problem and "bundled:cdr-small" in problem
    ner = RunConfig(inputs=["x"], output="o", tasks=["ner"])
    assert ner.ner_model == ner.ner_model_id == "bundled:cdr-small"
    demo = RunConfig(inputs=["x"], output="o", tasks="re-bc5cdr,ner", demo_model=True)
    assert demo.ner_model_id == "bundled:cdr-small" and demo.re_model_id == "demo"
    plumbing = RunConfig(inputs=["x"], output="o", tasks=["ner"], ner_model="demo")
    assert plumbing.ner_model_id == "demo"


def test_published_dev_score_reproduces_with_the_kit_and_the_jar(data_dir, tmp_path):
    from model.loader import load_model
    from model.tokenizer import BioGptTokenizer

    n = 100
    gold = read_pubtator(data_dir / "gold" / "CDR_DevelopmentSet.PubTator.txt")[:n]
    model = load_model("bundled:cdr-small", dtype="float32", device="cpu")
    pred = predict_documents(model, BioGptTokenizer.from_pretrained("bundled:cdr-small"), gold)
    published = SUMMARY["shipped"][f"dev_first_{n}_mention"]
    assert mention_scores(gold, pred) == published
    if JAVA is None:
        pytest.skip("no Java runtime for the official jar")
    write_pubtator(tmp_path / "gold.txt", gold)
    write_pubtator(tmp_path / "pred.txt", pred)
    for kind in ("Chemical", "Disease"):
        items = run_jar("mention", kind, "PubTator", tmp_path / "gold.txt", tmp_path / "pred.txt")
        counts = {k.lower(): len(v) for k, v in items.items()}
        assert counts == {k: published[kind][k] for k in ("tp", "fp", "fn")}, kind


def test_the_recipe_reproduces_its_first_updates_bit_for_bit(data_dir, tmp_path):
    import torch

    probe = SUMMARY["probe"]
    here = (cpu_model(), torch.__version__)
    if here != (SUMMARY["machine"]["cpu"], SUMMARY["machine"]["torch"]):
        pytest.skip(f"bits are promised on the recording CPU and torch only, this is {here}")
    threads = torch.get_num_threads()
    try:
        again = weights_probe(data_dir / "gold" / "CDR_TrainingSet.PubTator.txt", tmp_path,
                              probe["steps"])
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)
    assert again == probe
