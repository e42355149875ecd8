"""`biomine run`: the main job (PubMed XML -> relations/entities Parquet), resumable."""
from __future__ import annotations

import argparse
import json
import logging
from importlib import resources

log = logging.getLogger(__name__)


def sample_inputs() -> list[str]:
    """The bundled sample: real PubMed baseline + update subsamples shipped in the package."""
    folder = resources.files("pipeline") / "data" / "sample"
    return sorted(str(p) for p in folder.iterdir() if p.name.endswith((".xml", ".xml.gz")))


def add_mining_options(p: argparse.ArgumentParser) -> None:
    """Model, task and resource flags shared by `run` and `update`."""
    p.add_argument("--tasks", help="comma list of re-bc5cdr, re-ddi, re-kd-dti, ner")
    p.add_argument("--re-model", help="RE checkpoint: hub repo id or local folder")
    p.add_argument("--ner-model", help="token-classification checkpoint: hub repo id or folder")
    p.add_argument("--entities", help="entity dictionary (*.entities.json) for ID linking")
    p.add_argument("--demo-model", action="store_true", default=None,
                   help="tiny random BioGPT built on the spot (runs anywhere; output meaningless)")
    p.add_argument("--gpus", type=int, help="GPU actors (default: every GPU of the cluster)")
    p.add_argument("--batch-size", type=int, help="rows per GPU batch (default 256)")
    p.add_argument("--cpu-batch-size", type=int, help="rows per CPU-stage batch (default 256)")
    p.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"])
    p.add_argument("--max-new-tokens", type=int, help="RE generation budget (default 256)")
    p.add_argument("--limit", type=int, help="mine at most N articles (first in NLM order)")
    p.add_argument("--address", help="Ray address to join (ray://host:10001, auto)")
    p.add_argument("--run-id", help="run id recorded in every row (default: generated)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None)


def mining_values(args: argparse.Namespace) -> dict:
    """The RunConfig values given by the shared flags (None where not given)."""
    return {"tasks": args.tasks, "re_model": args.re_model, "ner_model": args.ner_model,
            "entities": args.entities, "demo_model": args.demo_model, "gpus": args.gpus,
            "batch_size": args.batch_size, "cpu_batch_size": args.cpu_batch_size, "dtype": args.dtype,
            "max_new_tokens": args.max_new_tokens, "limit": args.limit, "address": args.address,
            "run_id": args.run_id, "progress": args.progress}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `run` sub-command."""
    p = sub.add_parser("run", help="mine PubMed XML with BioGPT into Parquet (resumable)",
                       description=__doc__)
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="XML files, globs or folders")
    p.add_argument("-o", "--output", help="output folder (a rerun with the same folder resumes)")
    p.add_argument("--sample", action="store_true", help="use the bundled sample PubMed files")
    p.add_argument("--config", help="YAML/TOML/JSON file with RunConfig settings (flags override)")
    add_mining_options(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Validate the configuration, run the job, print the manifest summary."""
    from pipeline.build import run
    from pipeline.config import build_config, load_config_file
    from pipeline.engine_stats import engine_summary

    file_values = load_config_file(args.config) if args.config else {}
    inputs = list(args.inputs) + (sample_inputs() if args.sample else [])
    cli = {"inputs": inputs or None, "output": args.output, **mining_values(args)}
    config = build_config(file_values, cli)
    manifest = run(config)
    written = manifest["counts"]["written"]
    index = manifest["counts"]["index"]
    print(f"run {manifest['run_id']}: {manifest['status']}")
    print(f"  files {manifest['inputs']['files']}, records {index['records']}, deletions "
          f"{index['deletions']}, latest {index['latest']}, already done {index['done']}")
    print(f"  written: articles {written.get('articles', 0)}, relations {written.get('relations', 0)}, "
          f"entities {written.get('entities', 0)}, errors {written.get('errors', 0)} "
          f"(+{manifest['counts']['file_errors']} file errors)")
    print(f"  engine: {engine_summary(manifest.get('engine'))}")
    print(f"  {manifest['wall_s']:.1f}s, {manifest['abstracts_per_s']} articles/s -> "
          f"{config.output}/_manifest.json")
    log.debug("manifest: %s", json.dumps(manifest, default=str))
    return 0
