"""BioGPT vocabulary files (HF vocab.json/merges.txt or fairseq dict.txt/bpecodes) and BPE."""
from __future__ import annotations

import json
from pathlib import Path

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0..3 in every fairseq dictionary
END = "</w>"
HUB_FILES = ["vocab.json", "merges.txt", "tokenizer_config.json", "added_tokens.json",
             "special_tokens_map.json", "dict.txt", "bpecodes"]
_NEVER = 1 << 62  # rank of a pair that is not a merge


def read_fairseq_dict(path: Path) -> dict[str, int]:
    """HF vocab from a fairseq dict.txt: specials 0..3, then lines from 4; `x@@` -> `x`, else `x</w>`."""
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            fields = line.rstrip("\n").rsplit(" ", 1)
            if len(fields) == 2 and fields[1] == "#fairseq:overwrite":
                fields = fields[0].rsplit(" ", 1)
            if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
                raise ValueError(f"{path}:{lineno}: expected '<token> <count>', got {line.rstrip()!r}")
            word = fields[0]
            if word in seen:
                raise ValueError(f"{path}:{lineno}: duplicate token {word!r}")
            seen.add(word)
            vocab[word[:-2] if word.endswith("@@") else word + END] = len(seen) + len(SPECIALS) - 1
    return vocab


def read_vocab_json(path: Path) -> dict[str, int]:
    """An HF vocab.json: {piece: id}."""
    try:
        vocab = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise ValueError(f"{path}: expected a JSON object mapping tokens to integer ids")
    return vocab


def read_merges(path: Path) -> dict[tuple[str, str], int]:
    """Merge ranks as HF reads them: one merge per line (first two fields), the last line dropped."""
    lines = Path(path).read_text(encoding="utf-8").split("\n")[:-1]
    ranks: dict[tuple[str, str], int] = {}
    for rank, line in enumerate(lines):
        pair = tuple(line.split()[:2])
        if len(pair) == 2:  # a malformed line still takes its rank, as in HF
            ranks[pair] = rank  # type: ignore[index]
    if not ranks:
        raise ValueError(f"{path}: no merges found (expected lines 'a b [count]')")
    return ranks


def load_folder(folder: Path) -> tuple[dict[str, int], dict[tuple[str, str], int], dict[str, int]]:
    """vocab, merge ranks and added tokens of a tokenizer folder (HF or fairseq files)."""
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        vocab, merges = read_vocab_json(folder / "vocab.json"), read_merges(folder / "merges.txt")
    elif (folder / "dict.txt").is_file() and (folder / "bpecodes").is_file():
        vocab, merges = read_fairseq_dict(folder / "dict.txt"), read_merges(folder / "bpecodes")
    else:
        raise FileNotFoundError(f"{folder}: needs vocab.json + merges.txt or dict.txt + bpecodes")
    added: dict[str, int] = {}
    config = folder / "tokenizer_config.json"
    if config.is_file():
        try:
            decoder = json.loads(config.read_text(encoding="utf-8")).get("added_tokens_decoder", {})
            added.update({entry["content"]: int(idx) for idx, entry in decoder.items()})
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{config}: malformed added_tokens_decoder ({exc})") from exc
    if (folder / "added_tokens.json").is_file():
        added.update(read_vocab_json(folder / "added_tokens.json"))
    return vocab, merges, {t: i for t, i in added.items() if vocab.get(t) != i}


def save_folder(out: Path, vocab: dict[str, int], ranks: dict[tuple[str, str], int],
                added: dict[str, int]) -> None:
    """vocab.json, merges.txt, tokenizer_config.json (+ added_tokens.json) as transformers loads them."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps(vocab, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
    write_merges(out / "merges.txt", ranks)
    entries = {i: (t, True) for i, t in enumerate(SPECIALS)}
    entries.update({i: (t, False) for t, i in added.items()})
    decoder = {str(i): {"content": t, "lstrip": False, "normalized": not special, "rstrip": False,
                        "single_word": False, "special": special}
               for i, (t, special) in sorted(entries.items())}
    config = {"tokenizer_class": "BioGptTokenizer", "added_tokens_decoder": decoder,
              "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "pad_token": "<pad>",
              "unk_token": "<unk>", "model_max_length": 1024, "clean_up_tokenization_spaces": False}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if added:
        (out / "added_tokens.json").write_text(json.dumps(added, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8")


def write_merges(path: Path, ranks: dict[tuple[str, str], int]) -> None:
    """merges.txt as HF saves it: 'a b' per line in rank order, newline-terminated."""
    with open(path, "w", encoding="utf-8") as fh:
        for a, b in sorted(ranks, key=ranks.__getitem__):
            fh.write(f"{a} {b}\n")


def piece_spans(units: list[str], pieces: list[str]) -> tuple[tuple[int, int], ...]:
    """Per BPE piece, the (start, end) range of units (escaped original chars) it covers.

    A piece owns the units whose escaped text starts inside it, so a piece that begins inside
    an entity (`&am` + `p;`) gets the whole character and the next piece an empty range.
    """
    starts, pos = [], 0
    for u in units:
        starts.append(pos)
        pos += len(u)
    lengths = [len(p) - (len(END) if p.endswith(END) else 0) for p in pieces]
    n = len(units)
    if pos != sum(lengths):  # not a BPE of these units: the first piece takes them all
        return ((0, n),) + ((n, n),) * (len(pieces) - 1)
    out, unit, edge = [], 0, 0
    for length in lengths:
        first = unit
        edge += length
        while unit < n and starts[unit] < edge:
            unit += 1
        out.append((first, unit))
    return tuple(out)


class BytePairEncoder:
    """Greedy lowest-rank BPE over one word, `suffix` (`</w>`; "" for byte-level) on its last symbol."""

    def __init__(self, ranks: dict[tuple[str, str], int], suffix: str = END) -> None:
        self.ranks = ranks
        self.suffix = suffix
        # Merging one occurrence at a time equals HF's merge-all-occurrences step when no merge
        # uses a symbol before the last merge that creates it (true of learned merge lists).
        created: dict[str, int] = {}
        for (a, b), rank in ranks.items():
            created[a + b] = max(rank, created.get(a + b, -1))
        self.incremental = all(rank > created.get(a, -1) and rank > created.get(b, -1)
                               for (a, b), rank in ranks.items())

    def __call__(self, token: str) -> list[str]:
        """The BPE pieces of `token` (the last one ends in the suffix)."""
        word = [*token[:-1], token[-1] + self.suffix]
        word = self._incremental(word) if self.incremental else self._by_pair(word)
        if self.suffix == END and word == ["\n", " " + END]:  # HF's special case for "\n  </w>"
            word = ["\n" + END]
        return word

    def _incremental(self, word: list[str]) -> list[str]:
        """Merge the lowest-ranked pair, leftmost first, updating only its neighbours' ranks."""
        get = self.ranks.get
        ranks = [get(pair, _NEVER) for pair in zip(word, word[1:])]
        while ranks:
            best = min(ranks)
            if best == _NEVER:
                break
            i = ranks.index(best)
            word[i:i + 2] = [word[i] + word[i + 1]]
            del ranks[i]
            if i < len(ranks):
                ranks[i] = get((word[i], word[i + 1]), _NEVER)
            if i:
                ranks[i - 1] = get((word[i - 1], word[i]), _NEVER)
        return word

    def _by_pair(self, word: list[str]) -> list[str]:
        """HF's loop: take the lowest-ranked pair, merge all its occurrences left to right."""
        get = self.ranks.get
        while len(word) > 1:
            ranks = [get(pair, _NEVER) for pair in zip(word, word[1:])]
            best = min(ranks)
            if best == _NEVER:
                break
            i = ranks.index(best)  # one pair per rank, so this is its first occurrence
            first, second = word[i], word[i + 1]
            merged = word[:i]
            n = len(word)
            while i < n:
                if i < n - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word
