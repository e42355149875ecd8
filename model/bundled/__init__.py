"""Models shipped inside the package, named `bundled:<name>` wherever a model id is accepted."""
from __future__ import annotations

from pathlib import Path

PREFIX = "bundled:"
BUNDLED_DIR = Path(__file__).resolve().parent
DEFAULT_TAGGER = "bundled:cdr-small"  # the tagger `ner` uses when no --ner-model is given


def bundled_names() -> list[str]:
    """The names of the shipped models (folders holding a config.json)."""
    return sorted(p.parent.name for p in BUNDLED_DIR.glob("*/config.json"))


def is_bundled(model_id: object) -> bool:
    """Whether a model id names a shipped model (`bundled:<name>`)."""
    return isinstance(model_id, str) and model_id.startswith(PREFIX)


def bundled_dir(model_id: str) -> Path:
    """The folder of `bundled:<name>`; FileNotFoundError naming the shipped ones otherwise."""
    name = model_id[len(PREFIX):] if is_bundled(model_id) else model_id
    folder = BUNDLED_DIR / name
    if "/" in name or "\\" in name or name.startswith(".") or not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{model_id!r}: no such bundled model; the package ships "
                                f"{[PREFIX + n for n in bundled_names()] or 'none'}")
    return folder
