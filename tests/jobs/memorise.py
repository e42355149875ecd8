"""Helpers of the RE memorisation tests (`test_re_memorise*.py`): a tiny random BioGPT-shaped
base, PubMed XML built from training documents, and `biomine run` on the session's Ray cluster."""
from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from jobs.cli import main
from model.config import BioGptConfig

SIZE = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256,
            max_position_embeddings=1024, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def save_random_base(path: Path, size: dict[str, Any] | None = None, seed: int = 0) -> Path:
    """A randomly initialised BioGPT-shaped causal LM with BioGPT's tokenizer, saved to `path`."""
    from model.loader import build_random_model, save_pretrained
    from model.tokenizer import BioGptTokenizer

    save_pretrained(build_random_model(BioGptConfig(**(size or SIZE)), seed=seed, device="cpu"),
                    path, BioGptTokenizer.from_pretrained("microsoft/biogpt"))
    return path


def pubmed_xml(docs: list) -> str:
    """A PubmedArticleSet holding each document's title and abstract (objects with pmid, title,
    abstract)."""
    body = "".join(
        f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{d.pmid}'
        f"</PMID><Article><ArticleTitle>{escape(d.title)}</ArticleTitle><Abstract><AbstractText>"
        f"{escape(d.abstract)}</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle>"
        for d in docs)
    return f"<PubmedArticleSet>{body}</PubmedArticleSet>"


def mine(ray_cluster: Any, xml: Path, out: Path, *args: str) -> int:
    """`biomine run XML -o OUT ARGS... --no-progress` on the session's cluster; Ray Data's
    no-progress timeout is raised meanwhile (a CPU model generates slowly on a busy box)."""
    context = ray_cluster.data.DataContext.get_current()
    patience, context.execution_no_progress_timeout_s = context.execution_no_progress_timeout_s, 600
    try:
        return main(["run", str(xml), "-o", str(out), *args, "--no-progress",
                     "--address", ray_cluster.get_runtime_context().gcs_address])
    finally:
        context.execution_no_progress_timeout_s = patience


def train_memorise(task: str, gold: Path, base: Path, out: Path, *, epochs: int, lr: str, warmup: int,
                   micro_batch_tokens: int) -> int:
    """`biomine train-re` as the memorisation tests run it: one document per update, target-only
    loss, the last 2 epochs averaged, seed 0."""
    return main(["train-re", "--task", task, "--train", str(gold), "--base", str(base), "-o", str(out),
                 "--epochs", str(epochs), "--lr", lr, "--warmup", str(warmup), "--tokens-per-update", "1",
                 "--micro-batch-tokens", str(micro_batch_tokens), "--keep-last", "2",
                 "--target-only-loss", "--seed", "0"])
