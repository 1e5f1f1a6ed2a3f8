"""One peer's market: sell data sets, buy them in one atomic TrustChain transaction, keep a wallet.

The Market is network-free: it is given a ledger, a content store, and the callbacks
that reach beyond it (``propose``: a proposal in, the countersigned pair out; ``fetch``:
the ciphertext of a listing from its seller; ``negotiated_price``: what the negotiation
desk agreed). The MarketService wires those to IPv8; tests wire them to other in-process
Markets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import nacl.utils

from enerdatx.crypto import decrypt_data, encrypt_data, is_public_key, new_data_key, seal_to
from enerdatx.errors import (
    ContentStoreError,
    DataVerificationError,
    EncodingError,
    InsufficientFundsError,
    ListingUnavailableError,
    MarketError,
    NetworkError,
    PurchaseConflictError,
    TransactionRejectedError,
)
from enerdatx.market.formats import (
    COMPLAINT,
    LISTING,
    MAX_TIMESTAMP,
    PAYMENT,
    RELEASE,
    SALT_SIZE,
    WITHDRAWAL,
    Listing,
    commitment,
    complaint_transaction,
    listing_transaction,
    make_opening,
    parse_listing,
    parse_payment,
    payment_transaction,
    release_transaction,
    split_opening,
    withdrawal_transaction,
)
from enerdatx.market.keyring import Keyring, Purchase
from enerdatx.market.orderbook import LIVE, OrderBook, check_listing_id
from enerdatx.market.wallet import DEFAULT_GRANT, Balance, Wallet
from enerdatx.trustchain import (
    HalfBlock,
    TrustChain,
    now_ms,  # one clock for listing expiry and block timestamps
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AGREE_MARGIN", "ContentSource", "Fetcher", "Market", "NegotiatedPrice", "PAYMENT_LIFETIME", "Proposer",
    "RELEASE_GRACE", "Trade", "expiry", "now_ms",
]

# Reservations (docs/market.md): a payment proposal names a deadline this far ahead; the seller
# countersigns only while AGREE_MARGIN of it is left, and the buyer releases an unanswered payment
# RELEASE_GRACE after it (so an agreement signed in time has had time to arrive). Milliseconds.
PAYMENT_LIFETIME = 60_000
AGREE_MARGIN = 5_000
RELEASE_GRACE = 10_000

logger = logging.getLogger(__name__)

Proposer = Callable[[bytes, str, dict[str, object]], Awaitable[tuple[HalfBlock, HalfBlock]]]
"""(counterparty, block type, transaction) -> (our proposal, their agreement)."""
Fetcher = Callable[[Listing], Awaitable[bytes]]
"""listing -> the bytes of its ciphertext CID, from wherever they are."""
NegotiatedPrice = Callable[[str, bytes, str], "int | None"]
"""(negotiation id, buyer, listing id) -> the price the seller agreed or offered, or None."""


class ContentSource(Protocol):
    """The three things a Market asks of a content store (any ContentStore does them)."""

    def add_bytes(self, data: bytes, cid_version: int = 0) -> str:
        """Store ``data``; its CID."""

    def cat(self, cid: str) -> bytes:
        """The bytes ``cid`` names; ContentStoreError if they are not (wholly) here."""

    def has(self, cid: str) -> bool:
        """True when the store holds the block ``cid``."""


def _no_negotiations(_negotiation: str, _buyer: bytes, _listing_id: str) -> int | None:
    return None


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a task's exception as seen (it is handled, or no longer wanted)."""
    if not task.cancelled():
        task.exception()


@dataclass(frozen=True)
class Trade:
    """A settled and verified purchase: the pair of half-blocks and the decrypted data set."""

    listing: Listing
    proposal: HalfBlock
    agreement: HalfBlock
    plaintext: bytes
    seconds: float  # from the bid to the verified data

    @property
    def amount(self) -> int:
        """What the buyer paid."""
        return parse_payment(self.proposal.transaction).amount

    def dataframe(self) -> pd.DataFrame:
        """The data set as a pandas DataFrame (enerdatx-readings format)."""
        from enerdatx.meter import load_dataset_bytes

        return load_dataset_bytes(self.plaintext)


def expiry(now: int, expires_in: object) -> int | None:
    """When something made at ``now`` that lasts ``expires_in`` ms ends (None: until withdrawn);
    MarketError unless a whole number of ms that ends by MAX_TIMESTAMP: "5" or [] failed with a
    TypeError from now + expires_in, and True lasted 1 ms."""
    if expires_in is None:
        return None
    if type(expires_in) is not int or not 0 < expires_in <= MAX_TIMESTAMP - now:
        raise MarketError(f"expires_in is a positive number of milliseconds, at most 2**63-1 - now "
                          f"({MAX_TIMESTAMP - now:,}), not {expires_in!r}")
    return now + expires_in


def check_purchase(amount: object, again: object) -> None:
    """Refuse a purchase's ``amount`` and ``again`` of the wrong kind before anything is asked:
    again="no" bought the listing a second time (any string is true), and an amount "5" failed
    with a TypeError from comparing it with the balance."""
    if not isinstance(again, bool):
        raise MarketError(f"again is True (buy a listing bought already once more) or False, not {again!r}")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
        raise MarketError(f"amount is None (the listing's price) or a whole number of tokens, not {amount!r}")


class Market:
    """Listings, the order book, the wallet and settlement of one peer."""

    def __init__(
        self,
        ledger: TrustChain,
        content: ContentSource,
        *,
        keyring: Keyring | None = None,
        grant: int = DEFAULT_GRANT,
        clock: Callable[[], int] = now_ms,
        book: OrderBook | None = None,
        propose: Proposer | None = None,
        fetch: Fetcher | None = None,
        negotiated_price: NegotiatedPrice = _no_negotiations,
    ) -> None:
        self.ledger = ledger
        self.content = content
        self.keyring = keyring or Keyring()
        self.clock = clock
        self.wallet = Wallet(ledger.store, grant=grant)
        self.book = book if book is not None else OrderBook(clock=clock, is_fraudulent=ledger.store.is_fraudulent)
        self._propose = propose
        self._fetch = fetch
        self.negotiated_price = negotiated_price
        self._buying: dict[str, asyncio.Future[None]] = {}  # listing id -> the purchase under way
        self._reservations: dict[bytes, HalfBlock] = {}  # our unanswered payment proposals, by hash
        self._scanned = 0  # our chain is scanned for reservations up to this sequence number
        # Extra conditions on a payment for one of our listings (subscriptions add theirs):
        # each is called (buyer, listing) and raises TransactionRejectedError to refuse.
        self.payment_checks: list[Callable[[bytes, Listing], None]] = []
        self.book.add_blocks(ledger.store.blocks(block_type=LISTING))
        self.book.add_blocks(ledger.store.blocks(block_type=WITHDRAWAL))
        self.book.add_blocks(ledger.store.blocks(block_type=COMPLAINT))
        ledger.subscribe(self.book.add_block)
        ledger.on_fraud(lambda _proof: self.book.refresh())  # a forker's listings stop being live
        ledger.register_policy(PAYMENT, self.payment_policy)

    @property
    def public_key(self) -> bytes:
        """This peer's public key."""
        return self.ledger.public_key

    # --- selling ---------------------------------------------------------------------

    def sell(
        self, plaintext: bytes, descriptor: Mapping[str, object], price: int, *, expires_in: int | None = None
    ) -> Listing:
        """Encrypt a data set, add the ciphertext to the content store and sign a listing for it.

        ``expires_in`` is in milliseconds; None lists it until withdrawn.
        """
        if not isinstance(plaintext, bytes):  # a str failed in the cipher with "can't concat str to bytes"
            raise MarketError(f"a data set's plaintext is bytes, not {type(plaintext).__name__}")
        now = self.clock()
        expires = expiry(now, expires_in)
        key, salt = new_data_key(), nacl.utils.random(SALT_SIZE)
        committed = commitment(salt, plaintext)
        try:  # check everything before storing anything; the CID is filled in once known
            transaction = listing_transaction(descriptor, price, "pending", committed, expires)
        except EncodingError as exc:
            raise MarketError(f"cannot list this data set: {exc}") from exc
        cid = self.content.add_bytes(encrypt_data(key, plaintext))
        transaction["cid"] = cid
        self.keyring.put_listing_secret(committed, make_opening(key, salt))
        return parse_listing(self.ledger.record(LISTING, transaction))

    def withdraw(self, listing_id: str) -> None:
        """Take one of our listings off sale with a signed withdrawal block."""
        listing = self.book.get(listing_id)
        if listing.seller != self.public_key:
            raise MarketError("only the seller can withdraw a listing")
        if self.book.status(listing) != LIVE:
            raise ListingUnavailableError(f"listing {listing_id[:16]}… is {self.book.status(listing)} already")
        self.ledger.record(WITHDRAWAL, withdrawal_transaction(listing.block_hash))

    def payment_policy(self, ledger: TrustChain, proposal: HalfBlock) -> dict[str, object]:
        """The ledger policy for payments: check the proposal and return the agreement with the key.

        Registered for ``edx.payment`` at construction; wrap it (for example with
        ``enerdatx.reputation.market.refuse_below``) to add conditions of your own.
        """
        # TrustChain asks us before it countersigns: the agreement it signs carries the key.
        buyer = proposal.public_key
        try:
            payment = parse_payment(proposal.transaction)
        except EncodingError as exc:
            raise TransactionRejectedError(f"malformed_payment: {exc}") from exc
        if payment.deadline is not None and self.clock() + AGREE_MARGIN > payment.deadline:
            # Too late to be sure the agreement reaches the buyer before it may release the payment.
            raise TransactionRejectedError("deadline_passed")
        block = ledger.store.get_by_hash(payment.listing)
        if block is None or block.type != LISTING or block.public_key != self.public_key:
            raise TransactionRejectedError("unknown_listing")
        listing = parse_listing(block)
        status = self.book.status(listing)
        if status != LIVE:
            raise TransactionRejectedError(f"listing_{status}")
        for check in self.payment_checks:
            check(buyer, listing)
        price = listing.price
        if payment.negotiation is not None:
            agreed = self.negotiated_price(payment.negotiation, buyer, listing.listing_id)
            if agreed is None:
                raise TransactionRejectedError("unknown_negotiation")
            price = agreed
        if payment.amount < price:
            raise TransactionRejectedError(f"price_too_low: {payment.amount} < {price}")
        if ledger.missing_before(proposal):
            raise TransactionRejectedError("unknown_history: the buyer's chain is incomplete here")
        balance = self.wallet.balance(buyer, before=proposal.sequence_number)
        if balance.available < payment.amount:
            raise TransactionRejectedError(f"insufficient_funds: {balance.available} < {payment.amount}")
        opening = self.keyring.listing_secret(listing.commitment)
        if opening is None:
            raise TransactionRejectedError("key_lost")
        return {**proposal.transaction, "sealed_key": seal_to(buyer, opening)}

    # --- buying ----------------------------------------------------------------------

    async def propose(
        self, counterparty: bytes, block_type: str, transaction: dict[str, object]
    ) -> tuple[HalfBlock, HalfBlock]:
        """Send a proposal through the network this market is wired to; (our proposal, their agreement)."""
        if self._propose is None:
            raise MarketError("this market is not connected to a network")
        return await self._propose(counterparty, block_type, transaction)

    def balance(self, public_key: bytes | None = None) -> Balance:
        """The balance of ``public_key`` (ours by default) as derived from the chain we hold.

        Our own balance first releases our payments left unanswered past their deadline.
        """
        if public_key is not None and not is_public_key(public_key):
            # b"x" or a hex string gave the full grant of a peer that cannot exist.
            raise MarketError(f"a balance is of a 32-byte public key, not {type(public_key).__name__} "
                              f"of {len(public_key) if isinstance(public_key, bytes | str) else '?'}")
        if public_key is None or public_key == self.public_key:
            self.release_expired()
        return self.wallet.balance(public_key or self.public_key)

    def reservations(self) -> list[HalfBlock]:
        """Our payment proposals that no agreement answers yet and that are not released."""
        self._scan_own_chain()
        for answered in [p for p in self._reservations.values() if self.ledger.store.linked(p) is not None]:
            del self._reservations[answered.hash]  # the trade happened: nothing to release
        return list(self._reservations.values())

    def release_expired(self) -> list[HalfBlock]:
        """Sign an ``edx.release`` for each of our unanswered payments past deadline + grace."""
        released = []
        now = self.clock()
        for proposal in self.reservations():
            deadline = parse_payment(proposal.transaction).deadline
            if deadline is not None and now > deadline + RELEASE_GRACE:
                released.append(self.ledger.record(RELEASE, release_transaction(proposal.hash)))
                logger.info("released the unanswered payment %s", proposal.hash.hex()[:16])
        self._scan_own_chain()
        return released

    def _scan_own_chain(self) -> None:
        for block in self.ledger.store.chain(self.public_key, self._scanned + 1):
            self._scanned = block.sequence_number
            if block.type == PAYMENT and block.is_proposal:
                try:
                    if parse_payment(block.transaction).deadline is not None:
                        self._reservations[block.hash] = block
                except EncodingError:
                    continue
            elif block.type == RELEASE and block.is_record:
                released = block.transaction.get("proposal")
                if isinstance(released, bytes):
                    self._reservations.pop(released, None)

    async def buy(
        self, listing_id: str, *, amount: int | None = None, negotiation: str | None = None, again: bool = False
    ) -> Trade:
        """Pay for a listing, receive its sealed key, fetch, decrypt and verify the data set.

        One purchase per listing: while one is under way a second waits for it, and a listing
        bought already raises PurchaseConflictError, unless ``again``. A seller that answers
        with a key or data that fail the checks gets a signed complaint on our chain, and
        DataVerificationError is raised (``.complaint`` is that block).
        """
        check_purchase(amount, again)
        check_listing_id(listing_id)  # [] was a TypeError (unhashable) in the table of purchases under way
        if self._propose is None or self._fetch is None:
            raise MarketError("this market is not connected to a network")
        while (under_way := self._buying.get(listing_id)) is not None:
            await asyncio.shield(under_way)  # the first buyer's outcome decides ours
        done = self._buying[listing_id] = asyncio.get_running_loop().create_future()
        try:
            return await self._buy(listing_id, amount, negotiation, again)
        finally:
            del self._buying[listing_id]
            done.set_result(None)

    async def _buy(self, listing_id: str, amount: int | None, negotiation: str | None, again: bool) -> Trade:
        started = time.perf_counter()
        listing = self.book.get(listing_id)
        status = self.book.status(listing)
        if status != LIVE:
            raise ListingUnavailableError(f"listing {listing_id[:16]}… is {status}")
        if listing.seller == self.public_key:
            raise MarketError("a peer cannot buy its own listing")
        if not again and self.keyring.purchase(listing_id) is not None:
            raise PurchaseConflictError(f"listing {listing_id[:16]}… is bought already (again=True buys it twice)")
        amount = listing.price if amount is None else amount
        if negotiation is None and amount < listing.price:
            # The seller's policy refuses it (price_too_low), but only after the proposal was signed:
            # it reserved the amount until released, 70 s later, for a trade that could never happen.
            raise MarketError(f"amount {amount} is below the listing's price {listing.price} "
                              f"(negotiate a lower price first)")
        available = self.balance().available
        if available < amount:
            raise InsufficientFundsError(available, amount)
        deadline = self.clock() + PAYMENT_LIFETIME
        transaction = payment_transaction(listing.block_hash, amount, negotiation, deadline=deadline)
        # The ciphertext is public (anyone may fetch it by its CID; only the key in the
        # agreement opens it). Fetched while the payment is agreed, a trade waits for the
        # slower of the two round trips, not for one after the other. Nothing is stored
        # before the agreement: a refused trade leaves no ciphertext behind.
        fetching = asyncio.ensure_future(self._fetch_unless_held(listing))
        fetching.add_done_callback(_retrieve)  # a failed fetch of a refused trade is no "never retrieved" error
        try:
            proposal, agreement = await self.propose(listing.seller, PAYMENT, transaction)
            if agreement.timestamp > deadline:
                # Signed after our deadline: we may release this payment, so we do not take the trade.
                raise TransactionRejectedError("late_agreement: countersigned after the payment's deadline")
            plaintext = await self.open_agreement(listing, agreement, fetching)
        finally:
            fetching.cancel()  # a refused trade's fetch, or one a failed opening never awaited
        return Trade(listing, proposal, agreement, plaintext, time.perf_counter() - started)

    async def _fetch_unless_held(self, listing: Listing) -> bytes | None:
        """The ciphertext's bytes as its seller serves them (unchecked), or None if our store has it."""
        if self.content.has(listing.cid):
            return None
        return await self._fetch(listing)  # type: ignore[misc]

    async def open_agreement(
        self, listing: Listing, agreement: HalfBlock, fetching: asyncio.Future[bytes | None] | None = None
    ) -> bytes:
        """Fetch, decrypt and verify a bought data set; a failure is recorded as a complaint.

        ``fetching``: a fetch of the ciphertext begun before the agreement came; if it failed,
        the ciphertext is asked for once more.
        """
        sealed = agreement.transaction.get("sealed_key")
        try:
            opening = self.ledger.identity.unseal(sealed if isinstance(sealed, bytes) else b"")
        except DataVerificationError:
            raise self._complain(listing, agreement, "key_does_not_open", None) from None
        try:
            key, salt = split_opening(opening)
        except EncodingError:
            raise self._complain(listing, agreement, "bad_opening", opening) from None
        try:
            ciphertext = await self._ciphertext(listing, fetching)
        except (ContentStoreError, MarketError, NetworkError) as exc:
            logger.warning("ciphertext of %s unavailable: %s", listing.cid, exc)
            raise self._complain(listing, agreement, "ciphertext_unavailable", None) from exc
        try:
            plaintext = decrypt_data(key, ciphertext)
        except DataVerificationError:
            raise self._complain(listing, agreement, "ciphertext_does_not_decrypt", opening) from None
        if commitment(salt, plaintext) != listing.commitment:
            raise self._complain(listing, agreement, "commitment_mismatch", opening)
        self.keyring.put_purchase(Purchase(
            listing.listing_id, agreement.hash, listing.seller, listing.cid,
            parse_payment(agreement.transaction).amount, opening, self.clock(),
        ))
        return plaintext

    async def retry_purchase(self, listing_id: str) -> bytes:
        """Fetch, decrypt and verify again a data set we paid for (after a failed fetch, say)."""
        listing = self.book.get(listing_id)
        for block in reversed(self.ledger.store.chain(self.public_key)):
            if block.type == PAYMENT and block.is_proposal and block.link_public_key == listing.seller:
                agreement = self.ledger.store.linked(block)
                if agreement is not None and parse_payment(block.transaction).listing == listing.block_hash:
                    return await self.open_agreement(listing, agreement)
        raise MarketError(f"we hold no settled payment for listing {listing_id[:16]}…")

    async def _ciphertext(self, listing: Listing, fetching: asyncio.Future[bytes | None] | None = None) -> bytes:
        data = None
        if fetching is not None:
            try:
                data = await fetching
            except (ContentStoreError, MarketError, NetworkError) as exc:
                logger.info("ciphertext of %s: the fetch begun with the payment failed (%s); asking again", listing.cid, exc)
        if data is None:
            try:
                return self.content.cat(listing.cid)
            except ContentStoreError:
                pass  # not (wholly) here: ask the seller
            data = await self._fetch(listing)  # type: ignore[misc]
        # Adding the bytes recomputes their CID: what a peer served is checked, not trusted.
        if self.content.add_bytes(data) != listing.cid:
            raise MarketError(f"the bytes served for {listing.cid} do not hash to it")
        return data

    def _complain(self, listing: Listing, agreement: HalfBlock, reason: str, opening: bytes | None) -> DataVerificationError:
        block = self.ledger.record(
            COMPLAINT, complaint_transaction(listing.block_hash, agreement.hash, listing.seller, reason, opening)
        )
        error = DataVerificationError(f"seller {listing.seller.hex()[:16]}: {reason} (complaint recorded)")
        error.complaint = block  # type: ignore[attr-defined]
        return error

    def purchased_data(self, listing_id: str) -> bytes:
        """The decrypted bytes of a data set we bought earlier (re-read from the content store)."""
        # None failed on [:16], 10**30 and [] in sqlite3, "\udcff" in UTF-8: the keyring is asked only ids
        purchase = self.keyring.purchase(check_listing_id(listing_id))
        if purchase is None:
            raise MarketError(f"we have not bought listing {listing_id[:16]}…")
        key, _salt = split_opening(purchase.opening)
        return decrypt_data(key, self.content.cat(purchase.cid))

    def purchases(self) -> list[Purchase]:
        """Every data set we bought and verified."""
        return self.keyring.purchases()

    def trades(self) -> list[dict[str, object]]:
        """Every payment on our chain (as buyer or seller), oldest first."""
        rows: list[dict[str, object]] = []
        for block in self.ledger.store.chain(self.public_key):
            if block.type != PAYMENT:
                continue
            try:
                payment = parse_payment(block.transaction)
            except EncodingError:
                continue
            agreed = block if not block.is_proposal else self.ledger.store.linked(block)
            rows.append({
                "role": "buyer" if block.is_proposal else "seller",
                "counterparty": block.link_public_key.hex(),
                "listing_id": payment.listing.hex(),
                "amount": payment.amount,
                "sequence_number": block.sequence_number,
                "timestamp": block.timestamp,
                "settled": agreed is not None,
                "block_hash": block.hash.hex(),
            })
        return rows
