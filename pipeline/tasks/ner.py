"""Entity tagging with a BioGPT token-classification checkpoint (BIO / IOB2 labels of any types).

Each section (title, abstract) is tokenized on its own with character offsets. A section longer
than the window is read in overlapping windows, each `[</s>] + tokens[s:s+window-1]`; because the
model is causal, a token takes its probabilities from the earliest window that holds it (the one
with the most left context), so every token is labelled once and merged spans never repeat.
Spans are decoded per word (a word's label is read at its last piece, which has seen the whole
word) to exact character offsets; score = mean probability of the words' chosen labels. A span
with no letter in it ("-", "00") is never a mention.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.tasks.relation import TaskInput, TaskOutput

SECTIONS = ("title", "abstract")
IGNORE = -100  # label id skipped by the loss


def split_label(label: str) -> tuple[str, str | None]:
    """("B"|"I"|"O", type) of a label; S-/E- (BIOES) read as B/I, a bare type as I."""
    if label in ("O", "o", ""):
        return "O", None
    if len(label) > 2 and label[1] in "-_" and label[0] in "BIESbies":
        tag = label[0].upper()
        return ("B" if tag in "BS" else "I"), label[2:]
    return "I", label


def window_starts(n_tokens: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) token ranges of the windows over n_tokens (each holds window-1 + </s>)."""
    size = window - 1
    if n_tokens <= size:
        return [(0, n_tokens)]
    step = size - overlap
    spans, start = [], 0
    while True:
        end = min(start + size, n_tokens)
        spans.append((start, end))
        if end == n_tokens:
            return spans
        start += step


def word_groups(text: str, offsets: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Token indices grouped into words: a token joins the one before when the two touch inside a
    run of letters or digits ("cis|platin"); punctuation and spaces separate words. Zero-width
    (special) tokens are left out."""
    groups: list[list[int]] = []
    prev_end = -1
    for t, (start, end) in enumerate(offsets):
        if end <= start:
            continue
        if (groups and start == prev_end and 0 < start < len(text)
                and text[start - 1].isalnum() and text[start].isalnum()):
            groups[-1].append(t)
        else:
            groups.append([t])
        prev_end = end
    return groups


def decode_spans(probs: np.ndarray, offsets: Sequence[tuple[int, int]],
                 id2label: Mapping[int, str], text: str | None = None) -> list[tuple[int, int, str, float]]:
    """(start, end, type, score) of the entities in per-token probabilities (T, L).

    With `text`, labels are read per word: a causal tagger labels a token from its left context
    only, so a word's type is read at its last piece (which has seen the whole word), and the
    word starts a new mention when its first piece says B- of that type. Mentions are then whole
    words (no fragments of a word). Without `text` every token is its own word.
    """
    spans: list[tuple[int, int, str, float]] = []
    labels = probs.argmax(axis=-1)  # (T,)
    groups = word_groups(text, offsets) if text is not None else [
        [t] for t, (s, e) in enumerate(offsets) if e > s]
    current: list[Any] | None = None  # [type, start, end, [probs]]

    def close() -> None:
        if current is not None and current[2] > current[1]:
            spans.append((current[1], current[2], current[0], float(np.mean(current[3]))))

    for group in groups:
        first, last = group[0], group[-1]
        lab = int(labels[last])
        tag, kind = split_label(id2label[lab])
        p = float(probs[last, lab])
        start, end = offsets[first][0], offsets[last][1]
        if tag == "O":
            close()
            current = None
            continue
        first_tag, first_kind = split_label(id2label[int(labels[first])])
        if current is None or current[0] != kind or (first_tag == "B" and first_kind == kind):
            close()
            current = [kind, start, end, [p]]
        else:
            current[2] = end
            current[3].append(p)
    close()
    return spans


def bio_labels(offsets: Sequence[tuple[int, int]], entities: Sequence[tuple[int, int, str]],
               label2id: Mapping[str, int]) -> list[int]:
    """IOB2 label ids of tokens from character spans (start, end, type); special tokens IGNORE."""
    out = [IGNORE if end <= start else label2id["O"] for start, end in offsets]
    for e_start, e_end, kind in sorted(entities):
        first = True
        for t, (start, end) in enumerate(offsets):
            if end <= start or end <= e_start or start >= e_end:
                continue
            out[t] = label2id[("B-" if first else "I-") + kind]
            first = False
    return out


def window_start_id(tokenizer: Any) -> int:
    """The id every tagger window starts with: the tokenizer's eos (BioGPT's </s> = 2), else 0."""
    eos = getattr(tokenizer, "eos_token_id", None)
    return 0 if eos is None else int(eos)


class NerTask:
    """`ner`: token-classification windows in, entity rows (ENTITY_SCHEMA) out."""

    name = "ner"

    def __init__(self, tokenizer: Any, id2label: Mapping[int, str], window: int = 512,
                 overlap: int = 128) -> None:
        if window < 2 or not 0 <= overlap < window - 1:
            raise ValueError(f"ner: need window >= 2 and 0 <= overlap < window-1, got "
                             f"window={window}, overlap={overlap}")
        self.tokenizer = tokenizer
        self.id2label = {int(k): str(v) for k, v in id2label.items()}
        self.window, self.overlap = window, overlap

    def _sections(self, article: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [(s, article.get(s) or "") for s in SECTIONS if (article.get(s) or "").strip()]

    def _layout(self, article: Mapping[str, Any]):  # -> list[(section, text, ids, offsets, ranges)]
        out = []
        for section, text in self._sections(article):
            ids, offsets = self.tokenizer.encode_with_offsets(text, add_special_tokens=False)
            ids, offsets = list(ids), list(offsets)
            out.append((section, text, ids, offsets, window_starts(len(ids), self.window,
                                                                    self.overlap)))
        return out

    def build_inputs(self, article: Mapping[str, Any]) -> TaskInput:
        """One prompt per window of each non-empty section."""
        start = window_start_id(self.tokenizer)
        prompts = [[start, *ids[s:e]] for _, _, ids, _, ranges in self._layout(article)
                   for s, e in ranges]
        source = "\n".join(text for _, text in self._sections(article))
        return TaskInput(prompts, 0, source)

    def parse_outputs(self, article: Mapping[str, Any], output: Sequence[np.ndarray], *,
                      model_id: str, run_id: str) -> TaskOutput:
        """Entity rows from per-window probabilities (as `Engine.classify_tokens` returns)."""
        layout = self._layout(article)
        n_windows = sum(len(r) for *_, r in layout)
        if len(output) != n_windows:
            raise ValueError(f"ner: PMID {article.get('pmid')}: got {len(output)} window outputs, "
                             f"expected {n_windows}")
        rows, k = [], 0
        for section, text, ids, offsets, ranges in layout:
            n_labels = len(self.id2label)
            probs = np.zeros((len(ids), n_labels), dtype=np.float32)
            filled = 0
            for s, e in ranges:
                window = np.asarray(output[k], dtype=np.float32)
                k += 1
                if window.shape != (e - s + 1, n_labels):
                    raise ValueError(f"ner: PMID {article.get('pmid')} {section}: window output "
                                     f"shape {window.shape}, expected {(e - s + 1, n_labels)}")
                probs[filled:e] = window[1 + filled - s:]  # earliest window wins
                filled = e
            for start, end, kind, score in decode_spans(probs, offsets, self.id2label, text):
                if not any(ch.isalpha() for ch in text[start:end]):
                    continue  # "-", "00", "±": no entity name is without a letter
                rows.append({"pmid": article["pmid"], "version": article.get("version"),
                             "section": section, "start": start, "end": end,
                             "text": text[start:end], "type": kind, "score": score,
                             "model_id": model_id, "run_id": run_id})
        return TaskOutput(rows, 0, len(rows))
