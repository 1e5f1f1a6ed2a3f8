"""Subscriptions: a live meter feed sold period by period, under signed consent terms, revocable.

The seller signs an offer (``edx.sub.offer``); a buyer proposes an agreement that repeats
the offer's consent terms and the seller countersigns it. When a period's readings are in,
the seller cuts them, encrypts them with a fresh key and lists them as an ordinary listing
that names the offer and the period; each subscriber pays for it with an ordinary payment
and gets the key in the seller's agreement, so every period settles atomically exactly like
a data-set trade. The seller's market refuses payments for a period from anyone without a
countersigned, unrevoked agreement: a revocation (either side, ``edx.sub.revocation``)
ends key release for good, and since the seller holds the buyer's whole chain before it
countersigns, it always sees a buyer's revocation before that buyer's next payment.

A buyer that stops paying gets no more keys; a seller that stops listing gets no more
payments, and the buyer records a verifiable ``edx.sub.missed`` complaint.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from enerdatx.conditions import Conditions, wait_within
from enerdatx.errors import (
    EncodingError,
    EnerDatXError,
    MarketError,
    MeterDataError,
    SubscriptionEndedError,
    SubscriptionNotFoundError,
    TransactionRejectedError,
)
from enerdatx.market.formats import (
    LISTING,
    PAYMENT,
    Listing,
    parse_listing,
    parse_payment,
)
from enerdatx.market.market import Market, Trade
from enerdatx.market.service import check_seconds
from enerdatx.market.subscription_formats import (
    MISSED_PERIOD,
    OFFER,
    REVOCATION,
    SUBSCRIPTION,
    Agreement,
    Offer,
    Revocation,
    Terms,
    missed_period_transaction,
    offer_transaction,
    parse_missed_period,
    parse_offer,
    parse_revocation,
    parse_subscription,
    period_of,
    revocation_transaction,
    subscription_transaction,
)
from enerdatx.trustchain import HalfBlock

if TYPE_CHECKING:
    from enerdatx.meter.ingest import ReadingStore
    from enerdatx.peer import Peer

__all__ = ["Held", "SubscriptionService", "Subscriptions", "verify_missed_period"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _short(identifier: object) -> str:
    """An id as error messages show it: the first 16 hex digits, or the repr of what is not an id."""
    return f"{identifier[:16]}…" if isinstance(identifier, str) else repr(identifier)


def _known(table: dict[str, T], identifier: object, missing: str) -> T:
    """``table[identifier]``, else SubscriptionNotFoundError (``missing`` names the id). Unknown ids
    were KeyErrors, and None a TypeError from slicing it for the message."""
    found = table.get(identifier) if isinstance(identifier, str) else None
    if found is None:
        raise SubscriptionNotFoundError(missing.format(_short(identifier)))
    return found


def _check_period(offer: Offer, period: object) -> None:
    """Refuse a period that is not one of ``offer``'s: a whole number from 0 to its periods - 1."""
    if isinstance(period, bool) or not isinstance(period, int) or not 0 <= period < offer.periods:
        raise MarketError(f"a period of offer {_short(offer.offer_id)} is a whole number from 0 to "
                          f"{offer.periods - 1}, not {period!r}")


@dataclass
class Held:
    """What one subscriber holds of one subscription: the periods it paid for and decrypted."""

    agreement: Agreement
    trades: dict[int, Trade] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)


class Subscriptions:
    """One peer's subscriptions, as seller and as buyer, over its Market."""

    def __init__(self, market: Market, *, readings: ReadingStore | None = None, autopay: bool = True,
                 check_open: Callable[[], None] | None = None) -> None:
        self.market = market
        # Raises once the market is closed (its peer stopped); asked before anything is signed,
        # sent or stored: publish_period wrote a period's ciphertext into the directory the
        # stopped peer had let go before its closed key ring refused the listing.
        self.check_open = check_open or (lambda: None)
        self.ledger = market.ledger
        self.readings = readings
        self.autopay = autopay
        self.offers: dict[str, Offer] = {}
        self.agreements: dict[str, Agreement] = {}  # subscription id -> countersigned agreement
        # target hex -> every revocation of it we hold; only a party's counts (checked when read,
        # since a revocation may arrive before the agreement it names)
        self.revocations: dict[str, list[Revocation]] = {}
        self.periods: dict[tuple[str, int], Listing] = {}  # (offer id, period) -> its listing
        self.held: dict[str, Held] = {}  # our own subscriptions as a buyer
        self._subscribing: set[str] = set()  # offers whose agreement we are asking for now
        self.paused: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._conditions = Conditions()
        store = self.ledger.store
        for block_type in (OFFER, REVOCATION, LISTING):
            for block in store.blocks(block_type=block_type):
                self._learn(block)
        for block in store.blocks(block_type=SUBSCRIPTION):
            self._learn(block)
        self.ledger.subscribe(self._on_block)
        self.ledger.register_policy(SUBSCRIPTION, self.subscription_policy)
        market.payment_checks.append(self.check_payment)
        for purchase_block in store.chain(self.public_key):  # periods bought before a restart
            if purchase_block.type == PAYMENT and purchase_block.is_proposal:
                self._restore_purchase(purchase_block)

    @property
    def public_key(self) -> bytes:
        """This peer's public key."""
        return self.ledger.public_key

    # --- what the chain says ----------------------------------------------------------

    def _on_block(self, block: Any) -> None:
        if self._learn(block):
            self._wake()

    def _learn(self, block: Any) -> bool:
        try:
            if block.type == OFFER:
                offer = parse_offer(block)
                if offer.offer_id in self.offers:
                    return False
                self.offers[offer.offer_id] = offer
                for earlier in self.ledger.store.chain(offer.seller):  # periods gossiped before their offer
                    if earlier.type == LISTING and earlier.timestamp >= offer.created:
                        self._learn(earlier)
            elif block.type == REVOCATION:
                revocation = parse_revocation(block)
                held = self.revocations.setdefault(revocation.target.hex(), [])
                if revocation not in held:
                    held.append(revocation)
            elif block.type == SUBSCRIPTION and not block.is_proposal:
                proposal = self.ledger.store.linked(block)
                if proposal is None:
                    return False
                offer_hash, terms, first = parse_subscription(proposal.transaction)
                agreement = Agreement(proposal.hash.hex(), offer_hash, proposal.public_key, block.public_key,
                                      terms, first)
                self.agreements.setdefault(agreement.subscription_id, agreement)
                if agreement.buyer == self.public_key:
                    self.held.setdefault(agreement.subscription_id, Held(agreement))
            elif block.type == LISTING:
                listing = parse_listing(block)
                named = period_of(listing.descriptor)
                if named is None:
                    return False
                listed_offer = self.offers.get(named[0])
                if listed_offer is None or listed_offer.seller != listing.seller:
                    return False
                self.periods.setdefault(named, listing)
                self._maybe_pay(named[0], named[1], listing)
            else:
                return False
        except EncodingError:
            return False
        return True

    def _offer(self, offer_id: object) -> Offer:
        return _known(self.offers, offer_id, "no offer {} is known")

    def _agreement(self, subscription_id: object) -> Agreement:
        return _known(self.agreements, subscription_id, "no subscription {} is known")

    def _held(self, subscription_id: object) -> Held:
        return _known(self.held, subscription_id, "we hold no such subscription: {}")

    def offer_status(self, offer_id: str) -> str:
        """live or revoked (by the seller)."""
        seller = self._offer(offer_id).seller
        return "revoked" if any(r.by == seller for r in self.revocations.get(offer_id, ())) else "live"

    def subscription_status(self, subscription_id: str) -> str:
        """active, revoked_by_buyer, revoked_by_seller or offer_revoked."""
        agreement = self._agreement(subscription_id)
        by = [r for r in self.revocations.get(subscription_id, ()) if r.by in (agreement.buyer, agreement.seller)]
        if by:
            first = min(by, key=lambda r: r.timestamp)
            return "revoked_by_buyer" if first.by == agreement.buyer else "revoked_by_seller"
        if agreement.offer.hex() in self.offers and self.offer_status(agreement.offer.hex()) == "revoked":
            return "offer_revoked"
        return "active"

    def live_offers(self) -> list[Offer]:
        """Every offer not revoked by its seller, oldest first."""
        return sorted((o for o in self.offers.values() if self.offer_status(o.offer_id) == "live"),
                      key=lambda o: (o.created, o.offer_id))

    # --- selling ---------------------------------------------------------------------

    def offer(self, descriptor: dict[str, Any], price: int, *, period_ms: int, start: int, periods: int,
              terms: Terms) -> Offer:
        """Sign a subscription offer onto our chain; ``start`` and ``period_ms`` are in ms (meter time)."""
        self.check_open()
        if not isinstance(terms, Terms):  # None failed with an AttributeError while encoding
            raise MarketError(f"cannot offer this subscription: terms must be Terms, not {type(terms).__name__}")
        try:
            transaction = offer_transaction(descriptor, price, period_ms, start, periods, terms)
        except EncodingError as exc:
            raise MarketError(f"cannot offer this subscription: {exc}") from exc
        return parse_offer(self.ledger.record(OFFER, transaction))

    def subscription_policy(self, _ledger: Any, proposal: Any) -> None:
        """The ledger policy for agreements: countersign the offer's own terms, on a live offer of ours."""
        try:
            offer_hash, terms, first = parse_subscription(proposal.transaction)
        except EncodingError as exc:
            raise TransactionRejectedError(f"malformed_subscription: {exc}") from exc
        offer = self.offers.get(offer_hash.hex())
        if offer is None or offer.seller != self.public_key:
            raise TransactionRejectedError("unknown_offer")
        if self.offer_status(offer.offer_id) != "live":
            raise TransactionRejectedError("offer_revoked")
        if terms != offer.terms:
            raise TransactionRejectedError("terms_differ_from_offer")
        if first >= offer.periods:
            raise TransactionRejectedError("first_period_after_offer_end")
        # countersign the proposal's transaction as it is: both sign the same terms

    def check_payment(self, buyer: bytes, listing: Listing) -> None:
        """Refuse a payment for a period of ours unless the buyer holds a live agreement covering it."""
        named = period_of(listing.descriptor)
        if named is None or named[0] not in self.offers:
            return  # an ordinary listing
        offer_id, period = named
        if self.offer_status(offer_id) != "live":
            raise TransactionRejectedError("offer_revoked")
        agreements = [a for a in self.agreements.values()
                      if a.buyer == buyer and a.offer.hex() == offer_id and a.seller == self.public_key]
        if not agreements:
            raise TransactionRejectedError("not_subscribed")
        live = [a for a in agreements if self.subscription_status(a.subscription_id) == "active"]
        if not live:
            raise TransactionRejectedError("subscription_revoked")
        if all(period < a.first_period for a in live):
            raise TransactionRejectedError("period_before_subscription")

    def due_periods(self, offer: Offer) -> list[int]:
        """Periods of ``offer`` whose readings are all in and that we have not listed yet."""
        if self.readings is None or self.offer_status(offer.offer_id) != "live":
            return []
        latest = self.readings.latest()
        if latest is None:
            return []
        latest_ms = latest.value // 1_000_000
        done = (latest_ms - offer.start) // offer.period_ms  # periods ending at or before the newest reading
        return [n for n in range(min(done, offer.periods)) if (offer.offer_id, n) not in self.periods]

    def publish_due(self) -> list[Listing]:
        """Cut, encrypt, store and list every period that is due, for every live offer of ours."""
        self.check_open()
        published = []
        for offer in self.live_offers():
            if offer.seller != self.public_key:
                continue
            for period in self.due_periods(offer):
                try:
                    published.append(self.publish_period(offer, period))
                except MeterDataError as exc:  # no readings at all in that period: nothing to sell
                    # Later periods still go out; this one stays owed (a buyer may complain).
                    logger.warning("period %d of offer %s not listed: %s", period, offer.offer_id[:16], exc)
        return published

    def publish_period(self, offer: Offer, period: int) -> Listing:
        """List one period of an offer: its readings cut, encrypted with a fresh key, added and signed."""
        self.check_open()
        from enerdatx.meter import cut_dataset

        # publish_due asks only this; called directly, a period past the offer's end was cut and
        # sold, another seller's offer was listed under our key, and a period listed already
        # was signed again (the first listing kept): each is refused here.
        if self.readings is None:  # an AssertionError
            raise MarketError("no readings to publish: give Subscriptions(readings=...) (a ReadingStore)")
        if not isinstance(offer, Offer) or offer.seller != self.public_key:
            raise MarketError("only the seller publishes the periods of its offer")
        if self.offer_status(offer.offer_id) != "live":
            raise SubscriptionEndedError(f"offer {_short(offer.offer_id)} is revoked: no period of it is listed")
        _check_period(offer, period)
        if (offer.offer_id, period) in self.periods:
            raise MarketError(f"period {period} of offer {_short(offer.offer_id)} is listed already")
        lo, hi = (pd.Timestamp(ms, unit="ms", tz="UTC") for ms in offer.period_bounds(period))
        step = pd.Timedelta(seconds=int(offer.descriptor.get("resolution_seconds", 900)))
        readings = self.readings.readings(lo - step, hi + step)
        dataset = cut_dataset(readings, start=lo, end=hi, resolution=f"{int(step.total_seconds())}s",
                              location=str(offer.descriptor.get("location", "unknown")),
                              household_type=str(offer.descriptor.get("household_type", "unknown")),
                              kind=offer.descriptor.get("kind"))
        descriptor = {**dataset.descriptor, "subscription": offer.offer_id, "period": period}
        listing = self.market.sell(dataset.plaintext, descriptor, offer.price)
        self.periods.setdefault((offer.offer_id, period), listing)
        return listing

    def revoke_offer(self, offer_id: str, reason: str = "offer_ended") -> Any:
        """End one of our offers: no period of it is listed or sold after this block."""
        self.check_open()
        offer = self._offer(offer_id)  # an unknown id read "only the seller can revoke an offer"
        if offer.seller != self.public_key:
            raise MarketError("only the seller can revoke an offer")
        if self.offer_status(offer_id) != "live":  # each call signed one more revocation block
            raise SubscriptionEndedError(f"offer {_short(offer_id)} is revoked already")
        return self._revoke(offer.block_hash, reason)

    def consent(self) -> pd.DataFrame:
        """Who holds which periods of our offers, under which terms (the seller's consent view)."""
        paid: dict[tuple[bytes, str], list[int]] = {}
        for block in self.ledger.store.chain(self.public_key):
            if block.type != PAYMENT or block.is_proposal:
                continue
            try:
                listing_hash = parse_payment(block.transaction).listing
            except EncodingError:
                continue
            listing_block = self.ledger.store.get_by_hash(listing_hash)
            named = period_of(listing_block.transaction.get("descriptor", {})) if listing_block else None
            if named is not None:
                paid.setdefault((block.link_public_key, named[0]), []).append(named[1])
        rows = []
        for agreement in self.agreements.values():
            if agreement.seller != self.public_key:
                continue
            periods = sorted(paid.get((agreement.buyer, agreement.offer.hex()), []))
            rows.append({
                "subscription": agreement.subscription_id, "buyer": agreement.buyer.hex(),
                "offer": agreement.offer.hex(), "purpose": agreement.terms.purpose,
                "retention_days": agreement.terms.retention_days, "resale": agreement.terms.resale,
                "first_period": agreement.first_period, "periods_held": periods,
                "status": self.subscription_status(agreement.subscription_id),
            })
        return pd.DataFrame(rows, columns=["subscription", "buyer", "offer", "purpose", "retention_days",
                                           "resale", "first_period", "periods_held", "status"])

    # --- buying ----------------------------------------------------------------------

    async def subscribe(self, offer_id: str, *, first_period: int = 0) -> Agreement:
        """Agree to an offer's terms (the seller countersigns them); its periods are then paid as listed."""
        self.check_open()
        offer = self._offer(offer_id)
        if offer.seller == self.public_key:
            raise MarketError("a peer cannot subscribe to its own offer")
        if self.offer_status(offer_id) != "live":
            raise MarketError(f"offer {offer_id[:16]}… is revoked")
        for subscription_id, held in self.held.items():
            # A second agreement (a notebook cell run again) bought nothing more: each period is
            # paid once, and the other agreement's payments failed as bought already.
            if held.agreement.offer.hex() == offer_id and self.subscription_status(subscription_id) == "active":
                raise MarketError(f"we hold subscription {_short(subscription_id)} to offer {_short(offer_id)} "
                                  "already: revoke it first to subscribe anew")
        # Two calls at once (two clicks, two REST requests) both passed the check above before
        # either agreement was signed, and signed two.
        if offer_id in self._subscribing:
            raise MarketError(f"a subscription to offer {_short(offer_id)} is being agreed already")
        transaction = subscription_transaction(offer.block_hash, offer.terms, first_period)
        if first_period >= offer.periods:  # the seller refuses it (a 502 over REST): say so here, sending nothing
            raise MarketError(f"first_period must be below the offer's {offer.periods} periods, not {first_period}")
        self._subscribing.add(offer_id)
        try:
            proposal, agreement_block = await self.market.propose(offer.seller, SUBSCRIPTION, transaction)
        finally:
            self._subscribing.discard(offer_id)
        self._learn(agreement_block)
        held = self.held[proposal.hash.hex()]
        for (named_offer, period), listing in sorted(self.periods.items(), key=lambda item: item[0][1]):
            if named_offer == offer_id:
                self._maybe_pay(named_offer, period, listing)
        return held.agreement

    def revoke(self, subscription_id: str, reason: str = "consent_withdrawn") -> Any:
        """End a subscription we are a party to, as buyer or seller: no key of it is released after this."""
        self.check_open()
        agreement = self._agreement(subscription_id)
        if self.public_key not in (agreement.buyer, agreement.seller):
            raise MarketError(f"we are no party to subscription {_short(subscription_id)}")
        status = self.subscription_status(subscription_id)
        if status != "active":  # each call signed one more revocation block, changing nothing
            raise SubscriptionEndedError(f"subscription {_short(subscription_id)} is no longer active: {status}")
        return self._revoke(bytes.fromhex(subscription_id), reason)

    def _revoke(self, target: bytes, reason: str) -> Any:
        try:
            transaction = revocation_transaction(target, reason)
        except EncodingError as exc:
            raise MarketError(f"cannot revoke: {exc}") from exc
        block = self.ledger.record(REVOCATION, transaction)
        self._learn(block)
        return block

    def pause(self, subscription_id: str) -> None:
        """Stop paying for new periods of a subscription (without revoking it)."""
        self._held(subscription_id)  # an unknown id was paused silently, and nothing was ever held
        self.paused.add(subscription_id)

    def _maybe_pay(self, offer_id: str, period: int, listing: Listing) -> None:
        if not self.autopay:
            return
        for held in self.held.values():
            agreement = held.agreement
            if (agreement.offer.hex() != offer_id or period < agreement.first_period or period in held.trades
                    or agreement.subscription_id in self.paused
                    or self.subscription_status(agreement.subscription_id) != "active"):
                continue
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # learning the chain at start-up: pay_due() catches up
            task = loop.create_task(self.pay_period(agreement.subscription_id, period))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def pay_period(self, subscription_id: str, period: int) -> Trade | None:
        """Pay for one listed period of one of our subscriptions and open it; None if refused or failed."""
        held = self._held(subscription_id)
        offer_id = held.agreement.offer.hex()
        if offer_id in self.offers:  # checked first: a period [] was a TypeError (unhashable) below
            _check_period(self.offers[offer_id], period)
        if isinstance(period, bool) or not isinstance(period, int):
            raise MarketError(f"a period is a whole number, not {period!r}")
        if period in held.trades:
            return held.trades[period]
        self.check_open()  # what follows pays: signs and sends
        if self.subscription_status(subscription_id) != "active":
            return None  # after a revocation, ours or theirs, we pay for nothing more
        listing = self.periods.get((offer_id, period))
        if listing is None:  # a KeyError of the (offer, period) pair
            raise MarketError(f"period {period!r} of subscription {_short(subscription_id)} is not listed "
                              "(yet): there is nothing to pay for")
        held.trades[period] = None  # type: ignore[assignment]  # claimed: one payment per period
        try:
            await self.market.book.wait_for_listing(listing.listing_id)
            trade = await self.market.buy(listing.listing_id)
        except EnerDatXError as exc:  # refused, unreachable, bad data: recorded, never retried blindly
            del held.trades[period]
            held.failed[period] = f"{type(exc).__name__}: {exc}"
            logger.info("period %d of %s not bought: %s", period, subscription_id[:16], exc)
            self._wake()
            return None
        held.trades[period] = trade
        held.failed.pop(period, None)
        self._wake()
        return trade

    async def pay_due(self) -> list[Trade]:
        """Pay every listed period of our active subscriptions that we have not paid yet."""
        trades = []
        for subscription_id, held in list(self.held.items()):
            offer_id = held.agreement.offer.hex()
            for _offer, period in sorted(k for k in self.periods if k[0] == offer_id):
                if period >= held.agreement.first_period and period not in held.trades \
                        and subscription_id not in self.paused:
                    trade = await self.pay_period(subscription_id, period)
                    if trade is not None:
                        trades.append(trade)
        return trades

    def _restore_purchase(self, block: Any) -> None:
        try:
            listing_block = self.ledger.store.get_by_hash(parse_payment(block.transaction).listing)
            agreement_block = self.ledger.store.linked(block)
            if listing_block is None or agreement_block is None:
                return
            listing = parse_listing(listing_block)
        except EncodingError:
            return
        named = period_of(listing.descriptor)
        if named is None:
            return
        for held in self.held.values():
            if held.agreement.offer.hex() == named[0] and named[1] not in held.trades:
                purchase = self.market.keyring.purchase(listing.listing_id)
                if purchase is not None:
                    held.trades[named[1]] = Trade(listing, block, agreement_block,
                                                  self.market.purchased_data(listing.listing_id), 0.0)

    def received(self, subscription_id: str) -> pd.DataFrame:
        """Every period we paid for and decrypted of one subscription, as one readings-format frame."""
        held = self._held(subscription_id)
        frames = [held.trades[p].dataframe() for p in sorted(held.trades) if held.trades[p] is not None]
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames)

    def complain_missed(self, subscription_id: str, period: int) -> Any:
        """Record that the seller never listed ``period``; MarketError if it did or it is not yet due."""
        self.check_open()
        held = self._held(subscription_id)
        if isinstance(period, bool) or not isinstance(period, int):
            raise MarketError(f"a period is a whole number, not {period!r}")
        agreement = held.agreement
        offer = self.offers[agreement.offer.hex()]
        if (offer.offer_id, period) in self.periods:
            raise MarketError(f"period {period} was listed")
        if period < agreement.first_period or period >= offer.periods:
            raise MarketError(f"period {period} is outside the subscription")
        proposal = self.ledger.store.get_by_hash(bytes.fromhex(subscription_id))
        if proposal is None:  # held agreements are made from stored proposals
            raise MarketError(f"subscription {subscription_id[:16]} has no stored proposal")
        countersigned = self.ledger.store.agreements_for(proposal.public_key, proposal.sequence_number)
        transaction = missed_period_transaction(countersigned[0].encode(), period)
        return self.ledger.record(MISSED_PERIOD, transaction)

    def check_deliveries(self, now_ms: int, *, grace_ms: int = 0) -> list[Any]:
        """Complain about every period of our active subscriptions that ended ``grace_ms`` before
        ``now_ms`` (meter time) and was never listed; each period once. Returns the new complaints."""
        self.check_open()
        for name, value in (("now_ms", now_ms), ("grace_ms", grace_ms)):  # "x" found nothing due, silently
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise MarketError(f"{name} is a whole number of milliseconds, 0 or more, not {value!r}")
        complained = set()
        for block in self.ledger.store.chain(self.public_key):
            if block.type == MISSED_PERIOD:
                try:
                    encoded, period = parse_missed_period(block)
                    complained.add((HalfBlock.decode(encoded).link_sequence_number, period))
                except EncodingError:
                    continue
        complaints = []
        for subscription_id, held in self.held.items():
            if self.subscription_status(subscription_id) != "active":
                continue
            offer = self.offers.get(held.agreement.offer.hex())
            if offer is None:
                continue
            proposal = self.ledger.store.get_by_hash(bytes.fromhex(subscription_id))
            if proposal is None:
                continue
            for period in range(held.agreement.first_period, offer.periods):
                if offer.period_bounds(period)[1] + grace_ms > now_ms:
                    break
                if (offer.offer_id, period) not in self.periods and \
                        (proposal.sequence_number, period) not in complained:
                    complaints.append(self.complain_missed(subscription_id, period))
        return complaints

    # --- waiting ------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds (checked whenever a subscription block or payment lands);
        TimeoutError after ``timeout`` seconds."""
        check_seconds("timeout", timeout)  # a NaN or negative one was a bare TimeoutError at once
        try:
            await self._conditions.wait_for(predicate, timeout)
        except TimeoutError:
            raise TimeoutError(f"the condition did not hold within {timeout} s") from None

    async def settled(self, timeout: float = 30.0) -> None:
        """Wait until every payment this peer started has finished."""
        check_seconds("timeout", timeout)
        if self._tasks:
            await wait_within(asyncio.gather(*self._tasks, return_exceptions=True), timeout)

    def _wake(self) -> None:
        self._conditions.notify()


def verify_missed_period(store: Any, complaint: Any) -> bool:
    """True if a missed-period complaint holds: the seller signed the agreement (carried in the
    complaint) and its chain, as ``store`` holds it, lists no such period before the complaint."""
    try:
        encoded, period = parse_missed_period(complaint)
        agreement = HalfBlock.decode(encoded)
        offer_hash, _terms, first = parse_subscription(agreement.transaction)
    except EncodingError:
        return False
    if (agreement.type != SUBSCRIPTION or agreement.is_proposal or not agreement.verify_signature()
            or agreement.link_public_key != complaint.public_key or period < first):
        return False
    for block in store.chain(agreement.public_key):
        if block.type == LISTING and block.timestamp <= complaint.timestamp:
            try:
                if period_of(parse_listing(block).descriptor) == (offer_hash.hex(), period):
                    return False
            except EncodingError:
                continue
    return True


class SubscriptionService:
    """Subscriptions as a service of a Peer that already has a MarketService, fed by a live meter.

    With ``meter`` (a DSMR source: ``tcp://HOST:PORT``, ``serial:PORT``, a file) or ``oehu``
    (an ``(OEHUClient, device id)`` pair) the readings go to ``readings.sqlite`` in the peer's
    directory from a worker thread, and every committed batch lists the periods it completed.
    """

    def __init__(self, *, readings: ReadingStore | None = None, meter: Any = None,
                 oehu: tuple[Any, str] | None = None, autopay: bool = True, meter_timeout: float = 15.0,
                 oehu_interval: float = 10.0, on_event: Callable[..., None] | None = None) -> None:
        # Refused here, not in the reader thread once the peer runs: oehu_interval 0 (or NaN, or
        # -1) polled the OEHU API without pause, and a NaN meter_timeout killed the reader with a
        # traceback while the peer ran on, reading nothing.
        check_seconds("meter_timeout", meter_timeout)
        check_seconds("oehu_interval", oehu_interval)
        if meter is not None and oehu is not None:
            raise MarketError("subscriptions read one meter: give meter or oehu, not both")
        if oehu is not None and not (isinstance(oehu, tuple) and len(oehu) == 2 and isinstance(oehu[1], str)
                                     and oehu[1].strip()):
            raise MarketError(f"oehu is an (OEHUClient, device id) pair, not {oehu!r}")
        if not isinstance(autopay, bool):
            raise MarketError(f"autopay is True or False, not {autopay!r}")
        if on_event is not None and not callable(on_event):
            raise MarketError(f"on_event is None or a function of (event, **fields), not {on_event!r}")
        self._readings = readings
        self.meter = meter
        self.oehu = oehu
        self.autopay = autopay
        self.meter_timeout = meter_timeout
        self.oehu_interval = oehu_interval
        self.on_event = on_event or (lambda _event, **_fields: None)
        self.subscriptions: Subscriptions
        self.readings: ReadingStore | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._own_readings = False

    def attach(self, peer: Peer) -> None:
        """Find the peer's market, put subscriptions on it and start reading the meter."""
        from enerdatx.meter.ingest import ReadingStore, follow_dsmr, poll_oehu

        if not peer.has_market:
            raise MarketError("subscriptions need the peer's market first: Lab(market=True) or peer.add_market()")
        market = peer.market.market
        self.readings = self._readings
        if self.readings is None and (self.meter is not None or self.oehu is not None):
            self.readings = ReadingStore(peer.directory / "readings.sqlite", fsync=getattr(peer.store, "fsync", True))
            self._own_readings = True
        self.subscriptions = Subscriptions(market, readings=self.readings, autopay=self.autopay,
                                           check_open=peer.market.check_open)
        readings = self.readings
        if readings is None:
            return
        loop = asyncio.get_running_loop()
        readings.on_batch(lambda stored: loop.call_soon_threadsafe(self._batch_done, stored))
        self.publish_due()  # periods completed while we were down
        if self.meter is not None:
            target: Callable[[], Any] = lambda: follow_dsmr(  # noqa: E731
                self.meter, readings, self._stop, timeout=self.meter_timeout)
        elif self.oehu is not None:
            client, device = self.oehu
            target = lambda: poll_oehu(client, device, readings, self._stop,  # noqa: E731
                                       interval=self.oehu_interval)
        else:
            return
        self._thread = threading.Thread(target=target, name="enerdatx-meter", daemon=True)
        self._thread.start()

    def _batch_done(self, stored: int) -> None:
        if self._stop.is_set():
            return
        assert self.readings is not None
        self.on_event("readings", stored=stored, total=len(self.readings))
        self.publish_due()

    def publish_due(self) -> list[Listing]:
        """List every completed period (see Subscriptions.publish_due) and report each."""
        listings = self.subscriptions.publish_due()
        for listing in listings:
            named = period_of(listing.descriptor)
            assert named is not None
            self.on_event("period", offer=named[0], period=named[1], listing=listing.listing_id)
        return listings

    async def close(self) -> None:
        """Stop reading the meter and close the readings database we opened."""
        self._stop.set()
        if self._thread is not None:
            # The reader notices the stop after its next telegram or its read timeout; a meter
            # that sends every 10 s must not hold up a shutdown, so give it a second at most.
            await asyncio.to_thread(self._thread.join, 1.0)
            if self._thread.is_alive():
                return  # a daemon thread still inside recv(): it may commit one more batch, then ends
        if self._own_readings and self.readings is not None:
            self.readings.close()
