"""``enerdatx bench NAME``: benchmarks that print one JSON object (``--json``) or a table."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from enerdatx.cli import chosen_command

# Each module enerdatx.bench.NAME defines ``add_arguments(parser)`` and ``run(args) -> dict``;
# here is the first line of its docstring (a test keeps the two the same), so that listing the
# benchmarks imports none of them: together they take three seconds to import.
BENCHMARKS = {
    "trustchain": "TrustChain ledger throughput between two in-process peers, against the Ed25519 bound.",
    "ipfs": "Content-store throughput: embedded add and cat against sha256 and kubo, on one file.",
    "network": "Transaction latency and throughput between two peers, against a bare IPv8 signed round trip.",
    "fraud": "Seconds until every honest peer holds the proof of a fork, the bytes each peer sent and its memory.",
    "market": "Market trades per second and latency from bid to verified data, against bare TrustChain transactions.",
    "reputation": "One peer's NetFlow and Temporal PageRank over a market of real signed blocks, against plain PageRank.",
    "robustness": "Robustness figures: fuzzing, crashes, network faults, fraud under loss, floods, bad input.",
    "meter": "Ingest DSMR P1 telegrams at 10-second rate: telegrams/s and peak memory, vs bare dsmr-parser.",
    "subscription": "Subscription periods settled per second on one seller, "
                    "and live ingest telegrams/s vs bare dsmr-parser.",
    "privacy": "Privacy report of a year of 15-minute readings, and a data union's secure aggregation of 100 members.",
}


def configure(bench: argparse.ArgumentParser, argv: Sequence[str] | None) -> None:
    """Build one sub-command per benchmark, with the options of only the one ``argv`` (the words
    after ``bench``) names; with ``argv`` None, of all."""
    inner = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    chosen, _rest = chosen_command(argv)
    for name, help_text in BENCHMARKS.items():
        parser = inner.add_parser(name, help=help_text)
        if argv is None or name == chosen:
            parser.add_argument("--json", action="store_true", help="print one JSON object")
            module = importlib.import_module(f"enerdatx.bench.{name}")
            module.add_arguments(parser)
            parser.set_defaults(func=_runner(module))


def _runner(module: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        result = module.run(args)
        if args.json:
            print(json.dumps(result, sort_keys=True))
        else:
            width = max(len(k) for k in result)
            for key, value in result.items():
                print(f"{key:<{width}}  {value}", file=sys.stdout)
        return 0

    return run
