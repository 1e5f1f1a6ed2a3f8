"""One peer's market on the network: the handle a user holds and the handler the community asks.

``Lab(market=True)`` (or ``peer.add_market()``) gives a peer its MarketService, then
``peer.market``: sell, search, negotiate, post requests, buy. The data keys live in
``market.sqlite`` and the ciphertexts in the peer's content store (``ipfs/``). The service
wires four network-free parts together and to the peer, each built with its callbacks:

* :class:`~enerdatx.market.market.Market`: listings, settlement, the wallet (``propose``,
  ``fetch`` and ``negotiated_price`` are its ways out);
* :class:`~enerdatx.market.desk.NegotiationDesk` and :class:`~enerdatx.market.desk.RequestBoard`;
* :class:`~enerdatx.market.community.MarketCommunity`, which moves bytes and asks this service
  everything through the :class:`~enerdatx.market.handler.MarketHandler` Protocol.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import math
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from enerdatx.errors import (
    ConfigurationError,
    ListingNotFoundError,
    LoopThreadError,
    MarketError,
    NegotiationError,
    StorageError,
)
from enerdatx.market.community import RECORD_TYPES, MarketCommunity, MarketSettings
from enerdatx.market.desk import NegotiationDesk, RequestBoard
from enerdatx.market.formats import Listing
from enerdatx.market.keyring import Keyring, Purchase
from enerdatx.market.market import ContentSource, Market, Trade, check_purchase
from enerdatx.market.negotiation import Negotiation, SellerStrategy, StandingRequest
from enerdatx.market.orderbook import LIVE, OrderBook, Query
from enerdatx.market.wallet import DEFAULT_GRANT, Balance
from enerdatx.trustchain import HalfBlock, now_ms

if TYPE_CHECKING:
    from ipv8.peer import Peer as IPv8Peer

    from enerdatx.meter import DataSet
    from enerdatx.peer import Peer

__all__ = ["LISTING_TIMEOUT", "MarketService", "check_seconds"]

LISTING_TIMEOUT = 10.0
# A listing not heard of after this long is asked for again from every peer we know, then after
# twice as long, and so on: the broadcast and the first sync are each sent once, so a record
# lost on the way (or sent while its seller restarted) never came otherwise.
LISTING_RESYNC_SECONDS = 1.0
"""Seconds ``buy`` waits for a listing it has not heard of yet."""


T = TypeVar("T")
Method = TypeVar("Method", bound=Callable[..., Any])


def _on_loop(method: Method) -> Method:
    """A handle method that reads or writes the peer's state, run on the peer's event loop thread.

    The order book, the wallet's view and the keyring's SQLite connection belong to that loop.
    ``lab.run_sync`` runs it in a thread of its own: ``seller.market.sell(...)`` from the main
    thread beside it failed deep in sqlite3 ("objects created in a thread can only be used in
    that same thread"), and ``balance()`` read state the loop was writing. Called from another
    thread, the method is handed to the loop and waited for.
    """

    @functools.wraps(method)
    def on_loop(self: MarketService, *args: Any, **kwargs: Any) -> Any:
        if self._loop_thread in (None, threading.get_ident()):  # not attached yet, or on the loop
            return method(self, *args, **kwargs)
        return self._call_on_loop(method.__name__, functools.partial(method, self, *args, **kwargs))

    return cast(Method, on_loop)


def check_seconds(name: str, value: object, error: type[Exception] = MarketError, *, zero: bool = False) -> None:
    """A timeout is a finite number of seconds above 0 (or 0, where that means "do not wait"): a NaN
    one never timed out (buy(timeout=nan) bought, however long the listing took), a negative one
    gave up at once and said "in -1 s"."""
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            or value < 0 or (value == 0 and not zero)):
        bound = "0 or more" if zero else "above 0"
        raise error(f"{name} is a finite number of seconds {bound}, not {value!r}")


class MarketService:
    """One peer's market on the network: sell, search, negotiate, post requests, buy."""

    def __init__(
        self,
        *,
        grant: int = DEFAULT_GRANT,
        content: ContentSource | None = None,
        seller_strategy: SellerStrategy | None = None,
        propose_timeout: float = 10.0,
        settings: Mapping[str, object] | None = None,
    ) -> None:
        # Refused when made, not when a peer starts the market: a NaN or negative timeout gave
        # every purchase up at once, and the wallet refused a bad grant only at the peer's start.
        if type(grant) is not int or grant < 0:
            raise ConfigurationError(f"grant is a whole number of tokens, 0 or more, not {grant!r}")
        check_seconds("propose_timeout", propose_timeout, ConfigurationError)
        self.grant = grant
        self.seller_strategy = seller_strategy or SellerStrategy()
        self.propose_timeout = propose_timeout
        self._content = content
        self._settings = dict(settings or {})
        self._loop_thread: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        MarketSettings().update(**self._settings)  # refused now, not when a peer starts the market
        self.peer: Peer
        self.market: Market
        self.desk: NegotiationDesk
        self.board: RequestBoard
        self.community: MarketCommunity

    def attach(self, peer: Peer) -> None:
        """Open the peer's market state and start the market community on its IPv8."""
        self.peer = peer
        self._loop_thread = threading.get_ident()  # attach runs on the peer's event loop, if it has one
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        content = self._content if self._content is not None else peer.content
        keyring = Keyring(peer.directory / "market.sqlite", fsync=peer.store.fsync)
        book = OrderBook(clock=now_ms, is_fraudulent=peer.ledger.store.is_fraudulent)
        self.desk = NegotiationDesk(
            peer.public_key, book, send=self._send_step, seller_strategy=self.seller_strategy
        )
        self.market = Market(
            peer.ledger, content, keyring=keyring, grant=self.grant, book=book,
            propose=self._propose, fetch=self._fetch, negotiated_price=self.desk.agreed_price,
        )
        self.board = RequestBoard(peer.identity, clock=self.market.clock, publish=self._publish_request)
        settings = MarketSettings(
            my_peer=peer.community.my_peer, endpoint=peer.ipv8.endpoint, network=peer.ipv8.network, handler=self
        ).update(**self._settings)
        self.community = MarketCommunity(settings)
        peer.add_overlay(self.community)
        peer.ledger.subscribe(self._on_block)

    async def close(self) -> None:
        """Stop the community and close the keyring."""
        self._closed = True
        if self.community in self.peer.ipv8.overlays:
            self.peer.ipv8.overlays.remove(self.community)
            await self.community.unload()
        self.market.keyring.close()

    # --- the handle ------------------------------------------------------------------

    def check_open(self) -> None:
        """StorageError once closed (its peer stopped), as its stores say, before anything is signed
        or sent: post_request signed and spread a request, sell wrote its ciphertext into the
        directory the peer had let go, negotiate sent offers and waited for its whole timeout.
        Subscriptions on this market ask it too (SubscriptionService)."""
        if self._closed:
            raise StorageError("cannot use the market: it is closed (was its peer stopped?)", path=self.peer.directory)

    def _call_on_loop(self, name: str, call: Callable[[], T]) -> T:
        """Run ``call`` on the peer's event loop thread and wait for its result (see ``_on_loop``)."""
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            raise LoopThreadError(f"peer.market.{name}() was called from another thread than the peer's, "
                                  f"and the peer's event loop is not running to take the call")
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if done.set_running_or_notify_cancel():
                try:
                    done.set_result(call())
                except BaseException as exc:  # noqa: BLE001 - the caller gets it, as if it had called on the loop
                    done.set_exception(exc)  # (never left unset: the caller would wait forever)
                    if not isinstance(exc, Exception):
                        raise

        loop.call_soon_threadsafe(run)
        return done.result()

    @property
    def public_key(self) -> bytes:
        """This peer's public key."""
        return self.peer.public_key

    @property
    def book(self) -> OrderBook:
        """Every listing this peer has heard of, with its status."""
        return self.market.book

    @_on_loop
    def sell(self, dataset: DataSet, price: int, *, expires_in: int | None = None) -> Listing:
        """List a data set (a meter DataSet, or anything with ``.plaintext`` and ``.descriptor``)."""
        self.check_open()
        plaintext, descriptor = getattr(dataset, "plaintext", None), getattr(dataset, "descriptor", None)
        if not (isinstance(plaintext, bytes) and isinstance(descriptor, Mapping)):
            hint = " (cut readings into one first: cut_dataset(readings, resolution=..., location=..., household_type=...))"
            raise MarketError(f"sell takes a DataSet, not {type(dataset).__name__}{hint}")
        return self.market.sell(dataset.plaintext, dataset.descriptor, price, expires_in=expires_in)

    @_on_loop
    def withdraw(self, listing_id: str) -> None:
        """Take one of our listings off sale."""
        self.check_open()
        self.market.withdraw(listing_id)

    @_on_loop
    def search(self, query: Query | None = None, **fields: Any) -> list[Listing]:
        """Live listings matching a query (or keyword fields of a Query), cheapest first, then oldest."""
        return self.market.book.search(query, **fields)

    async def wait_for_listing(self, listing_id: str, timeout: float = LISTING_TIMEOUT) -> Listing:
        """The listing, once this peer has heard of it; ListingNotFoundError after ``timeout`` seconds
        (0: only a listing heard of already)."""
        check_seconds("timeout", timeout, zero=True)
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + timeout, LISTING_RESYNC_SECONDS
        while True:
            try:
                return await self.market.book.wait_for_listing(listing_id, max(0.0, min(pause, deadline - loop.time())))
            except TimeoutError:
                if loop.time() >= deadline:
                    raise ListingNotFoundError(
                        f"listing {listing_id[:16]}… did not reach this peer in {timeout} s") from None
            self.community.resync()
            pause *= 2

    async def buy(
        self,
        listing_id: str,
        *,
        amount: int | None = None,
        negotiation: str | None = None,
        again: bool = False,
        timeout: float = LISTING_TIMEOUT,
    ) -> Trade:
        """Wait for the listing (up to ``timeout`` s), pay for it and get its verified data (see Market.buy)."""
        self.check_open()
        check_purchase(amount, again)  # before the wait
        await self.wait_for_listing(listing_id, timeout)
        return await self.market.buy(listing_id, amount=amount, negotiation=negotiation, again=again)

    @_on_loop
    def balance(self, public_key: bytes | None = None) -> Balance:
        """The balance of ``public_key`` (ours by default), derived from the chains we hold."""
        return self.market.balance(public_key)

    @_on_loop
    def purchases(self) -> list[Purchase]:
        """Every data set we bought and verified."""
        return self.market.purchases()

    # --- negotiation and standing requests ------------------------------------------------

    @property
    def seller_strategy(self) -> SellerStrategy:
        """How this peer answers offers on its listings."""
        return self.desk.seller_strategy if hasattr(self, "desk") else self._seller_strategy

    @seller_strategy.setter
    def seller_strategy(self, strategy: SellerStrategy) -> None:
        if not callable(getattr(strategy, "respond", None)):  # None was kept, and failed at the first offer
            raise MarketError(f"a seller strategy has a respond(negotiation, listing, status) method; "
                              f"{type(strategy).__name__} has none")
        self._seller_strategy = strategy
        if hasattr(self, "desk"):
            self.desk.seller_strategy = strategy

    @property
    def negotiations(self) -> dict[str, Negotiation]:
        """Every negotiation of ours, as buyer or seller, by id."""
        return self.desk.negotiations

    async def negotiate(self, listing_id: str, offer: int, max_price: int, *, timeout: float = 10.0) -> Negotiation:
        """Propose ``offer`` for a listing and haggle up to ``max_price``; the accepted or declined negotiation."""
        self.check_open()
        check_seconds("timeout", timeout)  # 0 gave up before the seller could answer
        await self.wait_for_listing(listing_id, timeout)
        return await self.desk.negotiate(listing_id, offer, max_price, timeout=timeout)

    async def negotiate_and_buy(self, listing_id: str, offer: int, max_price: int) -> Trade:
        """Negotiate a price, then buy at it; NegotiationError if the seller declines."""
        self.check_open()
        negotiation = await self.negotiate(listing_id, offer, max_price)
        if negotiation.state != "accepted":
            raise NegotiationError(f"the seller declined: {negotiation.reason}")
        return await self.buy(listing_id, amount=negotiation.offer, negotiation=negotiation.negotiation)

    @property
    def requests(self) -> dict[str, StandingRequest]:
        """Every standing request we know (ours and relayed ones), by id."""
        return self.board.requests

    @_on_loop
    def post_request(self, query: Query, *, expires_in: int | None = None) -> StandingRequest:
        """Post a standing request (signed) and spread it, so sellers and matchmakers see the demand."""
        self.check_open()
        return self.board.post(query, expires_in=expires_in)

    @_on_loop
    def live_requests(self) -> list[StandingRequest]:
        """Every standing request we know that has not expired."""
        return self.board.live()

    @_on_loop
    def matches(self, *, own_only: bool = False) -> list[tuple[StandingRequest, Listing]]:
        """Standing requests paired with the live listings they accept, by price, then time."""
        return self.board.matches(self.market.book.search(), own_only=own_only)

    async def fill_requests(self) -> list[Trade]:
        """Buy, for each of our standing requests, the best matching listing not bought yet."""
        self.check_open()
        bought = {p.listing_id for p in self.market.purchases()}
        served: set[str] = set()
        trades = []
        for request, listing in self.matches(own_only=True):
            if request.request_id in served or listing.listing_id in bought:
                continue
            if self.market.book.status(listing) != LIVE:
                continue
            trades.append(await self.market.buy(listing.listing_id))
            served.add(request.request_id)
            bought.add(listing.listing_id)
        return trades

    # --- the market's ways out ---------------------------------------------------------

    async def _propose(self, counterparty: bytes, block_type: str, transaction: dict[str, object]) -> tuple[HalfBlock, HalfBlock]:
        return await self.peer.community.propose(counterparty, block_type, transaction, timeout=self.propose_timeout)

    async def _fetch(self, listing: Listing) -> bytes:
        return await self.community.fetch(listing.seller, listing.cid)

    def _send_step(self, counterparty: bytes, step: bytes) -> None:
        self.community.send_step(counterparty, step)

    def _publish_request(self, request: bytes) -> None:
        self.community.publish_request(request)

    def _on_block(self, block: HalfBlock) -> None:
        if block.public_key == self.public_key and block.type in RECORD_TYPES and block.is_record:
            self.community.publish(block)

    # --- MarketHandler: what the community asks ----------------------------------------

    def peer_for(self, public_key: bytes) -> IPv8Peer | None:
        """The IPv8 peer with TrustChain key ``public_key``, if its address is known."""
        return self.peer.community.peer_for(public_key)

    def known_public_keys(self) -> list[bytes]:
        """TrustChain keys of every peer we can reach: contacts and IPv8 neighbours."""
        return self.peer.community.known_public_keys()

    def receive_record(self, block: HalfBlock) -> bool:
        """A market record from the network: the ledger validates and stores it, the book learns it.

        False when the ledger finds it invalid (a forged signature, say): nothing is stored.
        """
        if self.peer.ledger.store.get_by_hash(block.hash) is not None:
            return True
        return not self.peer.ledger.receive(block).is_invalid

    def first_gap(self, public_key: bytes) -> int:
        """The first sequence number of that chain we lack: we hold everything below it."""
        store = self.peer.ledger.store
        held = store.held_sequence_numbers(public_key, 1, store.latest_sequence_number(public_key))
        return next((i for i, seq in enumerate(held, start=1) if seq != i), len(held) + 1)

    def own_records(self, since: int = 1) -> list[HalfBlock]:
        """Our market records from sequence number ``since`` (what a newcomer asks for)."""
        return [b for b in self.peer.ledger.store.chain(self.public_key, max(1, since)) if b.type in RECORD_TYPES]

    def ciphertext(self, cid: str) -> bytes | None:
        """The ciphertext of one of our listings, or None: we serve nothing else."""
        for listing in self.market.book.search(seller=self.public_key, include_unavailable=True):
            if listing.cid == cid:
                return self.market.content.cat(cid)
        return None

    def receive_step(self, sender: bytes, data: bytes) -> None:
        """A negotiation step from ``sender`` (authenticated by IPv8), for the desk."""
        self.desk.receive(sender, data)

    def receive_request(self, data: bytes) -> None:
        """A standing request relayed by the network, for the board."""
        self.board.receive(data)
