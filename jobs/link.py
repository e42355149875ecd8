"""`biomine link --lexicon LEX IN -o OUT`: rewrite every mention's concept id (PubTator or BioC)."""
from __future__ import annotations

import argparse
import json

from pipeline.config import DEFAULT_LEXICON


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `link` sub-command."""
    p = sub.add_parser("link", help="link the mentions of a PubTator/BioC file to MeSH with a lexicon",
                       description=__doc__ + "\n\nUnlinked mentions get -1; relation lines are kept.")
    p.add_argument("input", metavar="IN", help="PubTator file (or BioC .xml)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="file to write")
    p.add_argument("--lexicon", default=DEFAULT_LEXICON,
                   help=f"lexicon folder (`biomine lexicon build`) or bundled:NAME (default {DEFAULT_LEXICON})")
    p.add_argument("--format", dest="fmt", choices=("auto", "PubTator", "BioC"), default="auto",
                   help="input format (default: .xml is BioC, anything else PubTator)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Relink the file and print the linked share per type (JSON)."""
    from pipeline.linking.apply import load_linker
    from pipeline.linking.relink import link_file

    print(json.dumps(link_file(load_linker(args.lexicon), args.input, args.output, args.fmt)))
    return 0
