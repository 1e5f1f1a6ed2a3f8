"""One peer's SQLite store of half-blocks and fraud proofs (WAL; one SQL transaction per change).

The store holds only validated blocks: :class:`~enerdatx.trustchain.ledger.TrustChain` is its
only writer and validates first, so reads never re-validate.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from enerdatx.errors import ConfigurationError, InvalidBlockError, StorageError
from enerdatx.files import closed_database
from enerdatx.trustchain.block import HalfBlock
from enerdatx.trustchain.encoding import MAX_SEQUENCE_NUMBER
from enerdatx.trustchain.fraud import FraudProof

__all__ = ["BlockStore"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    public_key BLOB NOT NULL,
    sequence_number INTEGER NOT NULL,
    link_public_key BLOB NOT NULL,
    link_sequence_number INTEGER NOT NULL,
    type TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    block_hash BLOB NOT NULL,
    encoded BLOB NOT NULL,
    UNIQUE (public_key, sequence_number)
);
CREATE INDEX IF NOT EXISTS blocks_by_link ON blocks (link_public_key, link_sequence_number);
CREATE INDEX IF NOT EXISTS blocks_by_hash ON blocks (block_hash);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fraud_proofs (
    public_key BLOB PRIMARY KEY,
    encoded BLOB NOT NULL
) WITHOUT ROWID;
"""

# Recently stored or read blocks, so that validating the next block of a chain finds its
# predecessor without a query (the common case when a transaction follows another).
RECENT_BLOCKS = 4096

# What ``transaction()`` returns inside an open transaction, whose writes simply join it. A
# received block opens two such nested blocks; a generator-based context manager made for
# each cost more than the checks they guard (docs/performance.md, round 12).
_JOIN_OPEN_TRANSACTION = nullcontext()


def _clamp(start: int, end: int | None) -> tuple[int, int]:
    """[start, end] cut to the sequence numbers a block can have: SQLite's integers are 64-bit,
    and a bound past them (2**64 from a caller) raised OverflowError instead of finding nothing."""
    last = MAX_SEQUENCE_NUMBER if end is None else max(min(end, MAX_SEQUENCE_NUMBER), -1)
    return min(max(start, 0), MAX_SEQUENCE_NUMBER + 1), last


class BlockStore:
    """Blocks and fraud proofs of one peer, in one SQLite database."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:", *, fsync: bool = True) -> None:
        """Open (or create) the store; ``fsync=False`` never waits for the disk (benchmarks, tests)."""
        named = os.fspath(path) if isinstance(path, os.PathLike) else path
        # SQLite takes "" for a private temporary file, and str() made a file named "None" of None.
        if not isinstance(named, str) or not named.strip():
            raise ConfigurationError(f"expected a block store path (':memory:' for one in memory), got {path!r}")
        self.path = named
        self.fsync = fsync
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the block store: {exc}", path=self.path) from None
        # A store in memory is always a new database: nothing in it to read back (light peers
        # start by the thousand). Copying in an empty image instead of creating the schema was
        # faster, but took twice the memory per store (132 KB instead of 67: docs/performance.md).
        empty = self.path == ":memory:"
        try:
            # Creating the schema is a few commits: a store that never waits for the disk skips their syncs too.
            self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'OFF'}")
            # A crawl received as one savepoint of a batch outgrows SQLite's 64 KiB in-memory
            # statement journal, which then spills to a file made and deleted in /var/tmp
            # (1.2 per trade in a 100-peer market). Kept in memory, it is the same journal.
            self._db.execute("PRAGMA temp_store=MEMORY")
            if not empty:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            version = 0 if empty else self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:  # not a database, read-only, disk full
            self._db.close()
            raise StorageError(f"cannot use the block store: {exc}", path=self.path) from None
        if version not in (0, SCHEMA_VERSION):
            self._db.close()
            raise StorageError(f"unknown block store schema version {version}", path=self.path)
        self._synchronous = "FULL" if fsync else "OFF"
        # A store that never waits for the disk (fsync=False) runs with synchronous=OFF: with
        # NORMAL, SQLite would still fsync at every WAL checkpoint.
        self._not_durable_synchronous = "OFF" if not fsync else "NORMAL"
        self._in_transaction = False
        self._depth = 0  # open `with transaction()` blocks
        self._batch: bool | None = None  # an open batch (see open_batch): whether it commits durably
        self._batches = 0  # serial number of the latest batch begun
        self._batches_committed = 0  # serial number of the latest batch committed
        self._batches_lost: set[int] = set()
        self._batch_written = False  # whether a part has been written to the open batch
        self._batch_holds_own = False  # whether the open batch was asked for our own blocks
        # The last agreements_for answer (validating a proposal and storing it ask it twice);
        # forgotten by any write that could change it and by every rollback.
        self._agreements: tuple[tuple[bytes, int], list[HalfBlock]] | None = None
        self._after_commit: list[Callable[[], None]] = []
        # Changes whenever blocks read before may be gone (a rollback, a removal): a reader
        # that keeps what it derived from held blocks (the market's Wallet) starts over then.
        self.generation = 0
        # Caches hold committed state only: writes are applied to them at COMMIT.
        self._latest: dict[bytes, int] = {}
        self._recent: OrderedDict[tuple[bytes, int], HalfBlock] = OrderedDict()
        self._pending: dict[tuple[bytes, int], HalfBlock] = {}
        self._pending_latest: dict[bytes, int] = {}
        self._fraudulent: set[bytes] = set() if empty else {
            row[0] for row in self._db.execute("SELECT public_key FROM fraud_proofs")}
        # hash((link_public_key, link_sequence_number)) of every held agreement (and, after a
        # rollback or a removal, perhaps of some that are gone): agreements_for asks SQLite
        # only about a proposal whose hash is in it. A miss is exact (every agreement's is
        # added as it is written); a hit, true or by collision, is a query.
        self._agreement_links: set[int] = set() if empty else {
            hash((bytes(row[0]), row[1]))
            for row in self._db.execute(
                "SELECT link_public_key, link_sequence_number FROM blocks WHERE link_sequence_number > 0"
            )
        }

    # --- writing -----------------------------------------------------------------------

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[None]:
        """All writes inside commit together or not at all.

        ``durable`` waits for the disk (fsync) at commit. Blocks we signed ourselves must be
        durable before anyone sees them: losing one to a power cut and signing another block
        at the same sequence number would be a fork. Blocks learnt from others can be
        fetched again, so they may skip the wait.

        Inside an open batch (:meth:`open_batch`) a non-durable transaction is a savepoint of
        the batch: its writes are undone alone if it fails, and commit with the batch. A
        durable one commits the batch first and then itself, so it is on disk when it returns.
        Inside another ``with transaction()``, the writes join that one.
        """
        if self._depth:
            return _JOIN_OPEN_TRANSACTION
        return self._transaction(durable)

    @contextmanager
    def _transaction(self, durable: bool) -> Iterator[None]:
        if self._batch is not None and durable:
            self.commit_batch()
        if self._batch is not None:
            yield from self._savepoint()
            return
        self._begin(durable)
        self._depth = 1
        try:
            yield
        except BaseException as exc:
            self._depth = 0
            self._rollback()
            self._raise_storage_error(exc)
            raise
        self._depth = 0
        self._run(self._commit())

    def _savepoint(self) -> Iterator[None]:
        callbacks = len(self._after_commit)
        if not self._batch_written:
            # The batch's first part (the usual case: a lone gossiped block) needs no savepoint:
            # undoing it is undoing the batch, which holds nothing else.
            self._depth = 1
            try:
                yield
            except BaseException as exc:
                self._depth = 0
                self._batch = None
                self._batches_lost.add(self._batches)
                self._rollback()
                self._raise_storage_error(exc)
                raise
            self._depth = 0
            self._batch_written = True
            self._run_part_callbacks(callbacks)
            return
        self._db.execute("SAVEPOINT part")
        pending, latest = dict(self._pending), dict(self._pending_latest)
        self._depth = 1
        try:
            yield
        except BaseException:
            self._agreements = None
            self.generation += 1
            self._db.execute("ROLLBACK TO part")
            self._db.execute("RELEASE part")
            self._pending, self._pending_latest = pending, latest
            del self._after_commit[callbacks:]
            self._reload_fraudulent()
            raise
        else:
            self._db.execute("RELEASE part")
        finally:
            self._depth = 0
        self._run_part_callbacks(callbacks)

    def _run_part_callbacks(self, start: int) -> None:
        """Run what waited for a finished part of a batch of others' blocks (not for the commit).

        Such a batch may stay open for a while (gossip, see commits.py), and a listener should
        not hear of a block that late. Readers of this store see the block already; only a
        failed COMMIT (a disk error) could still take it back, and it is someone else's block,
        which its signer still holds. A batch opened for our own blocks keeps its callbacks for
        the commit: nobody may learn of our block before it is committed.
        """
        if self._batch is not None and not self._batch_holds_own and len(self._after_commit) > start:
            callbacks = self._after_commit[start:]
            del self._after_commit[start:]
            self._run(callbacks)

    def open_batch(self, *, durable: bool = False) -> None:
        """Begin a transaction that later writes join until :meth:`commit_batch` (a gossip burst,
        or a group commit: the blocks one peer signs in one turn of the event loop, one fsync).

        ``durable`` asks for a batch of our own blocks: none of them may be shown to anyone,
        listeners included, before commit_batch returns (with ``fsync=False`` it does not wait
        for the disk, but a failed commit still takes the blocks back). A batch of others'
        blocks tells its listeners at the end of each part (see :meth:`_run_part_callbacks`).
        A batch that is already open is kept, unless it does not wait for the disk and
        ``durable`` asks for it: then it is committed and a durable one begun.
        """
        if self._depth:
            raise RuntimeError("open_batch inside a transaction")
        own = durable
        durable = durable and self.fsync
        if self._batch is not None:
            if self._batch or not durable:
                self._batch_holds_own = self._batch_holds_own or own
                return
            self.commit_batch()
        self._begin(durable)
        self._batch = durable
        self._batch_holds_own = own
        self._batch_written = False
        self._batches += 1

    def commit_batch(self) -> None:
        """Commit the open batch (if any), then run what waited for it (see :meth:`after_commit`)."""
        if self._batch is None:
            return
        if self._depth:
            raise RuntimeError("commit_batch inside a transaction")
        self._batch = None
        try:
            callbacks = self._commit()
        except BaseException:
            self._batches_lost.add(self._batches)
            raise
        self._batches_committed = self._batches
        self._run(callbacks)

    @property
    def uncommitted_blocks(self) -> int:
        """Blocks written and not yet committed."""
        return len(self._pending)

    @property
    def batch(self) -> int | None:
        """The serial number of the open batch, None when none is open."""
        return None if self._batch is None else self._batches

    def batch_committed(self, serial: int) -> bool:
        """True once batch ``serial`` is committed; False while it is open or if it was lost."""
        return serial <= self._batches_committed and serial not in self._batches_lost

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the writes made so far are committed (now, if they are)."""
        if self._in_transaction:
            self._after_commit.append(callback)
        else:
            callback()

    def _begin(self, durable: bool) -> None:
        synchronous = "FULL" if durable and self.fsync else self._not_durable_synchronous
        if synchronous != self._synchronous:
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._synchronous = synchronous
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # locked by another process, read-only
            raise StorageError(f"cannot write the block store: {exc}", path=self.path) from None
        self._in_transaction = True

    def _raise_storage_error(self, exc: BaseException) -> None:
        """Raise an SQLite failure ("database or disk is full", "readonly database") as a StorageError."""
        if isinstance(exc, sqlite3.Error):
            raise StorageError(f"cannot write the block store: {exc}", path=self.path) from None

    def _rollback(self) -> None:
        self._agreements = None
        self.generation += 1
        self._in_transaction = False
        if self._db.in_transaction:  # SQLite has rolled back already after some errors (disk full)
            self._db.execute("ROLLBACK")
        self._pending.clear()
        self._pending_latest.clear()
        self._after_commit.clear()
        self._reload_fraudulent()

    def _commit(self) -> list[Callable[[], None]]:
        """COMMIT and update the caches; return the callbacks waiting for it (run them after)."""
        try:
            self._db.execute("COMMIT")
        except BaseException as exc:
            self._rollback()
            self._raise_storage_error(exc)
            raise
        self._in_transaction = False
        for block in self._pending.values():
            self._remember(block)
        for key, latest in self._pending_latest.items():
            if key in self._latest and latest > self._latest[key]:
                self._latest[key] = latest
        self._pending.clear()
        self._pending_latest.clear()
        callbacks, self._after_commit = self._after_commit, []
        return callbacks

    @staticmethod
    def _run(callbacks: list[Callable[[], None]]) -> None:
        for callback in callbacks:
            callback()

    def insert_validated(self, blocks: Iterable[HalfBlock]) -> list[HalfBlock]:
        """Insert blocks that the caller has validated; return the ones that were new."""
        with self.transaction(durable=False):
            return [block for block in blocks if self._insert(block, or_ignore=True)]

    def insert_own(self, block: HalfBlock, *, also: HalfBlock | None = None, durable: bool = True) -> list[HalfBlock]:
        """Insert a block we just signed (and the proposal it answers); a held block at its place is an error.

        Never ``OR IGNORE`` here: a block already at our own next place means someone else signed
        with our key (a second process on our directory, a restored old database), and dropping
        ours silently would leave a fork in the world that we do not even hold. ``durable=False``
        inside a durable batch (group commit) leaves the fsync to the batch's commit.
        """
        with self.transaction(durable=durable):
            new = self.insert_validated([also]) if also is not None else []
            try:
                self._insert(block, or_ignore=False)
            except sqlite3.IntegrityError:
                raise InvalidBlockError(
                    "own_place_taken",
                    f"our chain already holds a block at {block.sequence_number}: refusing to fork it",
                    block_hash=block.hash,
                ) from None
        return [*new, block]

    def _insert(self, block: HalfBlock, *, or_ignore: bool) -> bool:
        """Write one block's row inside the open transaction; False if ``or_ignore`` skipped a held one."""
        cursor = self._db.execute(
            f"INSERT {'OR IGNORE ' if or_ignore else ''}INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                block.public_key,
                block.sequence_number,
                block.link_public_key,
                block.link_sequence_number,
                block.type,
                block.timestamp,
                block.hash,
                block.encode(),
            ),
        )
        if not cursor.rowcount:
            return False
        if block.link_sequence_number > 0:
            self._agreement_links.add(hash((block.link_public_key, block.link_sequence_number)))
        if self._agreements is not None and self._agreements[0] == (block.link_public_key, block.link_sequence_number):
            self._agreements = None
        self._pending[(block.public_key, block.sequence_number)] = block
        if block.sequence_number > self._pending_latest.get(block.public_key, 0):
            self._pending_latest[block.public_key] = block.sequence_number
        return True

    def owner(self) -> bytes | None:
        """The public key whose chain this database keeps (None for a new database)."""
        row = self._db.execute("SELECT value FROM meta WHERE name = 'owner'").fetchone()
        return bytes(row[0]) if row else None

    def set_owner(self, public_key: bytes) -> None:
        """Record which key's chain this database keeps (once; see enerdatx.datadir)."""
        with self.transaction(durable=True):
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('owner', ?)", (public_key,))

    def backup(self, target: str | os.PathLike[str]) -> None:
        """Write a consistent snapshot of the database to ``target`` (SQLite's online backup).

        StorageError naming ``target`` when it cannot be written (a directory, a missing
        parent, a device, the disk full) or is this store's own file.
        """
        ours = False
        with contextlib.suppress(OSError):  # a target that does not exist yet cannot be our file
            ours = self.path != ":memory:" and os.path.samefile(self.path, target)
        if ours:
            raise StorageError("cannot back up a block store onto its own file", path=target)
        try:
            destination = sqlite3.connect(str(target))
            try:
                self._db.backup(destination)
            finally:
                destination.close()
        except sqlite3.Error as exc:  # was raw: "unable to open database file", naming no file
            raise StorageError(f"cannot write a block store backup: {exc}", path=target) from exc

    def remove_blocks(self, blocks: Iterable[HalfBlock]) -> None:
        """Remove blocks shown to be invalid after they were stored (see TrustChain.receive)."""
        self._agreements = None
        self.generation += 1
        with self.transaction(durable=False):
            for block in blocks:
                self._db.execute("DELETE FROM blocks WHERE block_hash = ?", (block.hash,))
                self._recent.pop((block.public_key, block.sequence_number), None)
                self._pending.pop((block.public_key, block.sequence_number), None)
            self._latest.clear()  # recomputed on demand

    def add_fraud_proof(self, proof: FraudProof) -> bool:
        """Store a verified fraud proof; True if it is the first for that public key."""
        with self.transaction(durable=False):
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO fraud_proofs VALUES (?, ?)", (proof.public_key, proof.encode())
            )
            if cursor.rowcount:
                self._fraudulent.add(proof.public_key)
        return bool(cursor.rowcount)

    def _remember(self, block: HalfBlock) -> None:
        self._recent[(block.public_key, block.sequence_number)] = block
        if len(self._recent) > RECENT_BLOCKS:
            self._recent.popitem(last=False)

    def _reload_fraudulent(self) -> None:
        self._fraudulent = {row[0] for row in self._db.execute("SELECT public_key FROM fraud_proofs")}

    # --- reading -----------------------------------------------------------------------

    def get(self, public_key: bytes, sequence_number: int) -> HalfBlock | None:
        """The held block at that place in that chain."""
        cached = self._recent.get((public_key, sequence_number)) or self._pending.get(
            (public_key, sequence_number)
        )
        if cached is not None:
            return cached
        if sequence_number < 1 or sequence_number > self.latest_sequence_number(public_key):
            return None  # chains start at 1: validating a first block asks for its 0th
        row = self._db.execute(
            "SELECT encoded FROM blocks WHERE public_key = ? AND sequence_number = ?",
            (public_key, sequence_number),
        ).fetchone()
        return HalfBlock.decode_trusted(row[0]) if row else None

    def get_by_hash(self, block_hash: bytes) -> HalfBlock | None:
        """The held block with that hash."""
        row = self._db.execute("SELECT encoded FROM blocks WHERE block_hash = ?", (block_hash,)).fetchone()
        return HalfBlock.decode_trusted(row[0]) if row else None

    def neighbours(
        self, public_key: bytes, sequence_number: int
    ) -> tuple[HalfBlock | None, HalfBlock | None, HalfBlock | None]:
        """The held blocks at sequence_number - 1, sequence_number and + 1, in one query."""
        if sequence_number > self.latest_sequence_number(public_key):
            # The usual case, a chain's newest block: only its predecessor can be held.
            return self.get(public_key, sequence_number - 1), None, None
        found: list[HalfBlock | None] = [None, None, None]
        for sequence, encoded in self._db.execute(
            "SELECT sequence_number, encoded FROM blocks"
            " WHERE public_key = ? AND sequence_number BETWEEN ? AND ?",
            (public_key, sequence_number - 1, sequence_number + 1),
        ):
            found[sequence - sequence_number + 1] = HalfBlock.decode_trusted(encoded)
        return found[0], found[1], found[2]

    def head(self, public_key: bytes) -> HalfBlock | None:
        """The held block with the highest sequence number of that chain."""
        row = self._db.execute(
            "SELECT encoded FROM blocks WHERE public_key = ? ORDER BY sequence_number DESC LIMIT 1",
            (public_key,),
        ).fetchone()
        return HalfBlock.decode_trusted(row[0]) if row else None

    def latest_sequence_number(self, public_key: bytes) -> int:
        """The highest held sequence number of that chain, 0 if none is held."""
        latest = self._latest.get(public_key)
        if latest is None:
            row = self._db.execute(
                "SELECT MAX(sequence_number) FROM blocks WHERE public_key = ?", (public_key,)
            ).fetchone()
            latest = row[0] or 0
            # Every uncommitted row of a chain is in _pending_latest: a chain without any read
            # committed rows only, which the cache may keep.
            if public_key not in self._pending_latest:
                self._latest[public_key] = latest
        return max(latest, self._pending_latest.get(public_key, 0))

    def held_sequence_numbers(self, public_key: bytes, start: int, end: int) -> list[int]:
        """The sequence numbers held of that chain in [start, end], ascending."""
        if end < start:  # an empty range (what lies below a first block), asked for often
            return []
        start, end = _clamp(start, end)
        return [
            row[0]
            for row in self._db.execute(
                "SELECT sequence_number FROM blocks WHERE public_key = ?"
                " AND sequence_number BETWEEN ? AND ? ORDER BY sequence_number",
                (public_key, start, end),
            )
        ]

    def chain(
        self, public_key: bytes, start: int = 1, end: int | None = None, *, block_type: str | None = None
    ) -> list[HalfBlock]:
        """The held blocks of that chain with start <= sequence number <= end, ascending
        (only those of ``block_type`` if given: SQLite skips the others undecoded)."""
        start, end = _clamp(start, end)
        if block_type is None:
            rows = self._db.execute(
                "SELECT encoded FROM blocks WHERE public_key = ? AND sequence_number BETWEEN ? AND ?"
                " ORDER BY sequence_number",
                (public_key, start, end),
            )
        else:
            rows = self._db.execute(
                "SELECT encoded FROM blocks WHERE public_key = ? AND sequence_number BETWEEN ? AND ?"
                " AND type = ? ORDER BY sequence_number",
                (public_key, start, end, block_type),
            )
        return [HalfBlock.decode_trusted(row[0]) for row in rows]

    def chain_encoded(self, public_key: bytes, start: int = 1, end: int | None = None) -> list[bytes]:
        """As :meth:`chain`, the blocks' bytes as stored (what ``encode()`` gives): a crawl answer
        sends them without decoding and re-encoding each."""
        start, end = _clamp(start, end)
        return [
            bytes(row[0])
            for row in self._db.execute(
                "SELECT encoded FROM blocks WHERE public_key = ? AND sequence_number BETWEEN ? AND ?"
                " ORDER BY sequence_number",
                (public_key, start, end),
            )
        ]

    def agreements_for(self, public_key: bytes, sequence_number: int) -> list[HalfBlock]:
        """Held agreements that link to the proposal at (public_key, sequence_number)."""
        key = (public_key, sequence_number)
        if self._agreements is not None and self._agreements[0] == key:
            return list(self._agreements[1])
        if sequence_number > 0 and hash(key) not in self._agreement_links:
            return []  # nothing links to it: no query (see _agreement_links)
        found = [
            HalfBlock.decode_trusted(row[0])
            for row in self._db.execute(
                "SELECT encoded FROM blocks WHERE link_public_key = ? AND link_sequence_number = ?", key
            )
        ]
        self._agreements = (key, found)
        return list(found)

    def linked(self, block: HalfBlock) -> HalfBlock | None:
        """The other half of ``block``'s pair, if held."""
        if block.is_record:
            return None
        if block.is_proposal:
            # Agreements name a proposal by its place in the chain, not by its hash: they answer
            # this proposal only if the place does not hold another (forked) block.
            held = self.get(block.public_key, block.sequence_number)
            if held is not None and held.hash != block.hash:
                return None
            agreements = [
                agreement
                for agreement in self.agreements_for(block.public_key, block.sequence_number)
                if agreement.public_key == block.link_public_key
            ]
            return agreements[0] if agreements else None
        proposal = self.get(block.link_public_key, block.link_sequence_number)
        if proposal is None or proposal.link_public_key != block.public_key:
            return None
        return proposal

    def blocks(self, *, block_type: str | None = None) -> Iterator[HalfBlock]:
        """Every held block (optionally of one type), by chain then sequence number."""
        if block_type is None:
            rows = self._db.execute("SELECT encoded FROM blocks ORDER BY public_key, sequence_number")
        else:
            rows = self._db.execute(
                "SELECT encoded FROM blocks WHERE type = ? ORDER BY public_key, sequence_number",
                (block_type,),
            )
        for (encoded,) in rows.fetchall():
            yield HalfBlock.decode_trusted(encoded)

    def public_keys(self) -> list[bytes]:
        """Every public key of which a block is held."""
        return [row[0] for row in self._db.execute("SELECT DISTINCT public_key FROM blocks ORDER BY public_key")]

    def count(self) -> int:
        """The number of held blocks."""
        return int(self._db.execute("SELECT COUNT(*) FROM blocks").fetchone()[0])

    def fraud_proofs(self, public_key: bytes | None = None) -> list[FraudProof]:
        """Held fraud proofs, all or one forker's."""
        if public_key is None:
            rows = self._db.execute("SELECT encoded FROM fraud_proofs ORDER BY public_key")
        else:
            rows = self._db.execute("SELECT encoded FROM fraud_proofs WHERE public_key = ?", (public_key,))
        return [FraudProof.decode(row[0]) for row in rows]

    def is_fraudulent(self, public_key: bytes) -> bool:
        """True when a fraud proof against that public key is held."""
        return public_key in self._fraudulent

    def close(self) -> None:
        """Commit an open batch (gossip waiting for its commit), then close the database."""
        try:
            if self._batch is not None and not self._depth:
                self.commit_batch()
        finally:
            self._db.close()
            self._db = closed_database("block store", self.path)

    def __enter__(self) -> BlockStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
