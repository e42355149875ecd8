"""Output files of the exports (local or object store): written whole or not at all, gzip when
the name ends in .gz."""
from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from pipeline.storage import Location


def split_target(path: str | Path) -> tuple[Location, str]:
    """The folder (opened) and the file name of an export target."""
    path = str(path)
    if "://" not in path:
        path = str(Path(path).absolute())
    folder, name = path.rstrip("/").rsplit("/", 1)
    return Location.open(folder + "/" if folder.endswith("//") else folder or "/"), name


def is_folder_target(path: str | Path) -> bool:
    """Whether a target names a folder: it ends in '/' or is an existing folder."""
    if str(path).endswith("/"):
        return True
    folder, name = split_target(path)
    return folder.is_dir(name)


@contextmanager
def open_target(path: str | Path, binary: bool = False) -> Iterator[IO[Any]]:
    """Open a file for writing (appears when the block ends without an error); gzip for .gz."""
    folder, name = split_target(path)
    with folder.open_output(name) as raw:
        if name.endswith(".gz"):
            with gzip.GzipFile(filename=name[:-3], fileobj=raw, mode="wb") as packed:
                yield from _wrap(packed, binary)
        else:
            yield from _wrap(raw, binary)


def _wrap(raw: IO[bytes], binary: bool) -> Iterator[IO[Any]]:
    if binary:
        yield raw
        return
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    try:
        yield text
    finally:
        text.flush()
        text.detach()  # the stream underneath is closed (and published) by its owner
