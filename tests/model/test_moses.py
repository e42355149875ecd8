"""model.moses against sacremoses: tokens, detokenization and the chunk cache."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from model.moses import MosesDetokenizer, MosesTokenizer, escape, restore_multidots
from tests.model.test_tokenizer import all_texts

sacremoses = pytest.importorskip("sacremoses")
HARD = json.loads((Path(__file__).parents[1] / "data" / "tokenizer" / "hard_cases.json").read_text("utf-8"))
FUZZ_ALPHABET = [*"aAbs5 0,,..''\"`-\u2013\u2014&|<>[](){}/;:@#$%!?\t\n\xa0\x01\x1f\u00e9 \u03b1\u03b2",
                 "Dr.", "No.", "e.g.", "i.e.", "n't", "'s", "...", "DOTMULTI", "Fig.", "1,000",
                 "http://x.org/a", "a@b.com", "'90s", "``", "''", " p.", "Art.", "U.S."]


@pytest.fixture(scope="module")
def oracle():
    return sacremoses.MosesTokenizer(lang="en")


def reference(oracle, text: str) -> list[str]:
    return oracle.tokenize(text, aggressive_dash_splits=True, escape=True, return_str=False)


@pytest.mark.parametrize("text", HARD)
def test_hard_cases_match_sacremoses(oracle, text):
    assert MosesTokenizer().tokenize(text) == reference(oracle, text)


def test_corpus_matches_sacremoses(oracle):
    moses = MosesTokenizer()
    texts = all_texts()
    bad = [t for t in texts if moses.tokenize(t) != reference(oracle, t)]
    assert len(texts) > 4000
    assert bad == []


def test_random_strings_match_sacremoses(oracle):
    rng = random.Random(4)
    moses = MosesTokenizer()  # one instance: later strings hit cached chunks of earlier ones
    for _ in range(4000):
        text = "".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randint(0, 14)))
        assert moses.tokenize(text) == reference(oracle, text), repr(text)


@pytest.mark.parametrize("text", [
    ",5 a ,5", "'s a 's", "5' '5", "x.' y.'", "a... b...", "Fig. 2 Fig.", "No. 5 No. x", "a, b 5, 6,",
])
def test_chunk_context_is_respected_when_cached(oracle, text):
    moses = MosesTokenizer()
    for _ in range(2):  # the second pass comes from the cache
        assert moses.tokenize(text) == reference(oracle, text)
        assert moses.tokenize("warm " + text + " up") == reference(oracle, "warm " + text + " up")


def test_cache_is_bounded():
    moses = MosesTokenizer(max_cache=50)
    for i in range(300):
        moses.tokenize(f"word{i} other{i}")
    assert len(moses._cache) <= 50
    assert moses.tokenize("a-b c") == ["a", "@-@", "b", "c"]


def test_escape_and_multidot_helpers():
    assert escape("a&b'c\"[d]|<e>") == "a&amp;b&apos;c&quot;&#91;d&#93;&#124;&lt;e&gt;"
    assert escape("plain") == "plain"
    assert restore_multidots("DOTDOTDOTMULTI") == "..."


def test_align_gives_original_spans():
    moses = MosesTokenizer()
    text = " anti-TNF\x01alpha's  &  \"x\"... "
    raws = moses.raw_tokens(text)
    spans = moses.align(text, raws)
    assert [text[s:e] for s, e, _ in spans] == ["anti", "-", "TNF\x01alpha", "'s", "&", '"', "x", '"', "..."]
    assert spans[2][2] == [6, 7, 8, 10, 11, 12, 13, 14]  # the control char is skipped
    with pytest.raises(ValueError, match="cannot align"):
        moses.align("abc", ["abd"])


@pytest.mark.parametrize("tokens", [
    ["Hello", "@-@", "world", "&apos;s", "&quot;", "quote", "&quot;", "."],
    ["the", "Jones", "'", "house", "(", "1", ")", "$", "5", "&amp;", "&#91;", "x", "&#93;"],
    ["``", "a", "''", "'", "b", "'", "don", "'t", "\u4e2d", "\u6587", "!", "?", "%", "\u00bf", "q"],
    ["a", "@-@", "@-@", "b", "&bar;", "&bra;", "&ket;", "&lt;", "&gt;", "&#124;"],
])
def test_detokenizer_matches_sacremoses(tokens):
    assert MosesDetokenizer().detokenize(tokens) == sacremoses.MosesDetokenizer(lang="en").detokenize(tokens)


def test_detokenizer_round_trips_corpus_tokens(oracle):
    detok, ref = MosesDetokenizer(), sacremoses.MosesDetokenizer(lang="en")
    for text in all_texts()[::25] + HARD:
        toks = reference(oracle, text)
        assert detok.detokenize(toks) == ref.detokenize(toks)


def test_model_imports_without_sacremoses():
    import subprocess
    import sys

    code = ("import sys; sys.modules['sacremoses'] = None\n"
            "import model.tokenizer, model.moses\n"
            "try:\n    model.moses.MosesTokenizer()\nexcept ImportError as e:\n    print('needs', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2])
    assert "needs" in out.stdout and "sacremoses" in out.stdout
