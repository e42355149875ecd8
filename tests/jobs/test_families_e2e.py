"""Tiny GPT-2, GPT-Neo and OpenAI GPT bases through train-re / train-tagger, reload, and a mixed-family run.

Each base has its family's tokenizer (a small BPE trained here with the `tokenizers` library, as
no GPT vocabulary ships offline) and random weights. RE trains on GPT-2 and OpenAI GPT (which has
no eos: train-re adds `</s>`), the tagger on GPT-Neo; then `biomine run` mines the sample with the
GPT-2 RE model and the GPT-Neo tagger at once.
"""
from __future__ import annotations

import json

import pytest

from jobs.cli import main

pytest.importorskip("tokenizers")
pytestmark = pytest.mark.ray
LABELS = {0: "O", 1: "B-Chemical", 2: "I-Chemical", 3: "B-Disease", 4: "I-Disease"}


def _train_bpe(kind: str, folder):
    from tests.model.test_family_tokenizers import train

    return train(kind, folder)


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """family -> saved tiny base folder (config, safetensors, tokenizer files)."""
    from model.families.gpt2 import GPT2Config
    from model.families.gpt_neo import GPTNeoConfig
    from model.families.openai_gpt import OpenAIGPTConfig
    from model.gpt2_tokenizer import GPT2Tokenizer
    from model.loader import build_random_model, save_pretrained
    from model.openai_tokenizer import OpenAIGPTTokenizer

    root = tmp_path_factory.mktemp("bases")
    gpt2_tok = GPT2Tokenizer.from_folder(_train_bpe("gpt2", root / "bpe-gpt2"))
    oai_tok = OpenAIGPTTokenizer.from_folder(_train_bpe("openai_gpt", root / "bpe-openai"))
    eos = gpt2_tok.eos_token_id
    configs = {
        "gpt2": (GPT2Config(vocab_size=len(gpt2_tok), n_positions=1024, n_embd=32, n_layer=2, n_head=2,
                            scale_attn_by_inverse_layer_idx=True, bos_token_id=eos, eos_token_id=eos), gpt2_tok),
        "gpt_neo": (GPTNeoConfig(vocab_size=len(gpt2_tok), max_position_embeddings=1024, hidden_size=32,
                                 num_layers=2, num_heads=2, attention_types=((("global", "local"), 1),),
                                 window_size=16, bos_token_id=eos, eos_token_id=eos), gpt2_tok),
        "openai_gpt": (OpenAIGPTConfig(vocab_size=len(oai_tok), n_positions=1024, n_embd=32, n_layer=2,
                                       n_head=2), oai_tok),
    }
    out = {}
    for name, (config, tok) in configs.items():
        save_pretrained(build_random_model(config, seed=1, device="cpu"), root / name, tok)
        out[name] = root / name
    return out


def _re_args(base, out, data_dir):
    gold = data_dir / "gold"
    return ["train-re", "--task", "bc5cdr", "--train", str(gold / "biogpt_BC5CDR_train.json"),
            "--dev", str(gold / "CDR_DevelopmentSet.PubTator.txt"), "--base", str(base), "-o", str(out),
            "--max-docs", "4", "--epochs", "1", "--lr", "1e-2", "--warmup", "2", "--tokens-per-update", "400",
            "--micro-batch-tokens", "600", "--keep-last", "1", "--dev-max-new-tokens", "6",
            "--num-workers", "1"]


def _small_pubtator(src, dst, n):
    dst.write_text("\n\n".join(src.read_text().split("\n\n")[:n]) + "\n\n")


@pytest.fixture(scope="module")
def trained(bases, ray_cluster, tmp_path_factory):
    """RE models (GPT-2, OpenAI GPT) and a tagger (GPT-Neo), trained a few steps by the CLI."""
    from pathlib import Path

    data_dir = Path(__file__).parents[1] / "data"
    root = tmp_path_factory.mktemp("trained")
    for family in ("gpt2", "openai_gpt"):
        assert main(_re_args(bases[family], root / f"re-{family}", data_dir)) == 0
    train, dev = root / "train.PubTator", root / "dev.PubTator"
    _small_pubtator(data_dir / "gold" / "CDR_TrainingSet.PubTator.txt", train, 6)
    _small_pubtator(data_dir / "gold" / "CDR_DevelopmentSet.PubTator.txt", dev, 2)
    assert main(["train-tagger", "--train", str(train), "--dev", str(dev), "--base", str(bases["gpt_neo"]),
                 "-o", str(root / "ner-gpt_neo"), "--epochs", "2", "--lr", "3e-3", "--batch-size", "4",
                 "--window", "128", "--full-model"]) == 0
    return root


def test_trained_models_reload_as_their_family(trained):
    from model.auto import load_tokenizer
    from model.loader import load_model

    re_gpt2 = load_model(trained / "re-gpt2", device="cpu")
    assert type(re_gpt2).__name__ == "GPT2LMHeadModel" and re_gpt2.config.scale_attn_by_inverse_layer_idx
    tok = load_tokenizer(trained / "re-gpt2")
    assert type(tok).__name__ == "GPT2Tokenizer" and tok.convert_tokens_to_ids(["learned9"])[0] < re_gpt2.config.vocab_size
    re_oai = load_model(trained / "re-openai_gpt", device="cpu")
    tok = load_tokenizer(trained / "re-openai_gpt")
    assert type(re_oai).__name__ == "OpenAIGPTLMHeadModel"
    assert re_oai.config.eos_token_id == tok.eos_token_id == tok.convert_tokens_to_ids(["</s>"])[0]
    tagger = load_model(trained / "ner-gpt_neo", device="cpu")
    assert type(tagger).__name__ == "GPTNeoForTokenClassification" and tagger.config.id2label == LABELS
    assert type(load_tokenizer(trained / "ner-gpt_neo")).__name__ == "GPT2Tokenizer"


def test_openai_gpt_has_no_tagger_head(bases, tmp_path, data_dir, capsys):
    train = tmp_path / "train.PubTator"
    _small_pubtator(data_dir / "gold" / "CDR_TrainingSet.PubTator.txt", train, 2)
    code = main(["train-tagger", "--train", str(train), "--base", str(bases["openai_gpt"]), "-o", str(tmp_path / "o"),
                 "--epochs", "1"])
    assert code != 0 and "no token-classification head" in capsys.readouterr().err


def test_mixed_family_run_mines_the_sample(trained, ray_cluster, tmp_path):
    """RE with GPT-2, NER with GPT-Neo, in one run; the manifest names each model's family."""
    from jobs.run import sample_inputs
    from pipeline.dataflow.build import run as run_job
    from pipeline.config import RunConfig
    from pipeline.planning.preflight import check_model

    re_model, ner_model = str(trained / "re-gpt2"), str(trained / "ner-gpt_neo")
    assert check_model(re_model, "re", "--re-model") == [] and check_model(ner_model, "ner", "--ner-model") == []
    out = tmp_path / "out"
    manifest = run_job(RunConfig(inputs=sample_inputs(), output=str(out), tasks=["re-bc5cdr", "ner"],
                                 re_model=re_model, ner_model=ner_model, max_new_tokens=6, batch_size=8,
                                 cpu_batch_size=8, progress=False, limit=12))
    assert manifest["status"] == "finished"
    saved = json.loads((out / "_manifest.json").read_text())
    assert saved["models"]["re"]["family"] == "gpt2" and saved["models"]["re"]["architecture"] == "GPT2LMHeadModel"
    assert saved["models"]["ner"]["family"] == "gpt_neo"
    assert saved["counts"]["written"]["articles"] == 12 and saved["counts"]["written"]["n_generated"] > 0
