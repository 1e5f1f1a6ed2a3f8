"""CAR v1 (Content Addressable aRchive) files, as ``ipfs dag export`` writes and ``dag import`` reads.

Layout (https://ipld.io/specs/transport/car/carv1/): a varint length and a DAG-CBOR
header ``{"roots": [CID, ...], "version": 1}``, then one section per block: a varint
length, the block's CID in binary, the block's bytes. The header is DAG-CBOR, encoded
by the ``dag-cbor`` library; the sections are plain length-prefixed bytes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import dag_cbor
from dag_cbor.ipld import IPLDKind

from enerdatx.errors import CarFormatError
from enerdatx.ipfs.blocks import CID, cid_string, verify_block
from enerdatx.ipfs.dagpb import decode_varint, encode_varint
from enerdatx.ipfs.unixfs import child_cids

__all__ = ["MAX_HEADER_SIZE", "MAX_SECTION_SIZE", "car_file", "write_car", "read_car", "missing_blocks", "require_roots"]

MAX_HEADER_SIZE = 64 * 1024  # a header holds only the roots
MAX_SECTION_SIZE = 4 * 1024 * 1024 + 1024  # kubo's largest block (4 MiB) plus its CID


def write_car(out: BinaryIO, roots: list[CID], blocks: Iterable[tuple[CID, bytes]]) -> int:
    """Write a CAR v1 with ``roots`` and ``blocks`` in the given order; return bytes written."""
    listed: list[IPLDKind] = list(roots)
    header = dag_cbor.encode({"roots": listed, "version": 1})
    written = out.write(encode_varint(len(header)) + header)
    for cid, block in blocks:
        cid_bytes = bytes(cid)
        written += out.write(encode_varint(len(cid_bytes) + len(block)) + cid_bytes)
        written += out.write(block)
    return written


def _read_varint(stream: BinaryIO) -> int | None:
    """A varint from a stream, or ``None`` at a clean end of file."""
    raw = bytearray()
    while True:
        byte = stream.read(1)
        if not byte:
            if raw:
                raise CarFormatError("CAR ends inside a length prefix")
            return None
        raw += byte
        if not byte[0] & 0x80:
            try:
                return decode_varint(bytes(raw))[0]
            except ValueError as exc:
                raise CarFormatError(f"bad length prefix: {exc}") from exc


def _read_exact(stream: BinaryIO, length: int, what: str) -> bytes:
    data = stream.read(length)
    if len(data) != length:
        raise CarFormatError(f"CAR ends inside {what} ({len(data)} of {length} bytes)")
    return data


def _cid_length(section: bytes) -> int:
    """How many leading bytes of a section are its CID (CIDv0 is a bare sha2-256 multihash)."""
    try:
        if section[:2] == b"\x12\x20":
            return 34
        pos = 0
        for _ in range(3):  # version, codec, hash function
            _, pos = decode_varint(section, pos)
        digest_length, pos = decode_varint(section, pos)
        return pos + digest_length
    except ValueError as exc:
        raise CarFormatError(f"a section does not start with a CID: {exc}") from exc


def read_car(stream: BinaryIO) -> tuple[list[CID], Iterator[tuple[CID, bytes]]]:
    """Parse the header now; return the roots and an iterator of verified ``(cid, block)``.

    Every block is checked against its CID as it is read; a mismatch, a truncated
    section or an oversized one raises ``CarFormatError``.
    """
    header_length = _read_varint(stream)
    if header_length is None:
        raise CarFormatError("the file is empty: not a CAR file")
    if not 0 < header_length <= MAX_HEADER_SIZE:
        raise CarFormatError(f"CAR header length {header_length} is out of range: not a CAR v1 file")
    try:
        header = dag_cbor.decode(_read_exact(stream, header_length, "the header"))
    except Exception as exc:  # dag-cbor raises several unrelated types on bad input (IndexError, OverflowError...)
        raise CarFormatError(f"CAR header is not DAG-CBOR: {exc}") from exc
    # true and 1.0 equal 1 in Python, not in CBOR
    if not isinstance(header, dict) or type(header.get("version")) is not int or header["version"] != 1:
        raise CarFormatError(f"not a CAR v1 header: {str(header)[:200]}")
    listed = header.get("roots")
    roots = [root for root in listed if isinstance(root, CID)] if isinstance(listed, list) else []
    if not isinstance(listed, list) or len(roots) != len(listed):
        raise CarFormatError("CAR header roots must be a list of CIDs")

    def sections() -> Iterator[tuple[CID, bytes]]:
        while (length := _read_varint(stream)) is not None:
            if not 0 < length <= MAX_SECTION_SIZE:
                raise CarFormatError(f"CAR section of {length} bytes is out of range")
            section = _read_exact(stream, length, "a block section")
            split = _cid_length(section)
            try:
                cid = CID.decode(section[:split])
            except (ValueError, KeyError, ImportError) as exc:  # ImportError: keccak without pycryptodome
                raise CarFormatError(f"bad CID in a CAR section: {exc}") from exc
            block = section[split:]
            if not verify_block(cid, block):
                raise CarFormatError(f"CAR block does not hash to its CID {cid_string(cid)}")
            yield cid, block

    return roots, sections()


@contextlib.contextmanager
def car_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """``path`` open for reading a CAR; a CarFormatError within names the file ("PATH: CAR ends
    inside ..."): an import's refusal named no file."""
    with open(path, "rb") as stream:
        try:
            yield stream
        except CarFormatError as exc:
            raise CarFormatError(f"{os.fspath(path)}: {exc}") from None


def require_roots(roots: list[CID]) -> None:
    """Refuse to import a CAR whose header lists no roots, before any of its blocks is stored.

    An import pins the roots: without one, every block would be stored unpinned, and the next
    ``gc`` would delete them all. (CAR v1 readers disagree on whether no roots is valid at all:
    go-car refuses it, js-car reads it.)
    """
    if not roots:
        raise CarFormatError("the CAR header lists no roots, and an import pins its roots: its blocks "
                             "would be kept by nothing (export the DAG under its root CID)")


def missing_blocks(stream: BinaryIO) -> list[CID]:
    """The blocks a CAR's DAG links to but does not hold (roots included), in CIDv1 form.

    A daemon streams ``dag export`` with status 200 before it knows every block; when
    it gives up halfway, the file simply ends. This is how such a CAR is recognised.
    """
    roots, blocks = read_car(stream)
    held: set[CID] = set()
    wanted = {root.set(version=1) for root in roots}
    for cid, block in blocks:
        held.add(cid.set(version=1))
        wanted.update(child.set(version=1) for child in child_cids(cid, block))
    return sorted(wanted - held, key=str)
