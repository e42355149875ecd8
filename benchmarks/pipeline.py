"""Benchmark the whole job: articles/s end to end and the fraction of wall time the GPU stage is busy.

    python -m benchmarks.pipeline --records 2000                  # tiny demo model, local Ray
    python -m benchmarks.pipeline --records 20000 --preset base   # base config, random weights (GPU)

Input: the bundled sample's records replicated (new PMIDs) into NLM-named files. Prints JSON.
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


def main(argv: list[str] | None = None) -> int:
    """Run the job on synthetic input and print the figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--per-file", type=int, default=500)
    ap.add_argument("--preset", choices=["demo", "base", "large"], default="demo")
    ap.add_argument("--tasks", default="re-bc5cdr")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--dtype", default="auto")
    args = ap.parse_args(argv)

    import ray
    import torch

    from pipeline.build import run
    from pipeline.config import RunConfig

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        files = make_inputs(root / "in", args.records, args.per_file)
        model = None if args.preset == "demo" else random_model_dir(root, args.preset)
        config = RunConfig(inputs=files, output=str(root / "out"), tasks=args.tasks,
                           re_model=model, ner_model=None, demo_model=model is None,
                           max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                           dtype=args.dtype, progress=False)
        started = time.perf_counter()
        manifest = run(config)
        wall = time.perf_counter() - started
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
    }
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0 if manifest["status"] == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
