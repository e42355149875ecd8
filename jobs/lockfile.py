"""The checked-in lock (requirements/*.txt) against what is installed: a source checkout warns on drift."""
from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

LOCK_DIR = Path(__file__).resolve().parents[1] / "requirements"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def normalize(name: str) -> str:
    """PEP 503 name: lower case, runs of `-_.` as one `-`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """`name -> version` of every `name==version` line of a pip-compile lock."""
    pins: dict[str, str] = {}
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        match = _PIN.match(line)
        if match is None:
            raise ValueError(f"{path}:{number}: not a `name==version` pin: {line!r}")
        pins[normalize(match.group(1))] = match.group(2)
    return pins


def drift(lock: Path) -> list[str]:
    """`name installed X, lock Y` for each locked package installed at another version or missing."""
    found: list[str] = []
    for name, want in sorted(read_lock(lock).items()):
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            found.append(f"{name} missing (lock {want})")
            continue
        if have != want:
            found.append(f"{name} {have} (lock {want})")
    return found


def drift_warning(lock_name: str = "run.txt") -> str | None:
    """One line saying how the installed packages differ from the lock; None when they agree,
    or when there is no lock beside the code (an installed wheel, not a source checkout)."""
    lock = LOCK_DIR / lock_name
    if not lock.is_file():
        return None
    found = drift(lock)
    if not found:
        return None
    shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    return (f"installed packages differ from requirements/{lock_name}: {shown}; "
            f"`pip install -r requirements/{lock_name}` installs what was tested")
