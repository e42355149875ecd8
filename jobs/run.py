"""`biomine run`: the main job (PubMed XML -> relations/entities Parquet), resumable."""
from __future__ import annotations

import argparse
import json
import logging
from importlib import resources

from pipeline.config import DEFAULT_LEXICON

log = logging.getLogger(__name__)


def sample_inputs() -> list[str]:
    """The bundled sample: real PubMed baseline + update subsamples shipped in the package."""
    folder = resources.files("pipeline") / "data" / "sample"
    return sorted(str(p) for p in folder.iterdir() if p.name.endswith((".xml", ".xml.gz")))


def _default(name: str) -> str:
    """` (default: X)` from RunConfig, the one place defaults live."""
    from pipeline.config import RunConfig

    field = RunConfig.model_fields[name]
    value = field.default_factory() if field.default_factory else field.default
    if isinstance(value, list):
        value = ",".join(value)
    return "" if value is None else f" (default: {value})"


def add_mining_options(p: argparse.ArgumentParser) -> None:
    """Model, task and resource flags shared by `run` and `update`."""
    p.add_argument("--tasks", help="comma list of re-bc5cdr, re-ddi, re-kd-dti, ner" + _default("tasks"))
    p.add_argument("--re-model", help="RE checkpoint: hub repo id or local folder")
    p.add_argument("--ner-model", help="token-classification checkpoint: hub repo id, folder or "
                   "bundled:NAME (default with ner: bundled:cdr-small; 'demo': the random tagger)")
    p.add_argument("--entities", help="entity dictionary (*.entities.json) for ID linking")
    p.add_argument("--lexicon", help="MeSH lexicon that links every mention and relation end: a folder "
                   f"(`biomine lexicon build`) or bundled:NAME (default {DEFAULT_LEXICON}); 'none': no linking")
    p.add_argument("--demo-model", action="store_true", default=None,
                   help="tiny random BioGPT built on the spot for RE (runs anywhere; output "
                   "meaningless); ner keeps the bundled tagger unless --ner-model demo")
    p.add_argument("--gpus", type=int, help="GPU actors (default: every GPU of the cluster)")
    p.add_argument("--batch-size", type=int, help="rows per GPU batch" + _default("batch_size"))
    p.add_argument("--cpu-batch-size", type=int, help="rows per CPU-stage batch" + _default("cpu_batch_size"))
    p.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"],
                   help="model dtype; auto: bf16/fp16 on GPU, fp32 on CPU" + _default("dtype"))
    p.add_argument("--max-new-tokens", type=int, help="RE generation budget" + _default("max_new_tokens"))
    p.add_argument("--limit", type=int, help="mine at most N articles (first in NLM order; default: all)")
    p.add_argument("--address",
                   help="Ray address to join (ray://host:10001, auto; default: start a local Ray)")
    p.add_argument("--stall-timeout", dest="stall_timeout_s", type=float, metavar="SECONDS",
                   help="fail (exit 1, naming what Ray cannot place) when no article moves for this "
                        "long; 0 = never" + _default("stall_timeout_s"))
    p.add_argument("--run-id", help="run id recorded in every row (default: generated)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress line")


def add_lease_option(p: argparse.ArgumentParser, folder: str) -> None:
    """`--break-lease`, shared by `run` and `update`."""
    p.add_argument("--break-lease", action="store_true",
                   help=f"remove {folder}/_lease.json first: only when the job it names is dead (a lease "
                        "without a heartbeat for lease_ttl_s is taken over anyway)")


def config_only_settings() -> str:
    """Help text listing the RunConfig settings that have no flag (config file only)."""
    from pipeline.config import RunConfig

    flagged = set(_FLAG_FIELDS) | {"inputs", "output"}
    rows = [f"  {name}{_default(name)}: {field.description or ''}".rstrip(": ")
            for name, field in RunConfig.model_fields.items() if name not in flagged]
    return "settings only in a --config file:\n" + "\n".join(rows)


_FLAG_FIELDS = ("tasks", "re_model", "ner_model", "entities", "lexicon", "demo_model", "gpus", "batch_size",
                "cpu_batch_size", "dtype", "max_new_tokens", "limit", "address", "run_id", "progress",
                "stall_timeout_s")


def mining_values(args: argparse.Namespace) -> dict:
    """The RunConfig values given by the shared flags (None where not given)."""
    return {"tasks": args.tasks, "re_model": args.re_model, "ner_model": args.ner_model,
            "entities": args.entities, "lexicon": args.lexicon, "demo_model": args.demo_model, "gpus": args.gpus,
            "batch_size": args.batch_size, "cpu_batch_size": args.cpu_batch_size, "dtype": args.dtype,
            "max_new_tokens": args.max_new_tokens, "limit": args.limit, "address": args.address,
            "run_id": args.run_id, "progress": args.progress, "stall_timeout_s": args.stall_timeout_s}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `run` sub-command."""
    p = sub.add_parser("run", help="mine PubMed XML with BioGPT into Parquet (resumable)",
                       description=__doc__, epilog=config_only_settings()
                       + "\n\nexit codes: 0 all mined, 1 failed, 2 bad usage, preflight or OUT in use "
                       "by another live run, 3 finished with record/file errors, 130 interrupted\n")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="XML files, globs or folders")
    p.add_argument("-o", "--output", help="output folder (a rerun with the same folder resumes)")
    p.add_argument("--sample", action="store_true", help="use the bundled sample PubMed files")
    p.add_argument("--config", help="YAML/TOML/JSON file with RunConfig settings (flags override)")
    p.add_argument("--strict", action="store_true",
                   help="any file or record error fails the run (exit 1) instead of exit 3")
    p.add_argument("--rows-per-file", type=int, help="articles per output Parquet file (default 100000)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (files, records, done, to mine, output size) and exit")
    add_mining_options(p)
    add_lease_option(p, "OUT")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Validate the configuration and the preflight (before Ray starts), run, print the summary.

    Exit code 0 when every record was mined cleanly, 3 when the run finished with record or
    file errors (listed), failures raise (the CLI maps them to 1, 2 or 130).
    """
    from pipeline.config import build_config, load_config_file
    from pipeline.planning.preflight import check_run
    from pipeline.pubmed.read import expand_inputs

    file_values = load_config_file(args.config) if args.config else {}
    inputs = list(args.inputs) + (sample_inputs() if args.sample else [])
    cli = {"inputs": inputs or None, "output": args.output, "rows_per_file": args.rows_per_file,
           **mining_values(args)}
    config = build_config(file_values, cli, file_name=args.config)
    check_run(config, expand_inputs(config.inputs))  # fast: before Ray is even imported
    if args.dry_run:
        from pipeline.planning.plan import format_plan, plan

        print(format_plan(plan(config)))
        return 0

    from pipeline.dataflow.build import run
    from jobs.run_summary import print_summary

    manifest = run(config, strict=args.strict, break_lease=args.break_lease)
    log.debug("manifest: %s", json.dumps(manifest, default=str))
    return print_summary(manifest, config.output)
