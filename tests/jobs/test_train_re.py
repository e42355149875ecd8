"""`biomine train-re` on a tiny random BioGPT with Ray Train on the local cluster.

Loss goes down, epochs are checkpointed by Ray Train and averaged into a folder that loads,
generates through the engine and parses with the RE postprocess; a second call with more epochs
resumes after the last checkpoint instead of starting over.
"""
from __future__ import annotations

import json

import pytest

from jobs.cli import main
from model.config import BioGptConfig


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    from model.loader import build_random_model, save_pretrained
    from model.tokenizer import BioGptTokenizer

    config = BioGptConfig(vocab_size=42384, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=1024)
    folder = tmp_path_factory.mktemp("tiny-base")
    save_pretrained(build_random_model(config, seed=1, device="cpu"), folder,
                    BioGptTokenizer.from_pretrained("microsoft/biogpt"))
    return folder


def _args(base, out, data_dir, epochs):
    gold = data_dir / "gold"
    return ["train-re", "--task", "bc5cdr", "--train", str(gold / "biogpt_BC5CDR_train.json"),
            "--dev", str(gold / "CDR_DevelopmentSet.PubTator.txt"), "--base", str(base), "-o", str(out),
            "--max-docs", "6", "--epochs", str(epochs), "--lr", "1e-2", "--warmup", "2",
            "--tokens-per-update", "200", "--micro-batch-tokens", "300", "--keep-last", "2",
            "--dev-max-new-tokens", "12", "--num-workers", "1"]


def test_train_re_loss_down_average_reload_generate_and_resume(ray_cluster, tiny_base, data_dir,
                                                               tmp_path, capsys):
    out = tmp_path / "re-model"
    assert main(_args(tiny_base, out, data_dir, epochs=2)) == 0
    first = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["epoch"] for r in first] == [1, 2] and all(r["resumed_from"] == 0 for r in first)
    assert first[0]["updates"] >= 5 and first[1]["updates_total"] == 2 * first[0]["updates"]
    assert all({"dev_f1", "dev_precision", "dev_recall", "dev_fn", "dev_malformed"} <= set(r) for r in first)
    assert first[0]["dev_fn"] > 0  # the gold CID pairs of the dev documents are counted

    # the same output again with more epochs: resumes after epoch 2
    assert main(_args(tiny_base, out, data_dir, epochs=3)) == 0
    second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["epoch"] for r in second] == [3] and second[0]["resumed_from"] == 2
    assert second[0]["updates_total"] == first[1]["updates_total"] + second[0]["updates"]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3]
    assert log[2]["loss"] < log[1]["loss"] < log[0]["loss"] - 0.2  # whole-sequence LM loss, nats/token

    # the last 2 epochs were kept by Ray Train and averaged into OUT
    import torch

    from model.biogpt import BioGptForCausalLM
    from model.engine import Engine, EngineConfig
    from model.loader import load_model
    from model.sampling import SamplingParams
    from model.tokenizer import BioGptTokenizer
    from pipeline.tasks.rows import get_task

    run = out / "checkpoints" / "train-re"
    assert sorted(p.name for p in run.glob("epoch_*")) == ["epoch_0002", "epoch_0003"]
    assert json.loads((out / "train_re.json").read_text())["averaged"] == ["epoch_0002", "epoch_0003"]
    model = load_model(out, dtype="float32", device="cpu")
    assert isinstance(model, BioGptForCausalLM) and model.config.vocab_size == 42393
    e2, e3 = (load_model(run / name, dtype="float32", device="cpu") for name in ("epoch_0002", "epoch_0003"))
    key = "biogpt.layers.0.fc1.weight"
    expected = (e2.state_dict()[key] + e3.state_dict()[key]) / 2
    assert torch.allclose(model.state_dict()[key], expected, atol=1e-7)
    assert not torch.equal(e2.state_dict()[key], e3.state_dict()[key])

    tokenizer = BioGptTokenizer.from_pretrained(out)  # learned1..9 saved with the model
    task = get_task("re-bc5cdr", tokenizer)
    article = {"pmid": 6504332, "version": 1, "title": "Phenobarbital-induced dyskinesia in a child.",
               "abstract": "A child developed a dyskinesia soon after starting phenobarbital therapy."}
    inp = task.build_inputs(article)
    assert inp.prompt_ids[-9:] == list(range(42384, 42393))
    gen = Engine(model, tokenizer, EngineConfig(enforce_eager=True)).generate(
        [inp.prompt_ids], SamplingParams(max_new_tokens=24))[0]
    assert gen.token_ids and gen.text
    parsed = task.parse_outputs(article, gen, model_id=str(out), run_id="t")
    assert parsed.clauses + parsed.malformed >= 1  # every clause is either a row or counted malformed
    assert len(parsed.rows) <= parsed.clauses


def test_bad_settings_are_clear_errors(tiny_base, data_dir, tmp_path, capsys):
    args = _args(tiny_base, tmp_path / "o", data_dir, epochs=0)
    assert main(args) == 2 and "epochs" in capsys.readouterr().err
    args = _args(tiny_base, tmp_path / "o", data_dir, epochs=1)
    args[args.index("--train") + 1] = str(tmp_path / "missing.json")
    assert main(args) == 2 and "missing.json" in capsys.readouterr().err
