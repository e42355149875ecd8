"""Loading and saving the new families: base-model and .bin checkpoints with old mask buffers, untied heads,
folders we write loaded back by transformers, and the registry's choices and refusals."""
from __future__ import annotations

import json

import pytest
import torch

from model.families import family_of_dict, get_family
from model.loader import load_model, save_pretrained
from tests.model.family_pairs import HEADS, hf_model, prompts

transformers = pytest.importorskip("transformers")


def test_base_model_bin_with_old_mask_buffers_loads(tmp_path):
    """A GPT2Model (no `transformer.` prefix, no lm_head) in pytorch_model.bin with stored attn.bias buffers."""
    lm = hf_model("gpt2", "GPT2LMHeadModel", seed=2)
    state = {k.removeprefix("transformer."): v for k, v in lm.state_dict().items() if k != "lm_head.weight"}
    state["h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 64, 64))
    state["h.0.attn.masked_bias"] = torch.tensor(-1e4)
    torch.save(state, tmp_path / "pytorch_model.bin")
    config = lm.config.to_dict() | {"architectures": ["GPT2Model"]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    ours = load_model(tmp_path, device="cpu")
    assert type(ours).__name__ == "GPT2LMHeadModel"
    ids = torch.tensor(prompts([7]))
    with torch.no_grad():
        assert (ours.forward_padded(ids) - lm(input_ids=ids).logits).abs().max() <= 1e-4


@pytest.mark.parametrize("family", ["gpt2", "gpt_neo", "openai_gpt"])
def test_our_folders_load_in_transformers(tmp_path, family):
    """save_pretrained writes config.json + safetensors that transformers reads to the same logits."""
    hf = hf_model(family, HEADS[family][0], seed=5)
    hf.save_pretrained(tmp_path / "hf")
    ours = load_model(tmp_path / "hf", device="cpu")
    save_pretrained(ours, tmp_path / "ours")
    back = getattr(transformers, HEADS[family][0]).from_pretrained(tmp_path / "ours", attn_implementation="eager")
    ids = torch.tensor(prompts([12]))
    with torch.no_grad():
        assert (back.eval()(input_ids=ids).logits - ours.forward_padded(ids)).abs().max() <= 1e-4


def test_untied_lm_head_is_loaded_not_tied(tmp_path):
    hf = hf_model("gpt2", "GPT2LMHeadModel", seed=6, tie_word_embeddings=False)
    with torch.no_grad():
        hf.lm_head.weight.copy_(torch.randn_like(hf.lm_head.weight))
    hf.save_pretrained(tmp_path)
    ours = load_model(tmp_path, device="cpu")
    assert ours.lm_head.weight.data_ptr() != ours.transformer.wte.weight.data_ptr()
    ids = torch.tensor(prompts([5]))
    with torch.no_grad():
        assert (ours.forward_padded(ids) - hf(input_ids=ids).logits).abs().max() <= 1e-4


def test_registry_choices_and_refusals():
    assert family_of_dict({"architectures": ["GPTNeoForCausalLM"]}).name == "gpt_neo"
    assert family_of_dict({"model_type": "openai-gpt"}).name == "openai_gpt"
    assert family_of_dict({}).name == "biogpt"  # biomine's own configs before families
    with pytest.raises(ValueError, match="not BioGPT or a supported GPT family"):
        family_of_dict({"model_type": "big_bird", "architectures": ["BigBirdForTokenClassification"]})
    with pytest.raises(ValueError, match="attention_types"):
        get_family("gpt_neo").config_cls.from_dict({"num_layers": 3, "attention_types": [[["global", "local"], 1]]})
    with pytest.raises(ValueError, match="window_size"):
        get_family("gpt_neo").config_cls(num_layers=2, attention_types=((("global", "local"), 1),), window_size=0)
