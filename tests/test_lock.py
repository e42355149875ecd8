"""The checked-in lock: it agrees with pyproject's ranges, the README and CI install from it,
and a drifted environment is reported."""
from __future__ import annotations

import re
import tomllib
import warnings
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from jobs.lockfile import LOCK_DIR, drift, drift_warning, normalize, read_lock

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]


def _check_pinned(requirements: list[str], lock: dict[str, str], where: str) -> None:
    for text in requirements:
        req = Requirement(text)
        name = normalize(req.name)
        if name == "torch":  # installed first by the README, left out of the lock on purpose
            continue
        assert name in lock, f"{req.name} ({where}) is not in the lock"
        assert req.specifier.contains(lock[name], prereleases=True), \
            f"lock pins {name}=={lock[name]}, outside pyproject's {req} ({where})"


def test_runtime_lock_pins_every_dependency_inside_its_range() -> None:
    _check_pinned(PYPROJECT["dependencies"], read_lock(LOCK_DIR / "run.txt"), "dependencies")


def test_test_lock_pins_the_extras_inside_their_ranges() -> None:
    lock = read_lock(LOCK_DIR / "test.txt")
    _check_pinned(PYPROJECT["dependencies"], lock, "dependencies")
    for extra in ("test", "cluster", "s3"):
        _check_pinned(PYPROJECT["optional-dependencies"][extra], lock, f"[{extra}]")


def test_runtime_lock_is_the_test_locks_subset_at_the_same_versions() -> None:
    run, test = read_lock(LOCK_DIR / "run.txt"), read_lock(LOCK_DIR / "test.txt")
    differ = {n: (v, test.get(n)) for n, v in run.items() if test.get(n) != v}
    assert not differ, differ


def test_lock_leaves_torch_to_the_readme_and_pulls_no_cuda_wheels() -> None:
    for name in ("run.txt", "test.txt"):
        lock = read_lock(LOCK_DIR / name)
        assert "torch" not in lock
        assert not [n for n in lock if n.startswith(("nvidia-", "triton"))], name


def test_readme_and_ci_install_the_lock_after_the_same_torch() -> None:
    torch_pin = read_lock(LOCK_DIR / "torch.txt")["torch"]
    readme = (ROOT / "README.md").read_text("utf-8")
    commands = [line for line in readme.splitlines() if line.startswith("python3 -m venv")]
    assert len(commands) == 2, commands
    sample, tests = commands
    for command in commands:
        assert f"pip install torch=={torch_pin} " in command
        assert "pip install --no-deps -e ." in command
    assert "pip install -r requirements/run.txt" in sample and "biomine run --sample" in sample
    assert "pip install -r requirements/test.txt" in tests and tests.endswith("python -m pytest -q")
    ci = (ROOT / ".ci" / "run").read_text("utf-8").strip().splitlines()[-1]
    assert ci == tests, "`.ci/run` must run exactly the README's test command"


def test_read_lock_names_the_bad_line(tmp_path: Path) -> None:
    lock = tmp_path / "bad.txt"
    lock.write_text("# comment\nnumpy==2.0.0\n    # via x\nlxml>=6\n", "utf-8")
    with pytest.raises(ValueError, match=r"bad.txt:4: .*lxml>=6"):
        read_lock(lock)


def test_drift_reports_wrong_and_missing_versions(tmp_path: Path) -> None:
    from importlib import metadata

    have = metadata.version("pyarrow")
    lock = tmp_path / "lock.txt"
    lock.write_text(f"pyarrow=={have}\nPyYaml==0.0.1\nno-such-package-xyz==1.0\n", "utf-8")
    assert drift(lock) == ["no-such-package-xyz missing (lock 1.0)",
                           f"pyyaml {metadata.version('pyyaml')} (lock 0.0.1)"]


def test_installed_environment_matches_the_lock() -> None:
    # a warning, not a failure: a developer's venv may run ahead of the lock on purpose
    for name in ("test.txt",):
        found = drift(LOCK_DIR / name)
        if found:
            warnings.warn(f"installed packages differ from requirements/{name}: {found}")
    assert drift_warning("no-such-lock.txt") is None
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", read_lock(LOCK_DIR / "torch.txt")["torch"])
