"""Character offsets: the text under each id's span, Moses-normalised, rebuilds the Moses token."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from model.bpe import piece_spans
from model.moses import escape
from model.tokenizer import BioGptTokenizer
from tests.model.test_tokenizer import all_texts

HARD = json.loads((Path(__file__).parents[1] / "data" / "tokenizer" / "hard_cases.json").read_text("utf-8"))
SPECIAL = re.compile(r"</?s>|<pad>|<unk>")
JUNK = re.compile("[\x00-\x08\x0e-\x1b]")


def normalise(original: str) -> str:
    """What Moses makes of the characters of one token: control characters dropped, escaped."""
    return escape(JUNK.sub("", original))


def check_offsets(tok, hf, text: str) -> None:
    """Group the ids by the oracle's Moses tokens and BPE; each group's spans rebuild its token."""
    ids, offsets = tok.encode_with_offsets(text)
    assert ids == tok.encode(text) and len(offsets) == len(ids) and offsets[0] == (0, 0)
    k, last_end = 1, 0
    for token in hf.moses_tokenize(text, "en"):
        n = len(hf.bpe(token).split(" "))
        spans = offsets[k:k + n]
        k += n
        under = "".join(normalise(text[s:e]) for s, e in spans)
        assert under == token or (token == "@-@" and under == "-"), (text, token, spans)
        for s, e in spans:  # in order, inside the text, never overlapping
            assert last_end <= s <= e <= len(text)
            last_end = e
    assert k == len(ids)


def test_offsets_rebuild_every_moses_token_of_the_corpus(tok, hf):
    for text in all_texts():
        check_offsets(tok, hf, text)


@pytest.mark.parametrize("text", [t for t in HARD if not SPECIAL.search(t) and "MULTI" not in t])
def test_offsets_on_hard_cases(tok, hf, text):
    check_offsets(tok, hf, text)


def test_offsets_point_at_the_right_characters(tok):
    text = "Anti-TNF\u2013alpha & \"IL-6\" [3H]-naloxone\u00a0(5 mg/kg) don't."
    ids, offsets = tok.encode_with_offsets(text, add_special_tokens=False)
    words = [text[s:e] for s, e in offsets]
    assert "&" in words and '"' in words and "[" in words and "-" in words and "(" in words
    assert words[words.index("&") - 1].endswith("alpha") or "alpha" in "".join(words[:words.index("&")])
    pieces = tok.convert_ids_to_tokens(ids)
    assert pieces[words.index("&")] == "&amp;</w>" and pieces[words.index("[")] == "&#91;</w>"
    assert "".join(words) == "".join(text.split()).replace("\u00a0", "")


def test_offsets_around_special_and_added_tokens():
    tok = BioGptTokenizer.from_pretrained("microsoft/biogpt")
    tok.add_tokens(["learned1", "learned2"])
    text = "Aspirin learned1 and learned2x </s> COX-1"
    ids, offsets = tok.encode_with_offsets(text)
    assert ids == tok.encode(text)
    spans = {text[s:e] for s, e in offsets}
    assert {"learned1", "learned2", "</s>", "Aspirin", "COX"} <= spans
    i = ids.index(2, 1)
    assert text[offsets[i][0]:offsets[i][1]] == "</s>"


def test_literal_multidot_markers_keep_their_whole_span(tok):
    text = "xDOTMULTIy DOTDOTMULTI ..."  # Moses itself turns the literal markers into dots
    ids, offsets = tok.encode_with_offsets(text, add_special_tokens=False)
    assert tok.convert_ids_to_tokens(ids) == ["x", ".", "y</w>", "..</w>", "...</w>"]
    assert [text[s:e] for s, e in offsets] == ["xDOTMULTIy", "", "", "DOTDOTMULTI", "..."]


def test_offsets_skip_control_characters_inside_tokens(tok):
    text = "ab\x01cd\tef\x02"
    ids, offsets = tok.encode_with_offsets(text, add_special_tokens=False)
    assert ids == tok.encode(text, add_special_tokens=False)
    pieces = [p.replace("</w>", "") for p in tok.convert_ids_to_tokens(ids)]
    assert [normalise(text[s:e]) for s, e in offsets] == pieces
    assert offsets[0][0] == 0 and offsets[-1][1] == 8


def test_piece_spans_give_a_split_entity_to_its_first_piece():
    units = ["a", "&amp;", "b"]
    assert piece_spans(units, ["a&am", "p;b</w>"]) == ((0, 2), (2, 3))
    assert piece_spans(units, ["a", "&amp;b</w>"]) == ((0, 1), (1, 3))
    assert piece_spans(["@-@"], ["@", "-@</w>"]) == ((0, 1), (1, 1))
