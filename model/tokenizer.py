"""BioGPT tokenizer: Moses + BPE with exactly transformers' ids, character offsets and Arrow batches.

Layout: one text is `[</s>] + ids`, a pair `[</s>] + a + [</s>] + b` (fairseq style, no BOS).
Each Moses token (cached, see `model.moses`) maps to its BPE ids through a per-token cache.
Offsets are (start, end) character spans in the original text, one per id.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from model.bundled import bundled_dir, is_bundled
from model.bpe import (END, HUB_FILES, SPECIALS, BytePairEncoder, load_folder, piece_spans,
                       read_fairseq_dict, read_merges, read_vocab_json, save_folder)
from model.moses import ESCAPE, MosesDetokenizer, MosesTokenizer, restore_multidots

if TYPE_CHECKING:
    import pyarrow as pa

VOCAB_DIR = Path(__file__).parent / "vocab"
BUNDLED = {"microsoft/biogpt": "biogpt", "microsoft/biogpt-large": "biogpt-large"}
MAX_CACHE = 200_000


def truncate_source(ids: list[int], max_tokens: int, ellipsis_id: int) -> tuple[list[int], int]:
    """Cut source ids (no special tokens) to `max_tokens`, BioGPT's RE policy.

    fairseq's LanguageModelPromptDataset: a source longer than `max_tokens` keeps its first
    `max_tokens` ids and the last kept one is overwritten by `...`, so the model sees
    `ids[:max_tokens - 1] + [ellipsis_id]`. Returns that list and the number of ids cut off
    the end (`len(ids) - max_tokens`, 0 when nothing was cut; the overwritten id is not counted).
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    if len(ids) <= max_tokens:
        return list(ids), 0
    return list(ids[:max_tokens - 1]) + [ellipsis_id], len(ids) - max_tokens


class BioGptTokenizer:
    """Moses + BPE tokenizer giving transformers' BioGptTokenizer ids, plus offsets and batches."""

    bos_token_id = 0
    pad_token_id = 1
    eos_token_id = 2
    unk_token_id = 3

    def __init__(self, vocab: dict[str, int], merges: dict[tuple[str, str], int],
                 added_tokens: dict[str, int] | None = None) -> None:
        for i, tok in enumerate(SPECIALS):
            if vocab.get(tok) != i:
                raise ValueError(f"vocabulary must map {tok!r} to {i}, found {vocab.get(tok)!r}")
        self._vocab = dict(vocab)
        self._decoder = {i: t for t, i in self._vocab.items()}
        self._ranks = dict(merges)
        self._bpe = BytePairEncoder(self._ranks)
        self._moses = MosesTokenizer()
        self._detok: MosesDetokenizer | None = None
        self._added: dict[str, int] = {}  # user-added tokens (never split), content -> id
        self._cache: dict[str, tuple[tuple[int, ...], tuple[tuple[int, int], ...]]] = {}  # raw token ->
        # (ids, per-piece (start, end) in characters of the token's original form)
        self._rebuild()
        if added_tokens:
            for tok, idx in sorted(added_tokens.items(), key=lambda kv: kv[1]):
                self._add(tok, idx)
            self._rebuild()

    # ------------------------------------------------------------------ loading / saving
    @classmethod
    def from_files(cls, vocab: dict[str, int] | str | Path, merges: str | Path) -> BioGptTokenizer:
        """From a vocab dict, an HF vocab.json or a fairseq dict.txt, and merges.txt/bpecodes."""
        if not isinstance(vocab, dict):
            path = Path(vocab)
            if not path.is_file():
                raise FileNotFoundError(f"vocabulary file not found: {path}")
            vocab = read_vocab_json(path) if path.suffix == ".json" else read_fairseq_dict(path)
        if not Path(merges).is_file():
            raise FileNotFoundError(f"merges file not found: {merges}")
        return cls(vocab, read_merges(Path(merges)))

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "microsoft/biogpt",
                        revision: str | None = None) -> BioGptTokenizer:
        """Bundled microsoft/biogpt or BioGPT-Large (offline), a local folder, or a hub repo id."""
        bundled = BUNDLED.get(str(name_or_path).lower())
        if is_bundled(name_or_path):
            folder = bundled_dir(str(name_or_path))
        elif bundled is not None and not Path(name_or_path).exists():
            folder = VOCAB_DIR / bundled  # the vocabulary never changed across revisions
        elif Path(name_or_path).is_dir():
            folder = Path(name_or_path)
        elif Path(name_or_path).exists() or str(name_or_path).count("/") > 1:
            raise FileNotFoundError(f"{name_or_path}: not a tokenizer folder or hub repo id")
        else:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(str(name_or_path), revision=revision, allow_patterns=HUB_FILES))
        return cls(*load_folder(folder))

    def save_pretrained(self, directory: str | Path) -> None:
        """Write vocab.json, merges.txt, tokenizer_config.json (+ added_tokens.json) HF-style."""
        save_folder(Path(directory), self._vocab, self._ranks, self._added)

    # ------------------------------------------------------------------ vocabulary
    def __len__(self) -> int:
        """Vocabulary size including added tokens."""
        return len(self._lookup)

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary (without added tokens)."""
        return len(self._vocab)

    @property
    def ellipsis_id(self) -> int:
        """Id of the `...` word, which BioGPT puts at the end of a truncated source."""
        return self._vocab.get("..." + END, self.unk_token_id)

    def get_vocab(self) -> dict[str, int]:
        """Piece -> id, added tokens included."""
        return dict(self._lookup)

    def add_tokens(self, tokens: Sequence[str]) -> list[int]:
        """Append tokens after the vocabulary (kept whole in text); return their ids."""
        ids = []
        for tok in tokens:
            if not isinstance(tok, str) or not tok:
                raise ValueError(f"added tokens must be non-empty strings, got {tok!r}")
            if tok not in self._lookup:
                self._add(tok, len(self._lookup))
            elif tok not in self._added and tok not in SPECIALS:
                self._add(tok, self._lookup[tok])  # known piece: now also kept whole, as in HF
            ids.append(self._lookup[tok])
        self._rebuild()
        return ids

    def _add(self, tok: str, idx: int) -> None:
        """Register one added token at `idx`, refusing ids that belong to another piece."""
        owner = self._decoder.get(idx)
        if owner is not None and owner != tok:
            raise ValueError(f"added token {tok!r} cannot take id {idx}, which is {owner!r}")
        self._added[tok] = idx
        self._lookup[tok] = idx

    def _rebuild(self) -> None:
        """Refresh lookups, the added-token splitter and the caches after a vocabulary change."""
        self._lookup = {**self._vocab, **self._added}
        self._id_to_added = {i: t for t, i in self._added.items()}
        splitters = sorted({*SPECIALS, *self._added}, key=len, reverse=True)
        self._splitter = re.compile("|".join(map(re.escape, splitters)))
        self._cache.clear()

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        """Pieces to ids (unknown -> 3)."""
        return [self._lookup.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        """Ids to pieces (unknown ids -> `<unk>`)."""
        added, dec = self._id_to_added, self._decoder
        return [added[i] if i in added else dec.get(i, "<unk>") for i in map(int, ids)]

    # ------------------------------------------------------------------ encoding
    def _entry(self, raw: str) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
        """(ids, piece spans) of one raw Moses token, computed once and cached."""
        entry = self._cache.get(raw)
        if entry is None:
            pieces = self._bpe(MosesTokenizer.finalize(raw))
            lookup, unk = self._lookup, self.unk_token_id
            if raw == "@-@":
                units = ["@-@"]  # one original "-"
            else:
                units = [ESCAPE.get(c, c) for c in (restore_multidots(raw) if "MULTI" in raw else raw)]
            entry = (tuple(lookup.get(p, unk) for p in pieces), piece_spans(units, pieces))
            if len(self._cache) >= MAX_CACHE:
                self._cache.clear()
            self._cache[raw] = entry
        return entry

    def _segments(self, text: str) -> list[tuple[int, int, bool]]:
        """(start, end, is_added_token) pieces of `text`, split on special and added tokens."""
        if "<" not in text and not self._added:
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

    def _encode_plain(self, text: str, out: list[int]) -> None:
        """Append the ids of a text holding no special or added token."""
        cache = self._cache
        for raw in self._moses.raw_tokens(text):
            entry = cache.get(raw)
            out.extend((entry or self._entry(raw))[0])

    def _encode_ids(self, text: str) -> list[int]:
        """Ids of `text` without special tokens around it."""
        out: list[int] = []
        for s, e, is_added in self._segments(text):
            if is_added:
                out.append(self._lookup[text[s:e]])
            else:
                self._encode_plain(text[s:e] if (s, e) != (0, len(text)) else text, out)
        return out

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Ids of `text`: `[2] + ids` with special tokens (as transformers' BioGptTokenizer)."""
        ids = self._encode_ids(text)
        return [self.eos_token_id] + ids if add_special_tokens else ids

    def encode_pair(self, a: str, b: str) -> list[int]:
        """`[2] + a + [2] + b`."""
        return [self.eos_token_id, *self._encode_ids(a), self.eos_token_id, *self._encode_ids(b)]

    def _plain_offsets(self, text: str, base: int, ids: list[int], offsets: list[tuple[int, int]]) -> None:
        """Append ids and absolute offsets for a text holding no special or added token."""
        raws = self._moses.raw_tokens(text)
        cache = self._cache
        for raw, (start, end, chars) in zip(raws, self._moses.align(text, raws)):
            token_ids, spans = cache.get(raw) or self._entry(raw)
            ids.extend(token_ids)
            if chars is None:
                if len(spans) == 1:
                    offsets.append((base + start, base + end))
                else:
                    offsets.extend([(base + start + a, base + start + b) for a, b in spans])
                continue
            if spans[-1][1] != len(chars):
                # a literal "DOTMULTI" in the text became "." in Moses: the first piece takes it all
                spans = ((0, len(chars)),) + ((len(chars), len(chars)),) * (len(spans) - 1)
            for a, b in spans:
                lo = chars[a] if a < len(chars) else end
                offsets.append((base + lo, base + (chars[b - 1] + 1 if b > a else lo)))

    def encode_with_offsets(self, text: str, add_special_tokens: bool = True
                            ) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and, per id, its (start, end) character span in `text`; the leading `</s>` is (0, 0)."""
        ids: list[int] = [self.eos_token_id] if add_special_tokens else []
        offsets: list[tuple[int, int]] = [(0, 0)] if add_special_tokens else []
        for s, e, is_added in self._segments(text):
            if is_added:
                ids.append(self._lookup[text[s:e]])
                offsets.append((s, e))
            else:
                self._plain_offsets(text[s:e], s, ids, offsets)
        return ids, offsets

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = True,
                     with_offsets: bool = False) -> dict[str, pa.Array]:
        """Arrow columns for Ray `map_batches`: input_ids (list<int32>), num_tokens, [offsets]."""
        import pyarrow as pa

        flat: list[int] = []
        flat_offsets: list[int] = []
        bounds, off_bounds, counts = [0], [0], []
        for text in texts:
            if not isinstance(text, str):
                raise ValueError(f"encode_batch: text #{len(counts)} is {type(text).__name__}, not str")
            if with_offsets:
                ids, spans = self.encode_with_offsets(text, add_special_tokens)
                for s, e in spans:
                    flat_offsets.append(s)
                    flat_offsets.append(e)
                off_bounds.append(len(flat_offsets))
            else:
                ids = self.encode(text, add_special_tokens)
            flat.extend(ids)
            bounds.append(len(flat))
            counts.append(len(ids))
        int32 = pa.int32()
        out = {"input_ids": pa.ListArray.from_arrays(pa.array(bounds, int32), pa.array(flat, int32)),
               "num_tokens": pa.array(counts, int32)}
        if with_offsets:
            out["offsets"] = pa.ListArray.from_arrays(pa.array(off_bounds, int32),
                                                      pa.array(flat_offsets, int32))
        return out

    # ------------------------------------------------------------------ decoding
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of `ids`, as transformers' decode (pieces joined, `</w>` -> space, detokenized)."""
        if skip_special_tokens:
            ids = [i for i in map(int, ids) if not 0 <= i < len(SPECIALS)]
        text = "".join(t.replace(" ", "").replace(END, " ") for t in self.convert_ids_to_tokens(ids))
        if self._detok is None:
            self._detok = MosesDetokenizer()
        return self._detok.detokenize(text.split())
