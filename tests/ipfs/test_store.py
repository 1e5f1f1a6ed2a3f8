"""The embedded store: adding, reading, refusing corruption, pins, gc, CAR files."""

from __future__ import annotations

import io
import os
import threading
import tracemalloc
from pathlib import Path

import pytest

from enerdatx.errors import (
    BlockMissingError,
    CarFormatError,
    ConfigurationError,
    ContentStoreError,
    CorruptBlockError,
    InvalidCIDError,
    StorageError,
)
from enerdatx.ipfs import EmbeddedStore, KuboStore, open_store
from enerdatx.ipfs.blocks import cid_string, parse_cid
from enerdatx.ipfs.car import read_car, write_car
from enerdatx.ipfs.dagpb import encode_varint

from .sample import sample_bytes, write_sample

HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
THREE_CHUNKS = 3 * 262144 + 5


def block_files(store: EmbeddedStore) -> list[Path]:
    return sorted(path for path in store.blocks.root.rglob("*") if path.is_file())


def test_add_bytes_gives_kubos_cid_and_reads_back(store: EmbeddedStore) -> None:
    assert store.add_bytes(b"hello world\n") == HELLO_V0
    assert store.cat(HELLO_V0) == b"hello world\n"
    assert store.has(HELLO_V0)
    # The CIDv1 of the same dag-pb block names the same stored block.
    assert store.has(str(parse_cid(HELLO_V0).set(version=1)))


@pytest.mark.parametrize("version", [0, 1])
def test_add_file_streams_and_cat_stream_yields_chunks(store: EmbeddedStore, tmp_path: Path, version: int) -> None:
    path = write_sample(tmp_path, THREE_CHUNKS)
    cid = store.add_file(path, cid_version=version)
    assert cid == store.add_bytes(path.read_bytes(), cid_version=version)
    pieces = list(store.cat_stream(cid))
    assert [len(piece) for piece in pieces] == [262144, 262144, 262144, 5]
    assert b"".join(pieces) == path.read_bytes()
    assert len(block_files(store)) == 5  # four leaves and a root


def test_add_file_memory_does_not_grow_with_file_size(store: EmbeddedStore, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    with path.open("wb") as out:
        for index in range(96):  # 24 MiB, one chunk at a time
            out.write(index.to_bytes(4, "big") * 65536)
    tracemalloc.start()
    try:
        store.add_file(path, only_hash=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, peak


def test_add_file_refuses_a_fifo_or_a_device_instead_of_reading_it_without_end(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    refused: list[BaseException] = []

    def add(path: Path) -> None:
        try:
            store.add_file(path)
        except StorageError as exc:
            refused.append(exc)

    for path in (fifo, Path("/dev/zero")):
        adding = threading.Thread(target=add, args=(path,), daemon=True)  # before: blocked on open for ever
        adding.start()
        adding.join(10)
        assert not adding.is_alive(), f"add_file({path}) did not return"
    assert [str(exc) for exc in refused] == [
        f"{path}: cannot add the file: not a regular file (a FIFO, a socket or a device)" for path in (fifo, "/dev/zero")
    ]
    with pytest.raises(IsADirectoryError):
        store.add_file(tmp_path)


def test_only_hash_stores_nothing(store: EmbeddedStore, tmp_path: Path) -> None:
    path = write_sample(tmp_path, THREE_CHUNKS)
    cid = store.add_file(path, only_hash=True)
    assert cid == EmbeddedStore(tmp_path / "other").add_file(path)
    assert block_files(store) == [] and store.pins() == set()


def test_a_corrupted_block_is_refused_on_every_read(store: EmbeddedStore, tmp_path: Path) -> None:
    cid = store.add_file(write_sample(tmp_path, THREE_CHUNKS))
    leaf = max(block_files(store), key=lambda path: path.stat().st_size)
    data = bytearray(leaf.read_bytes())
    data[1000] ^= 1
    leaf.write_bytes(bytes(data))
    with pytest.raises(CorruptBlockError) as caught:
        store.cat(cid)
    assert caught.value.path == leaf
    with pytest.raises(CorruptBlockError):
        store.export_car(cid, tmp_path / "out.car")
    assert not (tmp_path / "out.car").exists()


@pytest.mark.parametrize("damage", ["flipped", "emptied"])
def test_adding_the_file_again_repairs_a_damaged_block(store: EmbeddedStore, tmp_path: Path, damage: str) -> None:
    # A block file that existed was kept whatever it held: adding the file again printed its CID
    # and left the content unreadable (a block emptied by a crash stayed empty for good).
    path = write_sample(tmp_path, THREE_CHUNKS)
    cid = store.add_file(path)
    leaf = max(block_files(store), key=lambda block: block.stat().st_size)
    data = bytearray(leaf.read_bytes())
    data[1000] ^= 1
    leaf.write_bytes(bytes(data) if damage == "flipped" else b"")
    with pytest.raises(CorruptBlockError):
        store.cat(cid)
    assert store.add_file(path) == cid
    assert store.cat(cid) == path.read_bytes()
    assert len(block_files(store)) == 5 and not any(p.name.startswith(".") for p in store.blocks.root.iterdir())


def test_missing_blocks_and_bad_cids_raise_typed_errors(store: EmbeddedStore) -> None:
    cid = store.add_bytes(sample_bytes(262145))
    for path in block_files(store):
        if path.stat().st_size < 1000:
            continue
        path.unlink()
        break
    with pytest.raises(BlockMissingError):
        store.cat(cid)
    with pytest.raises(BlockMissingError):
        store.stat("QmRQ353oFNqt8zfZ9X1HgRUszwv9RkEEwmMZZkbkYEsybn")
    for bad in ["", "hello", "Qm123", "bafy!"]:
        with pytest.raises(InvalidCIDError):
            store.cat(bad)
    assert not store.has("QmRQ353oFNqt8zfZ9X1HgRUszwv9RkEEwmMZZkbkYEsybn")
    for bad in [5, None, 1.5]:  # the message was a page of multiformats' runtime type checks
        for use in (store.cat, store.has, store.stat):
            with pytest.raises(InvalidCIDError, match=r"\(a CID is text such as Qm\.\.\. or bafy\.\.\., or its bytes\)$"):
                use(bad)  # type: ignore[arg-type]


def test_add_refuses_what_is_not_bytes_and_a_version_that_is_not_0_or_1(store: EmbeddedStore) -> None:
    for data, name in (("text", "str"), (None, "NoneType"), (5, "int")):  # None failed on len()
        with pytest.raises(TypeError, match=rf"add_bytes takes bytes, not {name} \(text: encode it first\)"):
            store.add_bytes(data)  # type: ignore[arg-type]
    assert store.add_bytes(memoryview(b"hello world\n")) == HELLO_V0
    for version in (True, -1, 2, "1"):  # True made a CIDv1
        with pytest.raises(ValueError, match=f"cid_version is 0 or 1, not {version!r}"):
            store.add_bytes(b"x", cid_version=version)  # type: ignore[arg-type]
    assert block_files(store) and store.pins() == {HELLO_V0}


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_store_is_never_made_in_the_current_directory_by_a_blank_path(blank: str) -> None:
    with pytest.raises(ConfigurationError, match=f"expected a content store directory, got {blank!r}"):
        EmbeddedStore(blank)


def test_stat_describes_the_file(store: EmbeddedStore) -> None:
    cid = store.add_bytes(sample_bytes(262145))
    info = store.stat(cid)
    assert info["cid"] == cid and info["type"] == "file" and info["size"] == 262145 and info["links"] == 2
    assert info["cumulative_size"] == sum(path.stat().st_size for path in block_files(store))
    raw = store.add_bytes(b"abc", cid_version=1)
    assert store.stat(raw) == {"cid": raw, "type": "file", "size": 3, "cumulative_size": 3, "links": 0}


def test_gc_keeps_pinned_dags_and_removes_the_rest(store: EmbeddedStore, tmp_path: Path) -> None:
    kept = store.add_bytes(sample_bytes(262145))
    dropped = store.add_bytes(sample_bytes(THREE_CHUNKS)[::-1])  # shares no block with `kept`
    assert store.gc() == 0
    store.unpin(dropped)
    with pytest.raises(ContentStoreError, match="not pinned"):
        store.unpin(dropped)
    assert store.gc() == 5
    assert store.cat(kept) == sample_bytes(262145)
    assert not store.has(dropped)
    with pytest.raises(BlockMissingError):
        store.pin(dropped)


def test_pin_protects_a_dag_added_without_pinning(store: EmbeddedStore) -> None:
    cid = store.add_bytes(b"x")
    store.unpin(cid)
    store.pin(cid)
    assert store.gc() == 0 and store.cat(cid) == b"x"


@pytest.mark.parametrize("version", [0, 1])
def test_car_round_trip_between_stores(store: EmbeddedStore, tmp_path: Path, version: int) -> None:
    data = sample_bytes(THREE_CHUNKS)
    cid = store.add_bytes(data, cid_version=version)
    car = tmp_path / "dag.car"
    store.export_car(cid, car)
    other = EmbeddedStore(tmp_path / "other")
    assert other.import_car(car) == [cid]
    assert other.cat(cid) == data and other.pins() == {cid}
    with car.open("rb") as stream:
        roots, blocks = read_car(stream)
        order = [block_cid for block_cid, _ in blocks]
    assert [cid_string(root) for root in roots] == [cid] and order[0] == parse_cid(cid)  # root first, like kubo


def test_car_vector_hello_world(store: EmbeddedStore, tmp_path: Path) -> None:
    store.add_bytes(b"hello world\n")
    store.export_car(HELLO_V0, tmp_path / "hello.car")
    assert (tmp_path / "hello.car").read_bytes().hex() == (
        "38a265726f6f747381d82a582300122046d44814b9c5af141c3aaab7c05dc5e844ead5f91f12858b021eba45768b4c0e"
        "6776657273696f6e01"
        "36122046d44814b9c5af141c3aaab7c05dc5e844ead5f91f12858b021eba45768b4c0e"
        "0a120802120c68656c6c6f20776f726c640a180c"
    )


def car_bytes(roots: list, blocks: list) -> bytes:
    out = io.BytesIO()
    write_car(out, roots, blocks)
    return out.getvalue()


def bad_cars(store: EmbeddedStore) -> dict[str, bytes]:
    cid = parse_cid(store.add_bytes(sample_bytes(262145)))
    blocks = list(store.walk(cid))
    good = car_bytes([cid], blocks)
    tampered = blocks[:-1] + [(blocks[-1][0], blocks[-1][1][:-1] + b"!")]
    return {
        "tampered block": car_bytes([cid], tampered),
        "truncated": good[:-10],
        "root missing": car_bytes([cid], blocks[1:]),
        "not CBOR": encode_varint(3) + b"\xff\xff\xff",
        "version 2": good.replace(b"version\x01", b"version\x02", 1),
        "empty": b"",
        "huge section": good[: good.index(b"version\x01") + 8] + encode_varint(2**40),
        # Python's true == 1 == 1.0 took these for version 1 (go-car refuses them).
        "version true": good.replace(b"version\x01", b"version\xf5", 1),
        "version 1.0": bytes([good[0] + 8]) + good[1:].replace(b"version\x01", b"version\xfb\x3f\xf0" + bytes(6), 1),
        # An identity CID whose inline data is not the block: "unsupported hash function identity".
        "identity block": good + encode_varint(6) + b"\x01\x55\x00\x02hi" + b"x",
        # Imported unpinned, every block went at the next gc.
        "no roots": car_bytes([], blocks),
    }


@pytest.mark.parametrize(
    "case", ["tampered block", "truncated", "root missing", "not CBOR", "version 2", "empty", "huge section",
             "identity block", "version true", "version 1.0", "no roots"]
)
def test_bad_car_files_are_refused_and_leave_nothing(store: EmbeddedStore, tmp_path: Path, case: str) -> None:
    path = tmp_path / "bad.car"
    path.write_bytes(bad_cars(EmbeddedStore(tmp_path / "source"))[case])
    with pytest.raises(CarFormatError) as refused:
        store.import_car(path)
    assert str(refused.value).startswith(f"{path}: ")  # it named no file: "CAR ends inside a block section"
    assert block_files(store) == [] and store.pins() == set()


@pytest.mark.filterwarnings("ignore:.*strict.*:FutureWarning")  # ipfshttpclient 0.7.0 on urllib3 2
def test_open_store_follows_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENERDATX_IPFS_API", raising=False)
    monkeypatch.setenv("ENERDATX_IPFS_REPO", str(tmp_path / "from-env"))
    assert isinstance(open_store(tmp_path / "given"), EmbeddedStore)
    assert open_store().directory == tmp_path / "from-env"  # type: ignore[attr-defined]
    monkeypatch.setenv("ENERDATX_IPFS_API", "/ip4/127.0.0.1/tcp/9")  # discard port: nobody answers
    with pytest.raises(ConnectionError):
        open_store(tmp_path)
    with pytest.raises(ConnectionError):
        KuboStore("/ip4/127.0.0.1/tcp/9", timeout=2)


def test_an_interrupted_block_write_leaves_no_block_and_no_temporary(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError, match="No space"):
        store.add_bytes(b"hello world\n")
    monkeypatch.undo()
    assert block_files(store) == [] and store.pins() == set()
    assert store.add_bytes(b"hello world\n") == HELLO_V0


def test_gc_waits_for_an_unfinished_add(store: EmbeddedStore) -> None:
    # An add writes blocks before it pins its root; a gc in between must not sweep them.
    written = threading.Event()
    release = threading.Event()
    real_put = store.blocks.put

    def slow_put(cid: bytes, block: bytes) -> bool:
        result = real_put(cid, block)
        written.set()
        release.wait(timeout=30)
        return result

    store.blocks.put = slow_put  # type: ignore[method-assign]
    adder = threading.Thread(target=lambda: store.add_bytes(b"unfinished"))
    adder.start()
    assert written.wait(timeout=30)
    removed: list[int] = []
    collector = threading.Thread(target=lambda: removed.append(store.gc()))
    collector.start()
    collector.join(timeout=0.5)
    assert collector.is_alive(), "gc ran while an add held unpinned blocks"
    release.set()
    adder.join(timeout=30)
    collector.join(timeout=30)
    assert removed == [0] and store.cat(store.add_bytes(b"unfinished")) == b"unfinished"


def test_pin_changes_are_journaled_and_compacted_into_pins_json(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("enerdatx.ipfs.embedded._JOURNAL_COMPACT_BYTES", 200)  # compact after 4 records
    cids = [store.add_bytes(bytes([n])) for n in range(6)]
    store.unpin(cids[0])
    journal, snapshot = store.directory / "pins.journal", store.directory / "pins.json"
    assert snapshot.exists(), "a long journal was not folded into pins.json"
    assert 0 < journal.stat().st_size < 200
    assert store.pins() == set(cids[1:])
    assert EmbeddedStore(store.directory).pins() == set(cids[1:])  # a fresh open reads the same


def test_a_kill_between_the_two_steps_of_compaction_loses_no_pin(store: EmbeddedStore) -> None:
    kept, dropped = store.add_bytes(b"kept"), store.add_bytes(b"dropped")
    store.unpin(dropped)
    # Compaction's first step done (the snapshot holds the journal's result), the second not.
    (store.directory / "pins.json").write_text(f'["{kept}"]')
    assert store.pins() == {kept}


def test_an_unfinished_journal_record_is_no_pin_and_is_cut_off(store: EmbeddedStore) -> None:
    kept = store.add_bytes(b"kept")
    torn = store.add_bytes(b"torn")
    journal = store.directory / "pins.journal"
    whole = journal.read_bytes()
    journal.write_bytes(whole[: -len(torn) // 2])  # killed inside the append of `torn`'s record
    assert store.pins() == {kept}
    again = store.add_bytes(b"again")
    assert store.pins() == {kept, again}
    assert b"\n".join(journal.read_bytes().split(b"\n")[:-1]) == f"+{kept}\n+{again}".encode()


def test_a_journal_that_is_not_records_is_a_typed_error(store: EmbeddedStore) -> None:
    (store.directory / "pins.journal").write_bytes(b"*not-a-record\n")
    with pytest.raises(ContentStoreError, match="neither"):
        store.pins()


def test_a_cid_text_longer_than_any_cid_is_refused_at_once() -> None:
    # multiformats decodes base16 and base58 in quadratic time: 130,000 hex digits (one command-line
    # argument's worth) took 2 s to be refused, 200,000 from a program 5 s.
    import time

    started = time.perf_counter()
    with pytest.raises(InvalidCIDError, match="more than any CID has"):
        parse_cid("f0155" + "12" * 65_000)
    assert time.perf_counter() - started < 0.5
    # The longest ordinary spelling, base2, still reads.
    base2 = parse_cid(HELLO_V0).set(version=1).encode("base2")
    assert cid_string(parse_cid(base2)) == cid_string(parse_cid(HELLO_V0).set(version=1))


@pytest.mark.parametrize(("given", "message"), [
    (" ", "not a CID: ' ' (a CID is text such as Qm... or bafy...)"),  # was "not a CID: ''"
    ("\t/ipfs/ ", "not a CID: '\\t/ipfs/ ' (a CID is text such as Qm... or bafy...)"),
    (" bogus ", "not a CID: ' bogus ' ("),  # was 'bogus', not what was given
    (memoryview(b"\x00"), "not a CID: b'\\x00' ("),  # was "<memory at 0x7f...>"
])
def test_a_refused_cid_is_named_as_given(given: str | memoryview, message: str) -> None:
    with pytest.raises(InvalidCIDError) as refused:
        parse_cid(given)
    assert str(refused.value).startswith(message)
