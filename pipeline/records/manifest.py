"""The run manifest (OUT/_manifest.json): config, models, versions, counts, errors, speed,
cumulative totals of the output folder and one history entry per invocation."""
from __future__ import annotations

import json
import logging
import platform
import socket
import sys
import time
from importlib import metadata
from typing import Any

from pipeline.config import RunConfig
from pipeline.storage import Location

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
        folder = resolve_model_dir(model_id)
        return {"id": model_id, **_architecture(folder), "weights_sha256": weights_fingerprint(folder)}
    except (OSError, ValueError) as exc:  # the run itself reports load failures; keep the id
        log.warning("cannot fingerprint %s: %s", model_id, exc)
        return {"id": model_id, "weights_sha256": None, "note": str(exc)}


def _architecture(folder: Any) -> dict[str, Any]:
    """The model's family and head, from its config.json (empty when unreadable)."""
    from model.families import family_of_dict

    try:
        raw = json.loads((folder / "config.json").read_text())
        family = family_of_dict(raw)
        archs = [a for a in raw.get("architectures") or [] if a in family.heads]
        return {"family": family.name, "architecture": archs[0] if archs else family.causal_lm}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def run_manifest(config: RunConfig, run_id: str, status: str, files: list[str], counts: dict[str, int],
                 totals: dict[str, int], file_errors: list[dict], wall_s: float,
                 failure: str | None = None, accounting: dict[str, Any] | None = None) -> dict[str, Any]:
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
        "accounting": accounting,
        "errors": file_errors[:MAX_ERRORS_LISTED],
        "wall_s": round(wall_s, 3),
        "abstracts_per_s": round(mined / wall_s, 3) if wall_s > 0 else None,
    }


def write_json(output: str | Location, name: str, obj: Any) -> None:
    """Write OUT/name atomically (temporary name, then rename)."""
    Location.open(output).write_text(name, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


WRITTEN_KEYS = ("articles", "relations", "entities", "errors", "blocks",  # rows and blocks written
                "n_generated", "n_prompt_tokens", "n_gpu_busy_us", "n_relations", "n_entities",
                "n_malformed")  # sums of the articles' n_ columns


def read_manifest(output: str | Location) -> dict[str, Any] | None:
    """OUT/_manifest.json as written by an earlier invocation, or None."""
    out = Location.open(output)
    try:
        if not out.is_file("_manifest.json"):
            return None
        return out.read_json("_manifest.json")
    except (OSError, ValueError) as exc:  # unreadable: start a new history, say so
        log.warning("%s: earlier manifest unreadable (%s); starting a new history",
                    out.url("_manifest.json"), exc)
        return None


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def invocation_entry(run_id: str, status: str, started: float, ended: float, written: dict[str, int],
                     device: dict[str, Any], failure: str | None, pending: int) -> dict[str, Any]:
    """One history entry: when, where, on what, what it did."""
    mined = int(written.get("articles", 0))
    did = ("nothing to do (all records already mined)" if status == "nothing to do"
           else f"mined {mined} of {pending} pending articles")
    wall = ended - started
    return {"run_id": run_id, "started": _iso(started), "ended": _iso(ended), "wall_s": round(wall, 3),
            "host": socket.gethostname(), "device": device, "argv": sys.argv[1:], "status": status,
            "did": did, "failure": failure,
            "written": {k: int(written.get(k, 0)) for k in WRITTEN_KEYS},
            "abstracts_per_s": round(mined / wall, 3) if wall > 0 and mined else None}


def _history(previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not previous:
        return []
    if "history" in previous:
        return list(previous["history"])
    written = (previous.get("counts") or {}).get("written") or {}  # a manifest from before history
    return [{"run_id": previous.get("run_id"), "status": previous.get("status"), "did": "(earlier run)",
             "written": {k: int(written.get(k, 0)) for k in WRITTEN_KEYS},
             "wall_s": previous.get("wall_s", 0.0)}]


def with_history(previous: dict[str, Any] | None, current: dict[str, Any],
                 entry: dict[str, Any]) -> dict[str, Any]:
    """The manifest to write: totals over every invocation; a no-op rerun keeps the rest."""
    history = _history(previous) + [entry]
    totals = {k: sum(int((h.get("written") or {}).get(k, 0)) for h in history) for k in WRITTEN_KEYS}
    worked = [h for h in history if h.get("status") != "nothing to do"]
    wall = sum(float(h.get("wall_s") or 0.0) for h in worked)
    if entry["status"] == "nothing to do" and previous and "config" in previous:
        manifest = dict(previous)
        manifest["accounting"] = current.get("accounting", previous.get("accounting"))
        manifest["counts"] = {**previous.get("counts", {}), "index": current["counts"]["index"]}
        if manifest.get("status") in ("failed", "interrupted") and current.get("accounting", {}).get("ok"):
            manifest["status"], manifest["failure"] = "finished", None  # the rest was committed
    else:
        manifest = dict(current)
        manifest["wall_s"] = round(wall, 3)
        manifest["abstracts_per_s"] = round(totals["articles"] / wall, 3) if wall > 0 else None
    manifest["counts"] = {**manifest.get("counts", {}), "written": totals, "this_invocation": entry["written"]}
    manifest["totals"] = totals
    manifest["history"] = history
    return manifest
