"""NER task: windows, BIO decoding to exact character spans, merging overlapping windows."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.tasks.ner import NerTask, bio_labels, decode_spans, split_label, window_starts
from pipeline.tasks.pubtator import read_pubtator
from pipeline.tasks.rows import get_task

ID2LABEL = {0: "O", 1: "B-Chemical", 2: "I-Chemical", 3: "B-Disease", 4: "I-Disease"}
LABEL2ID = {v: k for k, v in ID2LABEL.items()}


@pytest.fixture(scope="module")
def tokenizer():
    from model.tokenizer import BioGptTokenizer

    return BioGptTokenizer.from_pretrained("microsoft/biogpt")


def test_labels_and_windows():
    assert split_label("B-Disease") == ("B", "Disease") and split_label("I_Gene") == ("I", "Gene")
    assert split_label("S-X") == ("B", "X") and split_label("O") == ("O", None)
    assert split_label("Disease") == ("I", "Disease")
    assert window_starts(10, 16, 4) == [(0, 10)]
    assert window_starts(40, 16, 5) == [(0, 15), (10, 25), (20, 35), (30, 40)]
    with pytest.raises(ValueError, match="overlap"):
        NerTask(None, ID2LABEL, window=8, overlap=7)


def _one_hot(labels, n=5, p=0.9):
    probs = np.full((len(labels), n), (1 - p) / (n - 1), dtype=np.float32)
    for t, lab in enumerate(labels):
        probs[t, max(lab, 0)] = p
    return probs


def test_decode_spans_iob2_and_lenient_i_start():
    offsets = [(0, 0), (0, 7), (8, 15), (16, 20), (21, 27), (28, 31)]
    # </s>, O, B-Chemical, I-Chemical, O, I-Disease (an I- after O starts a span)
    probs = _one_hot([0, 0, 1, 2, 0, 4])
    probs[3, 2] = 0.5
    spans = decode_spans(probs, offsets, ID2LABEL)
    assert [(s, e, k) for s, e, k, _ in spans] == [(8, 20, "Chemical"), (28, 31, "Disease")]
    assert spans[0][3] == pytest.approx((0.9 + 0.5) / 2)
    probs = _one_hot([0, 3, 3, 4, 0, 0])  # B B I: two adjacent entities, never merged
    assert [(s, e) for s, e, *_ in decode_spans(probs, offsets, ID2LABEL)] == [(0, 7), (8, 20)]


def test_labels_are_read_per_word_at_the_last_piece():
    """A causal tagger sees a word whole only at its last piece: that piece's label is the word's,
    the first piece's B- starts a mention, and a mention never ends inside a word."""
    text = "cisplatin-induced nephrotoxicity"
    # cis|platin|-|induced|nephro|toxicity (the first pieces guess, the last pieces know)
    offsets = [(0, 3), (3, 9), (9, 10), (10, 17), (18, 24), (24, 32)]
    probs = _one_hot([0, 1, 0, 0, 3, 4])
    spans = decode_spans(probs, offsets, ID2LABEL, text)
    assert [(text[s:e], k) for s, e, k, _ in spans] == [("cisplatin", "Chemical"),
                                                        ("nephrotoxicity", "Disease")]
    assert [(text[s:e], k) for s, e, k, _ in decode_spans(probs, offsets, ID2LABEL)] == [
        ("platin", "Chemical"), ("nephrotoxicity", "Disease")]  # per token: a fragment
    # B on a word's first piece starts a new mention even after a word of the same type
    text = "5-FU leucovorin"
    offsets = [(0, 1), (1, 2), (2, 4), (5, 9), (9, 15)]
    probs = _one_hot([1, 2, 2, 1, 2])
    assert [text[s:e] for s, e, *_ in decode_spans(probs, offsets, ID2LABEL, text)] == ["5-FU", "leucovorin"]


def _oracle_outputs(task, article, gold_by_section):
    """Per-window probabilities that put 0.9 on the gold label of each token."""
    outputs = []
    for section, text, ids, offsets, ranges in task._layout(article):
        labels = bio_labels(offsets, gold_by_section[section], LABEL2ID)
        for s, e in ranges:
            outputs.append(_one_hot([0] + labels[s:e]))
    return outputs


@pytest.mark.parametrize("window,overlap", [(1024, 0), (48, 16), (33, 0)])
def test_gold_mentions_come_back_exactly_through_windows(data_dir, tokenizer, window, overlap):
    docs = read_pubtator(data_dir / "gold" / "CDR_TrainingSet.PubTator.txt")[:12]
    task = get_task("ner", tokenizer, id2label=ID2LABEL, window=window, overlap=overlap)
    expected, got = set(), set()
    for doc in docs:
        article = {"pmid": int(doc.pmid), "version": 1, "title": doc.title, "abstract": doc.abstract}
        by_section = {"title": [], "abstract": []}
        shift = len(doc.title) + 1
        for m in doc.mentions:
            if m.end <= len(doc.title):
                by_section["title"].append((m.start, m.end, m.type))
            else:
                by_section["abstract"].append((m.start - shift, m.end - shift, m.type))
        inp = task.build_inputs(article)
        assert all(len(p) <= window and p[0] == 2 for p in inp.prompts)
        out = task.parse_outputs(article, _oracle_outputs(task, article, by_section),
                                 model_id="m", run_id="r")
        for row in out.rows:
            text = doc.title if row["section"] == "title" else doc.abstract
            assert text[row["start"]:row["end"]] == row["text"] and row["score"] == pytest.approx(0.9)
            got.add((doc.pmid, row["section"], row["start"], row["end"], row["type"]))
        for section, spans in by_section.items():
            expected |= {(doc.pmid, section, s, e, k) for s, e, k in spans}
    # every gold mention comes back exactly once (mentions whose ends fall inside a token widen
    # to token boundaries; the CDR text tokenizes on all of these mentions' boundaries)
    missing = expected - got
    assert len(got) == len(expected) and not missing, sorted(missing)[:5]


def test_parse_outputs_checks_window_count_and_shapes(tokenizer):
    task = get_task("ner", tokenizer, id2label=ID2LABEL, window=16, overlap=4)
    article = {"pmid": 9, "title": "Aspirin", "abstract": "word " * 40}
    inp = task.build_inputs(article)
    assert len(inp.prompts) > 2
    with pytest.raises(ValueError, match="window outputs"):
        task.parse_outputs(article, [], model_id="m", run_id="r")
    bad = [np.zeros((len(p), 3)) for p in inp.prompts]
    with pytest.raises(ValueError, match="shape"):
        task.parse_outputs(article, bad, model_id="m", run_id="r")
    empty = task.build_inputs({"pmid": 1, "title": None, "abstract": ""})
    assert empty.empty
    assert task.parse_outputs({"pmid": 1, "title": None, "abstract": ""}, [], model_id="m",
                              run_id="r").rows == []
