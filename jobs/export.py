"""`biomine export OUT --format pubtator|bioc-json|bioc-xml|jsonl|tsv -o FILE_OR_DIR`: curation files."""
from __future__ import annotations

import argparse

FORMATS = ("pubtator", "bioc-json", "bioc-xml", "jsonl", "tsv")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `export` sub-command."""
    p = sub.add_parser("export", help="write a run's output as PubTator, BioC, JSON lines or TSV",
                       description="Streams over OUT's Parquet tables (a run folder or an update state "
                                   "folder) and writes one file (.gz: compressed); tsv into a folder "
                                   "writes articles.tsv, relations.tsv and entities.tsv.")
    p.add_argument("output", metavar="OUT", help="biomine run output folder (or update state folder)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("-o", "--to", dest="target", required=True, metavar="FILE_OR_DIR",
                   help="file to write (name ending in .gz: gzip); tsv: a folder for all tables")
    p.add_argument("--task", action="append", metavar="TASK",
                   help="export only this task's rows: ner, re-bc5cdr, re-ddi, re-kd-dti (repeatable)")
    p.add_argument("--relation", action="append", metavar="LABEL",
                   help="keep only relations with this label, e.g. CID (repeatable)")
    p.add_argument("--min-score", type=float, help="keep only entities with score >= this")
    p.add_argument("--pmids", metavar="FILE", help="export only the PMIDs listed in FILE (one a line)")
    p.add_argument("--table", choices=("articles", "relations", "entities"),
                   help="tsv into one file: which table (default relations; entities with --task ner)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Build the selection, export, print the counts."""
    from pipeline.config import ALL_TASKS
    from pipeline.curation.export import export
    from pipeline.curation.source import Selection, read_pmids_file

    tasks = tuple(dict.fromkeys(t for arg in args.task or () for t in arg.split(",") if t))
    unknown = [t for t in tasks if t not in ALL_TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; choose from {list(ALL_TASKS)}")
    sel = Selection(tasks=tasks or None, relations=tuple(args.relation) if args.relation else None,
                    min_score=args.min_score,
                    pmids=read_pmids_file(args.pmids) if args.pmids else None)
    counts = export(args.output, args.format, args.target, sel, tsv_table=args.table)
    print(f"exported {counts['documents']} documents, {counts['mentions']} mentions, "
          f"{counts['relations']} relations -> {args.target}")
    return 0
