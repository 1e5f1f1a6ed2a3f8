"""``enerdatx bench NAME``: benchmarks that print one JSON object (``--json``) or a table."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

# Each module in enerdatx.bench defines ``add_arguments(parser)`` and ``run(args) -> dict``.
BENCHMARKS = ("trustchain", "ipfs", "network", "fraud", "market", "reputation", "robustness", "meter",
              "subscription", "privacy")


def register(subparsers: Any) -> None:
    """Add ``bench`` and one sub-command per available benchmark."""
    bench = subparsers.add_parser("bench", help="run a benchmark and print its figures")
    inner = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name in BENCHMARKS:
        module_name = f"enerdatx.bench.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        parser = inner.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        parser.add_argument("--json", action="store_true", help="print one JSON object")
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
