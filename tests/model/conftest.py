"""Tokenizer fixtures shared by the tokenizer test modules."""
from __future__ import annotations

import pytest

from model.tokenizer import VOCAB_DIR, BioGptTokenizer


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    """transformers' BioGptTokenizer built from the same bundled files (the oracle)."""
    from tests.model.test_tokenizer import hf_files

    transformers = pytest.importorskip("transformers")
    return transformers.BioGptTokenizer(*hf_files(VOCAB_DIR / "biogpt", tmp_path_factory.mktemp("hf")))


@pytest.fixture(scope="module")
def tok():
    """Our tokenizer for microsoft/biogpt (bundled vocabulary)."""
    return BioGptTokenizer.from_pretrained("microsoft/biogpt")
