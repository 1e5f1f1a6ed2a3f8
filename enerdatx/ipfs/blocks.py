"""CIDs and the on-disk blockstore: one file per block, written atomically, re-hashed on read.

A block's file is named by its CIDv1 in base32 (``bafy...``/``bafk...``), so the CIDv0
and CIDv1 of the same dag-pb block share one file and names stay safe on file systems
that ignore case. Blocks are not fsync'ed one by one (kubo's flatfs does, and pays for
it in speed); a block torn by a crash is caught by the re-hash on every read.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

from multiformats import CID, multihash

from enerdatx.errors import BlockMissingError, CorruptBlockError, InvalidCIDError, StorageError

__all__ = [
    "CID",
    "AnyCID",
    "DAG_PB",
    "RAW",
    "parse_cid",
    "cid_string",
    "binary_cid",
    "make_cid",
    "codec_name",
    "verify_block",
    "Blockstore",
]

DAG_PB = "dag-pb"
RAW = "raw"
_CODEC_CODES = {DAG_PB: 0x70, RAW: 0x55}
_CODEC_NAMES = {code: name for name, code in _CODEC_CODES.items()}
_SHA2_256 = b"\x12\x20"  # multihash prefix: sha2-256, 32 bytes

# The hot paths (one CID per 256 KiB block) use CIDs in binary form: building a
# multiformats CID costs more than hashing the block, and leaves cyclic garbage that
# keeps the block alive until the next collection. Other code uses multiformats CIDs.
AnyCID = CID | bytes
_TEMP_PREFIX = ".tmp-"
_temp_counter = itertools.count()  # next() on it is atomic, so writer threads never share a name


def parse_cid(value: str | AnyCID) -> CID:
    """Decode a CID from its string or binary form, or raise ``InvalidCIDError``."""
    if isinstance(value, CID):
        return value
    if isinstance(value, (str, bytes)):
        return _parse_cid(value)
    if not isinstance(value, (bytearray, memoryview)):  # multiformats' own refusal is a page of type checks
        raise InvalidCIDError(f"not a CID: {value!r} (a CID is text such as Qm... or bafy..., or its bytes)")
    return _decode_cid(value)


# multiformats' text codecs check their arguments' types at every character (about 1 ms a CID
# here, more than a block's hash); CIDs are immutable, so the same text gives the same CID.
@functools.lru_cache(maxsize=4096)
def _parse_cid(value: str | bytes) -> CID:
    return _decode_cid(value)


# Longer than any CID's text: an identity CID of kubo's largest inline digest (128 bytes) is
# about 1,100 characters even in base2. multiformats decodes base16 and base58 in quadratic
# time: 130,000 hex digits (what one command-line argument holds) took 2 s to be refused, 200,000 5 s.
MAX_CID_TEXT = 2048


def _decode_cid(value: str | bytes | bytearray | memoryview) -> CID:
    if isinstance(value, (str, bytes, bytearray, memoryview)) and len(value) > MAX_CID_TEXT:
        raise InvalidCIDError(f"not a CID: {len(value):,} characters or bytes, more than any CID has "
                              f"({MAX_CID_TEXT:,})")
    # Named in the refusal as given: stripped, " " read "not a CID: ''"; a memoryview, "<memory at 0x...>".
    given = bytes(value) if isinstance(value, (bytearray, memoryview)) else value
    try:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("/ipfs/"):
                value = value[len("/ipfs/") :]
            if not value:
                raise InvalidCIDError(f"not a CID: {given!r} (a CID is text such as Qm... or bafy...)")
        return CID.decode(bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else value)
    except (ValueError, KeyError, TypeError, ImportError) as exc:  # ImportError: keccak without pycryptodome
        if isinstance(exc, InvalidCIDError):
            raise
        raise InvalidCIDError(f"not a CID: {given!r} ({exc})") from exc


def cid_string(cid: AnyCID) -> str:
    """The canonical text form kubo prints: base58btc for CIDv0, base32 for CIDv1."""
    return _cid_string(cid) if isinstance(cid, (CID, bytes)) else _cid_text(parse_cid(cid))


@functools.lru_cache(maxsize=4096)  # see _parse_cid; the text does not depend on the CID's base
def _cid_string(cid: CID | bytes) -> str:
    return _cid_text(parse_cid(cid))


def _cid_text(cid: CID) -> str:
    if cid.version == 0:
        return str(cid)
    return str(cid.set(base="base32"))


def binary_cid(codec: str, block: bytes | memoryview, version: int) -> bytes:
    """The binary sha2-256 CID of ``block`` under ``codec`` (CIDv0 only exists for dag-pb)."""
    digest = hashlib.sha256(block).digest()
    if version == 0:
        return _SHA2_256 + digest
    return bytes((1, _CODEC_CODES[codec])) + _SHA2_256 + digest


def make_cid(codec: str, block: bytes, version: int) -> CID:
    """The sha2-256 CID of ``block`` under ``codec``, as a multiformats CID."""
    return CID.decode(binary_cid(codec, block, version))


def _v1_bytes(cid: AnyCID) -> bytes:
    raw = bytes(cid)
    return b"\x01\x70" + raw if raw[:2] == _SHA2_256 and len(raw) == 34 else raw


def _fast_sha256_digest(cid: AnyCID) -> bytes | None:
    """The digest of a sha2-256 CID with a one-byte codec (all kubo makes), else None."""
    raw = _v1_bytes(cid)
    if len(raw) == 36 and raw[0] == 1 and raw[1] < 0x80 and raw[2:4] == _SHA2_256:
        return raw[4:]
    return None


def inline_block(cid: AnyCID) -> bytes | None:
    """The block an identity CID carries inline (its "digest" is the data itself), else None.

    ``bafkqaaa`` is the empty raw block: nothing needs storing to have it, as in kubo.
    """
    if _fast_sha256_digest(cid) is not None:
        return None
    parsed = parse_cid(cid)
    return bytes(parsed.raw_digest) if parsed.hashfun.code == 0x00 else None


def codec_name(cid: AnyCID) -> str:
    """The codec of a CID in either form: ``dag-pb``, ``raw``, or another multicodec name."""
    raw = _v1_bytes(cid)
    if len(raw) > 1 and raw[1] in _CODEC_NAMES:
        return _CODEC_NAMES[raw[1]]
    return (cid if isinstance(cid, CID) else CID.decode(raw)).codec.name


def verify_block(cid: AnyCID, block: bytes) -> bool:
    """Whether ``block`` hashes to the multihash in ``cid``."""
    digest = _fast_sha256_digest(cid)
    if digest is not None:
        return hashlib.sha256(block).digest() == digest
    cid = parse_cid(cid)
    if cid.hashfun.code == 0x00:  # identity: the "digest" is the block; multiformats refuses to
        return block == bytes(cid.raw_digest)  # digest other lengths (an InvalidCIDError of a good CID)
    try:
        return bool(multihash.digest(block, cid.hashfun, size=len(cid.raw_digest)) == cid.digest)
    except (KeyError, ValueError, ImportError) as exc:  # ImportError: a hash needing an optional package
        raise InvalidCIDError(f"{cid}: unsupported hash function {cid.hashfun.name}") from exc


def _key(cid: AnyCID) -> str:
    # The CIDv1 in multibase base32: "b" and RFC 4648 base32, lower case, unpadded.
    return "b" + base64.b32encode(_v1_bytes(cid)).decode("ascii").lower().rstrip("=")


def _holds(path: str, block: bytes | memoryview) -> bool:
    """Whether the file at ``path`` holds exactly ``block``."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(block) + 1) == block
    except OSError:  # a directory there, say: the write that replaces it says why
        return False


class Blockstore:
    """Blocks as ``directory/blocks/<CIDv1>``; every read is verified.

    One flat directory: creating a directory costs as much as writing a block on the
    file systems measured, and ext4's hashed directories hold millions of entries.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.root = self.root_in(directory)
        self.root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def root_in(directory: str | os.PathLike[str]) -> Path:
        """Where the blocks of a store in ``directory`` are (whether or not there is one)."""
        return Path(directory) / "blocks"

    def path_for(self, cid: AnyCID) -> Path:
        """Where the block of ``cid`` lives (whether or not it is stored)."""
        return self.root / _key(cid)

    def has(self, cid: AnyCID) -> bool:
        """Whether a file for this block exists (its bytes are checked only when read); an
        identity CID's block is always there, inline."""
        return self.path_for(cid).is_file() or inline_block(cid) is not None

    def put(self, cid: AnyCID, block: bytes | memoryview) -> bool:
        """Store ``block`` under ``cid`` unless already there; return whether it was written.

        The caller vouches that ``block`` hashes to ``cid`` (the importer just hashed it;
        imports call ``verify_block`` first).
        """
        key = _key(cid)
        final = os.path.join(self.root, key)
        if os.path.exists(final) and _holds(final, block):
            return False
        # Else it is replaced: a block file emptied by a crash (blocks are not fsynced) or
        # flipped on disk was kept, and adding the file again said it was stored.
        temp = os.path.join(self.root, f"{_TEMP_PREFIX}{key}.{os.getpid()}.{next(_temp_counter)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            os.unlink(temp)
            raise
        os.close(fd)
        try:
            os.replace(temp, final)  # readers see the whole block or none
        except OSError as exc:
            os.unlink(temp)
            raise StorageError.from_os_error(exc, "store the block", final) from None
        return True

    def get(self, cid: AnyCID) -> bytes:
        """The block's bytes, after checking they hash to ``cid`` (an identity CID's, from the CID)."""
        inline = inline_block(cid)
        if inline is not None:
            return inline
        path = self.path_for(cid)
        try:
            with open(path, "rb") as handle:
                block = handle.read()
        except FileNotFoundError:
            raise BlockMissingError(cid_string(cid)) from None
        if not verify_block(cid, block):
            raise CorruptBlockError(cid_string(cid), path)
        return block

    def delete(self, cid: AnyCID) -> None:
        """Remove a block if present."""
        self.path_for(cid).unlink(missing_ok=True)

    def __iter__(self) -> Iterator[CID]:
        """Every stored block's CID (as CIDv1); leftover temporary files are skipped."""
        with os.scandir(self.root) as entries:
            for entry in entries:
                if not entry.name.startswith(_TEMP_PREFIX):
                    yield CID.decode(entry.name)

    def remove_temporaries(self) -> int:
        """Delete files left by writes that were interrupted; return how many."""
        count = 0
        for temp in self.root.glob(f"{_TEMP_PREFIX}*"):
            temp.unlink(missing_ok=True)
            count += 1
        return count

