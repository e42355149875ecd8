"""`biomine update`: mine new daily update files into a current view plus an append-only history."""
from __future__ import annotations

import argparse
import json

from jobs.run import add_lease_option, add_mining_options, mining_values


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `update` sub-command."""
    p = sub.add_parser("update", help="fold new PubMed update files into STATE/current (idempotent)",
                       description=__doc__)
    p.add_argument("-o", "--output", "--state", dest="state", required=True,
                   help="state folder (current/, history/, _state.json)")
    p.add_argument("-i", "--inputs", nargs="+", required=True, metavar="INPUT",
                   help="update files or a folder: files not yet processed are mined in NLM order")
    p.add_argument("--config", help="YAML/TOML/JSON file with RunConfig settings (flags override)")
    p.add_argument("--bucket-width", type=int, default=1_000_000, metavar="N",
                   help="PMIDs per partition of STATE/current (used when the state is created)")
    add_mining_options(p)
    add_lease_option(p, "STATE")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Validate, process the new files, print what changed."""
    from pipeline.config import build_config, load_config_file
    from pipeline.state.partitions import Layout
    from pipeline.dataflow.update_job import update

    file_values = load_config_file(args.config) if args.config else {}
    cli = {"inputs": args.inputs, "output": args.state, **mining_values(args)}
    config = build_config(file_values, cli, file_name=args.config)
    from pipeline.planning.preflight import check_run
    from pipeline.pubmed.read import expand_inputs

    check_run(config, expand_inputs(config.inputs))  # models, -o, inputs: before Ray starts
    summary = update(config, args.state, Layout(bucket_width=args.bucket_width), break_lease=args.break_lease)
    for item in summary["processed"]:
        print(f"{item['file']}: upserted {item['upserted']}, deleted {item['deleted']}, "
              f"current articles {item.get('current_articles', 0)}")
    if summary["skipped"]:
        print(f"already processed, skipped: {', '.join(summary['skipped'])}")
    print(json.dumps({"generation": summary["generation"]}))
    return 0
