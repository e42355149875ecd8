"""What a training run tells its user: one line per epoch, a run summary JSON next to the
weights, and the train state that lets a killed run resume where it stopped."""
from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUMMARY = "train_summary.json"
STATE = "train_state.pt"


def epoch_line(record: dict[str, Any], epochs: int, best: bool) -> str:
    """`epoch 3/15  loss 0.1234  dev F1 0.612 (Chemical 0.70, Disease 0.51)  126 steps  161 s *best`."""
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record['loss']:.4f}"]
    if "dev_f1" in record:
        types = [f"{k[len('dev_f1_'):]} {v:.3f}" for k, v in sorted(record.items())
                 if k.startswith("dev_f1_")]
        parts.append(f"dev F1 {record['dev_f1']:.3f}" + (f" ({', '.join(types)})" if types else ""))
    parts += [f"{record['steps']} steps", f"{record['seconds']:.0f} s"]
    return "  ".join(parts) + ("  *best" if best else "")


def file_facts(path: str | Path | None) -> dict[str, Any] | None:
    """Path, size and sha256 of an input file (None for no file)."""
    if path is None:
        return None
    data = Path(path).read_bytes()
    return {"path": str(path), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def machine() -> dict[str, Any]:
    """Where the run ran: host, CPU, torch version and threads, accelerator."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"host": platform.node(), "cpu": cpu_model(),
            "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "gpu": gpu}


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_summary(out_dir: Path, summary: dict[str, Any]) -> None:
    """`<out>/train_summary.json`, replaced atomically."""
    tmp = out_dir / (SUMMARY + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    tmp.replace(out_dir / SUMMARY)


def save_state(folder: Path, state: dict[str, Any]) -> None:
    """The train state (epoch, optimiser, RNG, history) beside the last epoch's weights."""
    import torch

    torch.save(state, folder / (STATE + ".tmp"))
    (folder / (STATE + ".tmp")).replace(folder / STATE)


def load_state(folder: Path) -> dict[str, Any] | None:
    """The train state saved by `save_state`, or None when the folder has none."""
    import torch

    path = folder / STATE
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def check_base(base: str | Path, command: str, roles: tuple[str, ...]) -> None:
    """A clear error when --base is a model of the wrong kind (its config.json's architectures):
    roles are 'causal_lm' and 'token_classifier', in any supported family."""
    from model.loader import resolve_model_dir

    folder = resolve_model_dir(base)
    config = folder / "config.json"
    if not config.is_file():
        raise ValueError(f"{command}: --base {base}: {folder} has no config.json; not a model folder")
    archs = json.loads(config.read_text()).get("architectures") or []
    if archs and not any(_roles(a) & set(roles) for a in archs):
        wanted = " or ".join({"causal_lm": "causal LM", "token_classifier": "token classifier"}[r]
                             for r in roles)
        raise ValueError(f"{command}: --base {base} is a {', '.join(archs)}; it needs a {wanted} of a "
                         "supported family (e.g. BioGptForCausalLM, GPT2LMHeadModel, GPTNeoForCausalLM)")


def _roles(arch: str) -> set[str]:
    """What an HF architecture name is in its family: 'causal_lm', 'token_classifier' or neither."""
    from model.families import ARCHITECTURES, family_of_head

    if arch not in ARCHITECTURES:
        return set()
    family = family_of_head(arch)
    return {role for role, name in (("causal_lm", family.causal_lm),
                                    ("token_classifier", family.token_classifier)) if name == arch}


class Clock:
    """Wall time of a run, carried over a resume."""

    def __init__(self, before: float = 0.0) -> None:
        self.before, self.start = before, time.perf_counter()

    @property
    def seconds(self) -> float:
        """Seconds so far, earlier (resumed) sessions included."""
        return self.before + time.perf_counter() - self.start
