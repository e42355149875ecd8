"""fairseq -> HF-layout conversion: a tiny fairseq checkpoint built here, plus an omegaconf-pickled one."""
from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from model.biogpt import BioGptForCausalLM, DenseAttention, positions_from_mask
from model.config import BioGptConfig
from model.convert_fairseq import (convert_fairseq_checkpoint, hf_vocab, load_fairseq_checkpoint,
                                   read_fairseq_dict)
from model.loader import load_model

FIXTURE = Path(__file__).parents[1] / "data" / "fairseq" / "omegaconf_checkpoint.pt"
# A synthetic vocabulary whose merges build every whole word below (ids 4.. in this order).
DICT_TXT = ("the 1000\nof 900\nand 800\ncell 700\ncells 600\n. 500\ncel@@ 400\nl 300\ns 200\n"
            "t@@ 100\nh@@ 90\ne 80\n")
BPECODES = ("t h 100\nth e</w> 90\nc e 80\nce l 70\ncel l</w> 60\ncel l 50\ncell s</w> 40\n"
            "o f</w> 30\na n 20\nan d</w> 10\n")
N_DICT = 12
FIELDS = {"decoder_embed_dim": 16, "decoder_layers": 2, "decoder_attention_heads": 4,
          "decoder_ffn_embed_dim": 32, "max_target_positions": 24, "activation_fn": "gelu",
          "share_decoder_input_output_embed": True, "decoder_normalize_before": True,
          "decoder_learned_pos": True, "no_scale_embedding": False, "dropout": 0.1,
          "attention_dropout": 0.1}


def fairseq_state(fields: dict, vocab_rows: int) -> dict[str, torch.Tensor]:
    """Deterministic (RNG-free) fairseq-named weights for a tiny decoder."""
    config = BioGptConfig(vocab_size=vocab_rows, hidden_size=fields["decoder_embed_dim"],
                          num_hidden_layers=fields["decoder_layers"],
                          num_attention_heads=fields["decoder_attention_heads"],
                          intermediate_size=fields["decoder_ffn_embed_dim"],
                          max_position_embeddings=fields["max_target_positions"])
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in BioGptForCausalLM(config).state_dict().items()}
    state: dict[str, torch.Tensor] = {}
    for i, (key, shape) in enumerate(sorted(shapes.items())):
        if key == "output_projection.weight":
            continue
        n = math.prod(shape)
        value = torch.sin(torch.arange(n, dtype=torch.float64) * (0.37 + 0.11 * i) + i).reshape(shape)
        state["decoder." + key.removeprefix("biogpt.")] = (value * 0.5).float()
    state["decoder.output_projection.weight"] = state["decoder.embed_tokens.weight"]
    state["decoder.version"] = torch.tensor([3.0])
    return state


def write_data_dir(tmp_path: Path, dict_txt: str = DICT_TXT) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "dict.txt").write_text(dict_txt)
    (data / "bpecodes").write_text(BPECODES)
    return data


def direct_model(state: dict[str, torch.Tensor], fields: dict) -> BioGptForCausalLM:
    """Our model with the same weights, filled by hand (not through the converter)."""
    rows = state["decoder.embed_tokens.weight"].shape[0]
    config = BioGptConfig(vocab_size=rows, hidden_size=fields["decoder_embed_dim"],
                          num_hidden_layers=fields["decoder_layers"],
                          num_attention_heads=fields["decoder_attention_heads"],
                          intermediate_size=fields["decoder_ffn_embed_dim"],
                          max_position_embeddings=fields["max_target_positions"])
    model = BioGptForCausalLM(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(state["decoder." + name.removeprefix("biogpt.")])
    return model


def logits(model: BioGptForCausalLM, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        hidden = model(ids, positions_from_mask(mask), DenseAttention(mask))
        return model.compute_logits(hidden)


@pytest.fixture
def ids_mask() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[1, 1, 2, 4, 8, 5, 15], [2, 7, 9, 6, 12, 13, 14]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]])
    return ids, mask


@pytest.mark.parametrize("learned", [0, 9])
def test_cfg_checkpoint_converts_with_equal_logits(tmp_path, ids_mask, learned):
    rows = 4 + N_DICT + learned
    state = fairseq_state(FIELDS, rows)
    task = {"learned_prompt": learned} if learned else {}
    torch.save({"cfg": {"model": FIELDS, "task": task}, "model": state, "extra_state": {"epoch": 3}},
               tmp_path / "checkpoint.pt")
    out = convert_fairseq_checkpoint(tmp_path / "checkpoint.pt", write_data_dir(tmp_path), tmp_path / "out")
    ours = load_model(out, device="cpu")
    assert ours.config.vocab_size == rows and ours.config.num_attention_heads == 4
    assert ours.config.max_position_embeddings == 24
    assert ours.output_projection.weight is ours.biogpt.embed_tokens.weight
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert "output_projection.weight" not in f.keys() and "biogpt.version" not in f.keys()
    ids, mask = ids_mask
    ids[1, -1] = rows - 1  # the last prompt token when there are any
    assert torch.equal(logits(ours, ids, mask), logits(direct_model(state, FIELDS), ids, mask))
    vocab = json.loads((out / "vocab.json").read_text())
    assert len(vocab) == 4 + N_DICT and vocab["cel"] == 10 and vocab["cells</w>"] == 8
    merges = [line.split()[:2] for line in (out / "merges.txt").read_text().splitlines()]
    assert merges == [line.split()[:2] for line in BPECODES.splitlines()]  # same pairs, same ranks
    added = out / "added_tokens.json"
    assert (json.loads(added.read_text()) if added.exists() else {}) == \
        {f"learned{i}": 4 + N_DICT + i - 1 for i in range(1, learned + 1)}


def test_legacy_args_namespace_checkpoint(tmp_path, ids_mask):
    state = fairseq_state(FIELDS, 4 + N_DICT)
    args = argparse.Namespace(**FIELDS, arch="transformer_lm_biogpt")
    torch.save({"args": args, "model": state}, tmp_path / "checkpoint.pt")
    out = convert_fairseq_checkpoint(tmp_path / "checkpoint.pt", write_data_dir(tmp_path), tmp_path / "out")
    ids, mask = ids_mask
    assert torch.equal(logits(load_model(out, device="cpu"), ids, mask),
                       logits(direct_model(state, FIELDS), ids, mask))


def test_transformers_loads_converted_folder(tmp_path, ids_mask):
    transformers = pytest.importorskip("transformers")
    state = fairseq_state(FIELDS, 4 + N_DICT + 9)
    torch.save({"cfg": {"model": FIELDS, "task": {"learned_prompt": 9}}, "model": state},
               tmp_path / "checkpoint.pt")
    out = convert_fairseq_checkpoint(tmp_path / "checkpoint.pt", write_data_dir(tmp_path), tmp_path / "out")
    hf = transformers.BioGptForCausalLM.from_pretrained(out).eval()
    ids, mask = ids_mask
    ids[1, -1] = 24  # learned9
    with torch.no_grad():
        theirs = hf(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask)).logits
    real = mask.bool()
    assert (theirs - logits(direct_model(state, FIELDS), ids, mask))[real].abs().max() <= 1e-5
    tok = transformers.BioGptTokenizer.from_pretrained(out)
    assert tok("the cells of the cell.")["input_ids"] == [2, 4, 8, 5, 4, 7, 9]
    assert tok.convert_tokens_to_ids(["learned1", "learned9"]) == [16, 24]
    assert tok("the cell learned1 learned9 and")["input_ids"] == [2, 4, 7, 16, 24, 6]


def test_omegaconf_pickle_is_read_without_omegaconf(tmp_path, caplog):
    """The fixture pickles cfg as a real omegaconf DictConfig plus fairseq/numpy objects."""
    ckpt = load_fairseq_checkpoint(FIXTURE)
    assert ckpt["cfg"]["model"]["decoder_attention_heads"] == 4
    assert ckpt["cfg"]["task"]["learned_prompt"] == 9
    with caplog.at_level(logging.INFO):
        out = convert_fairseq_checkpoint(FIXTURE, write_data_dir(tmp_path), tmp_path / "out")
    assert "restricted unpickler" in caplog.text
    expected = fairseq_state(FIELDS, 4 + N_DICT + 9)
    ours = load_model(out, device="cpu")
    for name, param in ours.state_dict().items():
        key = "decoder." + name.removeprefix("biogpt.")
        assert torch.equal(param, expected[key]), name


def test_restricted_unpickler_runs_no_code(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('code ran')",))

    torch.save({"cfg": {"model": FIELDS}, "model": {"w": torch.ones(1)}, "evil": Boom()},
               tmp_path / "evil.pt")
    ckpt = load_fairseq_checkpoint(tmp_path / "evil.pt")  # exec becomes an inert record
    assert torch.equal(ckpt["model"]["w"], torch.ones(1))


def test_vocab_rules(tmp_path):
    (tmp_path / "dict.txt").write_text("a@@ 5\nb 4\n<s> 3 #fairseq:overwrite\n")
    assert read_fairseq_dict(tmp_path / "dict.txt") == ["a@@", "b", "<s>"]
    assert hf_vocab(["a@@", "b"]) == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "a": 4, "b</w>": 5}
    with pytest.raises(ValueError, match="duplicates"):
        hf_vocab(["x@@", "x@@"])


@pytest.mark.parametrize(("dict_txt", "rows", "task", "message"), [
    (DICT_TXT, 4 + N_DICT - 1, {}, "wrong dict.txt"),
    (DICT_TXT, 4 + N_DICT + 3, {"learned_prompt": 9}, "learned_prompt=9"),
    (DICT_TXT + "oops\n", 4 + N_DICT + 1, {}, r"dict.txt:13: expected"),
])
def test_vocab_mismatch_is_refused(tmp_path, dict_txt, rows, task, message):
    torch.save({"cfg": {"model": FIELDS, "task": task}, "model": fairseq_state(FIELDS, rows)},
               tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match=message):
        convert_fairseq_checkpoint(tmp_path / "checkpoint.pt", write_data_dir(tmp_path, dict_txt),
                                   tmp_path / "out")


@pytest.mark.parametrize(("change", "message"), [
    ({"activation_fn": "relu"}, "activation_fn='relu'"),
    ({"decoder_layers": 3}, "decoder_layers=3 but the weights say 2"),
    ({"decoder_attention_heads": None}, "lacks 'decoder_attention_heads'"),
])
def test_bad_model_fields_are_refused(tmp_path, change, message):
    fields = {**FIELDS, **change}
    torch.save({"cfg": {"model": fields}, "model": fairseq_state(FIELDS, 4 + N_DICT)},
               tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match=message):
        convert_fairseq_checkpoint(tmp_path / "checkpoint.pt", write_data_dir(tmp_path), tmp_path / "out")


def test_untied_head_and_extra_keys_are_refused(tmp_path):
    state = fairseq_state(FIELDS, 4 + N_DICT)
    state["decoder.output_projection.weight"] = state["decoder.embed_tokens.weight"] + 1
    torch.save({"cfg": {"model": FIELDS}, "model": state}, tmp_path / "untied.pt")
    data = write_data_dir(tmp_path)
    with pytest.raises(ValueError, match="not tied"):
        convert_fairseq_checkpoint(tmp_path / "untied.pt", data, tmp_path / "out")
    state = fairseq_state(FIELDS, 4 + N_DICT)
    state["decoder.layernorm_embedding.weight"] = torch.ones(16)
    torch.save({"cfg": {"model": FIELDS}, "model": state}, tmp_path / "extra.pt")
    with pytest.raises(ValueError, match=r"unexpected keys \(1\): biogpt.layernorm_embedding.weight"):
        convert_fairseq_checkpoint(tmp_path / "extra.pt", data, tmp_path / "out")


def test_missing_inputs_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no bpecodes"):
        convert_fairseq_checkpoint(tmp_path / "c.pt", tmp_path, tmp_path / "out")
    data = write_data_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        convert_fairseq_checkpoint(tmp_path / "c.pt", data, tmp_path / "out")
    torch.save({"weights": {}}, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="not a fairseq checkpoint"):
        convert_fairseq_checkpoint(tmp_path / "c.pt", data, tmp_path / "out")
