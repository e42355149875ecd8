"""`biomine` command line: one sub-command per job module (each exposes `register(subparsers)`)."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator

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
    "jobs.lexicon",
    "jobs.link",
)


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WITH_ERRORS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows each option's default unless it is empty or the help text already names it;
    descriptions and epilogs keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.default not in (None, False, argparse.SUPPRESS) and "default" not in text
                and action.option_strings and not isinstance(action.default, bool)):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """Sub-command parser: defaults shown in --help."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("biomine")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="biomine",
        description="Mine PubMed with BioGPT on Ray: parse, run, update, fetch, train, evaluate.",
        epilog="exit codes: 0 done, 1 failed, 2 bad usage, failed preflight or output leased by "
               "another live job, 3 finished with record/file errors, 130 interrupted")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, full tracebacks")
    parser.add_argument("--version", action="version", version=f"biomine {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    for command in sub.choices.values():  # `biomine run ... -v` works as well as `biomine -v run`
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="debug logging, full tracebacks")
    return parser


def _quiet_ray_logs(verbose: bool) -> None:
    """No auth-token or core-worker chatter on a default local run (README quickstart)."""
    import os

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if not verbose:
        for name in ("ray", "ray.data", "ray._private", "ray.util"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _warn_on_lock_drift(name: str) -> None:
    """One warning line when a source checkout runs with other versions than its lock."""
    import os

    from jobs.lockfile import drift_warning

    if os.environ.get("BIOMINE_SKIP_LOCK_CHECK") != "1":
        warning = drift_warning()
        if warning:
            print(f"{name}: warning: {warning}", file=sys.stderr)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (`ray job stop`, a pod or a scheduler stopping the driver) ends a command as Ctrl-C
    does: the manifest says interrupted, leases are released, committed work is kept (exit 130)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `biomine` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _quiet_ray_logs(args.verbose)
    name = f"biomine {args.command}"
    _warn_on_lock_drift(name)
    try:
        with sigterm_as_interrupt():
            return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:  # RunInterrupted too: the manifest already says so
        where = f" ({exc.manifest['run_id']})" if hasattr(exc, "manifest") else ""
        print(f"\n{name}: interrupted{where}; committed work is kept: run the same command again "
              "to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (FileNotFoundError, ValueError) as exc:  # user errors: one clear line each, no traceback
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(line if line[:1].isspace() else f"{name}: error: {line}", file=sys.stderr)
        if args.verbose:
            import traceback

            traceback.print_exc()
        return EXIT_USAGE
    except RuntimeError as exc:  # a failed job: root cause, advice, where the traceback is
        print(f"{name}: failed: {getattr(exc, 'summary', exc)}", file=sys.stderr)
        if getattr(exc, "advice", None):
            print(f"  {exc.advice}", file=sys.stderr)
        if args.verbose and getattr(exc, "details", None):
            print(exc.details, file=sys.stderr)
        elif getattr(exc, "log_path", None):
            print(f"  full traceback: {exc.log_path} (or run with -v)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
