"""Output files of the exports: parents created, gzip when the name ends in .gz."""
from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def open_target(path: str | Path, binary: bool = False) -> Iterator[IO[Any]]:
    """Open a file for writing; gzip when its name ends in .gz; parents are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        raw = gzip.open(path, "wb")
    else:
        raw = path.open("wb")
    with raw:
        if binary:
            yield raw
        else:
            with io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
                yield text
