"""The ``enerdatx`` command: one sub-command module per capability."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from enerdatx import __version__
from enerdatx.errors import EnerDatXError

# Each module defines ``register(subparsers)``; a command sets ``func(args) -> int``.
COMMAND_MODULES = ("demo", "bench", "ipfs", "meter", "peer")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every sub-command this install provides."""
    parser = argparse.ArgumentParser(prog="enerdatx", description=__doc__)
    parser.add_argument("--version", action="version", version=f"enerdatx {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module_name = f"enerdatx.cli.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # that capability is not built (yet)
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; typed EnerDatX errors become one line on stderr and exit 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EnerDatXError as exc:
        print(f"enerdatx: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
