"""GPT-2 byte-level and OpenAI GPT BPE tokenizers against transformers' (fast) tokenizers.

No GPT-2/OpenAI GPT vocabulary ships offline, so each test session trains a small BPE of the
family's kind (the `tokenizers` library that transformers uses) on half of the held-out texts,
writes vocab.json + merges.txt, and compares ids, offsets and decoding on the other texts and
the hard cases.
"""
from __future__ import annotations

import json

import pytest

from model.gpt2_tokenizer import GPT2Tokenizer
from model.openai_tokenizer import OpenAIGPTTokenizer
from tests.model.test_tokenizer import HARD, all_texts

tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

EXTRA = ["héllo wörld ☃ 日本語 x  \n\n y", "  lead", "tab\tx", "İstanbul ǅ ﬁ Σ ΣΑΣ x\x00y a\u200bb",
         "IL-6 <|endoftext|> TNF-α <unk> ok"]
LEARNED = [f"learned{i}" for i in range(1, 10)]


def train(kind: str, folder):
    """Train a 3000-piece BPE of `kind` on every other held-out text; write vocab.json, merges.txt, tokenizer.json."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    if kind == "gpt2":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=["<|endoftext|>"], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        tok = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=["<unk>"], end_of_word_suffix="</w>",
                                      show_progress=False)
    tok.train_from_iterator(all_texts()[::2], trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(model["vocab"]), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(m + "\n" for m in merges), encoding="utf-8")
    tok.save(str(folder / "tokenizer.json"))
    return folder


@pytest.fixture(scope="module", params=["gpt2", "openai_gpt"])
def pair(request, tmp_path_factory):
    """(kind, transformers tokenizer, ours, folder) from the same files."""
    folder = train(request.param, tmp_path_factory.mktemp(request.param) / "files")
    hf_cls, ours_cls = ((transformers.GPT2Tokenizer, GPT2Tokenizer) if request.param == "gpt2"
                        else (transformers.OpenAIGPTTokenizer, OpenAIGPTTokenizer))
    return request.param, hf_cls.from_pretrained(str(folder)), ours_cls.from_folder(folder), folder


def held_out() -> list[str]:
    return all_texts()[1::10] + list(HARD) + EXTRA


def test_ids_and_offsets_match(pair):
    _, hf, ours, _ = pair
    for text in held_out():
        enc = hf(text, return_offsets_mapping=True)
        ids, offsets = ours.encode_with_offsets(text)
        assert ids == enc["input_ids"], text
        assert offsets == [tuple(o) for o in enc["offset_mapping"]], text
        assert ours.encode(text) == ids


def test_decode_matches(pair):
    _, hf, ours, _ = pair
    for text in held_out()[::5]:
        ids = ours.encode(text)
        for skip in (True, False):
            assert ours.decode(ids, skip_special_tokens=skip) == hf.decode(ids, skip_special_tokens=skip)


def test_tokenizer_json_and_round_trip(pair, tmp_path):
    kind, hf, ours, folder = pair
    only_json = tmp_path / "json"
    only_json.mkdir()
    (only_json / "tokenizer.json").write_text((folder / "tokenizer.json").read_text("utf-8"), "utf-8")
    from_json = type(ours).from_folder(only_json)
    ours.save_pretrained(tmp_path / "saved")
    reloaded_hf = type(hf).from_pretrained(str(tmp_path / "saved"))
    for text in held_out()[::7]:
        ids = ours.encode(text)
        assert from_json.encode(text) == ids
        assert reloaded_hf(text)["input_ids"] == ids


def test_added_tokens_and_batches(pair, tmp_path):
    _, hf, ours, _ = pair
    ours = type(ours).from_folder(pair[3])
    hf = type(hf).from_pretrained(str(pair[3]))
    ids = ours.add_tokens(LEARNED)
    hf.add_tokens(LEARNED)
    assert ids == hf.convert_tokens_to_ids(LEARNED) == list(range(len(hf) - 9, len(hf)))
    text = "aspirin causes learned1 learned2 ulcers learned9."
    assert ours.encode(text) == hf(text)["input_ids"]
    ours.save_pretrained(tmp_path)
    assert type(ours).from_folder(tmp_path).encode(text) == ours.encode(text)
    batch = ours.encode_batch([text, "x"], with_offsets=True)
    assert batch["input_ids"].to_pylist()[0] == ours.encode(text)
    assert batch["num_tokens"].to_pylist() == [len(ours.encode(text)), len(ours.encode("x"))]
    assert len(batch["offsets"].to_pylist()[0]) == 2 * len(ours.encode(text))
