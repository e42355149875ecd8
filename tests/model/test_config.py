"""BioGptConfig: HF config.json in and out, validation with clear messages, presets."""
from __future__ import annotations

import json

import pytest

from model.config import BIOGPT_BASE, BIOGPT_LARGE, PRESETS, BioGptConfig

TINY = {"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 32, "max_position_embeddings": 20}


def test_reads_transformers_config_json(tmp_path):
    transformers = pytest.importorskip("transformers")
    transformers.BioGptConfig(**TINY, num_labels=3).save_pretrained(tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    assert "transformers_version" in raw and "layer_norm_eps" in raw  # keys we do not model
    config = BioGptConfig.from_json_file(tmp_path / "config.json")
    assert (config.vocab_size, config.hidden_size, config.head_dim) == (50, 16, 8)
    assert config.num_labels == 3 and config.label2id == {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2}


def test_written_config_loads_in_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    ours = BioGptConfig(**TINY, id2label={0: "O", 1: "B-Disease"}, torch_dtype="bfloat16")
    ours.to_json_file(tmp_path / "config.json")
    theirs = transformers.BioGptConfig.from_pretrained(tmp_path)
    assert theirs.hidden_size == 16 and theirs.num_labels == 2 and theirs.id2label == {0: "O", 1: "B-Disease"}
    assert BioGptConfig.from_json_file(tmp_path / "config.json") == ours


def test_unknown_keys_tolerated_and_aliases():
    config = BioGptConfig.from_dict({**TINY, "some_future_key": [1, 2], "dtype": "float16", "num_labels": 2})
    assert config.torch_dtype == "float16"
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1"}


@pytest.mark.parametrize(("key", "value", "message"), [
    ("hidden_size", "1024", "'hidden_size' must be an int, got str"),
    ("num_hidden_layers", True, "'num_hidden_layers' must be an int, got bool"),
    ("scale_embedding", 1, "'scale_embedding' must be true/false"),
    ("hidden_dropout_prob", "0.1", "must be a number"),
    ("hidden_act", "relu", "hidden_act 'relu' is not supported"),
    ("num_attention_heads", 3, "not divisible by num_attention_heads 3"),
    ("vocab_size", 0, "vocab_size must be a positive int"),
    ("id2label", {"x": "O"}, "non-integer id"),
    ("id2label", {"0": "O", "2": "B"}, "must map 0..n-1"),
    ("architectures", "BioGptForCausalLM", "must be a list of strings"),
    ("num_labels", -1, "non-negative int"),
])
def test_wrong_values_refused(key, value, message):
    with pytest.raises(ValueError, match=message):
        BioGptConfig.from_dict({**TINY, key: value})


def test_bad_file_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=f"{path}: not valid JSON"):
        BioGptConfig.from_json_file(path)
    path.write_text(json.dumps({**TINY, "hidden_size": 1.5}))
    with pytest.raises(ValueError, match=f"{path}: config key 'hidden_size' must be an int"):
        BioGptConfig.from_json_file(path)


def test_presets():
    assert PRESETS["microsoft/biogpt"] is BIOGPT_BASE
    assert (BIOGPT_BASE.vocab_size, BIOGPT_BASE.hidden_size, BIOGPT_BASE.num_hidden_layers,
            BIOGPT_BASE.num_attention_heads, BIOGPT_BASE.intermediate_size,
            BIOGPT_BASE.max_position_embeddings) == (42384, 1024, 24, 16, 4096, 1024)
    assert (BIOGPT_LARGE.vocab_size, BIOGPT_LARGE.hidden_size, BIOGPT_LARGE.num_hidden_layers,
            BIOGPT_LARGE.num_attention_heads, BIOGPT_LARGE.head_dim, BIOGPT_LARGE.intermediate_size,
            BIOGPT_LARGE.max_position_embeddings) == (57717, 1600, 48, 25, 64, 6400, 2048)
    with pytest.raises(AttributeError):
        BIOGPT_BASE.vocab_size = 1  # frozen
