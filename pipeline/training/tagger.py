"""Fine-tune a BioGPT token-classification head (optionally the whole model) from PubTator gold.

Each document section (title, abstract) is tokenized with character offsets; mention spans
become IOB2 labels on the tokens they overlap (`B-Type` on the first). The optimisation goes
through the shared trainer (`pipeline.training.trainer`): AdamW with a constant learning rate,
length-sorted micro-batches of at most `batch_size` windows, the summed token cross-entropy
averaged per label token, gradient clipping, bf16/fp16 autocast on GPU. After each epoch,
entity-level F1 on the dev set (exact section offsets and type, through the `ner` task's window
decoding), overall and per type, logged as one line; the best epoch is saved to the output folder
and the last one to `<out>/last` with its train state (optimiser, RNG, history), both readable by
`model.loader.load_model`. Run again with the same output folder and settings, a killed run
resumes after its last finished epoch, bit for bit. `<out>/train_summary.json` says what was
trained on what (files' sha256), with which seed and settings, how long it took and how it scored.

The loop runs in-process rather than through `run_ray_training`: it trains one model on one
device (by default only the classifier head, a few thousand weights), and the dev scoring decodes
in the same process; a Ray Train worker group would add its start-up to every run and test and
DDP would buy nothing here.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.evaluate import Score, score_sets
from pipeline.tasks.ner import IGNORE, NerTask, bio_labels, window_starts
from pipeline.tasks.pubtator import Document, read_pubtator
from pipeline.training.run_record import (Clock, check_base, epoch_line, file_facts, load_state,
                                          machine, save_state, write_summary)
from pipeline.training.trainer import (OptimConfig, Stepper, build_optimizer, pad_batch, plan_epoch,
                                       token_loss_module)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaggerConfig:
    """Training settings, validated when built."""

    epochs: int = 3
    lr: float | None = None  # None: 1e-3 for the head alone, 5e-5 for the whole model
    batch_size: int = 8  # windows per update
    full_model: bool = False  # False: only the classifier learns
    max_docs: int | None = None  # use only the first N training (and dev) documents
    max_steps: int | None = None  # stop after this many updates in all (a reproducibility probe)
    window: int = 512  # tokens per training/inference window (capped by the model)
    weight_decay: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "window"):
            if getattr(self, name) < 1:
                raise ValueError(f"TaggerConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"TaggerConfig.lr must be > 0, got {self.lr}")
        for name in ("max_docs", "max_steps"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"TaggerConfig.{name} must be >= 1, got {getattr(self, name)}")

    @property
    def learning_rate(self) -> float:
        """The learning rate in use."""
        return self.lr if self.lr is not None else (5e-5 if self.full_model else 1e-3)

    def optim_config(self) -> OptimConfig:
        """AdamW (torch's betas), constant lr without warm-up, gradient norm clipped to 1."""
        return OptimConfig(lr=self.learning_rate, warmup=0, schedule="constant", betas=(0.9, 0.999),
                           weight_decay=self.weight_decay, clip_norm=1.0)


def label_map(docs: list[Document]) -> dict[int, str]:
    """id2label: "O", then B-/I- for each mention type in sorted order."""
    types = sorted({m.type for d in docs for m in d.mentions})
    if not types:
        raise ValueError("training documents hold no mentions: nothing to learn")
    labels = ["O"] + [f"{tag}-{t}" for t in types for tag in ("B", "I")]
    return dict(enumerate(labels))


def section_spans(doc: Document) -> dict[str, list[tuple[int, int, str]]]:
    """Mentions as section-relative (start, end, type); a mention across both sections is an error."""
    out: dict[str, list[tuple[int, int, str]]] = {"title": [], "abstract": []}
    shift = len(doc.title) + 1
    for m in doc.mentions:
        if m.end <= len(doc.title):
            out["title"].append((m.start, m.end, m.type))
        elif m.start >= shift:
            out["abstract"].append((m.start - shift, m.end - shift, m.type))
        else:
            raise ValueError(f"PMID {doc.pmid}: mention {m.text!r} [{m.start}, {m.end}) crosses "
                             "the title/abstract boundary")
    return out


def encode_examples(docs: list[Document], tokenizer: Any, label2id: dict[str, int],
                    window: int) -> list[tuple[list[int], list[int]]]:
    """(input ids, label ids) windows `[eos] + tokens` of every section, without overlap."""
    from pipeline.tasks.ner import window_start_id

    start = window_start_id(tokenizer)
    examples = []
    for doc in docs:
        spans = section_spans(doc)
        for section, text in (("title", doc.title), ("abstract", doc.abstract)):
            if not text.strip():
                continue
            ids, offsets = tokenizer.encode_with_offsets(text, add_special_tokens=False)
            try:
                labels = bio_labels(offsets, spans[section], label2id)
            except KeyError as exc:
                raise ValueError(f"PMID {doc.pmid}: mention type {exc} has no label") from None
            for s, e in window_starts(len(ids), window, 0):
                examples.append(([start, *ids[s:e]], [IGNORE, *labels[s:e]]))
    return examples


def build_tagger(base: str | Path, id2label: dict[int, str], device: Any) -> Any:
    """The family's token classifier with the body of `base` and a fresh (or reused) head."""
    from model.families import family_of_model
    from model.loader import load_model

    loaded = load_model(base, dtype="float32", device=device)
    family = family_of_model(loaded)
    head = family.token_classifier
    if head is None:
        raise ValueError(f"{base}: family {family.name} has no token-classification head in transformers; "
                         "train the tagger on a BioGPT, GPT-2 or GPT-Neo base")
    if type(loaded).__name__ == head and loaded.config.id2label == id2label:
        log.info("continuing from the token-classification head of %s", base)
        return loaded
    config = replace(loaded.config, id2label=dict(id2label), architectures=(head,))
    model = family.heads[head](config)
    model.init_weights(0)
    body = loaded.base_model_prefix
    getattr(model, body).load_state_dict(getattr(loaded, body).state_dict())
    return model.to(device)


def predict_probs(model: Any, prompts: list[list[int]], batch_size: int, device: Any) -> list:
    """Per prompt (T, num_labels) softmax probabilities through `forward_padded`."""
    import torch

    out = []
    model.eval()
    with torch.no_grad():
        for k in range(0, len(prompts), batch_size):
            chunk = [(p, p) for p in prompts[k:k + batch_size]]
            ids, _, mask = pad_batch(chunk, device, ignore=IGNORE)
            probs = torch.softmax(model.forward_padded(ids, mask).float(), dim=-1)  # (B, T, L)
            out.extend(probs[i, :len(p)].cpu().numpy() for i, (p, _) in enumerate(chunk))
    return out


def dev_scores(model: Any, tokenizer: Any, docs: list[Document], window: int, batch_size: int,
               device: Any) -> dict[str, Score]:
    """Entity-level exact (pmid, section, start, end, type) scores on gold documents: "all" and
    one per mention type."""
    task = NerTask(tokenizer, model.config.id2label, window=window, overlap=min(64, window // 4))
    gold, pred = set(), set()
    for doc in docs:
        for section, spans in section_spans(doc).items():
            gold |= {(doc.pmid, section, s, e, t) for s, e, t in spans}
        article = {"pmid": doc.pmid, "version": None, "title": doc.title, "abstract": doc.abstract}
        inp = task.build_inputs(article)
        probs = predict_probs(model, inp.prompts, batch_size, device) if inp.prompts else []
        rows = task.parse_outputs(article, probs, model_id="dev", run_id="dev").rows
        pred |= {(doc.pmid, r["section"], r["start"], r["end"], r["type"]) for r in rows}
    types = sorted({key[-1] for key in gold | pred})
    return {"all": score_sets(gold, pred),
            **{t: score_sets({k for k in gold if k[-1] == t}, {k for k in pred if k[-1] == t})
               for t in types}}


def dev_record(model: Any, tokenizer: Any, docs: list[Document], window: int, batch_size: int,
               device: Any) -> dict[str, Any]:
    """`dev_tp`, ..., `dev_f1` overall and `dev_f1_<Type>` per mention type."""
    scores = dev_scores(model, tokenizer, docs, window, batch_size, device)
    out = {f"dev_{k}": v for k, v in scores.pop("all").to_dict().items()}
    return out | {f"dev_f1_{t}": s.f1 for t, s in scores.items()}


def train_tagger(train: str | Path, dev: str | Path | None, base: str | Path, out_dir: str | Path,
                 config: TaggerConfig = TaggerConfig(), tokenizer: Any = None,
                 on_epoch: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Train (or resume), evaluate each epoch, save best/last; returns one metrics dict per epoch
    run now (`on_epoch` gets each as it is made)."""
    import torch

    from model.loader import save_pretrained

    torch.manual_seed(config.seed)
    check_base(base, "train-tagger", ("token_classifier", "causal_lm"))
    train_docs = read_pubtator(train)[: config.max_docs]
    dev_docs = read_pubtator(dev)[: config.max_docs] if dev else []
    id2label = label_map(train_docs)
    label2id = {v: k for k, v in id2label.items()}
    out_dir = Path(out_dir)
    data = {"train": file_facts(train), "dev": file_facts(dev), "base": str(base)}
    state = load_state(out_dir / "last")
    if state is not None:
        _check_resume(state, config, data, out_dir)
    tokenizer = tokenizer or _tokenizer_for(base)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_tagger(out_dir / "last" if state else base, id2label, device)
    window = min(config.window, model.config.max_position_embeddings)
    examples = encode_examples(train_docs, tokenizer, label2id, window)
    if not examples:
        raise ValueError(f"{train}: the training documents hold no text to tag")
    for name, param in model.named_parameters():
        param.requires_grad = config.full_model or name.startswith("classifier.")
    optim_cfg = config.optim_config()
    params = [p for p in model.parameters() if p.requires_grad]
    stepper = Stepper(token_loss_module(model, IGNORE), build_optimizer(params, optim_cfg),
                      optim_cfg, device)
    history: list[dict[str, Any]] = state["history"] if state else []
    best_epoch = state["best_epoch"] if state else 0
    best = state["best"] if state else -1.0
    if state:
        stepper.load_state_dict(state["stepper"])
        torch.set_rng_state(state["rng"])
        log.info("train-tagger: resuming %s after epoch %d", out_dir, len(history))
    clock = Clock(state["seconds"] if state else 0.0)
    lengths = [len(ids) for ids, _ in examples]
    n_labels = [sum(y != IGNORE for y in labels) for _, labels in examples]
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"data": data | {"train_documents": len(train_docs), "train_windows": len(examples),
                               "dev_documents": len(dev_docs)},
               "config": asdict(config), "labels": id2label, "machine": machine()}
    log.info("train-tagger: %d docs -> %d windows, labels %s, %s, lr %g, %s", len(train_docs),
             len(examples), list(id2label.values()), "whole model" if config.full_model
             else "head only", config.learning_rate, device)
    now: list[dict[str, Any]] = []
    for epoch in range(len(history) + 1, config.epochs + 1):
        record = _run_epoch(model, stepper, examples, lengths, n_labels, config, epoch, device)
        if dev_docs:
            started = time.perf_counter()
            record.update(dev_record(model, tokenizer, dev_docs, window, config.batch_size, device))
            record["dev_seconds"] = time.perf_counter() - started
        score = record.get("dev_f1", float(epoch))  # no dev set: the latest epoch is the best
        if score > best:
            best, best_epoch = score, epoch
            save_pretrained(model, out_dir, tokenizer)
        history.append(record)
        now.append(record)
        log.info("%s", epoch_line(record, config.epochs, best_epoch == epoch))
        save_pretrained(model, out_dir / "last", tokenizer)
        save_state(out_dir / "last", {"config": asdict(config), "data": data, "history": history,
                                      "best": best, "best_epoch": best_epoch, "seconds": clock.seconds,
                                      "stepper": stepper.state_dict(), "rng": torch.get_rng_state()})
        write_summary(out_dir, summary | {
            "epochs_done": epoch, "steps": sum(r["steps"] for r in history),
            "seconds": round(clock.seconds, 1), "best_epoch": best_epoch,
            "best": history[best_epoch - 1] if best_epoch else None, "history": history})
        with (out_dir / "train_log.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        if on_epoch is not None:
            on_epoch(record)
        if config.max_steps and stepper.updates_done >= config.max_steps:
            break
    return now


def _run_epoch(model: Any, stepper: Any, examples: list, lengths: list[int], n_labels: list[int],
               config: TaggerConfig, epoch: int, device: Any) -> dict[str, Any]:
    """One pass over the training windows: one update per micro-batch of `batch_size` windows."""
    model.train()
    start, losses, loss_sum, tokens = time.perf_counter(), [], 0.0, 0
    plan = plan_epoch(lengths, config.batch_size * max(lengths), 1, 1, config.seed, epoch,
                      max_rows=config.batch_size)  # one micro-batch per update
    for update in plan:
        if config.max_steps and stepper.updates_done >= config.max_steps:
            break
        batch = [i for micro in update for i in micro]
        ids, labels, mask = pad_batch([examples[i] for i in batch], device, ignore=IGNORE)
        n_targets = sum(n_labels[i] for i in batch)
        step_loss = stepper.update([{"input_ids": ids, "labels": labels,
                                     "attention_mask": mask}], n_targets)
        loss_sum, tokens = loss_sum + step_loss, tokens + n_targets
        losses.append(step_loss / max(1, n_targets))
    return {"epoch": epoch, "loss": loss_sum / max(1, tokens), "first_loss": losses[0],
            "last_loss": losses[-1], "steps": len(losses), "seconds": time.perf_counter() - start}


def _check_resume(state: dict[str, Any], config: TaggerConfig, data: dict[str, Any],
                  out_dir: Path) -> None:
    """A resume must continue the same run: same files and settings (the epoch count may grow)."""
    free = ("epochs", "max_steps")
    same = {k: v for k, v in state["config"].items() if k not in free} == \
        {k: v for k, v in asdict(config).items() if k not in free}
    if not same or state["data"] != data:
        raise ValueError(f"{out_dir} holds a run with other settings or data (see "
                         f"{out_dir / 'train_summary.json'}); resume it with those or use another -o")
    if len(state["history"]) >= config.epochs:
        log.info("train-tagger: %s already ran %d epochs", out_dir, len(state["history"]))


def _tokenizer_for(base: str | Path) -> Any:
    from model.auto import load_tokenizer
    from model.tokenizer import BioGptTokenizer

    try:
        return load_tokenizer(base)
    except (FileNotFoundError, ValueError, OSError) as exc:
        log.warning("no tokenizer in %s (%s); using the bundled microsoft/biogpt vocabulary", base, exc)
        return BioGptTokenizer.from_pretrained("microsoft/biogpt")
