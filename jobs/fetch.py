"""`biomine fetch`: a PubMed query or PMID list -> PubMed XML files for `biomine run` (resumable)."""
from __future__ import annotations

import argparse
import logging
import os
import sys

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `fetch` sub-command."""
    p = sub.add_parser("fetch", help="download PubMed records from NCBI E-utilities (resumable)",
                       description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--query", help='PubMed query, e.g. "aspirin AND 2020:2024[dp]"')
    src.add_argument("--pmids", metavar="FILE", help="text file with one PMID per line")
    p.add_argument("-o", "--output", required=True,
                   help="folder (or s3://, gs:// URI) for fetch_0001.xml ...; rerun to resume")
    p.add_argument("--email", default=os.environ.get("NCBI_EMAIL"),
                   help="contact e-mail NCBI asks for (default: $NCBI_EMAIL)")
    p.add_argument("--api-key", default=os.environ.get("NCBI_API_KEY"),
                   help="NCBI API key: 10 requests/s instead of 3 (default: $NCBI_API_KEY)")
    p.add_argument("--batch-size", type=int, default=10_000, help="records per file (<= 10000)")
    p.add_argument("--base-url", help="E-utilities base URL (default: NCBI's)")
    p.add_argument("--max-tries", type=int, default=6, help="tries per request on 429/5xx")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Build the spec and client, fetch, print where the files are."""
    from pipeline.pubmed.entrez import DEFAULT_BASE_URL, EntrezClient, EntrezConfig, EntrezError
    from pipeline.pubmed.fetch import FetchSpec, fetch, read_pmids

    pmids = read_pmids(args.pmids) if args.pmids else None
    spec = FetchSpec(output=args.output, query=args.query, pmids=pmids, batch_size=args.batch_size)
    config = EntrezConfig(base_url=args.base_url or DEFAULT_BASE_URL, email=args.email,
                          api_key=args.api_key, max_tries=args.max_tries)
    if not args.email:
        log.warning("no --email given: NCBI asks every E-utilities user for a contact address")
    try:
        result = fetch(spec, EntrezClient(config))
    except EntrezError as exc:  # network trouble after retries: one clear line, resumable
        print(f"biomine fetch: error: {exc} (run the same command again to resume)",
              file=sys.stderr)
        return 1
    print(f"fetch: {result.count} records -> {len(result.files)} files in {result.output} "
          f"({result.fetched} fetched now, {result.skipped} already there, "
          f"{result.articles} articles)")
    print(f"  next: biomine run {result.output} -o OUT")
    return 0
