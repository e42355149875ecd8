"""Preflight checks on real (tiny) checkpoints broken in the ways users break them."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.config import RunConfig
from pipeline.planning.preflight import (PreflightError, check_entities, check_model, check_output, check_run,
                                safetensors_header)
from tests.tiny_models import save_tiny_models


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return save_tiny_models(tmp_path_factory.mktemp("models"))


def copy(models: Path, kind: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(models / kind, tmp_path / kind))


def test_good_models_pass(models):
    assert check_model(str(models / "re"), "re", "--re-model") == []
    assert check_model(str(models / "ner"), "ner", "--ner-model") == []


def test_wrong_head_for_the_task(models):
    [line] = check_model(str(models / "ner"), "re", "--re-model")
    assert "config.json" in line and "BioGptForCausalLM" in line
    [line] = check_model(str(models / "re"), "ner", "--ner-model")
    assert "not a token-classification model" in line


@pytest.mark.parametrize("breakage, expect", [
    (lambda d: [p.unlink() for p in d.iterdir()], "config.json: missing"),
    (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "config.json").write_text(json.dumps({"hidden_size": "big"})), "hidden_size"),
    (lambda d: (d / "config.json").write_text(json.dumps({"model_type": "bert"})), "not BioGPT"),
    (lambda d: (d / "model.safetensors").unlink(), "no weights"),
    (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:5000]),
     "truncated"),
    (lambda d: (d / "model.safetensors").write_bytes(b"garbage" * 100), "not a safetensors file"),
    (lambda d: (d / "vocab.json").unlink(), "no tokenizer files"),
])
def test_broken_re_model_is_one_line_naming_the_path(models, tmp_path, breakage, expect):
    folder = copy(models, "re", tmp_path)
    breakage(folder)
    problems = check_model(str(folder), "re", "--re-model")
    assert len(problems) == 1 and expect in problems[0] and str(folder) in problems[0], problems


def test_shapes_come_from_the_header(models, tmp_path):
    folder = copy(models, "re", tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3, "vocab_size": 50000}))
    problems = check_model(str(folder), "re", "--re-model")
    assert any("embed_tokens.weight has shape" in p for p in problems)
    assert any("2 layers" in p and "num_hidden_layers=3" in p for p in problems)
    header, problem = safetensors_header(folder / "model.safetensors")
    assert problem is None and header["biogpt.embed_tokens.weight"]["shape"][1] == config["hidden_size"]


def test_tokenizer_ids_must_fit_the_vocabulary(models, tmp_path):
    folder = copy(models, "re", tmp_path)
    config = json.loads((folder / "config.json").read_text())
    vocab = json.loads((folder / "vocab.json").read_text())
    vocab["<extra>"] = config["vocab_size"] + 5
    (folder / "vocab.json").write_text(json.dumps(vocab))
    [line] = check_model(str(folder), "re", "--re-model")
    assert "tokenizer ids reach" in line


def test_missing_path_and_offline_hub_id(tmp_path, monkeypatch):
    [line] = check_model(str(tmp_path / "nope"), "re", "--re-model")
    assert "no such folder" in line and "--re-model" in line
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    [line] = check_model("someone/not-cached", "re", "--re-model")
    assert "not in the local cache" in line and "someone/not-cached" in line


def test_output_problems(tmp_path):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    assert "is a file" in check_output(str(afile))[0]
    assert "lies under" in check_output(str(afile / "out"))[0]
    assert check_output(str(tmp_path / "new" / "deeper")) == []


def test_entities_parsed(tmp_path):
    bad = tmp_path / "bad.entities.json"
    bad.write_text('{"chemical": 3}')
    [line] = check_entities(str(bad))
    assert str(bad) in line and "--entities" in line
    assert "not found" in check_entities(str(tmp_path / "none.json"))[0]


def test_check_run_collects_all_problems_and_writes_nothing(models, tmp_path):
    out = tmp_path / "out"
    config = RunConfig(inputs=["x"], output=str(out), tasks=["re-bc5cdr", "ner"],
                       re_model=str(tmp_path / "missing"), ner_model=str(models / "re"),
                       entities=str(tmp_path / "none.json"))
    with pytest.raises(PreflightError) as err:
        check_run(config, [])
    assert len(err.value.problems) == 3
    assert not out.exists()
