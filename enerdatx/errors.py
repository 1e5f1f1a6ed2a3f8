"""Every error EnerDatX raises on purpose, in one tree.

Callers catch a base class; each error carries the context needed to act on it
(a block hash, a CID, a peer, a telegram number). Errors about bad input also
subclass the matching built-in, so ``except ValueError`` keeps working.

* EnerDatXError
  + ConfigurationError(ValueError)       an option out of range (a Lab's transport, a loss rate)
  + KeyFileError(ValueError)             a key file is corrupt, foreign or unsafe
  + EncodingError(ValueError)            bytes that do not decode to the claimed format
  + StorageError(OSError)                a file, directory or database cannot be used (missing,
                                         a directory, read-only, corrupt, disk full)
    - DirectoryLockedError               another process runs the peer in that directory
    - ChainIdentityError                 key and chain do not belong together, or one was lost
  + LedgerError                          TrustChain
    - InvalidBlockError(ValueError)      a block breaks a rule; ``.reason`` says which
    - FraudDetectedError                 the counterparty is a proven forker
    - TransactionRejectedError           a counterparty refused to countersign
    - TransactionTimeoutError(TimeoutError)
  + ContentStoreError                    IPFS
    - InvalidCIDError(ValueError)
    - BlockMissingError(KeyError)
    - CorruptBlockError                  stored bytes do not hash to their CID
    - DaemonUnavailableError(ConnectionError)
    - CarFormatError(ValueError)
  + MeterDataError(ValueError)           readings
    - TelegramError                      one bad DSMR telegram; ``.index`` names it
    - ReadingsFormatError                a file or JSON document of the wrong shape
      . MeterChoiceError                 several meters in a file and none chosen, or an unknown one;
                                         ``.meters`` lists the file's
    - OEHUAPIError                       the OEHU HTTP API answered badly
  + MarketError                          listings, bids, settlement
    - ListingNotFoundError(KeyError)
    - ListingUnavailableError            withdrawn or expired
    - InsufficientFundsError
    - PurchaseConflictError              that listing is bought already, or being bought
    - NegotiationError
    - DataVerificationError              decrypted data does not match its commitment
  + NetworkError                         peers
    - PeerUnreachableError(ConnectionError)
    - PeerProcessError                   a peer in a process of its own did not start
  + ReputationError(ValueError)          a reputation computation asked with bad parameters
  + PrivacyError(ValueError)             a privacy measurement or data union asked with bad input
    - PrivacyRiskError                   the seller's policy refuses to list; ``.report`` says why
    - UnionError                         a data union's rule is broken (threshold, member, terms)
    - SecureAggregationError             masked contributions that do not make one round
"""

from __future__ import annotations

import errno
from typing import Any


class EnerDatXError(Exception):
    """Base of every error EnerDatX raises on purpose."""


class ConfigurationError(EnerDatXError, ValueError):
    """An option or argument outside what it may be (a Lab's transport, a packet-loss rate)."""


class KeyFileError(EnerDatXError, ValueError):
    """A key file is corrupt, of a foreign format, or unsafe."""

    def __init__(self, message: str, *, path: Any = None) -> None:
        super().__init__(message if path is None else f"{path}: {message}")
        self.path = path


class EncodingError(EnerDatXError, ValueError):
    """Bytes that do not decode to the claimed format."""


class StorageError(EnerDatXError, OSError):
    """A file, directory or database cannot be used: missing, a directory, read-only, corrupt, full."""

    def __init__(self, message: str, *, path: Any = None) -> None:
        super().__init__(message if path is None else f"{path}: {message}")
        self.path = path

    def __str__(self) -> str:  # OSError would format (errno, strerror)
        return str(self.args[0]) if self.args else ""

    @classmethod
    def from_os_error(cls, exc: OSError, what: str, path: Any) -> StorageError:
        """``exc`` as one line: "PATH: cannot WHAT: the disk is full" (read-only, a directory...)."""
        reason = _OS_REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
        error = cls(f"cannot {what}: {reason}", path=path)
        error.errno = exc.errno
        return error


_OS_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "no such file or directory",
    errno.EISDIR: "is a directory",
    errno.ENOTDIR: "a path component is not a directory",
    errno.EEXIST: "already exists",
    errno.ENAMETOOLONG: "the name is too long",
}


class DirectoryLockedError(StorageError):
    """Another process runs the peer kept in that directory; ``pid`` is the holder's."""

    def __init__(self, directory: Any, pid: int | None) -> None:
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(f"in use by {holder} (one peer per directory: two would fork its chain)", path=directory)
        self.pid = pid


class ChainIdentityError(StorageError):
    """The key and the chain of a peer directory do not belong together, or one of them was lost."""


# --- TrustChain ------------------------------------------------------------------


class LedgerError(EnerDatXError):
    """Base of TrustChain errors."""


class InvalidBlockError(LedgerError, ValueError):
    """A half-block breaks a validation rule; ``reason`` is the rule's name."""

    def __init__(self, reason: str, detail: str = "", *, block_hash: bytes | None = None) -> None:
        text = reason if not detail else f"{reason}: {detail}"
        if block_hash is not None:
            text = f"{text} (block {block_hash.hex()[:16]})"
        super().__init__(text)
        self.reason = reason
        self.detail = detail
        self.block_hash = block_hash


class FraudDetectedError(LedgerError):
    """The counterparty is a proven forker; honest peers refuse to deal with it."""

    def __init__(self, public_key: bytes) -> None:
        super().__init__(f"peer {public_key.hex()[:16]} forked its chain (fraud proof held)")
        self.public_key = public_key


class TransactionRejectedError(LedgerError):
    """A counterparty refused to countersign a proposal."""

    def __init__(self, reason: str, *, peer: Any = None) -> None:
        super().__init__(reason if peer is None else f"{peer}: {reason}")
        self.reason = reason
        self.peer = peer


class TransactionTimeoutError(LedgerError, TimeoutError):
    """No agreement arrived in time."""


# --- Content store ----------------------------------------------------------------


class ContentStoreError(EnerDatXError):
    """Base of content-store (IPFS) errors."""


class InvalidCIDError(ContentStoreError, ValueError):
    """A string or bytes that is not a CID this store understands."""


class BlockMissingError(ContentStoreError, KeyError):
    """The store does not hold a block the operation needs."""

    def __init__(self, cid: Any) -> None:
        super().__init__(f"block {cid} is not in the store")
        self.cid = cid

    def __str__(self) -> str:
        return str(self.args[0])


class CorruptBlockError(ContentStoreError):
    """A stored block's bytes no longer hash to its CID."""

    def __init__(self, cid: Any, path: Any = None) -> None:
        where = f" at {path}" if path is not None else ""
        super().__init__(f"block {cid}{where} is corrupt: its bytes do not hash to its CID")
        self.cid = cid
        self.path = path


class DaemonUnavailableError(ContentStoreError, ConnectionError):
    """The configured IPFS daemon cannot be reached or is unsuitable."""


class CarFormatError(ContentStoreError, ValueError):
    """A CAR file that is malformed or does not match its blocks."""


# --- Meter data -------------------------------------------------------------------


class MeterDataError(EnerDatXError, ValueError):
    """Base of errors about meter readings."""


class TelegramError(MeterDataError):
    """One DSMR P1 telegram is bad; ``index`` counts telegrams from 0 in the input."""

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message if index is None else f"telegram #{index}: {message}")
        self.index = index


class ReadingsFormatError(MeterDataError):
    """A readings file or document does not have the expected shape."""


class MeterChoiceError(ReadingsFormatError):
    """A file holds several meters and none was chosen, or not the one asked for (``wanted``).

    ``meters`` lists the file's meters (sorted), so that a caller can offer them, as the
    command line does for ``--device``.
    """

    def __init__(self, message: str, *, meters: Any, wanted: str | None = None) -> None:
        super().__init__(message)
        self.meters = sorted(meters)
        self.wanted = wanted


class OEHUAPIError(MeterDataError):
    """The OEHU HTTP API answered with an error or malformed data."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message if url is None else f"{url}: {message}")
        self.url = url
        self.status = status


# --- Market -----------------------------------------------------------------------


class MarketError(EnerDatXError):
    """Base of market errors."""


class LoopThreadError(MarketError, RuntimeError):
    """A peer's market was used from a thread other than its event loop's."""


class ListingNotFoundError(MarketError, KeyError):
    """No listing with that id is known."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SubscriptionNotFoundError(MarketError, KeyError):
    """No subscription offer, or no subscription, with that id is known (or held, where that is asked)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SubscriptionEndedError(MarketError):
    """The subscription (or offer) was revoked already: another revocation would change nothing."""


class ListingUnavailableError(MarketError):
    """The listing was withdrawn or has expired."""


class InsufficientFundsError(MarketError):
    """A payment beyond the payer's balance."""

    def __init__(self, balance: int, amount: int) -> None:
        super().__init__(f"balance {balance} is less than the amount {amount}")
        self.balance = balance
        self.amount = amount


class PurchaseConflictError(MarketError):
    """We bought that listing already, or a purchase of it is under way (``again=True`` to buy twice)."""


class NegotiationError(MarketError):
    """A negotiation step that is not allowed in the negotiation's state."""


class DataVerificationError(MarketError):
    """Decrypted data does not match the listing's commitment, or will not decrypt."""


# --- Network ----------------------------------------------------------------------


class NetworkError(EnerDatXError):
    """Base of peer-to-peer network errors."""


class PeerUnreachableError(NetworkError, ConnectionError):
    """A peer could not be reached."""


class PeerProcessError(NetworkError):
    """A peer started in a process of its own exited or said something else than that it is ready."""


# --- Reputation -------------------------------------------------------------------


class ReputationError(EnerDatXError, ValueError):
    """A reputation computation asked with bad parameters (a measure, an engine, a decay)."""


# --- Privacy and data unions ----------------------------------------------------------


class PrivacyError(EnerDatXError, ValueError):
    """A privacy measurement or a data union asked with bad input."""


class PrivacyRiskError(PrivacyError):
    """The seller's privacy policy refuses to list this data set; ``report`` holds the figures."""

    def __init__(self, message: str, *, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


class UnionError(PrivacyError):
    """A data union's rule is broken: too few members, an unknown member, terms not signed."""


class SecureAggregationError(PrivacyError):
    """Masked contributions that do not make one round (wrong round, roster, or length)."""


# --- At the entry points ------------------------------------------------------------


def typed_error(exc: BaseException) -> EnerDatXError | None:
    """A failure from below EnerDatX (the OS, SQLite, the interpreter) as a typed one-line error.

    The command line, the REST API and the widgets use it as their last line of defence, so
    that a full disk or a 100,000-deep JSON document is a message, never a traceback. None
    means a bug: the caller reports it as an internal error.
    """
    if isinstance(exc, EnerDatXError):
        return exc
    if isinstance(exc, RecursionError):
        return EncodingError("the input is nested too deeply")
    if isinstance(exc, MemoryError):
        return EncodingError("the input is too large to hold in memory")
    # OSErrors by inheritance, but no file's: a bounded wait's bare TimeoutError read
    # "cannot use the file: " (a 507 storage_failed from the REST API).
    if isinstance(exc, TimeoutError):
        return NetworkError(str(exc) or "no answer in time")
    if isinstance(exc, ConnectionError):
        return PeerUnreachableError(str(exc) or "the connection failed")
    if isinstance(exc, OSError):
        return StorageError.from_os_error(exc, "use the file", exc.filename)
    if type(exc).__module__ == "sqlite3" and type(exc).__name__ in ("DatabaseError", "OperationalError"):
        # "database or disk is full", "attempt to write a readonly database", "file is not a database"
        return StorageError(f"the database failed: {exc}")
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return EncodingError("a number has too many digits")
    return None
