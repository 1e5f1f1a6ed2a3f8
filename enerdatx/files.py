"""Writing a user's output file so that a failure midway never leaves half of it.

A disk that fills up, a Ctrl-C or a crash while writing would otherwise leave a truncated
file where the user's previous one was.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from enerdatx.errors import ConfigurationError, EnerDatXError, StorageError

__all__ = ["atomic_output", "atomic_path", "closed_database", "named_path", "open_regular_file", "read_small_file"]


def named_path(path: str | os.PathLike[str], what: str = "a path") -> Path:
    """``path`` as a Path, refusing a string that names no file: empty or blank (the OS takes
    ``""`` for the current directory, so a peer or a store would be made there unasked) or
    holding a NUL byte (no path can). ConfigurationError: "expected WHAT, got ''"."""
    if isinstance(path, str) and (not path.strip() or "\x00" in path):
        raise ConfigurationError(f"expected {what}, got {path!r}")
    return Path(path)


def named_path_argument(text: str, what: str) -> Path:
    """:func:`named_path` for a command-line option or argument: its refusal is argparse's usage error."""
    try:
        return named_path(text, what)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_file(text: str) -> Path:
    """A file argument of a command: an empty one was the current directory (".: is a
    directory") or ": no such file". One that ends in a directory's name ("out/", "out/.") is
    refused too: Path drops the "/", and "--out out/" wrote a file named "out"."""
    path = named_path_argument(text, "a file path")
    if os.path.basename(text) in ("", ".", ".."):
        raise argparse.ArgumentTypeError(f"expected a file path, got {text!r}, which names a directory")
    return path


def parse_directory(text: str) -> Path:
    """A directory argument of a command; an empty one would silently mean the current directory."""
    return named_path_argument(text, "a directory path")


def read_small_file(path: str | os.PathLike[str], limit: int, *, what: str = "read the file") -> bytes:
    """At most ``limit + 1`` bytes of the regular file at ``path`` (one more than a caller takes,
    so that it can tell a file too large to be its own).

    A FIFO put where a small file belongs made its reader wait forever for a writer, and a link
    to /dev/zero read until memory ran out: the file is opened without waiting and must be a
    regular file. FileNotFoundError and IsADirectoryError are the OS's own; anything else that
    is not a regular file is a StorageError "PATH: cannot WHAT: not a regular file".
    """
    with open_regular_file(path, what=what) as stream:
        return stream.read(limit + 1)


def open_regular_file(path: str | os.PathLike[str], *, what: str = "read the file") -> BinaryIO:
    """The regular file at ``path``, open for reading, refused at once if it is anything else.

    Opened without waiting, so that a FIFO is refused rather than waited on. FileNotFoundError
    and IsADirectoryError are the OS's own; anything else that is not a regular file is a
    StorageError "PATH: cannot WHAT: not a regular file".
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(mode):
            raise StorageError(f"cannot {what}: not a regular file (a FIFO, a socket or a device)", path=path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, what: str = "write the file", devices: bool = False
) -> Iterator[Path]:
    """A new temporary file beside ``path`` that becomes ``path`` only if the block succeeds.

    Its name ends in ``path``'s name, so a writer that picks the compression by suffix
    (pandas' ``to_csv``) picks the same. Like every temporary file it is private to the user
    (mode 0600), and so is the file it becomes: meter readings and keys are personal data.
    An existing device or pipe (``/dev/stdout``, a FIFO) is never replaced: with ``devices``
    the block writes to it directly, without it that is an error; so is a file this process
    has open, named through /proc (``/dev/stdout`` redirected to a file). A link to a file is
    written through: the file it names is replaced, the link stays. Failures are StorageErrors:
    "PATH: cannot WHAT: REASON".
    """
    target = Path(path)
    # Path drops a trailing "/": write_csv(frame, "out/") wrote a file named "out".
    if target.is_dir() or os.path.basename(os.fspath(path)) in ("", ".", ".."):
        raise StorageError(f"cannot {what}: is a directory", path=path)
    open_file = _an_open_file(target)
    if target.is_symlink() and target.is_file() and not open_file:
        # Replaced, the link itself became a file and what it names kept its old content.
        target = Path(os.path.realpath(target))
    # /dev/stdout onto a redirected file (a link to /proc/self/fd/1, itself a link to the
    # file) is a device to write to: replacing it replaced /dev/stdout (as root) by a file.
    replace = not open_file and (not target.exists() or target.is_file())
    if not replace and not devices:
        raise StorageError(f"cannot {what}: is not a regular file", path=target)
    written = target
    if replace:
        try:
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=_temporary_suffix(target))
        except OSError as exc:
            raise StorageError.from_os_error(exc, what, target) from None
        os.close(fd)
        written = Path(name)
    try:
        yield written
        if replace:
            os.replace(written, target)
    except BaseException as exc:
        if replace:
            written.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, EnerDatXError):  # disk full, say
            raise StorageError.from_os_error(exc, what, target) from None
        raise


# mkstemp's names are the prefix, these many random characters, then the suffix.
_RANDOM_CHARACTERS = 8


def _temporary_suffix(target: Path) -> str:
    """"." and as much of the end of ``target``'s name as a temporary's name has room for.

    The whole name made a name near the longest a file may have (255 bytes) too long for its
    temporary: such a file could not be written at all ("File name too long"). The end kept
    holds the suffixes.
    """
    try:
        longest = os.pathconf(target.parent, "PC_NAME_MAX")
    except (OSError, ValueError):  # a missing directory: mkstemp says so
        longest = 255
    tail, room = target.name, longest - len(".") - _RANDOM_CHARACTERS - len(".")
    while len(os.fsencode(tail)) > room:
        tail = tail[1:]
    return f".{tail}"


def _an_open_file(path: Path) -> bool:
    """Whether ``path`` names a file this process has open (/dev/stdout, /dev/fd/N), through links
    into /proc's file-descriptor directories."""
    for _ in range(40):  # the kernel's own limit on links followed
        if not path.is_symlink():
            return False
        if os.path.realpath(path.parent).startswith("/proc/"):
            return True
        try:
            path = path.parent / os.readlink(path)
        except OSError:
            return False
    return False


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], *, what: str = "write the file", devices: bool = False
) -> Iterator[BinaryIO]:
    """As :func:`atomic_path`, the file open for writing bytes."""
    with atomic_path(path, what=what, devices=devices) as temporary, temporary.open("wb") as handle:
        yield handle


class _ClosedDatabase:
    """What a store's SQLite connection becomes once the store is closed."""

    def __init__(self, what: str, path: Any) -> None:
        self._closed = (what, path)

    def close(self) -> None:
        """Closing again changes nothing, as with sqlite3's own connection."""

    def __getattr__(self, name: str) -> Any:
        what, path = self._closed
        raise StorageError(f"cannot use the {what}: it is closed (was its peer stopped?)", path=path)

    # `with connection:` (a transaction) looks these up on the class, never through __getattr__.
    def __enter__(self) -> Any:
        return self.__getattr__("__enter__")

    def __exit__(self, *exc_info: object) -> None:
        return None


def closed_database(what: str, path: Any) -> sqlite3.Connection:
    """A stand-in for a closed store's connection: every use is a StorageError "PATH: cannot use
    the WHAT: it is closed", where sqlite3's was "Cannot operate on a closed database." (naming
    neither the store nor why), e.g. ``peer.market.sell(...)`` after ``peer.stop()``."""
    return cast(sqlite3.Connection, _ClosedDatabase(what, path))
