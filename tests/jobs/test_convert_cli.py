"""`biomine convert-fairseq`: end to end through the CLI entry point."""
from __future__ import annotations

import json

import torch

from jobs.cli import main
from model.loader import load_model
from tests.model.test_convert_fairseq import FIELDS, N_DICT, fairseq_state, write_data_dir


def test_convert_fairseq_command(tmp_path, capsys):
    state = fairseq_state(FIELDS, 4 + N_DICT + 9)
    torch.save({"cfg": {"model": FIELDS, "task": {"learned_prompt": 9}}, "model": state},
               tmp_path / "checkpoint_avg.pt")
    data, out = write_data_dir(tmp_path), tmp_path / "re-model"
    argv = ["convert-fairseq", str(tmp_path / "checkpoint_avg.pt"), "--data-dir", str(data), "-o", str(out)]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["vocab_size"] == 25 and summary["layers"] == 2 and summary["heads"] == 4
    assert summary["prompt_tokens"] == [f"learned{i}" for i in range(1, 10)]
    assert len(summary["weights_sha256"]) == 64
    model = load_model(out, device="cpu")
    assert torch.equal(model.biogpt.embed_tokens.weight, state["decoder.embed_tokens.weight"])

    assert main(argv) == 2  # refuses to overwrite silently
    assert "already holds a converted model" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0


def test_convert_fairseq_missing_checkpoint(tmp_path, capsys):
    data = write_data_dir(tmp_path)
    rc = main(["convert-fairseq", str(tmp_path / "nope.pt"), "--data-dir", str(data), "-o", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("biomine convert-fairseq: error:") and "nope.pt: no such checkpoint" in err
