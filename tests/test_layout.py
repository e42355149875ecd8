"""The layout README describes: imports point one way and no module imports in a circle."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("model", "pipeline", "jobs", "benchmarks")
STORAGE = {"pipeline.storage", "pipeline.storage.location", "pipeline.storage.exclusive",
           "pipeline.storage.lease"}  # any layer may use


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every biomine module and the biomine modules it imports (anywhere in the file)."""
    graph: dict[str, set[str]] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            names: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module)
                    names.update(f"{node.module}.{a.name}" for a in node.names)
            graph[_module(path)] = names
    known = set(graph)
    return {m: {n for n in names if n in known and n != m} for m, names in graph.items()}


def _layer(module: str) -> str:
    for prefix in ("pipeline.pubmed", "pipeline.tasks", "pipeline.evaluate", "pipeline.training"):
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    return module.split(".")[0]


ALLOWED = {  # layer -> layers it may import (itself always)
    "model": set(),
    "pipeline.pubmed": set(),
    "pipeline.tasks": {"model", "pipeline"},
    "pipeline.evaluate": {"pipeline.tasks", "pipeline"},
    "pipeline.training": {"model", "pipeline.tasks", "pipeline.evaluate", "pipeline"},
    "pipeline": {"model", "pipeline.pubmed", "pipeline.tasks", "pipeline.evaluate", "pipeline.training"},
    "jobs": {"model", "pipeline", "pipeline.pubmed", "pipeline.tasks", "pipeline.evaluate",
             "pipeline.training", "jobs"},
    "benchmarks": {"model", "pipeline", "pipeline.pubmed", "pipeline.tasks", "jobs"},
}


def test_imports_point_one_way() -> None:
    bad = []
    for module, deps in _imports().items():
        for dep in deps:
            if dep in ("pipeline", "model", "jobs", "benchmarks") or dep in STORAGE:
                continue  # package docstring modules; the storage layer (imports no biomine module)
            src, dst = _layer(module), _layer(dep)
            if src != dst and dst not in ALLOWED[src]:
                bad.append(f"{module} -> {dep}")
    assert not bad, bad


def test_top_level_pipeline_modules_are_only_shared_helpers_for_lower_layers() -> None:
    # tasks/evaluate/training may use pipeline's top-level helpers only from this list
    graph = _imports()
    helpers = {"pipeline.jsonfile"} | STORAGE
    for module, deps in graph.items():
        if _layer(module) in ("pipeline.tasks", "pipeline.evaluate", "pipeline.training"):
            used = {d for d in deps if _layer(d) == "pipeline" and d != "pipeline"}
            assert used <= helpers, (module, used - helpers)


def test_no_import_circles() -> None:
    graph = _imports()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep] if dep in stack else [node, dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_model_never_imports_ray() -> None:
    for path in (ROOT / "model").rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "ray" or n.startswith("ray.") for n in names), path


def test_pipeline_top_level_holds_only_shared_settings() -> None:
    # the job's modules live in packages that follow the data (planning, dataflow, records)
    top = {p.name for p in (ROOT / "pipeline").glob("*.py")}
    assert top <= {"__init__.py", "config.py", "jsonfile.py"}, sorted(top)
    for pkg in ("planning", "dataflow", "records", "storage"):
        assert (ROOT / "pipeline" / pkg / "__init__.py").is_file()


def test_storage_layer_is_a_leaf() -> None:
    graph = _imports()
    for module in STORAGE:
        assert graph[module] <= STORAGE, (module, graph[module])
