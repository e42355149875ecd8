"""GPT-2 byte-level BPE (GPT-2, GPT-Neo, BioMedLM): transformers' fast GPT2Tokenizer ids, with offsets.

Text is split by GPT-2's regex (contractions, ` ?letters`, ` ?digits`, ` ?other`, spaces), each
word's UTF-8 bytes are mapped to printable characters (`bytes_to_unicode`), then BPE'd with no
end-of-word suffix. No special tokens are added; `<|endoftext|>` in text stays one token.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import regex

from model.word_bpe import WordBPETokenizer

PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
ENDOFTEXT = "<|endoftext|>"


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class GPT2Tokenizer(WordBPETokenizer):
    """Byte-level BPE from vocab.json + merges.txt (or tokenizer.json), as transformers' GPT2Tokenizer."""

    suffix = ""
    tokenizer_class = "GPT2Tokenizer"
    specials = {"bos_token": ENDOFTEXT, "eos_token": ENDOFTEXT, "unk_token": ENDOFTEXT}
    unk_token = None  # byte-level: every byte has a piece

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._byte_char = bytes_to_unicode()
        self._char_byte = {c: b for b, c in self._byte_char.items()}

    def _words(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in PATTERN.finditer(text)]

    def _pieces(self, raw: str) -> tuple[list[str], list[tuple[int, int]]]:
        data = raw.encode("utf-8")
        pieces = self._bpe("".join(self._byte_char[b] for b in data))
        char_of_byte = [i for i, c in enumerate(raw) for _ in range(len(c.encode("utf-8")))]
        spans, pos = [], 0
        for piece in pieces:  # a piece covers whole characters, or the character it cuts into
            first, pos = pos, pos + len(piece)
            spans.append((char_of_byte[first], char_of_byte[pos - 1] + 1))
        return pieces, spans

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of ids (bytes restored, invalid UTF-8 replaced)."""
        out, buf = [], bytearray()
        for i in map(int, ids):
            if i in self._id_to_added:
                if not skip_special_tokens or self._id_to_added[i] not in self.specials.values():
                    out.append(buf.decode("utf-8", errors="replace") + self._id_to_added[i])
                    buf = bytearray()
                continue
            buf.extend(self._char_byte[c] for c in self._decoder.get(i, ""))
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)
