"""Every GPU check in one go: the `gpu` tests, then the engine benchmarks; one JSON file.

Needs only torch, transformers, numpy, pyarrow and safetensors (no Ray); uses pytest when it is
installed, else a small built-in runner for the GPU test files (they use only marks, parametrize,
importorskip, approx and raises). Benchmarks: BioGPT base and Large and GPT-Neo 125M, fp16, batch
256 against transformers `generate` (dynamic cache), prompt 320 + 64 new tokens; each figure
carries the engine counters (syncs_per_step, occupancy, row efficiency) and the CUDA-graph count.
The whole run keeps within --budget-s (default 480 s): a benchmark that no longer fits is recorded
as skipped. Usage: python -m benchmarks.gpu_check --out benchmarks/results/gpu_check-<gpu>.json
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import itertools
import json
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GPU_TESTS = ["tests/model/test_engine_gpu.py", "tests/model/test_gpu_parity.py", "tests/model/test_family_gpu.py"]
BENCHES = [("base", []), ("large", []), ("gpt-neo-125m", [])]
BENCH_ARGS = ["--dtype", "float16", "--batch-sizes", "256", "--num-prompts", "256", "--prompt-len", "320",
              "--new-tokens", "64", "--peers", "hf_dynamic"]


def run_with_pytest(files: list[str]) -> list[dict[str, Any]]:
    """Outcome and seconds of every `gpu` test, through pytest."""
    import pytest

    results: list[dict[str, Any]] = []

    class Collect:
        def pytest_runtest_logreport(self, report: Any) -> None:
            if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
                results.append({"test": report.nodeid, "outcome": report.outcome,
                                "seconds": round(report.duration, 2),
                                "error": str(report.longrepr)[-2000:] if report.failed else None})

    pytest.main(["-q", "-m", "gpu", "-p", "no:cacheprovider", "-s", *files], plugins=[Collect()])
    return results


class _Skip(Exception):
    pass


def _mini_pytest() -> types.ModuleType:
    """The few pytest names the GPU test files use (marks, parametrize, importorskip, approx, raises, skip)."""
    mod = types.ModuleType("pytest")

    class Mark:
        def __getattr__(self, name: str) -> Any:
            if name == "parametrize":
                def parametrize(names: str, values: list, ids: Any = None) -> Any:
                    def deco(fn: Any) -> Any:
                        fn.__dict__.setdefault("_params", []).append(([n.strip() for n in names.split(",")], values))
                        return fn
                    return deco
                return parametrize
            return lambda *a, **k: (a[0] if a and callable(a[0]) else (lambda fn: fn))

    def importorskip(name: str) -> Any:
        try:
            return importlib.import_module(name)
        except ImportError:
            raise _Skip(f"no {name}") from None

    def approx(expected: float, rel: float = 1e-6, abs: float = 1e-12) -> Any:  # noqa: A002
        class Approx:
            def __eq__(self, other: float) -> bool:
                return builtin_abs(other - expected) <= max(rel * builtin_abs(expected), abs)
        return Approx()

    class raises:  # noqa: N801
        def __init__(self, exc: type, match: str | None = None) -> None:
            self.exc, self.match = exc, match

        def __enter__(self) -> None:
            return None

        def __exit__(self, typ: Any, value: Any, tb: Any) -> bool:
            if typ is None or not issubclass(typ, self.exc):
                raise AssertionError(f"expected {self.exc.__name__}")
            return self.match is None or self.match in str(value)

    def skip(reason: str = "") -> None:
        raise _Skip(reason)

    builtin_abs = abs
    mod.mark, mod.importorskip, mod.approx, mod.raises, mod.skip = Mark(), importorskip, approx, raises, skip
    mod.fixture = lambda *a, **k: (a[0] if a and callable(a[0]) else (lambda fn: fn))
    return mod


def run_without_pytest(files: list[str]) -> list[dict[str, Any]]:
    """The built-in runner: every test function of the files, parametrize expanded, no fixtures."""
    sys.modules["pytest"] = _mini_pytest()
    results: list[dict[str, Any]] = []
    for file in files:
        module = importlib.import_module(file.removesuffix(".py").replace("/", "."))
        for name, fn in vars(module).items():
            if not (name.startswith("test_") and callable(fn)):
                continue
            grids = fn.__dict__.get("_params", [])
            combos = itertools.product(*[[dict(zip(n, v if len(n) > 1 else (v,))) for v in vals]
                                         for n, vals in grids]) if grids else [()]
            for combo in combos:
                kwargs = {k: v for part in combo for k, v in part.items()}
                node = f"{file}::{name}" + (f"[{'-'.join(str(v)[:40] for v in kwargs.values())}]" if kwargs else "")
                if set(inspect.signature(fn).parameters) - set(kwargs):
                    results.append({"test": node, "outcome": "skipped", "seconds": 0, "error": "needs a fixture"})
                    continue
                t0 = time.perf_counter()
                try:
                    fn(**kwargs)
                    outcome, error = "passed", None
                except _Skip as exc:
                    outcome, error = "skipped", str(exc)
                except Exception as exc:  # noqa: BLE001 - every failure is recorded
                    outcome, error = "failed", f"{type(exc).__name__}: {exc}"[-2000:]
                results.append({"test": node, "outcome": outcome, "seconds": round(time.perf_counter() - t0, 2),
                                "error": error})
    return results


def summarize_bench(result: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one benchmarks.engine JSON."""
    engine, hf = result.get("engine", {}), result.get("hf_dynamic", {})
    mine, theirs = engine.get("256", {}), hf.get("256", {})
    return {"engine_abstracts_per_s": mine.get("abstracts_per_s"), "hf_abstracts_per_s": theirs.get("abstracts_per_s"),
            "speedup": result.get("engine_vs_best_hf", {}).get("256"), "cuda_graphs": engine.get("cuda_graphs"),
            "counters": mine.get("counters"), "kv_cache_slots": engine.get("kv_cache_slots"),
            "hf_error": theirs.get("error")}


def main(argv: list[str] | None = None) -> int:
    """Run the tests and benchmarks, write the JSON, exit 1 if a test failed."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="gpu_check.json")
    p.add_argument("--budget-s", type=float, default=480.0)
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("--skip-bench", action="store_true")
    args = p.parse_args(argv)
    start = time.perf_counter()
    sys.path.insert(0, str(REPO))
    import torch
    import transformers

    out: dict[str, Any] = {"check": "gpu_check", "torch": torch.__version__, "transformers": transformers.__version__,
                           "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    if not args.skip_tests:
        try:
            import pytest  # noqa: F401
            runner = run_with_pytest
        except ImportError:
            runner = run_without_pytest
        tests = runner(GPU_TESTS)
        out["tests"] = {"runner": runner.__name__, "passed": sum(t["outcome"] == "passed" for t in tests),
                        "failed": sum(t["outcome"] == "failed" for t in tests),
                        "skipped": sum(t["outcome"] == "skipped" for t in tests), "results": tests,
                        "seconds": round(time.perf_counter() - start, 1)}
    out["benchmarks"] = {}
    for preset, extra in [] if args.skip_bench else BENCHES:
        left = args.budget_s - (time.perf_counter() - start)
        if left < 45:
            out["benchmarks"][preset] = {"skipped": f"budget: {left:.0f} s left"}
            continue
        cmd = [sys.executable, "-m", "benchmarks.engine", "--preset", preset, *BENCH_ARGS, *extra]
        t0 = time.perf_counter()
        try:
            done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=left - 10)
            result = json.loads(done.stdout) if done.returncode == 0 else None
            out["benchmarks"][preset] = ({"summary": summarize_bench(result), "full": result} if result else
                                         {"error": done.stderr[-2000:]})
        except (subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
            out["benchmarks"][preset] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        out["benchmarks"][preset]["seconds"] = round(time.perf_counter() - t0, 1)
    out["wall_s"] = round(time.perf_counter() - start, 1)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k not in ("tests", "benchmarks")}
                     | {"tests": {k: v for k, v in out.get("tests", {}).items() if k != "results"},
                        "benchmarks": {k: v.get("summary", v) for k, v in out["benchmarks"].items()}}, default=str))
    return 1 if out.get("tests", {}).get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
