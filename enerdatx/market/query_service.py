"""Aggregate queries on the network: a buyer asks a seller's peer, which answers by listing the answer.

The buyer sends an ``AggregateQuery`` (its own small IPv8 community, so the market's
messages stay as they are); the seller's peer computes the answer from its own readings,
lists it like any data set (one listing per question and period, reused while live) and
replies with the listing id. The buyer then buys that listing: payment and key settle in
one countersigned TrustChain pair, as every trade. Only the answer ever leaves the seller.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

import pandas as pd
from ipv8.lazy_community import lazy_wrapper
from ipv8.messaging.payload_dataclass import DataClassPayload, type_from_format

from enerdatx.conditions import wait_within
from enerdatx.errors import EncodingError, MarketError, PeerUnreachableError
from enerdatx.market.orderbook import LIVE
from enerdatx.market.query import AggregateQuery, answer_descriptor, answer_query, load_answer
from enerdatx.meter.dataset import DataSet
from enerdatx.overlay import Overlay, OverlaySettings, Pending
from enerdatx.trustchain.keys import trustchain_key

if TYPE_CHECKING:
    from ipv8.peer import Peer as IPv8Peer

    from enerdatx.market.market import Trade
    from enerdatx.peer import Peer

__all__ = ["QueryService", "QueryCommunity", "QueryMessage", "AnswerMessage", "Answer", "MESSAGES"]

logger = logging.getLogger(__name__)
# As in enerdatx.market.payload: ``msg_id`` a class variable, wire types ints to the type checker.
if TYPE_CHECKING:
    uint32: TypeAlias = int
else:
    uint32 = type_from_format("I")
MAX_QUERY = 512


@dataclass
class QueryMessage(DataClassPayload):
    """A buyer's question (``AggregateQuery.encode``) and the most it will pay."""

    msg_id: ClassVar[int] = 1
    identifier: uint32
    query: bytes
    max_price: uint32


@dataclass
class AnswerMessage(DataClassPayload):
    """The seller's reply: the listing id of the answer, or an empty id and a refusal reason."""

    msg_id: ClassVar[int] = 2
    identifier: uint32
    listing_id: str
    reason: str


MESSAGES = (QueryMessage, AnswerMessage)


@dataclass(frozen=True)
class Answer:
    """A bought answer: the trade that settled it and the answer as a DataFrame."""

    query: AggregateQuery
    trade: Trade

    @property
    def frame(self) -> pd.DataFrame:
        """The answer's rows."""
        return load_answer(self.trade.plaintext)


class PendingAnswer(Pending):
    """A question we sent, awaiting the seller's answer."""

    PREFIX = "query"

    def __init__(self, overlay: Overlay, seller: bytes, timeout: float) -> None:
        super().__init__(overlay, timeout)
        self.seller = seller
        self.reply: AnswerMessage | None = None


class QuerySettings(OverlaySettings):
    """What the query community is given at birth."""

    service: QueryService | None = None


class QueryCommunity(Overlay):
    """Carries questions to sellers and their answers' listing ids back."""

    community_id = bytes.fromhex("6564782071756572792076312e30b1e4c07a9d55")
    settings_class = QuerySettings

    def __init__(self, settings: QuerySettings) -> None:
        if settings.service is None:
            raise TypeError("QueryCommunity needs settings.service")
        super().__init__(settings)
        self.service: QueryService = settings.service
        self.add_message_handler(QueryMessage, self.on_query)
        self.add_message_handler(AnswerMessage, self.on_answer)

    def send_to(self, public_key: bytes, payload: Any) -> None:
        """Sign and send one message to the peer with TrustChain key ``public_key``."""
        peer = self.service.peer.community.peer_for(public_key)
        if peer is None:
            raise PeerUnreachableError(f"no address known for peer {public_key.hex()[:16]}")
        self.ez_send(peer, payload)

    @lazy_wrapper(QueryMessage)
    def on_query(self, peer: IPv8Peer, payload: QueryMessage) -> None:
        """A buyer asks: the service answers (or refuses)."""
        if trustchain_key(peer) is not None and len(payload.query) <= MAX_QUERY:
            listing_id, reason = self.service.answer(payload.query, payload.max_price)
            self.ez_send(peer, AnswerMessage(payload.identifier, listing_id, reason))  # back where it came from

    @lazy_wrapper(AnswerMessage)
    def on_answer(self, peer: IPv8Peer, payload: AnswerMessage) -> None:
        """A seller replies to one of our questions."""
        self.service.receive_answer(trustchain_key(peer), payload)


class QueryService:
    """A peer's side of aggregate queries: answer questions about our readings, ask others."""

    def __init__(self, readings: pd.DataFrame | None = None, *, prices: dict[str, int] | None = None,
                 location: str = "unknown", household_type: str = "unknown", market: Any = None,
                 timeout: float = 10.0) -> None:
        self.readings = readings
        self.prices = dict(prices or {})
        self.location = location
        self.household_type = household_type
        self.timeout = timeout
        self._market_service = market
        self.answered: dict[str, str] = {}  # query id -> listing id
        self.peer: Peer
        self.community: QueryCommunity

    def attach(self, peer: Peer) -> None:
        """Start the query community on the peer; the market is the peer's market service."""
        self.peer = peer
        if self._market_service is None:
            if not peer.has_market:
                raise MarketError("aggregate queries need the peer's market first: Lab(market=True) or peer.add_market()")
            self._market_service = peer.market
        self.community = QueryCommunity(QuerySettings(my_peer=peer.community.my_peer, endpoint=peer.ipv8.endpoint,
                                                      network=peer.ipv8.network, service=self))
        peer.add_overlay(self.community)

    async def close(self) -> None:
        """Stop the community."""
        if self.community in self.peer.ipv8.overlays:
            self.peer.ipv8.overlays.remove(self.community)
            await self.community.unload()

    # --- the seller ------------------------------------------------------------------

    def answer(self, data: bytes, max_price: int) -> tuple[str, str]:
        """Compute and list the answer to a question: (listing id, "") or ("", refusal reason)."""
        try:
            query = AggregateQuery.decode(data)
        except EncodingError as exc:
            return "", f"bad_query: {exc}"
        price = self.prices.get(query.question)
        if self.readings is None or price is None:
            return "", "question_not_offered"
        if price > max_price:
            return "", f"too_expensive: {price}"
        market = self._market_service.market
        known = self.answered.get(query.query_id)
        if known is not None and market.book.status(market.book.get(known)) == LIVE:
            return known, ""
        try:
            plaintext = answer_query(self.readings, query)
        except MarketError as exc:
            return "", f"no_answer: {exc}"
        descriptor = answer_descriptor(query, location=self.location, household_type=self.household_type)
        listing = self._market_service.sell(DataSet(plaintext, descriptor), price)
        self.answered[query.query_id] = listing.listing_id
        return listing.listing_id, ""

    # --- the buyer -------------------------------------------------------------------

    async def ask(self, seller: bytes, query: AggregateQuery, *, max_price: int) -> Answer:
        """Ask ``seller`` a question, then buy its answer; MarketError if it refuses."""
        waiting = self.community.open_request(PendingAnswer(self.community, seller, self.timeout + 1.0))
        try:
            self.community.send_to(seller, QueryMessage(waiting.number, query.encode(), max_price))
            await wait_within(asyncio.shield(waiting.done), self.timeout)
        except TimeoutError:
            raise MarketError(f"no answer from {seller.hex()[:16]} in {self.timeout} s") from None
        finally:
            self.community.close_request(waiting)
        reply = waiting.reply
        assert reply is not None  # done without an error: receive_answer set it
        if not reply.listing_id:
            raise MarketError(f"the seller refused the question: {reply.reason}")
        market = self._market_service.market
        listing = await market.book.wait_for_listing(reply.listing_id, self.timeout)
        if listing.seller != seller or listing.descriptor.get("query") != query.query_id:
            raise MarketError("the seller answered with a listing that is not the answer to our question")
        if listing.price > max_price:
            raise MarketError(f"the answer costs {listing.price}, more than {max_price}")
        return Answer(query, await self._market_service.buy(reply.listing_id))

    def receive_answer(self, seller: bytes | None, payload: AnswerMessage) -> None:
        """Hand a seller's reply to the question waiting for it (from that seller only)."""
        waiting = self.community.find_request(PendingAnswer, payload.identifier)
        if waiting is not None and waiting.seller == seller and not waiting.done.done():
            waiting.reply = payload
            waiting.done.set_result(None)
