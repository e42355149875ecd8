"""`biomine` command line: one sub-command per job module (each exposes `register(subparsers)`)."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Each module defines `register(subparsers)`, which adds its sub-command and sets `func`.
# Modules import heavy dependencies (torch, ray) inside their handlers, so `--help` stays fast.
COMMANDS: tuple[str, ...] = (
    "jobs.parse",
    "jobs.evaluate",
    "jobs.train_tagger",
    "jobs.train_re",
    "jobs.run",
    "jobs.update",
    "jobs.convert",
    "jobs.fetch",
    "jobs.export",
    "jobs.aggregate",
    "jobs.report",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="biomine", description="Mine PubMed with BioGPT on Ray: parse, run, update, fetch, train, evaluate.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `biomine` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as exc:  # user errors: one clear line, no traceback
        print(f"biomine {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # a failed job: its traceback is already in the log
        print(f"biomine {args.command}: failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
