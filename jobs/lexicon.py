"""`biomine lexicon build`: compile MeSH/OBO/gold/PubMed names into a lexicon folder for --lexicon."""
from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `lexicon` sub-command."""
    p = sub.add_parser("lexicon", help="build a MeSH name lexicon (for run/update/link --lexicon)",
                       description=__doc__)
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    b = verbs.add_parser("build", help="compile source files into a lexicon folder",
                         description="Every source is optional and repeatable; a name found in "
                                     "several sources keeps the first source in the order gold, "
                                     "mesh, obo, entities, corpus-index.")
    b.add_argument("--mesh", action="append", default=[], metavar="FILE",
                   help="NLM MeSH desc*.xml(.gz) or supp*.xml(.gz)")
    b.add_argument("--obo", action="append", default=[], metavar="FILE",
                   help="OBO file whose terms carry MESH: xrefs (e.g. the Disease Ontology)")
    b.add_argument("--obo-type", default="Disease", help="entity type of OBO terms")
    b.add_argument("--pubtator", action="append", default=[], metavar="FILE",
                   help="PubTator gold file (mention text -> MeSH id)")
    b.add_argument("--entities", action="append", default=[], metavar="FILE",
                   help="BioGPT *.entities.json dictionary")
    b.add_argument("--pubmed", action="append", default=[], metavar="FILE",
                   help="PubMed XML: the names of its ChemicalList/MeshHeading indexing")
    b.add_argument("--index", action="append", default=[], metavar="OUT",
                   help="run folder: the MeSH names its inputs are indexed with, collected while "
                        "`biomine run` (or `run --dry-run`) indexed them (no extra parse)")
    b.add_argument("-o", "--output", required=True, help="lexicon folder to write")
    b.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Build the lexicon and print what went in (JSON)."""
    from pipeline.linking.build import build_lexicon

    inputs = [(kind, path) for kind in ("pubtator", "mesh", "obo", "entities", "pubmed", "index")
              for path in getattr(args, kind)]
    print(json.dumps(build_lexicon(inputs, args.output, args.obo_type), indent=2))
    return 0
