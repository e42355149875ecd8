"""BioGptTokenizer against transformers' BioGptTokenizer built from the same vocabulary files."""
from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

import pytest

from model.tokenizer import VOCAB_DIR, BioGptTokenizer, truncate_source

DATA = Path(__file__).parents[1] / "data"
HARD = json.loads((DATA / "tokenizer" / "hard_cases.json").read_text("utf-8"))
LEARNED = [f"learned{i}" for i in range(1, 10)]


@lru_cache(maxsize=1)
def all_texts() -> list[str]:
    """Every title and abstract of tests/data/gold and tests/data/pubmed, deduplicated, in order."""
    from lxml import etree

    texts: list[str] = []
    for name in ("CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt"):
        for line in (DATA / "gold" / name).read_text("utf-8").splitlines():
            parts = line.split("|", 2)
            if len(parts) == 3 and parts[1] in ("t", "a"):
                texts.append(parts[2])
    for path in sorted((DATA / "gold").glob("biogpt_*.json")):
        if not path.name.endswith(".entities.json"):
            for doc in json.loads(path.read_text("utf-8")).values():
                texts.extend(doc[k] for k in ("title", "abstract") if doc.get(k))
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    for path in sorted((DATA / "pubmed").glob("*.xml*")):
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        for el in etree.fromstring(raw, parser).iter("ArticleTitle", "AbstractText", "VernacularTitle"):
            if "".join(el.itertext()).strip():
                texts.append("".join(el.itertext()))
    return list(dict.fromkeys(texts))


def hf_files(src: Path, dst: Path) -> tuple[str, str]:
    """vocab.json + merges.txt from fairseq files, written independently of model.bpe."""
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for line in (src / "dict.txt").read_text("utf-8").splitlines():
        word = line.split(" ")[0]
        vocab[word[:-2] if word.endswith("@@") else word + "</w>"] = len(vocab)
    (dst / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), "utf-8")
    (dst / "merges.txt").write_bytes((src / "bpecodes").read_bytes())
    return str(dst / "vocab.json"), str(dst / "merges.txt")


def test_known_ids(tok):
    assert tok.encode("COVID-19 is") == [2, 4805, 9, 656, 21]
    assert tok.encode("Trastuzumab") == [2, 7548, 1171, 32924]
    assert tok.encode("") == [2] and tok.encode("", add_special_tokens=False) == []
    assert len(tok) == tok.vocab_size == 42384
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)


def test_corpus_ids_and_decode_match_hf(tok, hf):
    texts = all_texts()
    assert len(texts) > 4000
    bad_ids, bad_text = [], []
    for text in texts:
        ids = tok.encode(text)
        if ids != hf.encode(text):
            bad_ids.append(text)
        elif tok.decode(ids) != hf.decode(ids, skip_special_tokens=True):
            bad_text.append(text)
    assert bad_ids == [] and bad_text == []


@pytest.mark.parametrize("text", HARD)
def test_hard_cases_match_hf(tok, hf, text):
    ids = tok.encode(text)
    assert ids == hf.encode(text)
    assert tok.encode(text, add_special_tokens=False) == hf.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == hf.decode(ids, skip_special_tokens=True)
    assert tok.decode(ids, skip_special_tokens=False) == hf.decode(ids, skip_special_tokens=False)
    assert tok.convert_ids_to_tokens(ids) == hf.convert_ids_to_tokens(ids)


def test_pair_and_token_conversion(tok, hf):
    a, b = "Aspirin inhibits COX-1.", "It reduces fever & pain."
    assert tok.encode_pair(a, b) == hf(a, b)["input_ids"]
    pieces = ["the</w>", "cov", "<unk>", "not-a-piece", "</s>"]
    assert tok.convert_tokens_to_ids(pieces) == hf.convert_tokens_to_ids(pieces)
    assert tok.convert_ids_to_tokens([0, 5, 42383, 99999]) == hf.convert_ids_to_tokens([0, 5, 42383, 99999])


def test_added_learned_tokens(tmp_path):
    import transformers

    ours = BioGptTokenizer.from_pretrained("microsoft/biogpt")
    assert ours.add_tokens(LEARNED) == list(range(42384, 42393))
    assert ours.add_tokens(["learned1"]) == [42384] and len(ours) == 42393
    ref = transformers.BioGptTokenizer(*hf_files(VOCAB_DIR / "biogpt", tmp_path))
    ref.add_tokens(LEARNED)
    text = "the cat learned1 learned2x learned9 the learned10 xlearned3 </s>"
    ids = ours.encode(text)
    assert ids == ref.encode(text)
    assert ids[3:5] == [42384, 42385] and 42392 in ids
    assert ours.decode(ids) == ref.decode(ids, skip_special_tokens=True)
    assert ours.convert_tokens_to_ids(LEARNED) == list(range(42384, 42393))


def test_save_pretrained_loads_in_transformers(tmp_path):
    import transformers

    ours = BioGptTokenizer.from_pretrained("microsoft/biogpt")
    ours.add_tokens(LEARNED)
    ours.save_pretrained(tmp_path / "saved")
    ref = transformers.BioGptTokenizer.from_pretrained(str(tmp_path / "saved"))
    again = BioGptTokenizer.from_pretrained(tmp_path / "saved")
    assert len(ref) == len(again) == len(ours) == 42393
    for text in all_texts()[::97] + HARD + ["x learned1 learned9 y"]:
        ids = ours.encode(text)
        assert ref.encode(text) == ids == again.encode(text)
        assert ref.decode(ids, skip_special_tokens=True) == again.decode(ids)


def test_fairseq_and_hf_folders_give_the_same_tokenizer(tok, tmp_path):
    hf_files(VOCAB_DIR / "biogpt", tmp_path)
    from_hf = BioGptTokenizer.from_pretrained(tmp_path)
    folder = VOCAB_DIR / "biogpt"
    from_files = BioGptTokenizer.from_files(folder / "dict.txt", folder / "bpecodes")
    for text in HARD:
        assert from_hf.encode(text) == from_files.encode(text) == tok.encode(text)


def test_biogpt_large_loads_and_round_trips(tmp_path):
    import transformers

    large = BioGptTokenizer.from_pretrained("microsoft/BioGPT-Large")
    assert len(large) == 57717
    ref = transformers.BioGptTokenizer(*hf_files(VOCAB_DIR / "biogpt-large", tmp_path))
    assert len(ref) == 57717
    for text in all_texts()[::40] + HARD:
        ids = large.encode(text)
        assert ids == ref.encode(text)
        assert large.decode(ids) == ref.decode(ids, skip_special_tokens=True)
    large.save_pretrained(tmp_path / "saved")
    again = BioGptTokenizer.from_pretrained(tmp_path / "saved")
    assert len(again) == 57717 and again.encode(HARD[6]) == large.encode(HARD[6])


def test_hub_ids_go_through_snapshot_download(monkeypatch, tmp_path):
    import huggingface_hub

    hf_files(VOCAB_DIR / "biogpt", tmp_path)
    calls = []

    def fake_download(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision, tuple(allow_patterns)))
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    loaded = BioGptTokenizer.from_pretrained("someone/biogpt-finetuned", revision="abc123")
    assert loaded.encode("COVID-19 is") == [2, 4805, 9, 656, 21]
    assert calls[0][:2] == ("someone/biogpt-finetuned", "abc123")
    assert {"vocab.json", "merges.txt", "dict.txt", "bpecodes", "added_tokens.json"} <= set(calls[0][2])


def test_bad_inputs_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        BioGptTokenizer.from_pretrained(tmp_path)
    (tmp_path / "dict.txt").write_text("the 10\nbroken-line\n", encoding="utf-8")
    (tmp_path / "bpecodes").write_text("t h 5\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"dict.txt:2"):
        BioGptTokenizer.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="non-empty"):
        BioGptTokenizer.from_pretrained("microsoft/biogpt").add_tokens([""])


def test_truncate_source_policy(tok, hf):
    assert tok.ellipsis_id == hf.encode("...", add_special_tokens=False)[0] == 11475
    assert truncate_source([5, 6, 7], 3, 99) == ([5, 6, 7], 0)
    assert truncate_source([5, 6, 7, 8, 9], 3, 99) == ([5, 6, 99], 2)
    ids = tok.encode(" ".join(all_texts()[:10]), add_special_tokens=False)
    cut, n_cut = truncate_source(ids, 640, tok.ellipsis_id)
    assert len(cut) == 640 and cut[:639] == ids[:639] and cut[-1] == tok.ellipsis_id
    assert n_cut == len(ids) - 640
    with pytest.raises(ValueError):
        truncate_source(ids, 0, 1)


def test_encode_batch_arrow_columns(tok):
    import pyarrow as pa

    texts = HARD[:12]
    out = tok.encode_batch(texts, with_offsets=True)
    assert out["input_ids"].type == pa.list_(pa.int32()) and out["offsets"].type == pa.list_(pa.int32())
    assert out["input_ids"].to_pylist() == [tok.encode(t) for t in texts]
    assert out["num_tokens"].to_pylist() == [len(tok.encode(t)) for t in texts]
    flat = [[x for span in tok.encode_with_offsets(t)[1] for x in span] for t in texts]
    assert out["offsets"].to_pylist() == flat
    plain = tok.encode_batch(texts, add_special_tokens=False)
    assert "offsets" not in plain and plain["input_ids"].to_pylist() == [tok.encode(t, False) for t in texts]
    with pytest.raises(ValueError, match="#1"):
        tok.encode_batch(["ok", None])


def test_tokenizer_pickles_for_ray_workers(tok):
    import pickle

    clone = pickle.loads(pickle.dumps(tok))
    for text in HARD:
        assert clone.encode(text) == tok.encode(text)
        assert clone.encode_with_offsets(text) == tok.encode_with_offsets(text)
    assert clone.decode(tok.encode(HARD[7])) == tok.decode(tok.encode(HARD[7]))
