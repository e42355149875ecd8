"""The run manifest (OUT/_manifest.json): config, models, versions, counts, errors, speed."""
from __future__ import annotations

import json
import logging
import platform
from importlib import metadata
from typing import Any

from pipeline.config import RunConfig
from pipeline.sink import open_output, write_text_atomic

log = logging.getLogger(__name__)
MAX_ERRORS_LISTED = 50


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def model_entry(model_id: str | None, demo: bool) -> dict[str, Any] | None:
    """Model id and a hash of its weight files (the demo model is random, seed 0)."""
    if model_id is None:
        return None
    if demo and model_id == "demo":
        return {"id": "demo", "weights_sha256": None, "note": "tiny random BioGPT, output meaningless"}
    from model.loader import resolve_model_dir, weights_fingerprint

    try:
        return {"id": model_id, "weights_sha256": weights_fingerprint(resolve_model_dir(model_id))}
    except (OSError, ValueError) as exc:  # the run itself reports load failures; keep the id
        log.warning("cannot fingerprint %s: %s", model_id, exc)
        return {"id": model_id, "weights_sha256": None, "note": str(exc)}


def run_manifest(config: RunConfig, run_id: str, status: str, files: list[str], counts: dict[str, int],
                 totals: dict[str, int], file_errors: list[dict], wall_s: float,
                 failure: str | None = None) -> dict[str, Any]:
    """Everything a user needs to audit or reproduce a run."""
    mined = totals.get("articles", 0)
    return {
        "run_id": run_id,
        "status": status,
        "failure": failure,
        "config": config.model_dump(),
        "models": {"re": model_entry(config.re_model_id, config.demo_model),
                   "ner": model_entry(config.ner_model_id, config.demo_model)},
        "versions": {"biomine": _version("biomine"), "ray": _version("ray"), "torch": _version("torch"),
                     "pyarrow": _version("pyarrow"), "python": platform.python_version()},
        "inputs": {"files": len(files), "first": files[:1], "last": files[-1:]},
        "counts": {"index": counts, "written": totals, "file_errors": len(file_errors)},
        "errors": file_errors[:MAX_ERRORS_LISTED],
        "wall_s": round(wall_s, 3),
        "abstracts_per_s": round(mined / wall_s, 3) if wall_s > 0 else None,
    }


def write_json(output: str, name: str, obj: Any) -> None:
    """Write OUT/name atomically (temporary name, then rename)."""
    fs, base = open_output(output)
    fs.create_dir(base, recursive=True)
    write_text_atomic(fs, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", f"{base}/{name}")
