"""The two small protobuf encodings under a UnixFS file: dag-pb nodes and UnixFS Data.

No maintained Python library encodes dag-pb the way kubo does, so the few fields a
file needs are written by hand here, byte for byte as kubo writes them (specified with
test vectors in docs/content-addressing.md). Decoding is strict: an unknown field, a
wrong wire type or a truncated value is an ``EncodingError``, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from enerdatx.errors import EncodingError

__all__ = [
    "PBLink",
    "PBNode",
    "UnixFSData",
    "UNIXFS_RAW",
    "UNIXFS_DIRECTORY",
    "UNIXFS_FILE",
    "encode_varint",
    "decode_varint",
    "encode_node",
    "decode_node",
    "encode_unixfs",
    "decode_unixfs",
    "leaf_block_parts",
]

# UnixFS Data.DataType values (only these three can appear in a file's DAG or be named).
UNIXFS_RAW = 0
UNIXFS_DIRECTORY = 1
UNIXFS_FILE = 2

_VARINT = 0
_LENGTH_DELIMITED = 2
_MAX_VARINT_BYTES = 10  # a uint64 never needs more


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, as protobuf and multiformats use it."""
    if value < 0:
        raise ValueError(f"a varint is unsigned, not {value}")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """Read one varint at ``pos``; return ``(value, position after it)``."""
    value = 0
    for shift_index in range(_MAX_VARINT_BYTES):
        if pos >= len(buf):
            raise EncodingError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * shift_index)
        if not byte & 0x80:
            if byte == 0 and shift_index > 0:
                raise EncodingError("varint is not minimally encoded")
            return value, pos
    raise EncodingError("varint longer than 10 bytes")


def _key(field: int, wire_type: int) -> bytes:
    return encode_varint(field << 3 | wire_type)


def _bytes_field(field: int, value: bytes) -> bytes:
    return _key(field, _LENGTH_DELIMITED) + encode_varint(len(value)) + value


def _varint_field(field: int, value: int) -> bytes:
    return _key(field, _VARINT) + encode_varint(value)


def _fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield ``(field number, wire type, value)``; values of length-delimited fields are views."""
    view = memoryview(buf)
    pos = 0
    while pos < len(view):
        key, pos = decode_varint(view, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            value, pos = decode_varint(view, pos)
            yield field, wire_type, value
        elif wire_type == _LENGTH_DELIMITED:
            length, pos = decode_varint(view, pos)
            if pos + length > len(view):
                raise EncodingError(f"field {field} runs past the end of the message")
            yield field, wire_type, view[pos : pos + length]
            pos += length
        else:
            raise EncodingError(f"field {field} has unsupported wire type {wire_type}")


@dataclass(frozen=True)
class PBLink:
    """A dag-pb link: the child's CID bytes, a name (``""`` in files) and its cumulative size."""

    hash: bytes
    name: str | None = ""
    tsize: int | None = None


@dataclass(frozen=True)
class PBNode:
    """A dag-pb node: links, then opaque data (a UnixFS message for files)."""

    links: tuple[PBLink, ...] = ()
    data: bytes | None = None


def encode_node(node: PBNode) -> bytes:
    """Canonical dag-pb bytes: every link (field 2) before the data (field 1)."""
    parts = []
    for link in node.links:
        body = _bytes_field(1, link.hash)
        if link.name is not None:
            body += _bytes_field(2, link.name.encode("utf-8"))
        if link.tsize is not None:
            body += _varint_field(3, link.tsize)
        parts.append(_bytes_field(2, body))
    if node.data is not None:
        parts.append(_bytes_field(1, node.data))
    return b"".join(parts)


def _decode_link(buf: memoryview) -> PBLink:
    hash_: bytes | None = None
    name: str | None = None
    tsize: int | None = None
    for field, _wire_type, value in _fields(buf):  # the value's type says the wire type
        if field == 1 and isinstance(value, memoryview) and hash_ is None:
            hash_ = bytes(value)
        elif field == 2 and isinstance(value, memoryview) and name is None:
            try:
                name = bytes(value).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise EncodingError("dag-pb link name is not UTF-8") from exc
        elif field == 3 and isinstance(value, int) and tsize is None:
            tsize = value
        else:
            raise EncodingError(f"unexpected or repeated field {field} in a dag-pb link")
    if hash_ is None:
        raise EncodingError("dag-pb link without a hash")
    return PBLink(hash_, name, tsize)


def decode_node(buf: bytes | memoryview) -> PBNode:
    """Parse dag-pb bytes; raise ``EncodingError`` on anything non-canonical we cannot read."""
    links: list[PBLink] = []
    data: bytes | None = None
    for field, _wire_type, value in _fields(buf):  # the value's type says the wire type
        if field == 2 and isinstance(value, memoryview) and data is None:
            links.append(_decode_link(value))
        elif field == 1 and isinstance(value, memoryview) and data is None:
            data = bytes(value)
        else:
            raise EncodingError(f"unexpected, repeated or misplaced field {field} in a dag-pb node")
    return PBNode(tuple(links), data)


@dataclass(frozen=True)
class UnixFSData:
    """The UnixFS ``Data`` message of a file node (mode, mtime and HAMT fields unused)."""

    type: int
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = ()


def encode_unixfs(message: UnixFSData) -> bytes:
    """UnixFS Data bytes in field order, blocksizes unpacked, as kubo writes them."""
    out = _varint_field(1, message.type)
    if message.data is not None:
        out += _bytes_field(2, message.data)
    if message.filesize is not None:
        out += _varint_field(3, message.filesize)
    for size in message.blocksizes:
        out += _varint_field(4, size)
    return out


def decode_unixfs(buf: bytes | memoryview) -> UnixFSData:
    """Parse UnixFS Data bytes; fields a file does not use are refused."""
    type_: int | None = None
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    for field, _wire_type, value in _fields(buf):  # the value's type says the wire type
        if field == 1 and isinstance(value, int):
            type_ = value
        elif field == 2 and isinstance(value, memoryview):
            data = bytes(value)
        elif field == 3 and isinstance(value, int):
            filesize = value
        elif field == 4 and isinstance(value, int):
            blocksizes.append(value)
        elif field == 4 and isinstance(value, memoryview):  # packed encoding, legal protobuf
            pos = 0
            while pos < len(value):
                size, pos = decode_varint(value, pos)
                blocksizes.append(size)
        else:
            raise EncodingError(f"unsupported field {field} in UnixFS data")
    if type_ is None:
        raise EncodingError("UnixFS data without a type")
    return UnixFSData(type_, data, filesize, tuple(blocksizes))


def leaf_block_parts(chunk_length: int) -> tuple[bytes, bytes]:
    """The bytes before and after a chunk in a CIDv0 leaf node, so the chunk is copied once.

    Equal to ``encode_node(PBNode(data=encode_unixfs(UnixFSData(UNIXFS_FILE, chunk, len))))``
    split around the chunk (an empty chunk has no Data field, as in kubo).
    """
    if chunk_length == 0:
        unixfs = encode_unixfs(UnixFSData(UNIXFS_FILE, None, 0))
        return _bytes_field(1, unixfs), b""
    inner_head = _varint_field(1, UNIXFS_FILE) + _key(2, _LENGTH_DELIMITED) + encode_varint(chunk_length)
    inner_tail = _varint_field(3, chunk_length)
    unixfs_length = len(inner_head) + chunk_length + len(inner_tail)
    outer_head = _key(1, _LENGTH_DELIMITED) + encode_varint(unixfs_length)
    return outer_head + inner_head, inner_tail
