"""`biomine run` failing fast: bad models, bad -o, bad settings -> exit 2, one line, before Ray."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.cli import build_parser, main
from jobs.run import sample_inputs

REPO = Path(__file__).parents[2]
# Runs each argv through the CLI in one process and reports (exit code, stderr, was Ray imported)
PROBE = """
import contextlib, io, json, sys
from jobs.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(argv)
    results.append([rc, err.getvalue(), "ray" in sys.modules])
print(json.dumps(results))
"""


def probe(argvs: list[list[str]], env: dict | None = None) -> list[tuple[int, str, bool]]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argvs)], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return [tuple(r) for r in json.loads(done.stdout.splitlines()[-1])]


def test_bad_models_fail_before_ray_and_leave_the_output_free(tmp_path, tiny_models):
    empty = tmp_path / "empty"
    empty.mkdir()
    garbage = Path(shutil.copytree(tiny_models / "re", tmp_path / "garbage"))
    (garbage / "config.json").write_text("\x00\x01 not json")
    wrong = Path(shutil.copytree(tiny_models / "re", tmp_path / "wrong"))
    (wrong / "config.json").write_text(json.dumps({"num_hidden_layers": "two"}))
    out = tmp_path / "out"
    base = ["run", sample_inputs()[0], "-o", str(out)]
    cases = {str(empty): "config.json: missing", str(garbage): "not valid JSON",
             str(wrong): "num_hidden_layers", str(tmp_path / "missing"): "no such folder",
             "nobody/no-such-model": "not in the local cache"}
    argvs = [base + ["--tasks", "re-bc5cdr", "--re-model", m] for m in cases]
    argvs.append(base + ["--tasks", "ner", "--ner-model", str(tiny_models / "re")])
    results = probe(argvs, env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    for (rc, err, ray_loaded), expect in zip(results, [*cases.values(), "not a token-classification"]):
        assert rc == 2 and expect in err and not ray_loaded, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists()  # nothing written: -o is free for the fixed command
    from pipeline.config import RunConfig
    from pipeline.planning.preflight import check_run

    check_run(RunConfig(inputs=sample_inputs(), output=str(out), re_model=str(tiny_models / "re")),
              sample_inputs())


def test_output_problems_are_one_line(tmp_path):
    afile = tmp_path / "taken"
    afile.write_text("x")
    results = probe([["run", "--sample", "--demo-model", "-o", str(afile)],
                     ["run", "--sample", "--demo-model", "-o", str(afile / "sub")]])
    assert [r[0] for r in results] == [2, 2]
    assert "is a file" in results[0][1] and f"lies under {afile}" in results[1][1]
    assert not any(r[2] for r in results)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_output_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    [(rc, err, _)] = probe([["run", "--sample", "--demo-model", "-o", str(locked / "out")]])
    assert rc == 2 and "not writable" in err


def test_settings_errors_name_the_flag_or_the_config_file(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("batch_size: -1\nbogus: 3\n")
    assert main(["run", "--sample", "-o", str(tmp_path / "o"), "--demo-model", "--cpu-batch-size", "0",
                 "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "--cpu-batch-size: Input should be greater than or equal to 1 (got 0)" in err
    assert f"batch_size in {cfg}" in err and f"bogus in {cfg}: unknown setting" in err
    assert main(["run", "--sample", "--demo-model"]) == 2
    assert "-o/--output is required" in capsys.readouterr().err


def test_cli_consistency(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("biomine ")
    assert parser.parse_args(["run", "--sample", "-o", "x", "-v"]).verbose is True
    assert parser.parse_args(["-v", "run", "--sample", "-o", "x"]).verbose is True
    assert parser.parse_args(["run", "--sample", "-o", "x"]).verbose is False
    for argv in (["parse", "a.xml", "--output", "o"], ["parse", "a.xml", "--out", "o"],
                 ["parse", "a.xml", "-o", "o"]):
        assert str(parser.parse_args(argv).out) == "o"
    assert parser.parse_args(["update", "-o", "s", "-i", "a.xml"]).state == "s"
    assert parser.parse_args(["update", "--state", "s", "-i", "a.xml"]).state == "s"
    help_text = parser._subparsers._group_actions[0].choices["run"].format_help()
    assert "(default: 256)" in help_text and "settings only in a --config file" in help_text
    assert "max_source_tokens (default: 640)" in help_text and "exit codes" in help_text


def test_parse_reads_mismatched_compression_both_ways(tmp_path, data_dir, capsys):
    import gzip

    import pyarrow.parquet as pq

    packed = (data_dir / "pubmed" / "pmparser_sample_pubmed26n1334.xml.gz").read_bytes()
    (tmp_path / "pubmed26n1334.xml").write_bytes(packed)  # gzip named .xml
    (tmp_path / "pubmed26n1335.xml.gz").write_bytes(gzip.decompress(packed))  # plain named .xml.gz
    out = tmp_path / "out"
    assert main(["parse", str(tmp_path / "pubmed26n1334.xml"), str(tmp_path / "pubmed26n1335.xml.gz"),
                 "--output", str(out)]) == 0
    assert pq.read_table(out / "articles").num_rows == 60 and not (out / "errors").exists()
    assert "errors: 0" in capsys.readouterr().out


def test_a_folder_leased_by_another_live_job_is_refused_in_one_line_before_ray(tmp_path):
    from pipeline.storage.lease import LEASE_FILE

    holder = {"job": "run", "run_id": "20261205T101500-ab12cd", "host": "gpu-7", "pid": 4242,
              "started": "2026-12-05T10:15:00+00:00", "heartbeat": "2999-01-01T00:00:00+00:00",
              "ttl_s": 600, "token": "theirs"}
    out, state = tmp_path / "out", tmp_path / "state"
    for folder in (out, state):
        folder.mkdir()
        (folder / LEASE_FILE).write_text(json.dumps(holder))
    results = [*probe([["update", "--state", str(state), "-i", sample_inputs()[-1], "--demo-model",
                        "--tasks", "ner"]]),
               *probe([["run", "--sample", "--demo-model", "--tasks", "ner", "-o", str(out)]])]
    for (rc, err, ray_loaded), name in zip(results, ("update", "run")):
        assert rc == 2 and (name == "run" or not ray_loaded), err  # run imports ray, starts none
        assert len(err.strip().splitlines()) == 1 and err.startswith(f"biomine {name}: error: "), err
        assert ("run 20261205T101500-ab12cd, host gpu-7, pid 4242, started 2026-12-05T10:15:00+00:00, "
                "last heartbeat 2999-01-01T00:00:00+00:00") in err and "--break-lease" in err
    for folder in (out, state):
        assert json.loads((folder / LEASE_FILE).read_text()) == holder  # left as it was
        assert sorted(p.name for p in folder.iterdir()) == [LEASE_FILE]  # nothing else written
