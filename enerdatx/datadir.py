"""A peer's directory: one process at a time, and a key and a chain that belong together.

A peer directory holds ``identity.key``, ``chain.sqlite``, ``chain.head`` and ``ipfs/``.
Losing or mixing them up would make an honest peer a forker: its next block would take a
place in its chain that others already hold another block at. So opening a directory

* takes an exclusive lock (``fcntl.flock`` on ``peer.lock``, which names the holder's pid):
  a second process refuses with :class:`~enerdatx.errors.DirectoryLockedError`;
* checks that the database belongs to the key (the database records its owner's public key);
* checks ``chain.head``, a small marker signed by the key that says how far the chain has
  been seen to reach: a database holding less of the chain than the marker (an empty or
  lost ``chain.sqlite``) refuses to start, and so does a missing key beside a database that
  has an owner. Both errors (:class:`~enerdatx.errors.ChainIdentityError`) say how to
  recover: restore from ``enerdatx peer backup``, or ``enerdatx peer recover``.

The format of ``chain.head`` and when it is written are in docs/robustness.md ("Peer
directories").
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enerdatx.crypto import Identity, verify_signature
from enerdatx.errors import ChainIdentityError, DirectoryLockedError, KeyFileError, StorageError
from enerdatx.files import named_path, read_small_file
from enerdatx.trustchain.store import BlockStore

__all__ = [
    "CHAIN_FILE",
    "HEAD_FILE",
    "KEY_FILE",
    "LOCK_FILE",
    "ChainHead",
    "DirectoryLock",
    "backup_directory",
    "load_identity",
    "make_peer_directory",
    "mark_head",
    "open_directory",
    "read_head",
    "write_head",
]

KEY_FILE = "identity.key"
CHAIN_FILE = "chain.sqlite"
HEAD_FILE = "chain.head"
LOCK_FILE = "peer.lock"

HEAD_DOMAIN = b"enerdatx/chain-head/v1"
HEAD_FILE_LIMIT = 4096  # a marker is about 340 bytes


def storage_error(exc: OSError, what: str, path: Any) -> StorageError:
    """An OSError of the disk as a one-line typed error (see StorageError.from_os_error)."""
    return StorageError.from_os_error(exc, what, path)


class DirectoryLock:
    """An exclusive ``flock`` on a peer directory and on its ``peer.lock``, held until :meth:`release`.

    ``peer.lock`` names the holder's pid for the error a second process gets. The lock that
    counts is the one on the directory itself: a ``peer.lock`` deleted while the peer ran (a
    cleanup script, ``git clean``) let a second process make a new one, lock that, and open the
    same chain beside the first.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_FILE
        self._fd: int | None = None
        try:
            self._directory_fd: int | None = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise storage_error(exc, "lock the peer directory", directory) from None
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            self.release()
            raise storage_error(exc, "lock the peer directory", directory) from None
        try:
            self._lock_directory()
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 32).decode("ascii", "replace").strip()
            self.release(truncate=False)
            raise DirectoryLockedError(directory, int(holder) if holder.isdigit() else None) from None
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            # peer.lock replaced by a FIFO or a device: "cannot use the file: Invalid argument",
            # naming no file.
            self.release(truncate=False)
            raise storage_error(exc, "write the holder's pid into the lock file", self.path) from None

    def _lock_directory(self) -> None:
        assert self._directory_fd is not None
        try:
            fcntl.flock(self._directory_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise
        except OSError:
            # NFS emulates flock with byte-range locks, which a directory opened read-only
            # cannot take (EBADF): there peer.lock alone guards, as it did before.
            os.close(self._directory_fd)
            self._directory_fd = None

    def release(self, *, truncate: bool = True) -> None:
        """Unlock (closing the files unlocks them); safe to call twice."""
        if self._fd is not None:
            if truncate:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None
        if self._directory_fd is not None:
            os.close(self._directory_fd)
            self._directory_fd = None


@dataclass(frozen=True)
class ChainHead:
    """A signed statement by a key: "my chain reaches at least ``sequence_number``, at ``block_hash``"."""

    public_key: bytes
    sequence_number: int
    block_hash: bytes
    signature: bytes

    @staticmethod
    def message(public_key: bytes, sequence_number: int, block_hash: bytes) -> bytes:
        """The signed bytes: domain, key, 8-byte big-endian sequence number, block hash."""
        return HEAD_DOMAIN + public_key + sequence_number.to_bytes(8, "big") + block_hash

    @classmethod
    def sign(cls, identity: Identity, sequence_number: int, block_hash: bytes) -> ChainHead:
        """The marker for our own head block."""
        message = cls.message(identity.public_key, sequence_number, block_hash)
        return cls(identity.public_key, sequence_number, block_hash, identity.sign(message))

    def verify(self) -> bool:
        """True when the signature is the key's."""
        return verify_signature(
            self.public_key, self.message(self.public_key, self.sequence_number, self.block_hash), self.signature
        )

    def encode(self) -> bytes:
        """JSON, keys sorted, hex strings: a person can read it."""
        return json.dumps({
            "v": 1,
            "public_key": self.public_key.hex(),
            "sequence_number": self.sequence_number,
            "block_hash": self.block_hash.hex(),
            "signature": self.signature.hex(),
        }, sort_keys=True).encode() + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> ChainHead:
        """Parse and check :meth:`encode`'s output; ValueError if it is anything else."""
        fields = json.loads(data)
        if not isinstance(fields, dict) or fields.get("v") != 1 or type(fields.get("sequence_number")) is not int:
            raise ValueError("not a chain head marker")
        head = cls(
            bytes.fromhex(fields["public_key"]),
            fields["sequence_number"],
            bytes.fromhex(fields["block_hash"]),
            bytes.fromhex(fields["signature"]),
        )
        if not 1 <= head.sequence_number < 2**63 or not head.verify():
            raise ValueError("the chain head marker's signature does not verify")
        return head


def read_head(directory: Path) -> ChainHead | None:
    """The directory's ``chain.head``; None if there is none.

    An unreadable marker (torn by a crash, say) still proves the key signed a block: it is
    read as "at least block 1", with no hash to compare.
    """
    path = directory / HEAD_FILE
    try:
        # Bounded, and never a FIFO or a device: one in its place made `peer run` and `peer
        # backup` wait forever (or read /dev/zero until memory ran out). A marker longer than
        # any marker reads as torn.
        data = read_small_file(path, HEAD_FILE_LIMIT, what="read the chain head marker")
    except FileNotFoundError:
        return None
    except StorageError:
        raise
    except OSError as exc:
        raise storage_error(exc, "read the chain head marker", path) from None
    try:
        return ChainHead.decode(data)
    except (ValueError, KeyError, TypeError, RecursionError):
        return ChainHead(b"", 1, b"", b"")


def write_head(directory: Path, head: ChainHead) -> None:
    """Replace ``chain.head`` atomically (a crash leaves the old marker or the new one)."""
    path = directory / HEAD_FILE
    tmp = path.with_name(HEAD_FILE + ".tmp")
    try:
        with open(tmp, "wb") as file:
            file.write(head.encode())
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise storage_error(exc, "write the chain head marker", path) from None


def _recover_hint(directory: Path) -> str:
    return (
        f"restore the directory from a backup (enerdatx peer backup), or rebuild the chain from peers "
        f"that hold it: enerdatx peer recover --dir {directory} --peer HOST:PORT"
    )


def _check_chain(directory: Path, identity: Identity, store: BlockStore, *, recovering: bool) -> None:
    owner = store.owner()
    if owner is None:  # a new database, or one from before owners were recorded
        store.set_owner(identity.public_key)
    elif owner != identity.public_key:
        raise ChainIdentityError(
            f"{CHAIN_FILE} keeps the chain of {owner.hex()[:16]}…, not of this {KEY_FILE} "
            f"({identity.public_key.hex()[:16]}…): put the matching key back",
            path=directory,
        )
    head = read_head(directory)
    if head is None or recovering:
        return
    if head.public_key and head.public_key != identity.public_key:
        raise ChainIdentityError(f"{HEAD_FILE} was signed by another key than {KEY_FILE}", path=directory)
    held = len(store.held_sequence_numbers(identity.public_key, 1, head.sequence_number))
    if held < head.sequence_number:  # lost, emptied, or only partly recovered
        raise ChainIdentityError(
            f"this key has signed {head.sequence_number} blocks but {CHAIN_FILE} holds {held}; "
            f"starting would fork the chain: {_recover_hint(directory)}",
            path=directory,
        )
    if head.block_hash:
        block = store.get(identity.public_key, head.sequence_number)
        if block is not None and block.hash != head.block_hash:
            raise ChainIdentityError(
                f"{CHAIN_FILE} holds another block {head.sequence_number} than this key signed: "
                f"{_recover_hint(directory)}",
                path=directory,
            )


def load_identity(directory: str | os.PathLike[str]) -> Identity:
    """The directory's key; a new one if the directory keeps no chain yet, else ChainIdentityError."""
    directory = named_path(directory, "a peer directory")
    key_path = directory / KEY_FILE
    if key_path.exists():
        return Identity.load(key_path)
    chain_path = directory / CHAIN_FILE
    owner = None
    if chain_path.is_file() and chain_path.stat().st_size:
        try:
            probe = BlockStore(chain_path, fsync=False)
            try:
                owner = probe.owner() or (b"?" if probe.count() else None)
            finally:
                probe.close()
        except StorageError:
            # A database that cannot be read (corrupt, say) may well be this key's chain: a new
            # key beside it was a silent fresh start, and a repaired database then another's.
            owner = b"?"
    if owner is not None or (directory / HEAD_FILE).exists():
        whose = f" of {owner.hex()[:16]}…" if owner and owner != b"?" else ""
        raise ChainIdentityError(
            f"{KEY_FILE} is missing but the directory keeps the chain{whose}: restore {KEY_FILE} from a "
            f"backup (enerdatx peer backup); to start a new identity instead, move {CHAIN_FILE} and "
            f"{HEAD_FILE} away",
            path=directory,
        )
    identity = Identity.generate()
    try:
        # Not replacing: `peer id` beside a starting `peer run` made two keys, and the one saved
        # last replaced the key the other had already signed with.
        identity.save(key_path, replace=False)
    except FileExistsError:
        return Identity.load(key_path)
    return identity


def open_directory(
    directory: str | os.PathLike[str], *, durable: bool = True, recovering: bool = False
) -> tuple[Identity, BlockStore, DirectoryLock]:
    """Lock a peer directory (creating it if new), load its key and open its checked chain.

    ``recovering`` skips the marker check (``enerdatx peer recover`` fills the chain first).
    """
    # "" is the current directory to the OS: a key and a chain were made there, unasked.
    directory = named_path(directory, "a peer directory")
    make_peer_directory(directory)
    try:  # an ipfs that is a file read "D: cannot create the peer directory: already exists"
        (directory / "ipfs").mkdir(exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, "create the content store's directory", directory / "ipfs") from None
    lock = DirectoryLock(directory)
    try:
        identity = load_identity(directory)
        store = BlockStore(directory / CHAIN_FILE, fsync=durable)
        try:
            _check_chain(directory, identity, store, recovering=recovering)
        except BaseException:
            store.close()
            raise
    except BaseException:
        lock.release()
        raise
    return identity, store, lock


def make_peer_directory(directory: Path) -> None:
    """Create ``directory`` (and its parents) if new; StorageError if it is no directory.

    A link to nothing, or a loop of links, was "cannot create the peer directory: already exists";
    so was one among its parents (a lab's directory), naming the peer's.
    """
    for link in (directory, *directory.parents):
        if link.is_symlink() and not link.exists():
            raise StorageError(f"is a symbolic link to {os.readlink(link)}, which does not exist (or a loop of "
                               "links): give a new path, or a directory or a link to one", path=link)
    if directory.exists() and not directory.is_dir():
        raise StorageError("not a directory", path=directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, "create the peer directory", directory) from None


def mark_head(directory: Path, identity: Identity, store: BlockStore) -> None:
    """Write ``chain.head`` for the latest block of our chain in ``store``; never lower an existing marker."""
    block = store.head(identity.public_key)
    marked = read_head(directory)
    if block is not None and (marked is None or block.sequence_number > marked.sequence_number or (
        block.sequence_number == marked.sequence_number and not marked.block_hash
    )):
        write_head(directory, ChainHead.sign(identity, block.sequence_number, block.hash))


def backup_directory(directory: str | os.PathLike[str], target: str | os.PathLike[str]) -> dict[str, Any]:
    """Write a consistent snapshot of a peer directory's key, chain and marker into ``target``.

    Works while the peer runs (SQLite's online backup reads one consistent state of the WAL
    database); the content store is not copied: data sets can be fetched again by CID.
    """
    directory, target = named_path(directory, "a peer directory"), named_path(target, "a backup directory")
    if not directory.is_dir():
        raise StorageError("not a peer directory", path=directory)
    if not (directory / KEY_FILE).is_file() or not (directory / CHAIN_FILE).is_file():
        raise StorageError(f"not a peer directory (no {KEY_FILE} or {CHAIN_FILE})", path=directory)
    target = _through_link(target)
    if target.resolve() == directory.resolve() or directory.resolve() in target.resolve().parents:
        # The next backup would copy this one into itself; losing the directory loses its backup too.
        raise StorageError(f"the backup target is inside the peer directory {directory} it backs up", path=target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StorageError("the backup target exists and is not an empty directory", path=target)
    identity = Identity.load(directory / KEY_FILE)
    # Written beside the target and renamed into place once whole: a backup cut short (Ctrl-C, a
    # full disk) left identity.key without its chain, which restored starts a fresh chain for a
    # key that has signed before: a fork. The temporary directory's name says it is no backup.
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    except OSError as exc:
        raise storage_error(exc, "write the backup", target) from None
    try:
        blocks = _write_backup(directory, identity, partial, target)
        if target.exists():
            target.rmdir()  # empty, as checked above
        os.rename(partial, target)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(exc, StorageError):
            raise
        raise storage_error(exc, "write the backup", target) from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return {"public_key": identity.public_key.hex(), "blocks": blocks, "target": str(target)}


def _through_link(target: Path) -> Path:
    """The directory a backup target that is a symbolic link names (the backup goes there, as
    ``atomic_path`` writes through a link to a file), or ``target`` itself if it is no link.

    The backup is renamed into place at the end, and a rename onto a link fails: a dangling
    link, or one to an empty directory, was "cannot write the backup: a path component is not
    a directory" after the whole chain had been copied.
    """
    if not target.is_symlink():
        return target
    try:
        target.stat()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise StorageError(f"is a symbolic link to {os.readlink(target)}, which does not exist: give a new path, "
                               "or an empty directory or a link to one", path=target) from None
        raise storage_error(exc, "write the backup", target) from None  # a loop of links, say
    return Path(os.path.realpath(target))


def _write_backup(directory: Path, identity: Identity, into: Path, target: Path) -> int:
    """Key, chain snapshot and marker of ``directory`` into the new directory ``into`` (errors name
    ``target``, which it becomes); returns the number of our blocks."""
    try:
        identity.save(into / KEY_FILE)
    except OSError as exc:
        raise storage_error(exc, "write the backup", target) from None
    # Read before the snapshot, which a running peer's marker then never exceeds. A source whose
    # chain holds less than its marker (lost, emptied) gave a backup without one, which restored
    # signed block 1 again: a fork.
    head = read_head(directory)
    source = BlockStore(directory / CHAIN_FILE, fsync=False)
    try:
        if source.owner() not in (None, identity.public_key):
            raise KeyFileError(f"{CHAIN_FILE} belongs to another key", path=directory)
        try:
            source.backup(into / CHAIN_FILE)
        except StorageError as exc:  # SQLite's error: disk full, read-only target
            raise StorageError(f"cannot write the backup: {exc.__cause__ or exc}", path=target) from None
        except OSError as exc:
            raise storage_error(exc, "write the backup", target) from None
        except sqlite3.Error as exc:
            raise StorageError(f"cannot write the backup: {exc}", path=target) from None
    finally:
        source.close()
    snapshot = BlockStore(into / CHAIN_FILE, fsync=False)
    try:
        if head is not None and head.public_key in (b"", identity.public_key):  # ours, or torn: "at least 1"
            write_head(into, head)
        mark_head(into, identity, snapshot)
        blocks = snapshot.latest_sequence_number(identity.public_key)
    finally:
        snapshot.close()
    with contextlib.suppress(OSError):
        shutil.copymode(directory / KEY_FILE, into / KEY_FILE)
    return blocks
