"""Benchmark the whole job: articles/s, GPU-stage busy share and the engine counters.

    python -m benchmarks.pipeline --records 2000                  # tiny demo model, local Ray
    python -m benchmarks.pipeline --records 5000 --preset demo-stops --batch-size 128 --max-num-seqs 128
    python -m benchmarks.pipeline --records 20000 --preset base   # base config, random weights (GPU)

`demo-stops` is the demo model with its final LayerNorm bias pushed toward the eos embedding
(`--eos-bias`), so greedy outputs stop early or run long like real RE outputs; the JSON
reports the output-length distribution it gave. Input: the bundled sample's records
replicated (new PMIDs) into NLM-named files. Prints JSON (and writes it to --out).
"""
from __future__ import annotations

import argparse
import gzip
import json
import platform
import re
import sys
import tempfile
import time
from pathlib import Path


def make_inputs(folder: Path, records: int, per_file: int) -> list[str]:
    """Replicate the sample's articles into files of `per_file` records with fresh PMIDs."""
    from jobs.run import sample_inputs

    articles = []
    for path in sample_inputs():
        text = gzip.decompress(Path(path).read_bytes()).decode()
        articles += re.findall(r"<PubmedArticle>.*?</PubmedArticle>", text, flags=re.S)
    files, pmid = [], 90_000_000
    for f in range((records + per_file - 1) // per_file):
        chunk = []
        for k in range(min(per_file, records - f * per_file)):
            art = articles[(f * per_file + k) % len(articles)]
            pmid += 1
            chunk.append(re.sub(r"(<MedlineCitation[^>]*>\s*<PMID[^>]*>)\d+(</PMID>)",
                                rf"\g<1>{pmid}\g<2>", art, count=1))
        path = folder / f"pubmed26n{f + 1:04d}.xml.gz"
        path.write_bytes(gzip.compress(("<PubmedArticleSet>" + "".join(chunk)
                                        + "</PubmedArticleSet>").encode()))
        files.append(str(path))
    return files


def random_model_dir(folder: Path, preset: str) -> str:
    """A saved random-weight model of a real config with learned1..9 (the RE vocabulary)."""
    import dataclasses

    from model.config import PRESETS
    from model.demo import LEARNED_PROMPT
    from model.loader import build_random_model, save_pretrained
    from model.tokenizer import BioGptTokenizer

    name = {"base": "microsoft/biogpt", "large": "microsoft/BioGPT-Large"}[preset]
    tokenizer = BioGptTokenizer.from_pretrained(name)
    tokenizer.add_tokens(list(LEARNED_PROMPT))
    config = dataclasses.replace(PRESETS[name], vocab_size=len(tokenizer))
    model = build_random_model(config, seed=0, device="cpu")
    save_pretrained(model, folder / preset, tokenizer=tokenizer)
    return str(folder / preset)


def stopping_demo_dir(folder: Path, eos_bias: float) -> str:
    """The demo RE model (seed 0) with eos made likely by `eos_bias`, saved with its tokenizer."""
    import torch

    from model.demo import LEARNED_PROMPT, build_demo_model
    from model.loader import save_pretrained
    from model.tokenizer import BioGptTokenizer

    model = build_demo_model("re", device="cpu")
    emb = model.biogpt.embed_tokens.weight.detach()
    with torch.no_grad():
        model.biogpt.layer_norm.bias.copy_(eos_bias * emb[2] / emb[2].norm())
    tokenizer = BioGptTokenizer.from_pretrained("microsoft/biogpt")
    tokenizer.add_tokens(list(LEARNED_PROMPT))
    save_pretrained(model, folder / "demo-stops", tokenizer=tokenizer)
    return str(folder / "demo-stops")


def output_lengths(model_dir: str | None, max_new_tokens: int, batch_size: int) -> dict:
    """Greedy output lengths of the model over the sample's distinct abstracts (the benchmark's
    records are copies of them, so this is the run's length distribution)."""
    import numpy as np

    from jobs.run import sample_inputs
    from model.engine import Engine, EngineConfig
    from model.loader import load_model
    from model.sampling import SamplingParams
    from pipeline.config import RunConfig
    from pipeline.dataflow.gpu_stage import re_model_len
    from pipeline.pubmed.xml import iter_records
    from pipeline.dataflow.runtime import RelationRunner

    config = RunConfig(inputs=["-"], output="-", re_model=model_dir, demo_model=model_dir is None,
                       max_new_tokens=max_new_tokens)
    runner = RelationRunner(config)
    prompts, seen = [], set()
    for path in sample_inputs():
        for rec in iter_records(path):
            row = rec if isinstance(rec, dict) else vars(rec)
            if row.get("abstract") and row.get("pmid") not in seen:
                seen.add(row.get("pmid"))
                prompts.append(list(runner.build_inputs(row).prompt_ids))
    if model_dir is None:
        from model.demo import build_demo_model

        model = build_demo_model("re", device="cpu")
    else:
        model = load_model(model_dir, device="cpu")
    engine = Engine(model, config=EngineConfig(max_model_len=re_model_len(config, 1024),
                                               max_num_seqs=batch_size))
    n = np.array([len(g.token_ids) for g in engine.generate(prompts, SamplingParams(max_new_tokens=max_new_tokens))])
    return {"distinct_abstracts": len(prompts), "mean": round(float(n.mean()), 2),
            "p50": float(np.percentile(n, 50)), "p90": float(np.percentile(n, 90)), "max": int(n.max()),
            "at_cap": int((n == max_new_tokens).sum()), "zero": int((n == 0).sum())}


def main(argv: list[str] | None = None) -> int:
    """Run the job on synthetic input and print the figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--per-file", type=int, default=500)
    ap.add_argument("--preset", choices=["demo", "demo-stops", "base", "large"], default="demo")
    ap.add_argument("--eos-bias", type=float, default=8.0, help="demo-stops: eos push (7.9 runs long)")
    ap.add_argument("--max-num-seqs", type=int, default=256, help="engine slots")
    ap.add_argument("--kv-cache-tokens", type=int, default=None)
    ap.add_argument("--gpu-batches-in-flight", type=int, default=None)
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--lengths", action="store_true", help="report the output-length distribution")
    ap.add_argument("--tasks", default="re-bc5cdr")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--dtype", default="auto")
    args = ap.parse_args(argv)

    import ray
    import torch

    from pipeline.dataflow.build import run
    from pipeline.config import RunConfig

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        files = make_inputs(root / "in", args.records, args.per_file)
        if args.preset == "demo":
            model = None
        elif args.preset == "demo-stops":
            model = stopping_demo_dir(root, args.eos_bias)
        else:
            model = random_model_dir(root, args.preset)
        config = RunConfig(inputs=files, output=str(root / "out"), tasks=args.tasks,
                           re_model=model, ner_model=None, demo_model=model is None,
                           max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                           dtype=args.dtype, progress=False, max_num_seqs=args.max_num_seqs,
                           kv_cache_tokens=args.kv_cache_tokens,
                           gpu_batches_in_flight=args.gpu_batches_in_flight)
        started = time.perf_counter()
        manifest = run(config)
        wall = time.perf_counter() - started
        lengths = output_lengths(model, args.max_new_tokens, args.batch_size) if args.lengths else {}
        gpus = int(ray.cluster_resources().get("GPU", 0)) or 1
    written = manifest["counts"]["written"]
    busy = written.get("n_gpu_busy_us", 0) / 1e6
    out = {
        "benchmark": "pipeline",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": ray.cluster_resources().get("CPU"), "gpus": ray.cluster_resources().get("GPU", 0),
                    "gpu_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "torch": torch.__version__, "ray": ray.__version__},
        "settings": vars(args),
        "status": manifest["status"],
        "articles": written.get("articles", 0),
        "generated_tokens": written.get("n_generated", 0),
        "wall_s": round(wall, 3),
        "articles_per_s": round(written.get("articles", 0) / wall, 2),
        "generated_tokens_per_s": round(written.get("n_generated", 0) / wall, 1),
        "gpu_stage_busy_s": round(busy, 3),
        "gpu_stage_busy_fraction": round(busy / (wall * gpus), 4),
        "output_lengths": lengths,
        "engine": manifest.get("engine"),
    }
    json.dump(out, sys.stdout, indent=2)
    print()
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0 if manifest["status"] == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
