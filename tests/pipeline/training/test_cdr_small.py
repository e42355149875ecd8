"""The bundled tagger's recipe: bit for bit on a fixed seed, a killed run resumes to the same
bits, a wrong --base is a clear error, and a small from-scratch tagger learns (dev F1 floor)."""
from __future__ import annotations

import json

import pytest

from jobs.cli import main
from model.loader import weights_fingerprint
from pipeline.training.cdr_small import config_with, train_cdr_small

LEARN_EPOCHS, LEARN_FLOOR = 4, 0.6  # measured here: F1 0.045, 0.636, 0.774, 0.792 by epoch
TINY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 256}


@pytest.fixture(autouse=True)
def _threads():
    import torch

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def _run(data_dir, out, epochs, size=TINY, **kw):
    train = data_dir / "gold" / "CDR_TrainingSet.PubTator.txt"
    cfg = config_with(epochs=epochs, max_docs=kw.pop("max_docs", 6), window=128, **kw)
    return train_cdr_small(train, None, out, cfg, size=size)


def test_same_seed_same_bits_and_a_resumed_run_matches(data_dir, tmp_path):
    first = _run(data_dir, tmp_path / "a", 2)
    again = _run(data_dir, tmp_path / "b", 2)
    assert [r["loss"] for r in first] == [r["loss"] for r in again]
    assert weights_fingerprint(tmp_path / "a" / "last") == weights_fingerprint(tmp_path / "b" / "last")
    # killed after epoch 1: the same command resumes and ends on the same bits
    assert [r["epoch"] for r in _run(data_dir, tmp_path / "c", 1)] == [1]
    resumed = _run(data_dir, tmp_path / "c", 2)
    assert [r["epoch"] for r in resumed] == [2] and resumed[0]["loss"] == first[1]["loss"]
    assert weights_fingerprint(tmp_path / "c" / "last") == weights_fingerprint(tmp_path / "a" / "last")
    summary = json.loads((tmp_path / "c" / "train_summary.json").read_text())
    assert summary["epochs_done"] == 2 and summary["best_epoch"] == 2
    assert summary["steps"] == sum(r["steps"] for r in first)
    assert summary["data"]["train"]["sha256"] and summary["config"]["seed"] == 0
    # a different seed is another run, not a resume
    with pytest.raises(ValueError, match="other settings"):
        _run(data_dir, tmp_path / "c", 3, seed=1)
    other = _run(data_dir, tmp_path / "d", 1, seed=1)
    assert other[0]["loss"] != first[0]["loss"]


def test_a_wrong_base_is_a_clear_error(data_dir, tmp_path, capsys):
    from model.config import BioGptConfig
    from model.loader import build_random_model, save_pretrained

    tagger = tmp_path / "tagger"
    config = BioGptConfig(**TINY, id2label={0: "O", 1: "B-X", 2: "I-X"})
    save_pretrained(build_random_model(config, "BioGptForTokenClassification", device="cpu"), tagger)
    gold = data_dir / "gold"
    code = main(["train-re", "--task", "bc5cdr", "--train", str(gold / "biogpt_BC5CDR_train.json"),
                 "--base", str(tagger), "-o", str(tmp_path / "re")])
    err = capsys.readouterr().err
    assert code == 2 and "BioGptForTokenClassification" in err and "ForCausalLM" in err
    code = main(["train-tagger", "--train", str(gold / "CDR_TrainingSet.PubTator.txt"),
                 "--base", str(gold), "-o", str(tmp_path / "t")])
    assert code == 2 and "no config.json" in capsys.readouterr().err
    code = main(["train-tagger", "--recipe", "cdr-small", "--train", "x", "--lr", "1",
                 "-o", str(tmp_path / "t")])
    assert code == 2 and "--lr" in capsys.readouterr().err


def test_a_small_tagger_learns_its_training_slice(data_dir, tmp_path):
    """From scratch on 40 training abstracts: mention F1 on them climbs above a floor."""
    train = tmp_path / "slice.PubTator"
    docs = (data_dir / "gold" / "CDR_TrainingSet.PubTator.txt").read_text().split("\n\n")[:40]
    train.write_text("\n\n".join(docs) + "\n\n")
    size = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 128, "max_position_embeddings": 512}
    history = train_cdr_small(train, train, tmp_path / "t", config_with(epochs=LEARN_EPOCHS, lr=3e-3,
                                                                        window=256), size=size)
    f1 = [r["dev_f1"] for r in history]
    print("slice F1 per epoch", [round(x, 3) for x in f1])
    assert f1[-1] >= LEARN_FLOOR and f1[-1] > f1[0] + 0.2, f1
    assert history[-1]["dev_f1_Chemical"] >= LEARN_FLOOR, history[-1]
