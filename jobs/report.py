"""`biomine report OUT`: (re)write OUT/report.html, the self-contained page on what a run found."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `report` sub-command."""
    p = sub.add_parser("report", help="write OUT/report.html (counts, errors, plots, example articles)",
                       description=__doc__)
    p.add_argument("output", metavar="OUT", help="biomine run output folder (or update state folder)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Write the report and print its path."""
    from pipeline.curation.report import write_report

    print(f"report: {write_report(args.output)}")
    return 0
