"""UnixFS files as kubo's ``ipfs add`` builds them, and reading them back.

The importer follows kubo's defaults exactly (docs/content-addressing.md): fixed
262144-byte chunks, a balanced DAG of at most 174 links per node, dag-pb leaves for
CIDv0 and raw leaves for CIDv1. It is a streaming builder: it keeps one pending list
of links per tree level (at most 174 x depth links), so memory stays bounded whatever
the file's size, and each block is handed to ``put`` exactly once, children first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from enerdatx.errors import ContentStoreError, EncodingError
from enerdatx.ipfs.blocks import CID, DAG_PB, RAW, AnyCID, binary_cid, cid_string, codec_name, parse_cid
from enerdatx.ipfs.dagpb import (
    UNIXFS_FILE,
    UNIXFS_RAW,
    PBLink,
    PBNode,
    UnixFSData,
    decode_node,
    decode_unixfs,
    encode_node,
    encode_unixfs,
    leaf_block_parts,
)

__all__ = ["CHUNK_SIZE", "MAX_LINKS", "FileImporter", "read_chunks", "iter_file", "child_cids", "describe"]

CHUNK_SIZE = 256 * 1024
MAX_LINKS = 174

PutBlock = Callable[[bytes, bytes], object]  # (binary CID, block); what it returns is ignored
GetBlock = Callable[[AnyCID], bytes]


@dataclass(frozen=True)
class _Link:
    cid: bytes  # binary
    tsize: int  # bytes of every block under the link (dag-pb Tsize)
    filesize: int  # file bytes under the link (UnixFS blocksizes)


class FileImporter:
    """Feed chunks with ``add_chunk``; ``finish`` returns the root CID kubo would give."""

    def __init__(self, put: PutBlock, cid_version: int = 0) -> None:
        if isinstance(cid_version, bool) or cid_version not in (0, 1):  # True == 1 made a CIDv1
            raise ValueError(f"cid_version is 0 or 1, not {cid_version!r}")
        self._put = put
        self._version = cid_version
        self._levels: list[list[_Link]] = [[]]
        self._finished = False

    def add_chunk(self, chunk: bytes) -> None:
        """Add the next chunk (every chunk but the last must be ``CHUNK_SIZE`` bytes)."""
        self._push(0, self._leaf(chunk))

    def finish(self) -> CID:
        """Close every level of the tree and return the root's CID.

        The CID comes from parse_cid's cache: building a multiformats CID costs about 0.3 ms,
        more than a small file's hash, and a file added twice in one process (a seller's data
        set and its buyer's copy, both in a Lab) gets the same, immutable, CID object.
        """
        if self._finished:
            raise RuntimeError("this importer has already finished")
        self._finished = True
        leaves = self._levels[0]
        if not leaves:  # an empty file is a single empty leaf
            return parse_cid(self._leaf(b"").cid)
        if len(self._levels) == 1 and len(leaves) == 1:
            return parse_cid(leaves[0].cid)  # a one-chunk file is its own leaf
        level = 0
        while True:
            node = self._node(self._levels[level])
            self._levels[level] = []
            if level == len(self._levels) - 1:
                return parse_cid(node.cid)
            self._push(level + 1, node)
            level += 1

    def _push(self, level: int, link: _Link) -> None:
        # A full level is closed only when more data arrives, as kubo's balanced layout
        # does; that is what makes a 174-chunk file one node and 175 chunks two levels.
        if len(self._levels[level]) == MAX_LINKS:
            if level + 1 == len(self._levels):
                self._levels.append([])
            self._push(level + 1, self._node(self._levels[level]))
            self._levels[level] = []
        self._levels[level].append(link)

    def _leaf(self, chunk: bytes) -> _Link:
        if self._version == 1:
            cid = binary_cid(RAW, chunk, 1)
            self._put(cid, chunk)
            return _Link(cid, len(chunk), len(chunk))
        head, tail = leaf_block_parts(len(chunk))
        block = b"".join((head, chunk, tail))
        cid = binary_cid(DAG_PB, block, 0)
        self._put(cid, block)
        return _Link(cid, len(block), len(chunk))

    def _node(self, links: list[_Link]) -> _Link:
        filesize = sum(link.filesize for link in links)
        data = encode_unixfs(UnixFSData(UNIXFS_FILE, None, filesize, tuple(link.filesize for link in links)))
        block = encode_node(PBNode(tuple(PBLink(link.cid, "", link.tsize) for link in links), data))
        cid = binary_cid(DAG_PB, block, self._version)
        self._put(cid, block)
        return _Link(cid, len(block) + sum(link.tsize for link in links), filesize)


def read_chunks(stream: BinaryIO, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Full ``size``-byte chunks from ``stream`` (pipes too), then the short remainder."""
    while True:
        chunk = stream.read(size)
        if not chunk:
            return
        while len(chunk) < size:  # a pipe or socket may return less before its end
            more = stream.read(size - len(chunk))
            if not more:
                break
            chunk += more
        yield chunk
        if len(chunk) < size:
            return


def _decode_file_node(cid: AnyCID, block: bytes) -> tuple[PBNode, UnixFSData]:
    node = decode_node(block)
    if node.data is None:
        raise EncodingError(f"{cid_string(cid)} is a dag-pb node without UnixFS data")
    unixfs = decode_unixfs(node.data)
    if unixfs.type not in (UNIXFS_FILE, UNIXFS_RAW):
        raise ContentStoreError(f"{cid_string(cid)} is a UnixFS node of type {unixfs.type}, not a file")
    if node.links and len(unixfs.blocksizes) != len(node.links):
        raise EncodingError(f"{cid_string(cid)} has {len(node.links)} links but {len(unixfs.blocksizes)} blocksizes")
    return node, unixfs


def iter_file(get: GetBlock, cid: AnyCID) -> Iterator[bytes]:
    """The bytes of the UnixFS file (or raw block) at ``cid``, chunk by chunk, depth first."""
    codec = codec_name(cid)
    if codec == RAW:
        yield get(cid)
        return
    if codec != DAG_PB:
        raise ContentStoreError(f"{cid_string(cid)} is {codec}, not a UnixFS file")
    node, unixfs = _decode_file_node(cid, get(cid))
    if unixfs.data:
        yield unixfs.data
    for link in node.links:
        yield from iter_file(get, _link_cid(cid, link.hash))


def _link_cid(parent: AnyCID, raw: bytes) -> CID:
    """A link's CID; EncodingError when a (foreign) block links to bytes that are not one."""
    try:
        return CID.decode(raw)
    except (ValueError, KeyError, ImportError) as exc:  # ImportError: keccak without pycryptodome
        raise EncodingError(f"{cid_string(parent)} links to bytes that are not a CID: {exc}") from exc


def child_cids(cid: AnyCID, block: bytes) -> list[CID]:
    """The CIDs a block links to (dag-pb links; raw and unknown codecs link to nothing)."""
    if codec_name(cid) != DAG_PB:
        return []
    return [_link_cid(cid, link.hash) for link in decode_node(block).links]


def describe(cid: CID, block: bytes) -> dict[str, object]:
    """``stat`` figures read from the root block alone, named as kubo's ``files stat``."""
    if codec_name(cid) == RAW:
        return {"cid": cid_string(cid), "type": "file", "size": len(block), "cumulative_size": len(block), "links": 0}
    node, unixfs = _decode_file_node(cid, block)
    size = unixfs.filesize if unixfs.filesize is not None else len(unixfs.data or b"")
    return {
        "cid": cid_string(cid),
        "type": "file",
        "size": size,
        "cumulative_size": len(block) + sum(link.tsize or 0 for link in node.links),
        "links": len(node.links),
    }
