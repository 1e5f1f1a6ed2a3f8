"""CIDs and the on-disk blockstore: one file per block, written atomically, re-hashed on read.

A block's file is named by its CIDv1 in base32 (``bafy...``/``bafk...``), so the CIDv0
and CIDv1 of the same dag-pb block share one file and names stay safe on file systems
that ignore case. Blocks are not fsync'ed one by one (that would cost kubo's own speed
and more); a block torn by a crash is caught by the re-hash on every read.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

from multiformats import CID, multihash

from enerdatx.errors import BlockMissingError, CorruptBlockError, InvalidCIDError

__all__ = [
    "CID",
    "DAG_PB",
    "RAW",
    "parse_cid",
    "cid_string",
    "make_cid",
    "verify_block",
    "Blockstore",
]

DAG_PB = "dag-pb"
RAW = "raw"
_TEMP_PREFIX = ".tmp-"
_temp_counter = itertools.count()  # next() on it is atomic, so writer threads never share a name


def parse_cid(value: str | bytes | CID) -> CID:
    """Decode a CID from its string or binary form, or raise ``InvalidCIDError``."""
    if isinstance(value, CID):
        return value
    try:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("/ipfs/"):
                value = value[len("/ipfs/") :]
        return CID.decode(value)
    except (ValueError, KeyError, TypeError) as exc:  # multiformats' errors subclass these
        raise InvalidCIDError(f"not a CID: {value!r} ({exc})") from exc


def cid_string(cid: CID) -> str:
    """The canonical text form kubo prints: base58btc for CIDv0, base32 for CIDv1."""
    if cid.version == 0:
        return str(cid)
    return str(cid.set(base="base32"))


def make_cid(codec: str, block: bytes, version: int) -> CID:
    """The sha2-256 CID of ``block`` under ``codec`` (CIDv0 only exists for dag-pb)."""
    wrapped = multihash.wrap(hashlib.sha256(block).digest(), "sha2-256")
    if version == 0:
        return CID("base58btc", 0, DAG_PB, wrapped)
    return CID("base32", 1, codec, wrapped)


def verify_block(cid: CID, block: bytes) -> bool:
    """Whether ``block`` hashes to the multihash in ``cid``."""
    if cid.hashfun.name == "sha2-256":  # the common case, kept on hashlib's fast path
        return hashlib.sha256(block).digest() == cid.raw_digest
    try:
        return bool(multihash.digest(block, cid.hashfun, size=len(cid.raw_digest)) == cid.digest)
    except (KeyError, ValueError) as exc:
        raise InvalidCIDError(f"{cid}: unsupported hash function {cid.hashfun.name}") from exc


def _key(cid: CID) -> str:
    return str(cid.set(version=1, base="base32"))


class Blockstore:
    """Blocks under ``directory/blocks/<2 characters>/<CIDv1>``; every read is verified."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.root = Path(directory) / "blocks"
        self.root.mkdir(parents=True, exist_ok=True)
        self._made_shards: set[str] = set()

    def path_for(self, cid: CID) -> Path:
        """Where the block of ``cid`` lives (whether or not it is stored)."""
        key = _key(cid)
        return self.root / key[-3:-1] / key

    def has(self, cid: CID) -> bool:
        """Whether a file for this block exists (its bytes are checked only when read)."""
        return self.path_for(cid).is_file()

    def put(self, cid: CID, block: bytes | memoryview) -> bool:
        """Store ``block`` under ``cid`` unless already there; return whether it was written.

        The caller vouches that ``block`` hashes to ``cid`` (the importer just hashed it;
        imports call ``verify_block`` first).
        """
        key = _key(cid)
        shard = key[-3:-1]
        final = self.root / shard / key
        if final.exists():
            return False
        if shard not in self._made_shards:
            (self.root / shard).mkdir(exist_ok=True)
            self._made_shards.add(shard)
        temp = self.root / shard / f"{_TEMP_PREFIX}{key}.{os.getpid()}.{next(_temp_counter)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(temp, final)  # readers see the whole block or none
        return True

    def get(self, cid: CID) -> bytes:
        """The block's bytes, after checking they hash to ``cid``."""
        path = self.path_for(cid)
        try:
            with open(path, "rb") as handle:
                block = handle.read()
        except FileNotFoundError:
            raise BlockMissingError(cid_string(cid)) from None
        if not verify_block(cid, block):
            raise CorruptBlockError(cid_string(cid), path)
        return block

    def delete(self, cid: CID) -> None:
        """Remove a block if present."""
        self.path_for(cid).unlink(missing_ok=True)

    def __iter__(self) -> Iterator[CID]:
        """Every stored block's CID (as CIDv1); leftover temporary files are skipped."""
        for shard in self.root.iterdir():
            if not shard.is_dir():
                continue
            for entry in shard.iterdir():
                if not entry.name.startswith(_TEMP_PREFIX):
                    yield CID.decode(entry.name)

    def remove_temporaries(self) -> int:
        """Delete files left by writes that were interrupted; return how many."""
        count = 0
        for temp in self.root.glob(f"*/{_TEMP_PREFIX}*"):
            temp.unlink(missing_ok=True)
            count += 1
        return count
