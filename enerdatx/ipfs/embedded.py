"""``EmbeddedStore``: the content-store interface without a daemon.

It imports files into kubo-identical UnixFS DAGs (enerdatx.ipfs.unixfs), keeps blocks in
an on-disk blockstore that re-hashes every read (enerdatx.ipfs.blocks), tracks recursive
pins in ``pins.json`` plus an append-only ``pins.journal``, and moves DAGs in and out as
CAR files.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

from tqdm import tqdm

from enerdatx.errors import BlockMissingError, CarFormatError, ContentStoreError, EnerDatXError, StorageError
from enerdatx.files import atomic_output, named_path, open_regular_file
from enerdatx.ipfs.blocks import CID, Blockstore, cid_string, parse_cid
from enerdatx.ipfs.car import car_file, read_car, require_roots, write_car
from enerdatx.ipfs.store import ContentStore, StrPath
from enerdatx.ipfs.unixfs import FileImporter, child_cids, describe, iter_file, read_chunks

__all__ = ["EmbeddedStore"]

# Once the journal is this long (~1000 records), the next pin change folds it into pins.json.
_JOURNAL_COMPACT_BYTES = 64 * 1024
# Longer than any record (``+`` and a CID string of at most ~100 characters, then a newline).
_JOURNAL_TAIL_BYTES = 256


def _discard(cid: bytes, block: bytes) -> None:
    """The block sink of ``--only-hash``."""


def _show_progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


class EmbeddedStore(ContentStore):
    """A kubo-compatible store in a directory: ``blocks/`` and ``pins.json``."""

    def __init__(self, directory: StrPath) -> None:
        self.directory = named_path(directory, "a content store directory").expanduser()  # "" was the current one
        try:
            self.blocks = Blockstore(self.directory)
        except OSError as exc:  # the repository path is a file, or not writable
            raise StorageError.from_os_error(exc, "open the content store", self.directory) from None
        self._pins_path = self.directory / "pins.json"
        self._journal_path = self.directory / "pins.journal"

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.directory)!r})"

    @staticmethod
    def exists(directory: StrPath) -> bool:
        """Whether ``directory`` holds a store (opening one makes it there)."""
        return Blockstore.root_in(named_path(directory, "a content store directory").expanduser()).is_dir()

    @contextlib.contextmanager
    def _lock(self, name: str, *, exclusive: bool) -> Iterator[None]:
        """An advisory lock on ``<repo>/<name>.lock``, between threads and processes alike.

        ``gc.lock``: adds, imports and pins hold it shared, ``gc`` alone, so a sweep never
        deletes blocks an unfinished add has written but not pinned yet. ``pins.lock``:
        held alone around every read-modify-write of ``pins.json``.
        """
        with open(self.directory / f"{name}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield

    # --- adding -------------------------------------------------------------------

    def add_bytes(self, data: bytes, cid_version: int = 0) -> str:
        """Add ``data`` as a UnixFS file, pin it, and return its CID."""
        if not isinstance(data, (bytes, bytearray, memoryview)):  # None failed on len(), text in BytesIO
            raise TypeError(f"add_bytes takes bytes, not {type(data).__name__} (text: encode it first)")
        return self._import(io.BytesIO(data), cid_version, only_hash=False, total=len(data), progress=False)

    def add_file(
        self, path: StrPath, cid_version: int = 0, only_hash: bool = False, *, progress: bool | None = None
    ) -> str:
        """Add a file in bounded memory and pin it (or only compute its CID); return the CID.

        A FIFO, socket or device is refused (StorageError) rather than read without end.
        """
        with open_regular_file(path, what="add the file") as stream:
            total = os.fstat(stream.fileno()).st_size
            return self._import(stream, cid_version, only_hash=only_hash, total=total, progress=progress)

    def _import(self, stream: BinaryIO, cid_version: int, *, only_hash: bool, total: int, progress: bool | None) -> str:
        # A writer thread overlapping hashing with block writes was measured on this 2-core
        # machine: 0-13 % faster, within the noise, so the simpler inline writes stay.
        importer = FileImporter(_discard if only_hash else self.blocks.put, cid_version)
        # No bar at all when it would be hidden: even a disabled tqdm walks every live bar of
        # the process when it is made and closed (0.2 ms a purchase in a 100-peer Lab).
        bar = tqdm(total=total, unit="B", unit_scale=True, desc="add") if _show_progress(progress) else None
        with self._lock("gc", exclusive=False), bar if bar is not None else contextlib.nullcontext():
            for chunk in read_chunks(stream):
                importer.add_chunk(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            root = importer.finish()
            if not only_hash:
                self._add_pin(root)
        return cid_string(root)

    # --- reading ------------------------------------------------------------------

    def cat_stream(self, cid: str) -> Iterator[bytes]:
        """The file's bytes, block by block, each block verified against its CID."""
        return iter_file(self.blocks.get, parse_cid(cid))

    def has(self, cid: str) -> bool:
        """Whether the root block of ``cid`` is stored."""
        return self.blocks.has(parse_cid(cid))

    def stat(self, cid: str) -> dict[str, Any]:
        """``{"cid", "type", "size", "cumulative_size", "links"}``, read from the root block."""
        root = parse_cid(cid)
        return describe(root, self.blocks.get(root))

    def walk(self, cid: str | CID) -> Iterator[tuple[CID, bytes]]:
        """Every block of the DAG under ``cid`` once, depth first, parents before children."""
        seen: set[CID] = set()
        stack = [parse_cid(cid)]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            block = self.blocks.get(current)
            yield current, block
            stack.extend(reversed(child_cids(current, block)))

    # --- pins and garbage collection ---------------------------------------------

    def pins(self) -> set[str]:
        """The recursively pinned roots, as canonical CID strings: ``pins.json`` with the journal replayed on it.

        A journal record is ``+<cid>\n`` or ``-<cid>\n``. Only whole lines count: a process
        killed inside its append leaves at most one unterminated last line, which is the
        pin change that did not happen (like a rename that never ran).
        """
        try:
            pins = set(json.loads(self._pins_path.read_text()))
        except FileNotFoundError:
            pins = set()
        except (ValueError, TypeError) as exc:
            raise ContentStoreError(f"{self._pins_path} is not a JSON list of CIDs: {exc}") from exc
        try:
            journal = self._journal_path.read_bytes()
        except FileNotFoundError:
            return pins
        for line in journal.split(b"\n")[:-1]:  # the piece after the last newline is unfinished
            if not line:
                continue
            try:
                name = line[1:].decode("ascii")
            except UnicodeDecodeError as exc:
                raise ContentStoreError(f"{self._journal_path} has a record that is not a CID: {line!r}") from exc
            if line[:1] == b"+":
                pins.add(name)
            elif line[:1] == b"-":
                pins.discard(name)
            else:
                raise ContentStoreError(f"{self._journal_path} has a record that is neither + nor -: {line!r}")
        return pins

    def _change_pin(self, name: str, *, add: bool) -> None:
        """Record one pin change; the caller holds ``pins.lock``.

        Appending one short line, without reading anything, replaces rewriting the whole
        ``pins.json`` per add (which cost ~1 ms a purchase and grew with the pins). A
        record repeating the state is harmless. Replaying the journal onto a snapshot that
        already contains its changes gives the same set, so compaction (snapshot written
        atomically, then the journal removed) may be killed between its two steps.
        """
        record = (b"+" if add else b"-") + name.encode("ascii") + b"\n"
        try:
            fd = os.open(self._journal_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size >= _JOURNAL_COMPACT_BYTES:
                    pins = self.pins()
                    self._write_pins(pins | {name} if add else pins - {name})
                    self._journal_path.unlink()
                    return
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    os.ftruncate(fd, self._last_whole_line_end(fd, size))
                os.write(fd, record)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StorageError.from_os_error(exc, "write the file", self._journal_path) from None

    def _last_whole_line_end(self, fd: int, size: int) -> int:
        """Where the journal's whole lines end: a killed append left an unfinished record after it."""
        tail = os.pread(fd, min(size, _JOURNAL_TAIL_BYTES), size - min(size, _JOURNAL_TAIL_BYTES))
        cut = tail.rfind(b"\n")
        if cut < 0 and len(tail) < size:  # no record is this long: not a torn append
            raise ContentStoreError(f"{self._journal_path} ends in {len(tail)}+ bytes that are not a record")
        return size - len(tail) + cut + 1

    def _write_pins(self, pins: set[str]) -> None:
        with atomic_output(self._pins_path) as handle:
            handle.write(json.dumps(sorted(pins), indent=1).encode())

    def _add_pin(self, root: CID) -> None:
        with self._lock("pins", exclusive=True):
            self._change_pin(cid_string(root), add=True)

    def pin(self, cid: str) -> None:
        """Pin ``cid`` recursively; every block under it must be stored (and intact)."""
        root = parse_cid(cid)
        with self._lock("gc", exclusive=False):
            for _ in self.walk(root):
                pass
            self._add_pin(root)

    def unpin(self, cid: str) -> None:
        """Drop the pin on ``cid``; ``ContentStoreError`` if it was not pinned."""
        name = cid_string(parse_cid(cid))
        with self._lock("pins", exclusive=True):
            if name not in self.pins():
                raise ContentStoreError(f"{name} is not pinned")
            self._change_pin(name, add=False)

    def gc(self) -> int:
        """Delete every block no pin reaches; a corrupt block under a pin stops the sweep."""
        with self._lock("gc", exclusive=True):
            return self._sweep()

    def _sweep(self) -> int:
        reachable: set[CID] = set()
        for root in self.pins():
            try:
                reachable.update(cid.set(version=1) for cid, _ in self.walk(root))
            except BlockMissingError:
                # A partial pin still protects what it reaches; walk it block by block.
                reachable.update(self._reachable_present(parse_cid(root)))
        removed = 0
        for cid in list(self.blocks):
            if cid.set(version=1) not in reachable:
                self.blocks.delete(cid)
                removed += 1
        self.blocks.remove_temporaries()
        return removed

    def _reachable_present(self, root: CID) -> set[CID]:
        found: set[CID] = set()
        stack = [root]
        while stack:
            current = stack.pop()
            if current.set(version=1) in found or not self.blocks.has(current):
                continue
            found.add(current.set(version=1))
            stack.extend(child_cids(current, self.blocks.get(current)))
        return found

    # --- CAR files ----------------------------------------------------------------

    def export_car(self, cid: str, out_path: StrPath) -> None:
        """Write the DAG under ``cid`` to a CAR v1 file in ``ipfs dag export`` order."""
        root = parse_cid(cid)
        with atomic_output(out_path) as handle:
            write_car(handle, [root], self.walk(root))

    def import_car(self, in_path: StrPath) -> list[str]:
        """Store a CAR's blocks and pin its roots; on any error, nothing new is left behind."""
        written: list[CID] = []
        with self._lock("gc", exclusive=False):
            try:
                with car_file(in_path) as stream:
                    roots, blocks = read_car(stream)
                    require_roots(roots)
                    for cid, block in blocks:
                        if self.blocks.put(cid, block):
                            written.append(cid)
                    for root in roots:
                        if not self.blocks.has(root):
                            raise CarFormatError(f"CAR root {cid_string(root)} is neither in the file nor in the store")
            except BaseException as exc:
                for cid in written:
                    self.blocks.delete(cid)
                if isinstance(exc, OSError) and not isinstance(exc, EnerDatXError):
                    raise StorageError.from_os_error(exc, "import the CAR file", in_path) from None
                raise
            for root in roots:
                self._add_pin(root)
        return [cid_string(root) for root in roots]
