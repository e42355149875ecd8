"""Fixtures: one small sample run per session (Ray, demo model), and a synthetic output with relations."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DATA = Path(__file__).parents[2] / "data"


@pytest.fixture(scope="session")
def sample_run(ray_cluster, tmp_path_factory) -> Path:
    """`biomine run --sample --demo-model --tasks re-bc5cdr,ner` output (run once per session)."""
    from jobs.run import sample_inputs
    from pipeline.dataflow.build import run
    from pipeline.config import RunConfig

    out = tmp_path_factory.mktemp("sample") / "out"
    run(RunConfig(inputs=sample_inputs(), output=str(out), tasks=["re-bc5cdr", "ner"], demo_model=True,
                  max_new_tokens=6, batch_size=16, cpu_batch_size=16, progress=False))
    return out


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory) -> Path:
    """A small output folder with relations (see synthetic.py)."""
    from tests.pipeline.curation.synthetic import make_output

    return make_output(tmp_path_factory.mktemp("synthetic") / "out")


def kit_jar() -> Path | None:
    """The official BC5CDR scorer jar checked into tests/data (None if java is missing)."""
    if shutil.which("java") is None:
        return None
    for jar in (DATA / "bc5cdr_eval" / "bc5cdr_eval.jar",):
        if jar.is_file():
            return jar
    return None


def run_kit(mode: str, types: str, fmt: str, gold: Path, pred: Path) -> dict[str, float]:
    """Run the official kit; its TP/FP/FN/Precision/Recall/F-score lines as a dict."""
    jar = kit_jar()
    if jar is None:
        pytest.skip("java (or the BC5CDR kit jar) is missing")
    done = subprocess.run(["java", "-cp", str(jar), "ncbi.bc5cdr_eval.Evaluate", mode, types, fmt,
                           str(gold), str(pred)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(":")
        if key in ("TP", "FP", "FN", "Precision", "Recall", "F-score"):
            scores[key] = float(value)
    assert scores, f"kit printed no scores: {done.stdout[-1000:]} {done.stderr[-1000:]}"
    return scores
