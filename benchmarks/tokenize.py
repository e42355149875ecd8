"""Benchmark: BioGPT tokenization texts/s and tokens/s, biomine vs transformers (JSON on stdout).

Run: `taskset -c 1 python -m benchmarks.tokenize [--gold tests/data/gold] [--min-texts 2000]`.
Texts are every distinct title and abstract of the BC5CDR PubTator files and BioGPT's
preprocessed json files. Each tokenizer starts fresh ("cold": its caches fill during the pass)
and then runs a second pass ("warm"). The ids of every text are compared in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

DEFAULT_GOLD = Path(__file__).resolve().parents[1] / "tests" / "data" / "gold"


def load_texts(gold: Path) -> list[str]:
    """Distinct titles and abstracts of *.PubTator.txt (`id|t|` / `id|a|`) and biogpt_*.json files."""
    texts: list[str] = []
    for path in sorted(gold.glob("*.PubTator.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split("|", 2)
            if len(parts) == 3 and parts[1] in ("t", "a"):
                texts.append(parts[2])
    for path in sorted(gold.glob("biogpt_*.json")):
        if path.name.endswith(".entities.json"):
            continue
        try:
            docs = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        for key, doc in docs.items():
            if not isinstance(doc, dict):
                raise ValueError(f"{path}: record {key!r} is not an object")
            texts.extend(doc[k] for k in ("title", "abstract") if doc.get(k))
    return list(dict.fromkeys(texts))


def hf_tokenizer(vocab_dir: Path, tmp: Path) -> Any:
    """transformers' BioGptTokenizer on vocab.json/merges.txt converted from dict.txt/bpecodes."""
    from transformers import BioGptTokenizer as HfBioGptTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for line in (vocab_dir / "dict.txt").read_text(encoding="utf-8").splitlines():
        word = line.split(" ")[0]
        vocab[word[:-2] if word.endswith("@@") else word + "</w>"] = len(vocab)
    (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (tmp / "merges.txt").write_bytes((vocab_dir / "bpecodes").read_bytes())
    return HfBioGptTokenizer(str(tmp / "vocab.json"), str(tmp / "merges.txt"))


def timed(fn: Callable[[str], Any], texts: Sequence[str]) -> tuple[list[Any], float]:
    """Results of fn over texts and the wall seconds it took."""
    start = time.perf_counter()
    out = [fn(t) for t in texts]
    return out, time.perf_counter() - start


def rates(seconds: float, n_texts: int, n_tokens: int) -> dict[str, float]:
    """Seconds, texts/s and tokens/s of one pass."""
    return {"seconds": round(seconds, 3), "texts_per_s": round(n_texts / seconds, 1),
            "tokens_per_s": round(n_tokens / seconds, 1)}


def machine() -> dict[str, Any]:
    """Platform, Python, CPU model and the cores this process may use."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")),
                 platform.processor() or platform.machine())
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu": model,
            "cpu_count": os.cpu_count(), "cpu_affinity": affinity}


def run(gold: Path, min_texts: int) -> dict[str, Any]:
    """Time both tokenizers over the same texts and compare all ids."""
    import transformers

    from model.tokenizer import VOCAB_DIR, BioGptTokenizer

    texts = load_texts(gold)
    if len(texts) < min_texts:
        raise ValueError(f"{gold}: only {len(texts)} distinct texts, need at least {min_texts}")
    with tempfile.TemporaryDirectory() as tmp:
        hf = hf_tokenizer(VOCAB_DIR / "biogpt", Path(tmp))
        hf_ids, hf_cold = timed(hf.encode, texts)
        _, hf_warm = timed(hf.encode, texts)
    tok = BioGptTokenizer.from_pretrained("microsoft/biogpt")
    ids, cold = timed(tok.encode, texts)
    warm_ids, warm = timed(tok.encode, texts)
    offsets_tok = BioGptTokenizer.from_pretrained("microsoft/biogpt")
    with_offsets, offsets_cold = timed(offsets_tok.encode_with_offsets, texts)
    _, offsets_warm = timed(offsets_tok.encode_with_offsets, texts)
    tok.encode_batch(texts[:2])  # import pyarrow outside the timing
    start = time.perf_counter()
    batch = tok.encode_batch(texts)
    batch_warm = time.perf_counter() - start
    n_tokens = sum(len(i) for i in hf_ids)
    mismatches = sum(a != b for a, b in zip(ids, hf_ids))
    mismatches_other = (sum(a != b for a, b in zip(warm_ids, hf_ids))
                        + sum(a[0] != b for a, b in zip(with_offsets, hf_ids))
                        + int(batch["input_ids"].to_pylist() != hf_ids))
    return {
        "bench": "tokenize", "machine": machine(), "transformers": transformers.__version__,
        "texts": len(texts), "chars": sum(map(len, texts)), "tokens": n_tokens,
        "hf": {"cold": rates(hf_cold, len(texts), n_tokens), "warm": rates(hf_warm, len(texts), n_tokens)},
        "biomine": {"cold": rates(cold, len(texts), n_tokens), "warm": rates(warm, len(texts), n_tokens)},
        "biomine_offsets": {"cold": rates(offsets_cold, len(texts), n_tokens),
                            "warm": rates(offsets_warm, len(texts), n_tokens)},
        "biomine_batch_arrow_warm": rates(batch_warm, len(texts), n_tokens),
        "speedup_cold": round(hf_cold / cold, 2), "speedup_warm": round(hf_warm / warm, 2),
        "speedup_offsets_cold": round(hf_cold / offsets_cold, 2),
        "id_mismatches": mismatches, "id_mismatches_other_paths": mismatches_other,
        "identical_ids_pct": round(100.0 * (len(texts) - mismatches) / len(texts), 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print JSON; exit 1 if any ids differ."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gold", type=Path, default=DEFAULT_GOLD,
                    help="folder with *.PubTator.txt / biogpt_*.json files")
    ap.add_argument("--min-texts", type=int, default=2000, help="refuse to run on fewer distinct texts")
    args = ap.parse_args(argv)
    if not args.gold.is_dir():
        print(f"bench_tokenize: error: {args.gold} is not a folder", file=sys.stderr)
        return 2
    try:
        result = run(args.gold, args.min_texts)
    except ValueError as exc:
        print(f"bench_tokenize: error: {exc}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, indent=2)
    print()
    return 1 if result["id_mismatches"] or result["id_mismatches_other_paths"] else 0


if __name__ == "__main__":
    sys.exit(main())
