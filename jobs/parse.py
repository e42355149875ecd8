"""`biomine parse INPUT... -o OUT_DIR`: PubMed XML files -> articles/deletions/errors Parquet."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("articles", "deletions", "errors")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `parse` sub-command."""
    p = subparsers.add_parser(
        "parse", help="parse PubMed/MEDLINE XML (.xml, .xml.gz) into Parquet",
        description="Parse PubMed/MEDLINE XML files into OUT_DIR/{articles,deletions,errors}/"
                    "<file>.parquet, one part per input file.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="XML files, globs or directories (*.xml, *.xml.gz), read in NLM order")
    p.add_argument("-o", "--output", "--out", dest="out", required=True, metavar="OUT_DIR",
                   help="output directory (local, s3://bucket/prefix or gs://...)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first broken file or record instead of writing an error row")
    p.add_argument("--batch-rows", type=int, default=2000, metavar="N",
                   help="rows per Parquet row group (default 2000)")
    p.set_defaults(func=run_parse)


def _part_name(path: str) -> str:
    """Part file name for an input: its basename without .xml/.xml.gz, plus .parquet."""
    from pipeline.pubmed.schema import file_stem

    return file_stem(str(path)) + ".parquet"


def parse_files(paths: list[str], out_dir: str | Path, *, strict: bool = False,
                batch_rows: int = 2000, progress: bool | None = None) -> dict[str, int]:
    """Parse each file to Parquet parts under out_dir (a part appears only once its file is
    parsed whole, also on an object store); return summary counts."""
    from contextlib import ExitStack

    import pyarrow.parquet as pq
    from tqdm import tqdm

    from pipeline.pubmed.xml import iter_tables
    from pipeline.pubmed.schema import schema_for
    from pipeline.storage import Location

    out = Location.open(out_dir)

    counts = {"files": len(paths), "records": 0, "articles": 0, "with_abstract": 0,
              "deletions": 0, "errors": 0}
    disable = (not sys.stderr.isatty()) if progress is None else not progress
    bar = tqdm(total=None, unit="rec", desc="parse", disable=disable, file=sys.stderr)
    try:
        for i, path in enumerate(paths, 1):
            bar.set_postfix_str(f"file {i}/{len(paths)} {Path(path).name}")
            writers: dict[str, pq.ParquetWriter] = {}
            with ExitStack() as files:  # on an error every part of this file is dropped
                for kind, table in iter_tables(path, batch_rows=batch_rows, strict=strict):
                    if kind not in writers:
                        stream = files.enter_context(out.open_output(f"{kind}/{_part_name(path)}"))
                        writers[kind] = files.enter_context(pq.ParquetWriter(stream, schema_for(kind)))
                    writers[kind].write_table(table, row_group_size=batch_rows)
                    counts[kind] += table.num_rows
                    if kind == "articles":
                        counts["with_abstract"] += table.num_rows - table["abstract"].null_count
                    if kind != "errors":
                        bar.update(table.num_rows)
    finally:
        bar.close()
    counts["records"] = counts["articles"] + counts["deletions"]
    return counts


def run_parse(args: argparse.Namespace) -> int:
    """Handler: expand inputs (missing -> error before any work), parse, print a summary."""
    from pipeline.pubmed.read import expand_inputs

    if args.batch_rows < 1:
        raise ValueError(f"--batch-rows must be >= 1, got {args.batch_rows}")
    paths = expand_inputs(args.inputs)
    counts = parse_files(paths, args.out, strict=args.strict, batch_rows=args.batch_rows)
    print(f"files: {counts['files']}  records: {counts['records']}  "
          f"articles: {counts['articles']}  with abstract: {counts['with_abstract']}  "
          f"deletions: {counts['deletions']}  errors: {counts['errors']}  -> {args.out}")
    if counts["errors"]:
        log.warning("%d error row(s) written to %s/errors", counts["errors"], args.out.rstrip("/"))
        return 3  # finished with record/file errors, as `biomine run`
    return 0
