"""`biomine aggregate OUT`: build OUT/graph/ (edges: pair -> articles; nodes) with Ray Data."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `aggregate` sub-command."""
    p = sub.add_parser("aggregate", help="build the relation graph OUT/graph/{edges,nodes} (Ray Data)",
                       description=__doc__)
    p.add_argument("output", metavar="OUT", help="biomine run output folder (or update state folder)")
    p.add_argument("--address", help="Ray address to join (default: start a local Ray)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Join or start Ray, rebuild the graph, print its size."""
    import ray

    from pipeline.curation.graph import build_graph
    from pipeline.curation.source import open_folder
    from pipeline.dataflow.ray_session import storage_node_env

    out = open_folder(args.output)  # local folder, s3:// or gs://
    if not ray.is_initialized():
        env = storage_node_env([args.output])  # the workers open OUT themselves
        ray.init(address=args.address, include_dashboard=False,
                 runtime_env={"env_vars": env} if env else None)
    counts = build_graph(out)
    print(f"graph: {counts['edges']} edges, {counts['nodes']} nodes -> {out.url('graph')}")
    return 0
