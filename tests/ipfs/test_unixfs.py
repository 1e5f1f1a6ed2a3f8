"""The importer against CIDs real nodes gave, and the encodings under it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from multiformats import CID

from enerdatx.errors import EncodingError
from enerdatx.ipfs import dagpb, unixfs
from enerdatx.ipfs.blocks import cid_string, make_cid
from enerdatx.ipfs.unixfs import FileImporter, iter_file, read_chunks

from .sample import sample_bytes

VECTORS_PATH = Path(__file__).resolve().parents[1] / "vectors" / "ipfs-unixfs-cids.csv"
VECTORS = list(csv.DictReader(line for line in VECTORS_PATH.open() if not line.startswith("#")))


def import_bytes(data: bytes, cid_version: int) -> tuple[CID, dict[bytes, bytes]]:
    """Root CID and blocks, keyed by binary CID."""
    blocks: dict[bytes, bytes] = {}
    importer = FileImporter(blocks.__setitem__, cid_version)
    for chunk in read_chunks(io.BytesIO(data)):
        importer.add_chunk(chunk)
    return importer.finish(), blocks


def test_design_vectors_hello_world() -> None:
    assert cid_string(import_bytes(b"hello world\n", 0)[0]) == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    assert (
        cid_string(import_bytes(b"hello world\n", 1)[0])
        == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
    )


@pytest.mark.parametrize("row", VECTORS, ids=[row["name"] for row in VECTORS])
def test_cids_match_real_nodes_and_read_back(row: dict[str, str]) -> None:
    data = sample_bytes(int(row["size"]))
    for version, column in ((0, "cid_v0"), (1, "cid_v1_raw_leaves")):
        root, blocks = import_bytes(data, version)
        assert cid_string(root) == row[column]
        assert b"".join(iter_file(lambda cid, blocks=blocks: blocks[bytes(cid)], root)) == data


def kubo_balanced_layout(leaves: list[bytes], cid_version: int, max_links: int) -> CID:
    """An independent, recursive transcription of kubo's balanced layout (fillNodeRec)."""
    blocks: dict[CID, bytes] = {}

    def leaf(chunk: bytes) -> tuple[CID, int, int]:
        if cid_version == 1:
            return make_cid("raw", chunk, 1), len(chunk), len(chunk)
        data = dagpb.encode_unixfs(dagpb.UnixFSData(dagpb.UNIXFS_FILE, chunk or None, len(chunk)))
        block = dagpb.encode_node(dagpb.PBNode((), data))
        return make_cid("dag-pb", block, 0), len(block), len(chunk)

    def node(children: list[tuple[CID, int, int]]) -> tuple[CID, int, int]:
        sizes = tuple(filesize for _, _, filesize in children)
        data = dagpb.encode_unixfs(dagpb.UnixFSData(dagpb.UNIXFS_FILE, None, sum(sizes), sizes))
        links = tuple(dagpb.PBLink(bytes(cid), "", tsize) for cid, tsize, _ in children)
        block = dagpb.encode_node(dagpb.PBNode(links, data))
        cid = make_cid("dag-pb", block, cid_version)
        blocks[cid] = block
        return cid, len(block) + sum(tsize for _, tsize, _ in children), sum(sizes)

    pending = list(leaves)

    def fill(depth: int, first: tuple[CID, int, int] | None = None) -> tuple[CID, int, int]:
        children = [first] if first else []
        while len(children) < max_links and pending:
            children.append(leaf(pending.pop(0)) if depth == 1 else fill(depth - 1))
        return node(children)

    root = leaf(pending.pop(0)) if pending else leaf(b"")
    depth = 1
    while pending:
        root = fill(depth, root)
        depth += 1
    return root[0]


@pytest.mark.parametrize("max_links", [2, 3, 4])
@pytest.mark.parametrize("version", [0, 1])
def test_streaming_builder_equals_kubo_layout_at_every_depth(
    monkeypatch: pytest.MonkeyPatch, max_links: int, version: int
) -> None:
    # A small fan-out reaches depth 4 and more with a few chunks, which 174 cannot in a test.
    monkeypatch.setattr(unixfs, "MAX_LINKS", max_links)
    for count in range(0, max_links**3 + 3):
        leaves = [bytes([count, index]) for index in range(count)]
        importer = FileImporter(lambda cid, block: None, version)
        for chunk in leaves:
            importer.add_chunk(chunk)
        assert importer.finish() == kubo_balanced_layout(leaves, version, max_links), count


def test_importer_memory_is_bounded_by_tree_depth() -> None:
    importer = FileImporter(lambda cid, block: None, 0)
    for _ in range(174 * 3 + 5):
        importer.add_chunk(b"x")
    pending = [len(level) for level in importer._levels]
    assert len(pending) == 2 and all(count <= unixfs.MAX_LINKS for count in pending)


def test_read_chunks_fills_chunks_from_a_trickling_stream() -> None:
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            step = min(7, size)
            piece, self.data = self.data[:step], self.data[step:]
            return piece

    chunks = list(read_chunks(Trickle(bytes(100)), size=32))  # type: ignore[arg-type]
    assert [len(chunk) for chunk in chunks] == [32, 32, 32, 4]


# --- the hand-written protobuf ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"), [(0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (300, "ac02"), (262144, "808010")]
)
def test_varint_vectors(value: int, encoded: str) -> None:
    assert dagpb.encode_varint(value).hex() == encoded
    assert dagpb.decode_varint(bytes.fromhex(encoded)) == (value, len(encoded) // 2)


@pytest.mark.parametrize("bad", ["", "80", "8000", "ffffffffffffffffffff01"])
def test_bad_varints_are_refused(bad: str) -> None:
    with pytest.raises(EncodingError):
        dagpb.decode_varint(bytes.fromhex(bad))


def test_leaf_vector_hello_world() -> None:
    root, blocks = import_bytes(b"hello world\n", 0)
    assert blocks[bytes(root)].hex() == "0a120802120c68656c6c6f20776f726c640a180c"
    node = dagpb.decode_node(blocks[bytes(root)])
    assert dagpb.decode_unixfs(node.data or b"") == dagpb.UnixFSData(2, b"hello world\n", 12)


def test_internal_node_round_trips() -> None:
    root, blocks = import_bytes(sample_bytes(262145), 0)
    node = dagpb.decode_node(blocks[bytes(root)])
    assert [link.name for link in node.links] == ["", ""]
    assert dagpb.decode_unixfs(node.data or b"").blocksizes == (262144, 1)
    assert dagpb.encode_node(node) == blocks[bytes(root)]


@pytest.mark.parametrize(
    "bad",
    [
        "0a0508",  # data runs past the end
        "0a020802" "0a020802",  # Data twice
        "0a020802" "12020a00",  # a link after the data
        "1a0100",  # unknown field 3
        "0d00000000",  # 32-bit wire type
        "12021a01",  # link without a hash, truncated
    ],
)
def test_malformed_dag_pb_is_refused(bad: str) -> None:
    with pytest.raises(EncodingError):
        dagpb.decode_node(bytes.fromhex(bad))


def test_directory_is_not_read_as_a_file() -> None:
    block = dagpb.encode_node(dagpb.PBNode((), dagpb.encode_unixfs(dagpb.UnixFSData(dagpb.UNIXFS_DIRECTORY))))
    cid = make_cid("dag-pb", block, 0)
    with pytest.raises(Exception, match="not a file"):
        list(iter_file({cid: block}.__getitem__, cid))
