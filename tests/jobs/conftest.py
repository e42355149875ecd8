"""Fixtures of the CLI tests."""
from __future__ import annotations

import pytest

from tests.tiny_models import save_tiny_models


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Saved tiny RE and NER checkpoints (folder with re/ and ner/)."""
    return save_tiny_models(tmp_path_factory.mktemp("models"))
