"""Shared body of the GPT-family tokenizers: pre-tokenized words -> BPE ids, offsets, added tokens, Arrow batches.

A subclass says how text splits into words (with character spans) and how a word's pieces map
back to characters; this class caches each word's (ids, spans), splits out special/added tokens
(kept whole, as transformers does), and writes HF files. Offsets are (start, end) character spans
in the original text, one per id.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from model.bpe import BytePairEncoder, read_vocab_json

if TYPE_CHECKING:
    import pyarrow as pa

MAX_CACHE = 200_000
ROLES = ("bos_token", "eos_token", "unk_token", "pad_token")
Entry = tuple[tuple[int, ...], tuple[tuple[int, int], ...]]  # ids and spans relative to the word start


def read_gpt_merges(path: Path) -> list[tuple[str, str]]:
    """merges.txt as the fast tokenizers read it: a `#version` first line and blank lines skipped."""
    out = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").split("\n")):
        if not line.strip() or (i == 0 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise ValueError(f"{path}:{i + 1}: expected 'a b', got {line!r}")
        out.append((parts[0], parts[1]))
    if not out:
        raise ValueError(f"{path}: no merges found")
    return out


def read_tokenizer_json(path: Path) -> tuple[dict[str, int], list[tuple[str, str]], dict[str, int]]:
    """vocab, merges and added tokens of an HF `tokenizer.json` holding a BPE model."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    model = raw.get("model") or {}
    if model.get("type") != "BPE":
        raise ValueError(f"{path}: expected a BPE model, got {model.get('type')!r}")
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    added = {a["content"]: int(a["id"]) for a in raw.get("added_tokens") or []}
    return dict(model["vocab"]), merges, added  # type: ignore[return-value]


class WordBPETokenizer:
    """Words -> BPE ids with spans; subclasses give `_words`, `_pieces`, decoding and file names."""

    suffix: ClassVar[str] = ""  # end-of-word suffix of the BPE model
    tokenizer_class: ClassVar[str] = ""
    specials: ClassVar[dict[str, str]] = {}  # role -> token, e.g. {"eos_token": "<|endoftext|>"}
    unk_token: ClassVar[str | None] = None

    def __init__(self, vocab: dict[str, int], merges: Sequence[tuple[str, str]],
                 added_tokens: dict[str, int] | None = None) -> None:
        self._vocab = dict(vocab)
        self._decoder = {i: t for t, i in self._vocab.items()}
        self._merges = list(merges)
        ranks: dict[tuple[str, str], int] = {}
        for rank, pair in enumerate(self._merges):
            ranks.setdefault(pair, rank)
        self._bpe = BytePairEncoder(ranks, suffix=self.suffix)
        self._added: dict[str, int] = {}
        self._cache: dict[str, Entry] = {}
        self.specials = dict(self.specials)  # per instance: add_special_token may extend it
        for tok in self.specials.values():
            if tok in self._vocab:
                self._added[tok] = self._vocab[tok]
        for tok, idx in sorted((added_tokens or {}).items(), key=lambda kv: kv[1]):
            self._added[tok] = idx
        self._rebuild()

    # ------------------------------------------------------------------ subclass surface
    def _words(self, text: str) -> list[tuple[int, int]]:
        """(start, end) character spans of the pre-tokenized words of a text holding no added token."""
        raise NotImplementedError

    def _pieces(self, raw: str) -> tuple[list[str], list[tuple[int, int]]]:
        """BPE pieces of one word (its original text) and their character spans within it."""
        raise NotImplementedError

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of ids."""
        raise NotImplementedError

    # ------------------------------------------------------------------ vocabulary
    def _rebuild(self) -> None:
        self._lookup = {**self._vocab, **self._added}
        self._id_to_added = {i: t for t, i in self._added.items()}
        tokens = sorted(self._added, key=len, reverse=True)
        self._splitter = re.compile("|".join(map(re.escape, tokens))) if tokens else None
        self._cache.clear()

    def __len__(self) -> int:
        """Vocabulary size including added tokens."""
        return len(self._lookup)

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary."""
        return len(self._vocab)

    def _special_id(self, role: str) -> int | None:
        tok = self.specials.get(role)
        return self._lookup.get(tok) if tok else None

    eos_token_id = property(lambda self: self._special_id("eos_token"), doc="eos id (None if none)")
    bos_token_id = property(lambda self: self._special_id("bos_token"), doc="bos id (None if none)")
    pad_token_id = property(lambda self: self._special_id("pad_token") if "pad_token" in self.specials
                            else self.eos_token_id, doc="pad id: eos where the family has no pad")
    unk_token_id = property(lambda self: self._lookup.get(self.unk_token) if self.unk_token else None,
                            doc="unk id (None if none)")

    @property
    def ellipsis_id(self) -> int:
        """Id the RE recipe puts at the end of a cut source: the ids of '...' if one piece, else eos."""
        ids = self.encode(" ...", add_special_tokens=False)
        return ids[-1] if len(ids) == 1 else (self.eos_token_id or 0)

    def get_vocab(self) -> dict[str, int]:
        """Piece -> id, added tokens included."""
        return dict(self._lookup)

    def add_tokens(self, tokens: Sequence[str]) -> list[int]:
        """Append tokens after the vocabulary (kept whole in text); return their ids."""
        ids = []
        for tok in tokens:
            if not isinstance(tok, str) or not tok:
                raise ValueError(f"added tokens must be non-empty strings, got {tok!r}")
            self._added.setdefault(tok, self._lookup.get(tok, len(self._lookup)))
            self._lookup[tok] = self._added[tok]
            ids.append(self._added[tok])
        self._rebuild()
        return ids

    def add_special_token(self, role: str, token: str) -> int:
        """Give the tokenizer a special token for `role` (e.g. an eos for OpenAI GPT, which has none)."""
        idx = self.add_tokens([token])[0]
        self.specials[role] = token
        return idx

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        """Pieces to ids (unknown -> unk id, or -1 without one)."""
        unk = self.unk_token_id
        return [self._lookup.get(t, -1 if unk is None else unk) for t in tokens]

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        """Ids to pieces."""
        added, dec = self._id_to_added, self._decoder
        return [added[i] if i in added else dec.get(i, self.unk_token or "") for i in map(int, ids)]

    # ------------------------------------------------------------------ encoding
    def _entry(self, word: str) -> Entry:
        """(ids, spans) of one word's original text, computed once and cached."""
        entry = self._cache.get(word)
        if entry is None:
            pieces, spans = self._pieces(word)
            unk = self.unk_token_id
            ids = []
            for p in pieces:
                idx = self._lookup.get(p, unk)
                if idx is None:
                    raise ValueError(f"piece {p!r} is not in the vocabulary and there is no unk token")
                ids.append(idx)
            entry = (tuple(ids), tuple(spans))
            if len(self._cache) >= MAX_CACHE:
                self._cache.clear()
            self._cache[word] = entry
        return entry

    def _segments(self, text: str) -> list[tuple[int, int, bool]]:
        """(start, end, is_added_token) parts of `text`."""
        if self._splitter is None:
            return [(0, len(text), False)]
        out, pos = [], 0
        for m in self._splitter.finditer(text):
            if m.start() > pos:
                out.append((pos, m.start(), False))
            out.append((m.start(), m.end(), True))
            pos = m.end()
        if pos < len(text):
            out.append((pos, len(text), False))
        return out

    def encode_with_offsets(self, text: str, add_special_tokens: bool = True
                            ) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and their (start, end) character spans; GPT families add no special tokens."""
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        for s, e, is_added in self._segments(text):
            if is_added:
                ids.append(self._lookup[text[s:e]])
                offsets.append((s, e))
                continue
            part = text[s:e]
            for ws, we in self._words(part):
                word = part[ws:we]
                word_ids, spans = self._cache.get(word) or self._entry(word)
                ids.extend(word_ids)
                offsets.extend((s + ws + a, s + ws + b) for a, b in spans)
        return ids, offsets

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Ids of `text` (transformers' ids; GPT-2 and OpenAI GPT add no special tokens)."""
        return self.encode_with_offsets(text, add_special_tokens)[0]

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = True,
                     with_offsets: bool = False) -> dict[str, pa.Array]:
        """Arrow columns for Ray `map_batches`: input_ids (list<int32>), num_tokens, [offsets]."""
        import pyarrow as pa

        flat, flat_offsets, bounds, off_bounds, counts = [], [], [0], [0], []
        for text in texts:
            if not isinstance(text, str):
                raise ValueError(f"encode_batch: text #{len(counts)} is {type(text).__name__}, not str")
            ids, spans = self.encode_with_offsets(text, add_special_tokens)
            if with_offsets:
                flat_offsets.extend(x for span in spans for x in span)
                off_bounds.append(len(flat_offsets))
            flat.extend(ids)
            bounds.append(len(flat))
            counts.append(len(ids))
        int32 = pa.int32()
        out = {"input_ids": pa.ListArray.from_arrays(pa.array(bounds, int32), pa.array(flat, int32)),
               "num_tokens": pa.array(counts, int32)}
        if with_offsets:
            out["offsets"] = pa.ListArray.from_arrays(pa.array(off_bounds, int32), pa.array(flat_offsets, int32))
        return out

    # ------------------------------------------------------------------ files
    @classmethod
    def from_folder(cls, folder: str | Path) -> Any:
        """From vocab.json + merges.txt (+ added tokens in tokenizer_config.json), or tokenizer.json."""
        folder = Path(folder)
        added: dict[str, int] = {}
        if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
            vocab, merges = read_vocab_json(folder / "vocab.json"), read_gpt_merges(folder / "merges.txt")
        elif (folder / "tokenizer.json").is_file():
            vocab, merges, added = read_tokenizer_json(folder / "tokenizer.json")
        else:
            raise FileNotFoundError(f"{folder}: needs vocab.json + merges.txt or tokenizer.json")
        config = folder / "tokenizer_config.json"
        roles: dict[str, str] = {}
        if config.is_file():
            raw = json.loads(config.read_text(encoding="utf-8"))
            decoder = raw.get("added_tokens_decoder", {})
            added.update({entry["content"]: int(idx) for idx, entry in decoder.items()})
            roles = {k: v for k, v in raw.items() if k in ROLES and isinstance(v, str)}
        if (folder / "added_tokens.json").is_file():
            added.update(read_vocab_json(folder / "added_tokens.json"))
        tokenizer = cls(vocab, merges, {t: i for t, i in added.items() if vocab.get(t) != i})
        for role, token in roles.items():
            if token in tokenizer._lookup and role not in tokenizer.specials:
                tokenizer.specials[role] = token
        return tokenizer

    from_pretrained = from_folder

    def save_pretrained(self, directory: str | Path) -> None:
        """vocab.json, merges.txt (with the `#version` header), tokenizer_config.json."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / "vocab.json").write_text(json.dumps(self._vocab, ensure_ascii=False) + "\n", encoding="utf-8")
        body = "".join(f"{a} {b}\n" for a, b in self._merges)
        (out / "merges.txt").write_text("#version: 0.2\n" + body, encoding="utf-8")
        specials = set(self.specials.values())
        decoder = {str(i): {"content": t, "lstrip": False, "normalized": t not in specials, "rstrip": False,
                            "single_word": False, "special": t in specials}
                   for t, i in sorted(self._added.items(), key=lambda kv: kv[1])}
        config = {"tokenizer_class": self.tokenizer_class, "added_tokens_decoder": decoder,
                  **{k: v for k, v in self.specials.items() if v in self._lookup}}
        (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
