"""`biomine train-tagger` on a tiny random BioGPT: loss goes down, the checkpoint reloads and tags."""
from __future__ import annotations

import json

import pytest

from jobs.cli import main
from model.config import BioGptConfig


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    from model.loader import build_random_model, save_pretrained
    from model.tokenizer import BioGptTokenizer

    config = BioGptConfig(vocab_size=42384, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=64, max_position_embeddings=256)
    folder = tmp_path_factory.mktemp("tiny-base")
    save_pretrained(build_random_model(config, seed=1, device="cpu"), folder,
                    BioGptTokenizer.from_pretrained("microsoft/biogpt"))
    return folder


def _small_pubtator(src, dst, n):
    docs = src.read_text().split("\n\n")[:n]
    dst.write_text("\n\n".join(docs) + "\n\n")


def test_train_tagger_cli_loss_down_reload_and_tag(tiny_base, data_dir, tmp_path, capsys):
    train, dev = tmp_path / "train.PubTator", tmp_path / "dev.PubTator"
    _small_pubtator(data_dir / "gold" / "CDR_TrainingSet.PubTator.txt", train, 8)
    _small_pubtator(data_dir / "gold" / "CDR_DevelopmentSet.PubTator.txt", dev, 3)
    out = tmp_path / "tagger"
    code = main(["train-tagger", "--train", str(train), "--dev", str(dev), "--base", str(tiny_base),
                 "-o", str(out), "--epochs", "4", "--lr", "3e-3", "--batch-size", "4",
                 "--window", "128", "--full-model"])
    assert code == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert records[-1]["loss"] < records[0]["loss"] * 0.8
    assert all({"dev_f1", "dev_precision", "dev_recall", "dev_tp"} <= set(r) for r in records)
    assert (out / "train_log.jsonl").read_text().count("\n") == 4

    import torch

    from model.biogpt import BioGptForTokenClassification
    from model.engine import Engine, EngineConfig
    from model.loader import load_model
    from model.tokenizer import BioGptTokenizer
    from pipeline.tasks.rows import get_task

    for folder in (out, out / "last"):
        model = load_model(folder, dtype="float32", device="cpu")
        assert isinstance(model, BioGptForTokenClassification)
        assert model.config.id2label == {0: "O", 1: "B-Chemical", 2: "I-Chemical",
                                         3: "B-Disease", 4: "I-Disease"}
    tokenizer = BioGptTokenizer.from_pretrained(out)
    task = get_task("ner", tokenizer, id2label=model.config.id2label, window=64, overlap=16)
    article = {"pmid": 354896, "version": 1, "title": "Lidocaine-induced cardiac asystole.",
               "abstract": "Intravenous administration of a single 50-mg bolus of lidocaine. " * 6}
    inp = task.build_inputs(article)
    engine = Engine(model, tokenizer, EngineConfig(enforce_eager=True))
    probs = engine.classify_tokens(inp.prompts)
    with torch.no_grad():  # the engine agrees with the plain padded forward
        ref = torch.softmax(model.forward_padded(torch.tensor([inp.prompts[0]])), -1)[0].numpy()
    assert abs(probs[0] - ref).max() < 1e-4
    rows = task.parse_outputs(article, probs, model_id=str(out), run_id="t").rows
    for row in rows:
        text = article[row["section"]]
        assert text[row["start"]:row["end"]] == row["text"] and 0 < row["score"] <= 1
        assert row["type"] in ("Chemical", "Disease")


def test_bad_training_input_is_a_clear_error(tiny_base, tmp_path, capsys):
    empty = tmp_path / "empty.PubTator"
    empty.write_text("1|t|No mentions here.\n1|a|None at all.\n\n")
    code = main(["train-tagger", "--train", str(empty), "--base", str(tiny_base), "-o",
                 str(tmp_path / "o")])
    assert code == 2 and "no mentions" in capsys.readouterr().err
    code = main(["train-tagger", "--train", str(empty), "--base", str(tiny_base), "-o",
                 str(tmp_path / "o"), "--epochs", "0"])
    assert code == 2 and "epochs" in capsys.readouterr().err


def test_tagger_update_through_shared_stepper_equals_plain_adamw_step():
    """The tagger's optimiser settings on the shared Stepper do what a hand-written AdamW step did."""
    import copy

    import torch

    from model.loader import build_random_model
    from pipeline.tasks.ner import IGNORE
    from pipeline.training.tagger import TaggerConfig
    from pipeline.training.trainer import (Stepper, build_optimizer, pad_batch, scheduled_lr,
                                           token_loss_module)

    config = BioGptConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=32, max_position_embeddings=32,
                          id2label={0: "O", 1: "B-X", 2: "I-X"})
    ours = build_random_model(config, head="BioGptForTokenClassification", seed=3, device="cpu")
    ref = copy.deepcopy(ours)
    rows = [([2, 5, 9, 11, 7], [IGNORE, 0, 1, 2, 0]), ([2, 30, 4], [IGNORE, 1, 0])]
    ids, labels, mask = pad_batch(rows, "cpu", ignore=IGNORE)
    cfg = TaggerConfig(lr=1e-2, full_model=True).optim_config()
    assert [scheduled_lr(k, cfg) for k in (0, 1, 100)] == [1e-2] * 3  # constant, no warm-up
    stepper = Stepper(token_loss_module(ours, IGNORE), build_optimizer(ours.parameters(), cfg),
                      cfg, "cpu")
    plain = torch.optim.AdamW(ref.parameters(), lr=1e-2, weight_decay=0.01)
    for _ in range(3):
        ours.eval(), ref.eval()  # no dropout, so both sides see the same forward
        summed = stepper.update([{"input_ids": ids, "labels": labels, "attention_mask": mask}],
                                n_targets=6)
        logits = ref.forward_padded(ids, mask)  # (B, T, L)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(),
                                                 ignore_index=IGNORE)
        plain.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(ref.parameters()), 1.0)
        plain.step()
        assert summed / 6 == pytest.approx(float(loss.detach()), rel=1e-5)
    for (name, a), b in zip(ours.named_parameters(), ref.parameters()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert stepper.updates_done == 3


@pytest.mark.parametrize("batch_size", [1, 3, 4])
def test_tagger_epoch_plan_caps_windows_per_update(batch_size):
    from pipeline.training.trainer import plan_epoch

    lengths = [5 + (13 * i) % 120 for i in range(22)]
    plan = plan_epoch(lengths, batch_size * max(lengths), 1, 1, seed=0, epoch=2, max_rows=batch_size)
    batches = [b for update in plan for b in update]
    assert all(len(update) == 1 for update in plan)  # one micro-batch per update
    assert all(len(b) <= batch_size for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(22))
    assert len(batches) == -(-22 // batch_size)
    with pytest.raises(ValueError, match="max_rows"):
        plan_epoch(lengths, 100, 1, 1, 0, 1, max_rows=0)
