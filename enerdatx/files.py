"""Writing a user's output file so that a failure midway never leaves half of it.

A disk that fills up, a Ctrl-C or a crash while writing would otherwise leave a truncated
file where the user's previous one was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from enerdatx.errors import EnerDatXError, StorageError

__all__ = ["atomic_output", "atomic_path"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, what: str = "write the file") -> Iterator[Path]:
    """A new temporary file beside ``path`` that becomes ``path`` only if the block succeeds.

    Its name ends in ``path``'s name, so a writer that picks the compression by suffix
    (pandas' ``to_csv``) picks the same. Like every temporary file it is private to the user
    (mode 0600), and so is the file it becomes: meter readings and keys are personal data.
    Failures are StorageErrors: "PATH: cannot WHAT: REASON".
    """
    target = Path(path)
    if target.is_dir():
        raise StorageError(f"cannot {what}: is a directory", path=target)
    if target.exists() and not target.is_file():  # a device or a pipe: replacing it would be worse
        raise StorageError(f"cannot {what}: is not a regular file", path=target)
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=f".{target.name}")
    except OSError as exc:
        raise StorageError.from_os_error(exc, what, target) from None
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, EnerDatXError):  # disk full, say
            raise StorageError.from_os_error(exc, what, target) from None
        raise


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, what: str = "write the file") -> Iterator[BinaryIO]:
    """As :func:`atomic_path`, the temporary file open for writing bytes."""
    with atomic_path(path, what=what) as temporary, temporary.open("wb") as handle:
        yield handle
