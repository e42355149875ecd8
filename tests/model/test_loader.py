"""Loader: HF folder layouts, tying, key/shape checks, hub ids via an offline cache, save round trips."""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from model.biogpt import BioGptForCausalLM, BioGptForTokenClassification
from model.config import BioGptConfig
from model.loader import (build_random_model, load_model, resolve_model_dir, save_pretrained, to_dtype,
                          weights_fingerprint)

CONFIG = BioGptConfig(vocab_size=48, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=24)
IDS = torch.tensor([[2, 5, 9, 17, 33, 40]])


@pytest.fixture
def reference() -> BioGptForCausalLM:
    return build_random_model(CONFIG, seed=1, device="cpu")


def write_folder(path, state, config=CONFIG, kind="safetensors"):
    path.mkdir(parents=True, exist_ok=True)
    config.to_json_file(path / "config.json")
    state = {k: v.clone().contiguous() for k, v in state.items()}
    if kind == "safetensors":
        save_file(state, str(path / "model.safetensors"))
    else:
        torch.save(state, path / "pytorch_model.bin")
    return path


def same_logits(a, b) -> bool:
    with torch.no_grad():
        return torch.equal(a.forward_padded(IDS), b.forward_padded(IDS))


def head_less(model) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if k != "output_projection.weight"}


def test_safetensors_folder_without_head_is_tied(tmp_path, reference):
    folder = write_folder(tmp_path / "m", head_less(reference))
    model = load_model(folder, device="cpu")
    assert isinstance(model, BioGptForCausalLM) and not model.training
    assert model.output_projection.weight is model.biogpt.embed_tokens.weight
    assert same_logits(model, reference)


def test_bin_only_folder_with_head_copy(tmp_path, reference):
    """Like microsoft/biogpt: only pytorch_model.bin, holding a separate copy of the head."""
    folder = write_folder(tmp_path / "m", reference.state_dict(), kind="bin")
    model = load_model(folder, device="cpu")
    assert not (folder / "model.safetensors").exists()
    assert model.output_projection.weight is model.biogpt.embed_tokens.weight
    assert same_logits(model, reference)


def test_untied_head_copy_warns_and_embedding_wins(tmp_path, reference, caplog):
    state = dict(reference.state_dict())
    state["output_projection.weight"] = state["biogpt.embed_tokens.weight"] + 1.0
    with caplog.at_level(logging.WARNING):
        model = load_model(write_folder(tmp_path / "m", state, kind="bin"), device="cpu")
    assert "differs from biogpt.embed_tokens.weight" in caplog.text
    assert same_logits(model, reference)


def test_sharded_safetensors_folder(tmp_path, reference):
    transformers = pytest.importorskip("transformers")
    hf = transformers.BioGptForCausalLM(transformers.BioGptConfig(**{
        k: v for k, v in CONFIG.to_dict().items() if k not in ("architectures",)}))
    hf.load_state_dict(reference.state_dict())
    hf.save_pretrained(tmp_path / "m", max_shard_size="20KB")
    assert (tmp_path / "m" / "model.safetensors.index.json").exists()
    assert len(list((tmp_path / "m").glob("model-*.safetensors"))) > 1
    assert same_logits(load_model(tmp_path / "m", device="cpu"), reference)


def test_base_model_names_and_dtype(tmp_path, reference):
    """BioGptModel checkpoints lack the `biogpt.` prefix; dtype strings are honoured."""
    state = {k.removeprefix("biogpt."): v for k, v in head_less(reference).items()}
    model = load_model(write_folder(tmp_path / "m", state), dtype="bf16", device="cpu")
    assert model.biogpt.layers[1].fc2.weight.dtype == torch.bfloat16
    expected = reference.biogpt.layers[1].fc2.weight.to(torch.bfloat16)
    assert torch.equal(model.biogpt.layers[1].fc2.weight, expected)


def test_wrong_shape_missing_and_unexpected_keys_are_listed(tmp_path, reference):
    state = head_less(reference)
    state["biogpt.layers.0.fc1.weight"] = torch.zeros(31, 16)
    del state["biogpt.layer_norm.bias"]
    state["biogpt.rotary.inv_freq"] = torch.zeros(4)
    folder = write_folder(tmp_path / "m", state)
    with pytest.raises(ValueError) as err:
        load_model(folder, device="cpu")
    message = str(err.value)
    assert str(folder / "model.safetensors") in message
    assert "biogpt.layers.0.fc1.weight: checkpoint (31, 16) vs model (32, 16)" in message
    assert "missing keys (1): biogpt.layer_norm.bias" in message
    assert "unexpected keys (1): biogpt.rotary.inv_freq" in message


def test_missing_files_are_clear(tmp_path, reference):
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        load_model(tmp_path, device="cpu")
    save_file(head_less(reference), str(tmp_path / "model.safetensors"))
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_model(tmp_path, device="cpu")
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        resolve_model_dir("./does/not/exist")
    CONFIG.to_json_file(tmp_path / "config.json")
    with pytest.raises(ValueError, match="unknown head"):
        load_model(tmp_path, device="cpu", head="BioGptForQA")


def hub_cache(tmp_path, folder, repo="org/name", commit="a" * 40):
    """A huggingface_hub cache laid out as a real download leaves it."""
    root = tmp_path / "hub" / f"models--{repo.replace('/', '--')}"
    shutil.copytree(folder, root / "snapshots" / commit)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    return tmp_path / "hub"


@pytest.fixture
def offline_hub(monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    def use(cache):
        monkeypatch.setenv("HF_HUB_CACHE", str(cache))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return use


def test_hub_repo_id_from_offline_cache(tmp_path, reference, offline_hub):
    offline_hub(hub_cache(tmp_path, write_folder(tmp_path / "m", head_less(reference))))
    assert resolve_model_dir("org/name").name == "a" * 40
    assert same_logits(load_model("org/name", device="cpu"), reference)


def test_preset_repo_id_without_network_fails_clearly(tmp_path, offline_hub):
    offline_hub(tmp_path / "empty-cache")
    with pytest.raises(FileNotFoundError, match="microsoft/biogpt.*preset gives its config only"):
        load_model("microsoft/biogpt", device="cpu")


def test_save_pretrained_round_trip_and_transformers(tmp_path, reference):
    transformers = pytest.importorskip("transformers")
    save_pretrained(reference, tmp_path / "m")
    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as f:
        assert "output_projection.weight" not in f.keys()
    assert json.loads((tmp_path / "m" / "config.json").read_text())["architectures"] == ["BioGptForCausalLM"]
    assert same_logits(load_model(tmp_path / "m", device="cpu"), reference)
    hf = transformers.BioGptForCausalLM.from_pretrained(tmp_path / "m").eval()
    with torch.no_grad():
        assert (hf(input_ids=IDS).logits - reference.forward_padded(IDS)).abs().max() <= 1e-5
    save_pretrained(reference, tmp_path / "bin", safe_serialization=False)
    assert same_logits(load_model(tmp_path / "bin", device="cpu"), reference)


def test_save_token_classifier_with_tokenizer(tmp_path):
    transformers = pytest.importorskip("transformers")
    labels = {0: "O", 1: "B-Chemical", 2: "I-Chemical"}
    tagger = build_random_model(replace(CONFIG, id2label=labels), head="BioGptForTokenClassification",
                                seed=2, device="cpu")
    (tmp_path / "vocab.json").write_text(json.dumps({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "a</w>": 4}))
    (tmp_path / "merges.txt").write_text("")
    tokenizer = transformers.BioGptTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    save_pretrained(tagger, tmp_path / "m", tokenizer=tokenizer)
    assert (tmp_path / "m" / "vocab.json").exists()
    ours = load_model(tmp_path / "m", device="cpu")
    assert isinstance(ours, BioGptForTokenClassification) and ours.config.id2label == labels
    hf = transformers.BioGptForTokenClassification.from_pretrained(tmp_path / "m").eval()
    assert hf.config.id2label == labels
    with torch.no_grad():
        assert (hf(input_ids=IDS).logits - tagger.forward_padded(IDS)).abs().max() <= 1e-5
    assert transformers.BioGptTokenizer.from_pretrained(tmp_path / "m")("a")["input_ids"] == [2, 4]


def test_weights_fingerprint(tmp_path, reference):
    a = write_folder(tmp_path / "a", head_less(reference))
    b = write_folder(tmp_path / "b", head_less(reference))
    assert weights_fingerprint(a) == weights_fingerprint(b) == weights_fingerprint(a / "model.safetensors")
    other = build_random_model(CONFIG, seed=2, device="cpu")
    assert weights_fingerprint(write_folder(tmp_path / "c", head_less(other))) != weights_fingerprint(a)


def test_build_random_model_is_seeded():
    a, b = (build_random_model(CONFIG, seed=5, device="cpu") for _ in range(2))
    assert same_logits(a, b)
    assert not same_logits(a, build_random_model(CONFIG, seed=6, device="cpu"))
    assert build_random_model(CONFIG, dtype="float16", device="cpu").biogpt.layer_norm.weight.dtype == torch.float16
    with pytest.raises(ValueError, match="unknown dtype"):
        to_dtype("float8")
