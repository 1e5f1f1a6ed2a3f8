"""The ``enerdatx`` command: one sub-command module per capability."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from enerdatx import __version__
from enerdatx.errors import typed_error

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
    """Run the command line; every failure becomes one line on stderr and a non-zero exit.

    Typed errors exit 1; anything else is a bug and exits 70 (EX_SOFTWARE) with its type named.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader (say `head`) has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line (issue 13)
        error: Exception | None = typed_error(exc)
        if os.environ.get("ENERDATX_DEBUG"):
            raise
        if error is None and isinstance(exc, ValueError):  # bad input, by the convention of errors.py
            error = exc
        if error is None:
            print(f"enerdatx: internal error: {type(exc).__name__}: {_one_line(str(exc))} "
                  "(a bug: ENERDATX_DEBUG=1 shows where)", file=sys.stderr)
            return 70
        print(f"enerdatx: error: {_one_line(str(error))}", file=sys.stderr)
        return 1


def _one_line(text: str) -> str:
    first = " ".join(text.split())
    return first if len(first) <= 500 else first[:497] + "..."


if __name__ == "__main__":
    sys.exit(main())
