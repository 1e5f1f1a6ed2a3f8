"""``enerdatx ipfs``: add, cat and move content through the configured content store."""

from __future__ import annotations

import argparse
import errno
import os
import stat
import sys
from collections.abc import Sequence

from enerdatx.errors import ConfigurationError, StorageError
from enerdatx.files import parse_directory, parse_file
from enerdatx.ipfs import API_ENV, REPO_ENV, ContentStore, EmbeddedStore, default_repo, open_store
from enerdatx.ipfs.blocks import parse_cid
from enerdatx.ipfs.store import daemon_address


def configure(ipfs: argparse.ArgumentParser, argv: Sequence[str] | None) -> None:
    """Build ``ipfs`` and its sub-commands."""
    ipfs.description = __doc__
    # Which store: --repo (the embedded store there, even with $API_ENV set), else --api, else
    # $API_ENV (a daemon), else the embedded store in $REPO_ENV or ~/.enerdatx/ipfs. Both options
    # at once contradict each other and are refused.
    where = ipfs.add_mutually_exclusive_group()
    where.add_argument("--repo", type=parse_directory,
                       help=f"embedded store directory; wins over ${API_ENV} (default: a daemon at ${API_ENV} "
                            f"if set, else ${REPO_ENV} or ~/.enerdatx/ipfs)")
    where.add_argument("--api", type=parse_api, help=f"daemon RPC multiaddr, e.g. /ip4/127.0.0.1/tcp/5001, or "
                                                     f"http://HOST:PORT (default ${API_ENV}); not with --repo")
    inner = ipfs.add_subparsers(dest="ipfs_command", metavar="COMMAND", required=True)

    add = inner.add_parser("add", help="add a file and print its CID")
    add.add_argument("file", type=parse_file)
    add.add_argument("--only-hash", action="store_true", help="print the CID without storing anything")
    add.add_argument("--cid-version", type=int, choices=(0, 1), default=0, help="1: CIDv1 with raw leaves")
    add.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add.set_defaults(func=_add)

    cat = inner.add_parser("cat", help="write a file's bytes to stdout")
    cat.add_argument("cid")
    cat.set_defaults(func=_cat)

    export = inner.add_parser("export-car", help="write a DAG to a CAR v1 file")
    export.add_argument("cid")
    export.add_argument("out", type=parse_file)
    export.set_defaults(func=_export_car)

    import_ = inner.add_parser("import-car", help="import a CAR v1 file and print its roots")
    import_.add_argument("car", type=parse_file)
    import_.set_defaults(func=_import_car)


def parse_api(text: str) -> str:
    """``--api``: :func:`enerdatx.ipfs.store.daemon_address`, its refusal argparse's usage error."""
    try:
        return daemon_address(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _store(args: argparse.Namespace, *, to_read: bool = False) -> ContentStore:
    """The store the options name; ``to_read``: an embedded one must exist already.

    cat and export-car made an empty store where --repo had a typo, then said the block was
    not in it; they only read, and a new store holds nothing to read.
    """
    if args.repo is not None:  # asked for by name: not overridden by $ENERDATX_IPFS_API
        directory = args.repo
    elif args.api or os.environ.get(API_ENV):  # open_store's choice: a daemon
        return open_store(api=args.api)
    else:
        directory = default_repo()
    if to_read and not EmbeddedStore.exists(directory):
        raise StorageError("no content store there to read from (ipfs add or import-car makes one)",
                           path=directory)
    return EmbeddedStore(directory)


def _not_a_file(path: str | os.PathLike[str], directory: str) -> str | None:
    """Why ``path`` is no regular file to read whole, or None; ``directory`` says what to do with one."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:  # a symlink loop is one (exists() is false for it: "no such file" was said)
        return "no such file" if exc.errno == errno.ENOENT else exc.strerror or str(exc)
    if stat.S_ISDIR(mode):
        return f"is a directory ({directory})"
    if not stat.S_ISREG(mode):  # /dev/null, a pipe, a socket: no size to chunk, maybe no end
        return "is not a regular file (a device, a pipe or a socket)"
    return None


def _add(args: argparse.Namespace) -> int:
    store = _store(args)
    what = _not_a_file(args.file, "add its files one by one, or make a CAR")
    if what is not None:
        print(f"enerdatx: error: {args.file}: {what}", file=sys.stderr)
        return 1
    if isinstance(store, EmbeddedStore):
        cid = store.add_file(args.file, args.cid_version, args.only_hash, progress=None if not args.quiet else False)
    else:
        cid = store.add_file(args.file, args.cid_version, args.only_hash)
    print(cid)
    return 0


def _cat(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    parse_cid(args.cid)  # a CID that is none is the first thing to say, store or no store
    for piece in _store(args, to_read=True).cat_stream(args.cid):
        out.write(piece)
    out.flush()
    return 0


def _export_car(args: argparse.Namespace) -> int:
    _store(args, to_read=True).export_car(args.cid, args.out)
    return 0


def _import_car(args: argparse.Namespace) -> int:
    store = _store(args)
    # A pipe nobody writes to blocked the open forever, and a daemon's import reads the file twice.
    what = _not_a_file(args.car, "a CAR is one file")
    if what is not None:
        print(f"enerdatx: error: {args.car}: {what}", file=sys.stderr)
        return 1
    for root in store.import_car(args.car):
        print(root)
    return 0
