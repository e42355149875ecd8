"""Shared fixtures of the linking tests: data paths and a lexicon builder."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from pipeline.linking.lexicon import Entry, Lexicon, LexiconBuilder

DATA = Path(__file__).resolve().parents[2] / "data"
LEXICONS = DATA / "lexicons"
GOLD = DATA / "gold"


@pytest.fixture
def make_lexicon(tmp_path: Path) -> Callable[..., Lexicon]:
    """Build a lexicon folder from entry iterables and open it."""
    counter = iter(range(1000))

    def make(*sources: Iterable[Entry]) -> Lexicon:
        builder = LexiconBuilder()
        for source in sources:
            builder.add_all(source)
        folder = tmp_path / f"lex{next(counter)}"
        builder.write(folder)
        return Lexicon(folder)

    return make
