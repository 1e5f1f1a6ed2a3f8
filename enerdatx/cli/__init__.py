"""The ``enerdatx`` command: one sub-command module per capability."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from enerdatx import __version__
from enerdatx.errors import typed_error

# The commands and their one-line help. Each is the module enerdatx.cli.NAME, which defines
# ``configure(parser, argv)`` (``argv``: the words after the command, None to build all of it,
# which only ``bench`` needs); a command sets ``func(args) -> int``. The help lives here so that
# listing the commands imports none of them: together they pull in pandas, scipy and IPv8,
# three seconds before `enerdatx --help` could print a line.
COMMANDS = {
    "demo": "run a local market of households and buyers, end to end",
    "bench": "run a benchmark and print its figures",
    "ipfs": "add, cat and move content (embedded store, or a daemon via --api / $ENERDATX_IPFS_API)",
    "meter": "read meter data (DSMR P1, OEHU, CSV) or make synthetic data",
    "peer": "run a peer on UDP, or show its identity",
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; given the command line it will parse, only the command it names is built.

    Without ``argv`` every command is built in full (for documentation and tests).
    """
    parser = argparse.ArgumentParser(prog="enerdatx", description=__doc__)
    parser.add_argument("--version", action="version", version=f"enerdatx {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen, rest = chosen_command(argv)
    for name, help_text in COMMANDS.items():
        command = subparsers.add_parser(name, help=help_text)
        if argv is None or name == chosen:
            importlib.import_module(f"enerdatx.cli.{name}").configure(command, None if argv is None else rest)
    return parser


def chosen_command(argv: Sequence[str] | None) -> tuple[str | None, list[str]]:
    """The command a command line names, and the words after it.

    The first word that is not an option is the command: the parser it is handed to takes only
    options without a value (``-h``, ``--version``) before it.
    """
    words = list(argv or ())
    for index, word in enumerate(words):
        if not word.startswith("-"):
            return word, words[index + 1 :]
    return None, []


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; every failure becomes one line on stderr and a non-zero exit.

    Typed errors exit 1; anything else is a bug and exits 70 (EX_SOFTWARE) with its type named.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except OSError as exc:  # a type that looked at the disk (a name too long): argparse lets it through as a traceback
        print(f"enerdatx: error: {_one_line(str(typed_error(exc)))}", file=sys.stderr)
        return 2
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
