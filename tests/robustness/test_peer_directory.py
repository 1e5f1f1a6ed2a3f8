"""One process per peer directory; a key and a chain that belong together; backups (issue 13)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from enerdatx.crypto import Identity
from enerdatx.datadir import ChainHead, backup_directory, load_identity, open_directory, read_head
from enerdatx.errors import ChainIdentityError, DirectoryLockedError, InvalidBlockError, StorageError
from enerdatx.lab import PeerProcess
from enerdatx.trustchain import BlockStore, TrustChain

PING = "test.ping"


def enerdatx(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the command line in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "enerdatx", *args], capture_output=True, text=True, timeout=timeout
    )


def sign_some(directory: Path, n: int) -> bytes:
    """Open the directory, sign ``n`` records on its chain, close it as a peer would; the key."""
    identity, store, lock = open_directory(directory, durable=False)
    ledger = TrustChain(identity, store)
    for i in range(n):
        ledger.record(PING, {"n": i})
    from enerdatx.datadir import mark_head

    mark_head(directory, identity, store)
    store.close()
    lock.release()
    return identity.public_key


async def test_a_second_process_on_a_directory_refuses_naming_the_first(tmp_path: Path) -> None:
    first = PeerProcess(tmp_path / "peer")
    await first.start()
    try:
        second = enerdatx("peer", "run", "--dir", str(tmp_path / "peer"))
        assert second.returncode == 1
        assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
        assert first.process is not None and f"in use by process {first.process.pid}" in second.stderr
    finally:
        assert await first.stop() == 0
    # The lock goes with the process: the directory opens again.
    identity, store, lock = open_directory(tmp_path / "peer")
    assert identity.public_key == first.public_key
    store.close()
    lock.release()


def test_the_lock_holds_within_a_process_too_and_is_released(tmp_path: Path) -> None:
    _identity, store, lock = open_directory(tmp_path)
    with pytest.raises(DirectoryLockedError, match=f"process {os.getpid()}"):
        open_directory(tmp_path)
    store.close()
    lock.release()
    open_directory(tmp_path)[2].release()


def test_a_deleted_lock_file_does_not_let_a_second_opener_in(tmp_path: Path) -> None:
    # With only peer.lock locked, deleting it while the peer ran (a cleanup script) let a
    # second opener make a new peer.lock, lock that and open the same chain beside the first.
    _identity, store, lock = open_directory(tmp_path)
    (tmp_path / "peer.lock").unlink()
    with pytest.raises(DirectoryLockedError, match="in use by another process"):
        open_directory(tmp_path)
    store.close()
    lock.release()
    open_directory(tmp_path)[2].release()


def test_where_a_directory_cannot_be_flocked_peer_lock_still_guards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # NFS emulates flock with byte-range locks, which a directory opened read-only cannot take.
    import errno
    import fcntl
    import stat

    real_flock = fcntl.flock

    def flock(fd: int, operation: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EBADF, "Bad file descriptor")
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    _identity, store, lock = open_directory(tmp_path)
    with pytest.raises(DirectoryLockedError, match=f"process {os.getpid()}"):
        open_directory(tmp_path)
    store.close()
    lock.release()
    open_directory(tmp_path)[2].release()


def test_an_own_block_at_a_taken_place_is_an_error_not_ignored(tmp_path: Path) -> None:
    key = sign_some(tmp_path, 1)
    identity, store, lock = open_directory(tmp_path)
    ledger = TrustChain(identity, store)
    # A second writer on the same store in this process: the head check refuses before signing.
    twin = TrustChain(identity, store)
    twin.record(PING, {"n": "twin"})
    with pytest.raises(InvalidBlockError, match="head_moved"):
        ledger.record(PING, {"n": "ours"})
    # Another process without the lock signs block 3 behind our back: our insert refuses.
    intruder = TrustChain(identity, BlockStore(tmp_path / "chain.sqlite"))
    intruder.record(PING, {"n": "other"})
    with pytest.raises(InvalidBlockError, match="own_place_taken"):
        twin.record(PING, {"n": "ours"})
    assert [b.transaction for b in BlockStore(tmp_path / "chain.sqlite").chain(key)] == [
        {"n": 0}, {"n": "twin"}, {"n": "other"}
    ]
    lock.release()


@pytest.mark.parametrize("damage", ["empty", "deleted"])
def test_a_lost_database_for_a_key_that_signed_refuses(tmp_path: Path, damage: str) -> None:
    sign_some(tmp_path, 3)
    chain = tmp_path / "chain.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{chain}{suffix}").unlink(missing_ok=True)
    if damage == "empty":
        chain.write_bytes(b"")
    with pytest.raises(ChainIdentityError, match="signed 3 blocks but chain.sqlite holds 0") as caught:
        open_directory(tmp_path)
    assert "enerdatx peer recover" in str(caught.value) and "backup" in str(caught.value)
    result = enerdatx("peer", "run", "--dir", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "enerdatx peer recover" in result.stderr
    open_directory(tmp_path, recovering=True)[2].release()  # recovery may open it


def test_a_missing_key_beside_a_chain_refuses(tmp_path: Path) -> None:
    key = sign_some(tmp_path, 2)
    (tmp_path / "identity.key").unlink()
    with pytest.raises(ChainIdentityError, match=f"identity.key is missing .* of {key.hex()[:16]}"):
        open_directory(tmp_path)
    assert not (tmp_path / "identity.key").exists()  # no new identity was made
    for command in (["peer", "run", "--dir", str(tmp_path)], ["peer", "id", "--dir", str(tmp_path)]):
        result = enerdatx(*command)
        assert result.returncode == 1 and result.stderr.startswith("enerdatx: error: ")
        assert "identity.key is missing" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_key_beside_an_unreadable_chain_refuses(tmp_path: Path) -> None:
    # A database that could not be read counted as none: `peer id` made a new key beside it
    # (exit 0), a silent fresh start; once the database was repaired it was another key's.
    sign_some(tmp_path, 2)
    for name in ("identity.key", "chain.head"):
        (tmp_path / name).unlink()
    with (tmp_path / "chain.sqlite").open("r+b") as database:
        database.write(b"this is not SQLite" * 6)  # the header: no SQLite opens it
    with pytest.raises(ChainIdentityError, match="identity.key is missing but the directory keeps the chain"):
        load_identity(tmp_path)
    result = enerdatx("peer", "id", "--dir", str(tmp_path))
    assert result.returncode == 1 and "identity.key is missing" in result.stderr
    assert not (tmp_path / "identity.key").exists()


def test_a_key_another_process_saves_first_is_the_one_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `peer id` beside a starting `peer run` on a new directory: both found no key and made one,
    # and the one saved last replaced the key the other had already signed with.
    other = Identity.generate()
    generate = Identity.generate

    def generate_while_another_process_saves() -> Identity:
        other.save(tmp_path / "identity.key")
        return generate()

    monkeypatch.setattr(Identity, "generate", generate_while_another_process_saves)
    assert load_identity(tmp_path).public_key == other.public_key
    assert Identity.load(tmp_path / "identity.key").public_key == other.public_key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["identity.key"]  # no temporary file left
    with pytest.raises(FileExistsError):
        generate().save(tmp_path / "identity.key", replace=False)
    assert Identity.load(tmp_path / "identity.key").public_key == other.public_key


def test_a_foreign_key_or_marker_refuses(tmp_path: Path) -> None:
    sign_some(tmp_path / "a", 1)
    sign_some(tmp_path / "b", 1)
    (tmp_path / "a" / "identity.key").replace(tmp_path / "b" / "identity.key")
    with pytest.raises(ChainIdentityError, match="not of this identity.key"):
        open_directory(tmp_path / "b")


def test_the_marker_is_signed_and_a_torn_one_still_counts(tmp_path: Path) -> None:
    key = sign_some(tmp_path, 2)
    head = read_head(tmp_path)
    assert head is not None and head.public_key == key and head.sequence_number == 2 and head.verify()
    forged = ChainHead(head.public_key, 1, head.block_hash, head.signature)
    assert not forged.verify()
    (tmp_path / "chain.head").write_bytes(b'{"v": 1, "sequ')  # a crash mid-write
    assert read_head(tmp_path).sequence_number == 1


@pytest.mark.parametrize("case", ["corrupt", "a_file"])
def test_a_corrupt_database_or_a_file_as_directory_is_one_line(tmp_path: Path, case: str) -> None:
    if case == "corrupt":
        sign_some(tmp_path / "peer", 1)
        (tmp_path / "peer" / "chain.sqlite").write_bytes(b"this is not SQLite" * 300)
        expected = "cannot use the block store"
    else:
        (tmp_path / "peer").write_text("x")
        expected = "not a directory"
    with pytest.raises(StorageError, match=expected):
        open_directory(tmp_path / "peer")
    result = enerdatx("peer", "run", "--dir", str(tmp_path / "peer"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and expected in result.stderr


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("name", "what"), [("identity.key", "the key file"), ("chain.head", "the chain head marker")])
def test_a_fifo_or_a_device_in_place_of_the_key_or_the_marker_is_refused_not_read(
    tmp_path: Path, name: str, what: str
) -> None:
    # A FIFO in their place made `peer id`, `peer run` and `peer backup` wait forever for a
    # writer; a link to /dev/zero read until memory ran out.
    sign_some(tmp_path / "peer", 1)
    (tmp_path / "peer" / name).unlink()
    os.mkfifo(tmp_path / "peer" / name, 0o600)
    expected = f"cannot read {what}: not a regular file"
    with pytest.raises(StorageError, match=expected):
        open_directory(tmp_path / "peer")
    result = enerdatx("peer", "run", "--dir", str(tmp_path / "peer"), timeout=15)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and expected in result.stderr
    (tmp_path / "peer" / name).unlink()
    (tmp_path / "peer" / name).symlink_to("/dev/zero")
    with pytest.raises(StorageError, match=expected):
        open_directory(tmp_path / "peer")


@pytest.mark.parametrize(("name", "expected"), [
    ("peer.lock", "peer.lock: cannot write the holder's pid into the lock file"),
    ("ipfs", "ipfs: cannot create the content store's directory: already exists"),
])
def test_a_lock_file_or_a_content_store_of_the_wrong_kind_is_named(tmp_path: Path, name: str, expected: str) -> None:
    # They read "cannot use the file: Invalid argument" (no file named) and "D: cannot create
    # the peer directory: already exists" (of a directory that was there all along).
    sign_some(tmp_path, 1)
    path = tmp_path / name
    if name == "ipfs":
        path.rmdir()
        path.write_text("x")
    else:
        path.unlink()
        os.mkfifo(path)
    with pytest.raises(StorageError, match=expected):
        open_directory(tmp_path)
    if name == "peer.lock":  # what was opened is closed again: the directory locks afresh
        path.unlink()
        open_directory(tmp_path)[2].release()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files")
def test_a_read_only_database_is_one_line(tmp_path: Path) -> None:
    sign_some(tmp_path, 1)
    for path in tmp_path.glob("chain.sqlite*"):
        path.chmod(0o444)
    result = enerdatx("peer", "run", "--dir", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_a_full_disk_is_a_storage_error_and_the_chain_stays_whole(tmp_path: Path) -> None:
    identity, store, lock = open_directory(tmp_path, durable=False)
    ledger = TrustChain(identity, store)
    ledger.record(PING, {"n": 0})
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]  # noqa: SLF001
    store._db.execute(f"PRAGMA max_page_count={pages}")  # noqa: SLF001 - SQLite's own "disk full"
    with pytest.raises(StorageError, match="database or disk is full"):
        for n in range(1, 200):
            ledger.record(PING, {"n": n, "padding": "x" * 3000})
    held = store.latest_sequence_number(identity.public_key)
    assert ledger.head.sequence_number == held  # the block that did not fit was never signed on
    store._db.execute("PRAGMA max_page_count=1073741823")  # noqa: SLF001 - space again
    assert ledger.record(PING, {"n": "after"}).sequence_number == held + 1
    store.close()
    lock.release()


def test_a_read_only_database_is_a_storage_error_in_process_too(tmp_path: Path) -> None:
    identity, store, lock = open_directory(tmp_path, durable=False)
    ledger = TrustChain(identity, store)
    ledger.record(PING, {"n": 0})
    store._db.execute("PRAGMA query_only=1")  # noqa: SLF001 - what SQLite says for a read-only file
    with pytest.raises(StorageError, match="readonly database"):
        ledger.record(PING, {"n": 1})
    assert ledger.head.sequence_number == 1
    store.close()
    lock.release()


def test_backup_is_a_consistent_snapshot_that_restores(tmp_path: Path) -> None:
    key = sign_some(tmp_path / "peer", 4)
    identity, store, lock = open_directory(tmp_path / "peer")  # the peer keeps running
    ledger = TrustChain(identity, store)
    result = enerdatx("peer", "backup", "--dir", str(tmp_path / "peer"), "--out", str(tmp_path / "bak"))
    assert result.returncode == 0, result.stderr
    ledger.record(PING, {"n": "after the backup"})
    store.close()
    lock.release()
    assert oct((tmp_path / "bak" / "identity.key").stat().st_mode & 0o777) == "0o600"
    restored, restored_store, restored_lock = open_directory(tmp_path / "bak")
    assert restored.public_key == key and restored_store.latest_sequence_number(key) == 4
    restored_lock.release()
    again = enerdatx("peer", "backup", "--dir", str(tmp_path / "peer"), "--out", str(tmp_path / "bak"))
    assert again.returncode == 1 and "not an empty directory" in again.stderr
    missing = backup_directory  # the same function as the command
    with pytest.raises(StorageError, match="not a peer directory"):
        missing(tmp_path / "nowhere", tmp_path / "bak2")


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, sqlite3.OperationalError("database or disk is full")])
def test_a_backup_cut_short_leaves_nothing_that_restores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          interruption: BaseException) -> None:
    # identity.key was written first: a Ctrl-C or a full disk during the chain's copy left the key
    # alone, and that "backup" restored started a fresh chain for a key that had signed 3 blocks.
    sign_some(tmp_path / "peer", 3)
    (tmp_path / "bak").mkdir()

    def cut_short(_store: BlockStore, _path: object) -> None:
        raise interruption

    with monkeypatch.context() as patch:
        patch.setattr(BlockStore, "backup", cut_short)
        with pytest.raises((KeyboardInterrupt, StorageError)):
            backup_directory(tmp_path / "peer", tmp_path / "bak")
    assert list((tmp_path / "bak").iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["bak", "peer"]
    assert backup_directory(tmp_path / "peer", tmp_path / "bak")["blocks"] == 3  # the target is still usable
    _identity, store, lock = open_directory(tmp_path / "bak")
    assert store.latest_sequence_number(_identity.public_key) == 3
    store.close()
    lock.release()


@pytest.mark.parametrize("torn", [False, True])
def test_a_backup_of_a_lost_chain_keeps_the_marker_and_refuses_to_start(tmp_path: Path, torn: bool) -> None:
    # Before: the backup held the key and an empty chain but no marker; restored, it started a
    # fresh chain at block 1 for a key that had signed 3 blocks (a fork).
    sign_some(tmp_path / "peer", 3)
    chain = tmp_path / "peer" / "chain.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{chain}{suffix}").unlink(missing_ok=True)
    chain.write_bytes(b"")
    if torn:
        (tmp_path / "peer" / "chain.head").write_bytes(b'{"v": 1, "sequ')
    assert backup_directory(tmp_path / "peer", tmp_path / "bak")["blocks"] == 0
    held = "signed 1 blocks" if torn else "signed 3 blocks"
    with pytest.raises(ChainIdentityError, match=f"{held} but chain.sqlite holds 0"):
        open_directory(tmp_path / "bak")


@pytest.mark.parametrize("inside", ["backup", "ipfs/backup", "."])
def test_a_backup_inside_the_directory_it_backs_up_is_refused(tmp_path: Path, inside: str) -> None:
    # Before: accepted; the next backup copies it into itself, and losing the directory loses both.
    sign_some(tmp_path / "peer", 1)
    with pytest.raises(StorageError, match="inside the peer directory"):
        backup_directory(tmp_path / "peer", tmp_path / "peer" / inside)
    (tmp_path / "link").symlink_to(tmp_path / "peer")
    with pytest.raises(StorageError, match="inside the peer directory"):
        backup_directory(tmp_path / "peer", tmp_path / "link" / "backup")
    assert not (tmp_path / "peer" / "backup").exists()


async def test_a_lost_chain_is_recovered_from_two_peers_over_udp(tmp_path: Path) -> None:
    import asyncio
    import json

    from enerdatx.lab import Lab

    async with Lab(tmp_path / "lab", transport="udp") as lab:
        lab.accept(PING)
        lost, first, second = await lab.start(3)
        for n in range(6):  # proposals alternate between the two counterparties
            await lost.community.propose((first, second)[n % 2].public_key, PING, {"n": n}, timeout=5)
        await first.community.propose(lost.public_key, PING, {"n": "to lost"}, timeout=5)  # our agreement
        original = [block.hash for block in lost.store.chain(lost.public_key)]
        assert len(original) == 7
        await lost.stop()
        for path in lost.directory.glob("chain.sqlite*"):
            path.unlink()
        contacts = [f"{p.public_key.hex()}@{p.address[0]}:{p.address[1]}" for p in (first, second)]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "enerdatx", "peer", "recover", "--dir", str(lost.directory),
            "--contact", contacts[0], "--contact", contacts[1],
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, stderr.decode()
        report = json.loads(stdout)
        assert report["event"] == "recovered" and report["blocks"] == 7 and report["expected"] == 7
        assert set(report["sources"]) == {first.public_key.hex(), second.public_key.hex()}
        assert all(count >= 3 for count in report["sources"].values())  # each gave its share
    identity, store, lock = open_directory(lost.directory)  # starts normally again
    try:
        assert [block.hash for block in store.chain(identity.public_key)] == original
        agreement = store.chain(identity.public_key)[-1]
        assert store.linked(agreement) is not None  # the proposal it answers came too
        assert TrustChain(identity, store).record(PING, {"n": "next"}).sequence_number == 8
    finally:
        store.close()
        lock.release()


async def test_a_restart_from_an_old_copy_catches_up_from_peers_instead_of_forking(tmp_path: Path) -> None:
    # The marker only says how far the chain reached at the last clean stop: a directory put back
    # from an old copy by hand held fewer blocks than its key had signed and passed every local
    # check. Its next block took a place its counterparty held another block at: a fork.
    import shutil

    from enerdatx.lab import Lab

    async with Lab(tmp_path / "lab", transport="udp") as lab:
        lab.accept(PING)
        (counterparty,) = await lab.start(1)
        lost = PeerProcess(tmp_path / "lost", accept=[PING], peers=[counterparty.address])

        async def countersigned_by_lost(n: int) -> int:
            counterparty.add_contacts([(lost.public_key, lost.address)])
            _proposal, agreement = await counterparty.community.propose(lost.public_key, PING, {"n": n}, timeout=10)
            return agreement.sequence_number

        try:
            await lost.start()
            assert lost.ready["caught_up"] == {"held": 0, "head": 0, "fetched": 0, "asked": 1}
            assert [await countersigned_by_lost(n) for n in range(2)] == [1, 2]
            assert await lost.stop() == 0
            shutil.copytree(lost.directory, tmp_path / "old-copy")  # blocks 1 and 2, marked 2
            await lost.start()
            assert [await countersigned_by_lost(n) for n in range(2, 4)] == [3, 4]
            assert await lost.stop() == 0
            shutil.rmtree(lost.directory)
            shutil.copytree(tmp_path / "old-copy", lost.directory)  # put back by hand

            await lost.start()
            assert lost.ready["caught_up"] == {"held": 2, "head": 4, "fetched": 2, "asked": 1}
            assert lost.ready["blocks"] == 4
            assert await countersigned_by_lost(4) == 5
            assert not counterparty.store.is_fraudulent(lost.public_key)
            assert await lost.stop() == 0
        finally:  # a failed assertion must not leave the process running
            if lost.process is not None and lost.process.returncode is None:
                await lost.kill()
    assert read_head(tmp_path / "lost").sequence_number == 5  # type: ignore[union-attr]


async def test_recovery_from_peers_that_lack_blocks_fails_and_says_which(tmp_path: Path) -> None:
    import asyncio

    from enerdatx.lab import Lab

    async with Lab(tmp_path / "lab", transport="udp") as lab:
        lab.accept(PING)
        lost, first = await lab.start(2)
        lost.ledger.record(PING, {"n": "unseen"})  # a record nobody was sent
        await lost.community.propose(first.public_key, PING, {"n": 1}, timeout=5)
        first.store.remove_blocks(first.store.chain(lost.public_key, 1, 1))  # gossip may have brought it
        await lost.stop()
        for path in lost.directory.glob("chain.sqlite*"):
            path.unlink()
        contact = f"{first.public_key.hex()}@{first.address[0]}:{first.address[1]}"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "enerdatx", "peer", "recover", "--dir", str(lost.directory),
            "--contact", contact, "--timeout", "5",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        _stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "recovered 1 of 2 blocks; no peer asked holds blocks 1" in stderr.decode()
    with pytest.raises(ChainIdentityError):  # still refused: the chain is not whole
        open_directory(lost.directory)


def test_a_backup_target_that_is_a_link_is_written_through_or_named_dangling(tmp_path: Path) -> None:
    # Before: both were "cannot write the backup: a path component is not a directory", after the
    # whole chain had been copied (the final rename onto the link failed).
    key = sign_some(tmp_path / "peer", 2)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere" / "bak")
    result = enerdatx("peer", "backup", "--dir", str(tmp_path / "peer"), "--out", str(tmp_path / "dangling"))
    assert result.returncode == 1 and result.stderr == (
        f"enerdatx: error: {tmp_path / 'dangling'}: is a symbolic link to {tmp_path / 'nowhere' / 'bak'}, which does "
        "not exist: give a new path, or an empty directory or a link to one\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "peer"]  # no partial copy left behind
    (tmp_path / "empty").mkdir()
    (tmp_path / "link").symlink_to("empty")
    assert backup_directory(tmp_path / "peer", tmp_path / "link")["target"] == str(tmp_path / "empty")
    assert (tmp_path / "link").is_symlink()
    restored, store, lock = open_directory(tmp_path / "empty")
    assert restored.public_key == key and store.latest_sequence_number(key) == 2
    store.close()
    lock.release()
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(StorageError, match="cannot write the backup: Too many levels of symbolic links"):
        backup_directory(tmp_path / "peer", tmp_path / "loop")


@pytest.mark.parametrize("blank", ["", "  ", "dir\x00"])
def test_a_directory_that_names_none_is_refused_not_taken_for_the_current_one(tmp_path, monkeypatch, blank) -> None:
    # "" is the current directory to the OS: open_directory made a key, a chain and ipfs/ there,
    # unasked, and backup_directory backed it up (or wrote a backup there).
    from enerdatx.errors import ConfigurationError

    monkeypatch.chdir(tmp_path)
    for call in (lambda: open_directory(blank), lambda: load_identity(blank),
                 lambda: backup_directory(blank, tmp_path / "backup"), lambda: backup_directory(tmp_path, blank)):
        with pytest.raises(ConfigurationError, match="expected a (peer|backup) directory, got"):
            call()
    assert list(tmp_path.iterdir()) == []


def test_a_peer_directory_that_is_a_link_to_nothing_is_named(tmp_path, capsys) -> None:
    # It was "cannot create the peer directory: already exists" (peer id: "File exists").
    from enerdatx.cli import main

    dangling, loop = tmp_path / "dangling", tmp_path / "loop"
    dangling.symlink_to(tmp_path / "gone")
    loop.symlink_to(loop)
    for link, target in ((dangling, tmp_path / "gone"), (loop, loop)):
        for directory in (link, link / "peer-000"):  # a lab's directory, say
            with pytest.raises(StorageError, match=f"^{link}: is a symbolic link to {target}, which does not exist"):
                open_directory(directory)
        assert main(["peer", "id", "--dir", str(link)]) == 1
        assert f"{link}: is a symbolic link to {target}" in capsys.readouterr().err
    linked = tmp_path / "linked"
    linked.symlink_to(tmp_path / "real")
    (tmp_path / "real").mkdir()
    identity, store, lock = open_directory(linked)  # a link to a directory is that directory
    store.close()
    lock.release()
    assert (tmp_path / "real" / "identity.key").is_file()
