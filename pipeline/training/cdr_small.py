"""The recipe of the bundled tagger `bundled:cdr-small`: a small BioGPT-shaped token classifier
trained from scratch here on the BC5CDR training set (not BioGPT's weights), deterministic on CPU.

`biomine train-tagger --recipe cdr-small --train CDR_TrainingSet.PubTator.txt --dev
CDR_DevelopmentSet.PubTator.txt -o DIR --ship model/bundled/cdr-small` reproduces the shipped
weights bit for bit (same torch build and CPU, one thread): `ship` writes the best epoch in fp16
with its dev scores and a fingerprint of the first updates (`weights_probe`) that tests check.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.training.tagger import TaggerConfig

log = logging.getLogger(__name__)

NAME = "cdr-small"
SIZE = {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
        "intermediate_size": 512, "max_position_embeddings": 1024}
CONFIG = TaggerConfig(epochs=9, lr=1e-3, batch_size=8, full_model=True, window=512, seed=0)
DECODING = "per word: a word's label read at its last piece (`pipeline.tasks.ner.decode_spans`)"


def deterministic(threads: int = 1) -> None:
    """Same bits on every run: fixed thread count, deterministic kernels."""
    import torch

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def write_scratch_base(folder: str | Path, seed: int = 0, size: dict[str, int] | None = None) -> Path:
    """A randomly initialised BioGPT-shaped causal LM (BioGPT's vocabulary) saved as a base."""
    from model.config import BIOGPT_BASE
    from model.loader import build_random_model, save_pretrained
    from model.tokenizer import BioGptTokenizer

    config = replace(BIOGPT_BASE, **(size or SIZE))
    model = build_random_model(config, seed=seed, device="cpu")
    folder = Path(folder)
    save_pretrained(model, folder, BioGptTokenizer.from_pretrained("microsoft/biogpt"))
    log.info("scratch base %s (%s) in %s", NAME, size or SIZE, folder)
    return folder


def config_with(**overrides: Any) -> TaggerConfig:
    """The recipe's training settings with some replaced (tests use fewer epochs)."""
    return replace(CONFIG, **overrides)


def train_cdr_small(train: str | Path, dev: str | Path | None, out_dir: str | Path,
                    config: TaggerConfig = CONFIG, size: dict[str, int] | None = None,
                    on_epoch: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Deterministic from-scratch run: `<out>/base` (random init), then `train_tagger` into `<out>`."""
    from pipeline.training.tagger import train_tagger

    deterministic()
    out_dir = Path(out_dir)
    base = out_dir / "base"
    if not (base / "config.json").is_file():  # a resumed run keeps its base
        write_scratch_base(base, seed=config.seed, size=size)
    return train_tagger(train, dev, base, out_dir, config, on_epoch=on_epoch)


def predict_documents(model: Any, tokenizer: Any, docs: list, window: int = 512) -> list:
    """The tagger's mentions of gold documents, as PubTator documents (document offsets)."""
    from pipeline.tasks.ner import NerTask
    from pipeline.tasks.pubtator import entity_rows_to_documents
    from pipeline.training.tagger import predict_probs

    task = NerTask(tokenizer, model.config.id2label, window=window, overlap=min(64, window // 4))
    rows, articles = [], []
    for doc in docs:
        article = {"pmid": doc.pmid, "version": None, "title": doc.title, "abstract": doc.abstract}
        inp = task.build_inputs(article)
        probs = predict_probs(model, inp.prompts, 8, "cpu") if inp.prompts else []
        rows += task.parse_outputs(article, probs, model_id=NAME, run_id="dev").rows
        articles.append(article)
    return entity_rows_to_documents(rows, articles)


def mention_scores(gold: list, pred: list) -> dict[str, dict[str, Any]]:
    """The kit's `mention` score (exact offsets and type), overall and per type."""
    from pipeline.evaluate.cdr import score_mention

    types = sorted({m.type for d in gold for m in d.mentions})
    out = {"all": score_mention(gold, pred, types).to_dict()}
    return out | {t: score_mention(gold, pred, [t]).to_dict() for t in types}


def weights_probe(train: str | Path, out_dir: str | Path, steps: int = 3) -> dict[str, Any]:
    """sha256 of the weights after the recipe's first `steps` updates, and their losses."""
    from model.loader import weights_fingerprint

    history = train_cdr_small(train, None, out_dir, config_with(max_steps=steps))
    return {"steps": steps, "sha256": weights_fingerprint(Path(out_dir) / "last"),
            "first_loss": history[0]["first_loss"]}


def ship(run_dir: str | Path, train: str | Path, dev: str | Path, dest: str | Path,
         slice_docs: int = 100) -> dict[str, Any]:
    """The best epoch of a recipe run as fp16 into `dest`, with its summary and scores there."""
    import json
    import tempfile
    from dataclasses import asdict

    from model.loader import load_model, save_pretrained, weights_fingerprint
    from model.tokenizer import BioGptTokenizer
    from pipeline.training.run_record import file_facts, machine, write_summary

    run_dir, dest = Path(run_dir), Path(dest)
    tokenizer = BioGptTokenizer.from_pretrained(run_dir)
    model = load_model(run_dir, dtype="float16", device="cpu")
    save_pretrained(model, dest, tokenizer)
    history = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    best = max(history, key=lambda r: r["dev_f1"])
    with tempfile.TemporaryDirectory() as tmp:
        probe = weights_probe(train, tmp)
    summary = {
        "name": f"bundled:{NAME}", "what": "a small BioGPT-shaped token classifier trained from "
        "scratch here on the BC5CDR training set (BioGPT's vocabulary, not BioGPT's weights)",
        "size": SIZE, "config": asdict(CONFIG), "labels": model.config.id2label,
        "data": {"train": file_facts(train), "dev": file_facts(dev)}, "machine": machine(),
        "epochs": len(history), "steps": sum(r["steps"] for r in history),
        "train_seconds": round(sum(r["seconds"] + r.get("dev_seconds", 0.0) for r in history), 1),
        "best_epoch": best["epoch"], "history": history, "probe": probe,
        "shipped": {"dtype": "float16", "weights_sha256": weights_fingerprint(dest),
                    **shipped_scores(dest, dev, slice_docs)}}
    write_summary(dest, summary)
    log.info("shipped %s to %s: dev mention F1 %s", NAME, dest,
             {k: round(v["f1"], 4) for k, v in summary["shipped"]["dev_mention"].items()})
    return summary


def shipped_scores(dest: str | Path, dev: str | Path, slice_docs: int = 100) -> dict[str, Any]:
    """Dev mention scores of the shipped weights in `dest` (all of dev and its first documents)."""
    from model.loader import load_model
    from model.tokenizer import BioGptTokenizer
    from pipeline.tasks.pubtator import read_pubtator

    model = load_model(dest, dtype="float32", device="cpu")
    gold = read_pubtator(dev)
    pred = predict_documents(model, BioGptTokenizer.from_pretrained(dest), gold)
    return {"decoding": DECODING, "dev_mention": mention_scores(gold, pred),
            f"dev_first_{slice_docs}_mention": mention_scores(gold[:slice_docs], pred[:slice_docs])}
