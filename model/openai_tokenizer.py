"""OpenAI GPT's lower-cased BPE: transformers' (fast) OpenAIGPTTokenizer ids, with offsets.

The fast tokenizer's pipeline, per character: BertNormalizer (drop NUL, U+FFFD and control
characters, whitespace -> space, space around CJK ideographs, strip accents by NFD minus Mn,
lowercase), then BertPreTokenizer (split on whitespace, every punctuation character alone),
then BPE with `</w>` on each word's last symbol, unknown pieces -> `<unk>`. (The slow
tokenizer's spaCy/ftfy path can differ; transformers >= 5 ships only this one.)
"""
from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from model.bpe import END
from model.word_bpe import WordBPETokenizer

_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_whitespace(c: str) -> bool:
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def _is_control(c: str) -> bool:
    return c not in "\t\n\r" and unicodedata.category(c) in ("Cc", "Cf")


def _is_punctuation(c: str) -> bool:
    o = ord(c)
    return 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126 \
        or unicodedata.category(c).startswith("P")


def normalize_char(c: str) -> str:
    """BertNormalizer(lowercase=True) on one character (may give "", one or several characters)."""
    o = ord(c)
    if o == 0 or o == 0xFFFD or _is_control(c):
        return ""
    if _is_whitespace(c):
        return " "
    if any(lo <= o <= hi for lo, hi in _CJK):
        return f" {c} "
    stripped = "".join(x for x in unicodedata.normalize("NFD", c) if unicodedata.category(x) != "Mn")
    return "".join(x.lower() for x in stripped)


def normalize(text: str) -> tuple[str, list[int]]:
    """Normalized text and, per normalized character, the index of the original character."""
    out, align = [], []
    for i, c in enumerate(text):
        n = normalize_char(c) if not ("a" <= c <= "z") else c
        out.append(n)
        align.extend([i] * len(n))
    return "".join(out), align


class OpenAIGPTTokenizer(WordBPETokenizer):
    """OpenAI GPT BPE from vocab.json + merges.txt (or tokenizer.json), as transformers' OpenAIGPTTokenizer."""

    suffix = END
    tokenizer_class = "OpenAIGPTTokenizer"
    specials = {"unk_token": "<unk>"}
    unk_token = "<unk>"

    def _words(self, text: str) -> list[tuple[int, int]]:
        norm, align = normalize(text)
        spans, start = [], None
        for j, c in enumerate(norm):
            if c == " " or _is_whitespace(c) or _is_punctuation(c):
                if start is not None:
                    spans.append((align[start], align[j - 1] + 1))
                    start = None
                if c != " " and not _is_whitespace(c):
                    spans.append((align[j], align[j] + 1))
            elif start is None:
                start = j
        if start is not None:
            spans.append((align[start], align[-1] + 1))
        return spans

    def _pieces(self, raw: str) -> tuple[list[str], list[tuple[int, int]]]:
        norm, align = normalize(raw)
        keep = [j for j, c in enumerate(norm) if c != " "]  # a CJK word carries its padding spaces
        norm, align = "".join(norm[j] for j in keep), [align[j] for j in keep]
        pieces = self._bpe(norm)
        spans, pos = [], 0
        for piece in pieces:
            first, pos = pos, pos + len(piece) - (len(END) if piece.endswith(END) else 0)
            spans.append((align[first], align[pos - 1] + 1))
        return pieces, spans

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of ids: pieces joined, `</w>` -> space (BPEDecoder), special tokens skipped by default."""
        tokens = [t for t in self.convert_ids_to_tokens(ids)
                  if not (skip_special_tokens and t in self.specials.values())]
        return "".join(t.replace(END, " ") for t in tokens).rstrip(" ")
