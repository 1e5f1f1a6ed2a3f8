"""Peer identities (Ed25519 signing, X25519 sealing) and secret boxes for data sets.

One Ed25519 key is a peer's identity: it signs half-blocks, and its birationally
equivalent X25519 key opens data keys sealed to that peer, so a buyer needs to
publish nothing but its signing public key. The key-file format is specified in
docs/keys.md.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.secret
import nacl.signing
import nacl.utils

from enerdatx.errors import DataVerificationError, KeyFileError
from enerdatx.files import read_small_file

__all__ = [
    "Identity",
    "PUBLIC_KEY_SIZE",
    "is_public_key",
    "SIGNATURE_SIZE",
    "DATA_KEY_SIZE",
    "verify_signature",
    "SignatureCache",
    "VERIFIED_SIGNATURES",
    "seal_to",
    "new_data_key",
    "encrypt_data",
    "decrypt_data",
]

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
DATA_KEY_SIZE = nacl.secret.SecretBox.KEY_SIZE

KEY_FILE_HEADER = "enerdatx-identity v1"
# A key file is under 200 bytes; anything beyond this is no key file of ours.
KEY_FILE_LIMIT = 1024


@dataclass(frozen=True)
class Identity:
    """A peer's private identity: an Ed25519 signing key and its X25519 twin."""

    signing_key: nacl.signing.SigningKey

    @classmethod
    def generate(cls) -> Identity:
        """Make a fresh random identity."""
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """Derive an identity from a 32-byte seed (for reproducible experiments)."""
        if not isinstance(seed, bytes):  # PyNaCl's TypeError for a str says "must be created from a 32 byte seed"
            raise TypeError(f"an Ed25519 seed is 32 bytes, not {type(seed).__name__}")
        if len(seed) != 32:
            raise ValueError(f"an Ed25519 seed is 32 bytes, not {len(seed)}")
        return cls(nacl.signing.SigningKey(seed))

    @property
    def seed(self) -> bytes:
        """The 32-byte Ed25519 seed; whoever has it is this peer."""
        return bytes(self.signing_key)

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key that names this peer everywhere."""
        return bytes(self.signing_key.verify_key)

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte detached Ed25519 signature of ``message``."""
        return self.signing_key.sign(message).signature

    def unseal(self, sealed: bytes) -> bytes:
        """Open a box sealed to this identity with :func:`seal_to`."""
        box = nacl.public.SealedBox(self.signing_key.to_curve25519_private_key())
        try:
            return box.decrypt(sealed)
        except nacl.exceptions.CryptoError as exc:
            raise DataVerificationError("sealed box does not open with this identity") from exc

    def save(self, path: str | os.PathLike[str], *, replace: bool = True) -> None:
        """Write the key file with mode 0600, atomically (no half-written key on a crash).

        With ``replace=False`` a key file already at ``path`` stays and FileExistsError is raised.
        """
        path = Path(path)
        text = (
            f"{KEY_FILE_HEADER}\n"
            f"ed25519-seed {self.seed.hex()}\n"
            f"ed25519-public {self.public_key.hex()}\n"
        )
        # A name of its own: two processes saving at once wrote one temporary file, and one of
        # them then renamed the other's key into place (or found its own file gone).
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            try:
                os.fchmod(fd, 0o600)  # mkstemp's 0600 is masked by the umask; this is not
                os.write(fd, text.encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            if replace:
                os.replace(tmp, path)
            else:
                os.link(tmp, path)  # fails if a key is there: a rename would replace it
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Identity:
        """Read a key file written by :meth:`save`; refuse corrupt, foreign or unsafe files."""
        path = Path(path)
        try:
            mode = path.stat().st_mode
            raw = read_small_file(path, KEY_FILE_LIMIT, what="read the key file")
        except FileNotFoundError as exc:
            raise KeyFileError("no key file", path=path) from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(
                f"key file is readable by others (mode {stat.S_IMODE(mode):04o}); chmod 600 it",
                path=path,
            )
        if len(raw) > KEY_FILE_LIMIT:
            raise KeyFileError("not an EnerDatX key file (too large)", path=path)
        try:
            lines = raw.decode("ascii").splitlines()
        except UnicodeDecodeError as exc:
            raise KeyFileError("not an EnerDatX key file (not ASCII text)", path=path) from exc
        if not lines or lines[0] != KEY_FILE_HEADER:
            raise KeyFileError(f"not an EnerDatX key file (first line must be {KEY_FILE_HEADER!r})", path=path)
        fields = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
        try:
            seed = bytes.fromhex(fields["ed25519-seed"])
            public = bytes.fromhex(fields["ed25519-public"])
        except (KeyError, ValueError) as exc:
            raise KeyFileError("corrupt key file (missing or non-hex key fields)", path=path) from exc
        if len(seed) != 32:
            raise KeyFileError("corrupt key file (seed is not 32 bytes)", path=path)
        identity = cls.from_seed(seed)
        if identity.public_key != public:
            raise KeyFileError("corrupt key file (seed does not match the public key)", path=path)
        return identity

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str]) -> Identity:
        """Load the key file at ``path``, or create one there if there is none."""
        path = Path(path)
        if path.exists():
            return cls.load(path)
        identity = cls.generate()
        try:
            identity.save(path, replace=False)
        except FileExistsError:  # made meanwhile by another process: that one is the key
            return cls.load(path)
        return identity

    def __repr__(self) -> str:  # never print the seed
        return f"Identity(public_key={self.public_key.hex()[:16]}…)"


def is_public_key(value: object) -> bool:
    """True for bytes of a public key's size (the shape only: whether it is a curve point is not asked)."""
    return isinstance(value, bytes) and len(value) == PUBLIC_KEY_SIZE


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``public_key``'s Ed25519 signature of ``message``."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    # The binding directly: building a VerifyKey per call costs a third of a verification.
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        return False
    return True


class SignatureCache:
    """A bounded set of (public key, message, signature) triples that passed Ed25519 verification.

    Ed25519 verification is deterministic, so a triple that verified once verifies again:
    answering from the set is exact. The key is the whole triple (the message itself, not a
    digest of it), and only successes are kept, so a flipped bit anywhere, a signature under
    another key, or a triple evicted when the set is full all go through a real verification.
    One instance, :data:`VERIFIED_SIGNATURES`, is shared by all peers of a process: a block
    gossiped to fifty in-process peers is verified once instead of fifty times.
    """

    def __init__(self, max_entries: int = 65_536, max_bytes: int = 64 * 1024 * 1024) -> None:
        """Keep at most ``max_entries`` triples holding at most ``max_bytes`` of messages."""
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[bytes, bytes, bytes], None] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # peers may verify from worker threads too

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is ``public_key``'s signature of ``message`` (as verify_signature)."""
        if not (type(public_key) is type(message) is type(signature) is bytes):
            return verify_signature(public_key, message, signature)  # only immutable bytes are kept
        key = (public_key, message, signature)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return True
            self.misses += 1
        if not verify_signature(*key):
            return False
        size = len(key[1]) + len(key[0]) + len(key[2])
        if size > self.max_bytes or self.max_entries < 1:
            return True
        with self._lock:
            if key not in self._entries:
                self._entries[key] = None
                self._bytes += size
                while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                    (old_key, old_message, old_signature), _ = self._entries.popitem(last=False)
                    self._bytes -= len(old_key) + len(old_message) + len(old_signature)
        return True

    def clear(self) -> None:
        """Forget every triple (and the hit and miss counts)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, triple: object) -> bool:
        return triple in self._entries


VERIFIED_SIGNATURES = SignatureCache()
"""The process-wide cache of verified signatures that half-blocks are checked through."""


def seal_to(public_key: bytes, message: bytes) -> bytes:
    """Seal ``message`` so that only the holder of Ed25519 ``public_key`` can open it."""
    try:
        curve = _curve25519_public_key(public_key)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:  # TypeError: also an unhashable key
        raise ValueError("not a valid Ed25519 public key") from exc
    return nacl.public.SealedBox(curve).encrypt(message)


# A pure function (a field inversion, about 1 % of a market run when done for every sale); a
# seller seals keys to the same buyers again and again. Failures are not cached: they raise.
@functools.lru_cache(maxsize=4096)
def _curve25519_public_key(public_key: bytes) -> nacl.public.PublicKey:
    return nacl.signing.VerifyKey(public_key).to_curve25519_public_key()


def new_data_key() -> bytes:
    """A fresh random 32-byte key for one data set's secret box."""
    return nacl.utils.random(DATA_KEY_SIZE)


def encrypt_data(key: bytes, plaintext: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` (XSalsa20-Poly1305, random nonce prepended)."""
    return bytes(nacl.secret.SecretBox(key).encrypt(plaintext))


def decrypt_data(key: bytes, ciphertext: bytes) -> bytes:
    """Open a box made by :func:`encrypt_data`; a wrong key or tampering raises."""
    try:
        return nacl.secret.SecretBox(key).decrypt(ciphertext)
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, nacl.exceptions.TypeError) as exc:
        raise DataVerificationError("ciphertext does not open with this key (tampered or wrong key)") from exc
