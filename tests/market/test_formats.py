"""Market formats, the order book's search, negotiation rules and matching, without a network."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enerdatx.crypto import Identity
from enerdatx.errors import EncodingError, MarketError, NegotiationError
from enerdatx.market.desk import NegotiationDesk, RequestBoard
from enerdatx.market.formats import (
    commitment,
    complaint_transaction,
    listing_transaction,
    parse_payment,
    payment_transaction,
    split_opening,
    validate_descriptor,
)
from enerdatx.market.negotiation import (
    MAX_ROUNDS,
    REQUEST_CONTEXT,
    BuyerStrategy,
    Negotiation,
    SellerStrategy,
    StandingRequest,
    Step,
    decode_step,
    encode_step,
    match_requests,
)
from enerdatx.market.orderbook import OrderBook, Query
from tests.support.market import DESCRIPTOR, readings_bytes


@pytest.mark.parametrize(
    "descriptor",
    [
        [("kind", "gas")],
        {"mean": 1.5},
        {"": "x"},
        {"k" * 65: "x"},
        {"note": "x" * 257},
        {"tags": list(range(17))},
        {"nested": {"a": 1}},
        {f"k{i}": i for i in range(33)},
    ],
)
def test_bad_descriptors_are_refused(descriptor):
    with pytest.raises(EncodingError):
        validate_descriptor(descriptor)


@pytest.mark.parametrize(
    ("field", "value"),
    [("price", 0), ("price", True), ("price", 2**53), ("cid", ""), ("cid", "é"), ("commitment", b"short"),
     ("expires", 0), ("expires", "soon")],
)
def test_bad_listing_fields_are_refused(field, value):
    fields = dict(descriptor=DESCRIPTOR, price=10, cid="Qm", commitment_=bytes(32), expires=None)
    fields["commitment_" if field == "commitment" else field] = value
    with pytest.raises(EncodingError):
        listing_transaction(**fields)


def test_payments_and_complaints_check_their_fields():
    with pytest.raises(EncodingError):
        payment_transaction(bytes(31), 5)
    with pytest.raises(EncodingError):
        payment_transaction(bytes(32), 0)
    with pytest.raises(EncodingError):
        parse_payment({"v": 2, "listing": bytes(32), "amount": 5})
    with pytest.raises(EncodingError):
        parse_payment({"v": 1, "listing": bytes(32), "amount": 5, "negotiation": 7})
    with pytest.raises(EncodingError):
        complaint_transaction(bytes(32), bytes(32), bytes(32), "i_dont_like_it", None)
    with pytest.raises(EncodingError):
        split_opening(bytes(63))
    with pytest.raises(ValueError):
        commitment(bytes(31), b"")


def test_search_by_descriptor_and_as_a_dataframe(town):
    seller = town.add()
    january = seller.sell(readings_bytes(1), DESCRIPTOR, 20)
    gas = seller.sell(readings_bytes(2), {**DESCRIPTOR, "kind": "electricity+gas", "location": "2611"}, 10)
    hourly = seller.sell(readings_bytes(3), {**DESCRIPTOR, "resolution_seconds": 3600, "location": "1011"}, 5)
    march = seller.sell(readings_bytes(4), {**DESCRIPTOR, "start": "2026-03-01T00:00:00Z",
                                            "end": "2026-03-02T00:00:00Z"}, 15)
    book = seller.book
    assert book.search() == [hourly, gas, march, january]  # cheapest first
    assert book.search(kind="gas") == [gas]
    assert book.search(kind="electricity") == [hourly, gas, march, january]
    assert book.search(area="26") == [gas, march, january]
    assert book.search(resolution="1h") == [hourly] == book.search(resolution=3600)
    assert book.search(start="2026-02-15", end="2026-03-15") == [march]
    assert book.search(start="2026-01-01T12:00:00Z", end="2026-01-01T13:00") == [hourly, gas, january]
    assert book.search(max_price=12, area="2") == [gas]
    frame = book.dataframe(area="26")
    assert list(frame["listing_id"]) == [gas.listing_id, march.listing_id, january.listing_id]
    assert frame["price"].tolist() == [10, 15, 20] and set(frame["status"]) == {"live"}
    assert str(frame["start"].dtype).startswith("datetime64") and frame["n_readings"].tolist() == [96] * 3
    with pytest.raises(MarketError):
        book.search(start="not a date")
    with pytest.raises(MarketError):
        Query(start="2026-02-01", end="2026-01-01")


@pytest.mark.parametrize("resolution", ["0s", "-15min", 7, 0, True, "1.5s", 1.0, 10**30])
def test_a_query_resolution_no_data_set_can_have_is_refused(resolution) -> None:
    # They were taken: "1.5s" as 1 (matching 1-second data), true as 1, the rest matched nothing.
    with pytest.raises(MarketError, match="resolution"):
        Query(resolution=resolution, max_price=5)
    assert Query(resolution="15min").resolution_seconds == Query(resolution=900).resolution_seconds == 900


@pytest.mark.parametrize("when", ["", "NaT", "1011-01-01"])
def test_a_query_time_that_is_no_time_is_refused(when: str) -> None:
    # "" and "NaT" compared false with everything: the query silently matched nothing.
    with pytest.raises(MarketError, match="is not a date or time from 1677-09-22 to 2262-04-11"):
        Query(start=when)
    with pytest.raises(MarketError, match="end"):
        Query(end=when)


def test_a_relayed_standing_request_for_no_resolution_is_refused() -> None:
    # A buyer's peer signs what it likes: a request asking resolution true decoded, and matched 1-second data.
    import dataclasses

    identity = Identity.generate()
    query = object.__new__(Query)  # past Query's own check, as a hostile peer's code would be
    for field in dataclasses.fields(Query):
        object.__setattr__(query, field.name, {"resolution": True, "max_price": 5}.get(field.name))
    unsigned = StandingRequest("00" * 16, identity.public_key, query, 1, None)
    forged = dataclasses.replace(unsigned, signature=identity.sign(REQUEST_CONTEXT + unsigned.body()))
    with pytest.raises(EncodingError, match="bad standing request: resolution True"):
        StandingRequest.decode(forged.encode())


def test_same_price_listings_are_ordered_oldest_first(town):
    seller = town.add()
    first = seller.sell(readings_bytes(1), DESCRIPTOR, 10)
    town.clock_ms += 1
    second = seller.sell(readings_bytes(2), DESCRIPTOR, 10)
    assert seller.book.search() == [first, second]


def _listing(town):
    return town.add().sell(readings_bytes(), DESCRIPTOR, 100)


def test_negotiation_turns_and_terms(town):
    listing = _listing(town)
    buyer = b"b" * 32
    n = Negotiation.new(listing, buyer)
    with pytest.raises(NegotiationError, match="starts with"):
        n.apply(listing.seller, n.step("counter", 90))
    with pytest.raises(NegotiationError, match="only the buyer proposes"):
        n.apply(listing.seller, n.step("propose", 90))
    n.apply(buyer, n.step("propose", 50))
    with pytest.raises(NegotiationError, match="other party's turn"):
        n.apply(buyer, n.step("counter", 60))
    with pytest.raises(NegotiationError, match="only the buyer and the seller"):
        n.apply(b"x" * 32, n.step("accept", 50))
    with pytest.raises(NegotiationError, match="offer is 50"):
        n.apply(listing.seller, n.step("accept", 40))
    n.apply(listing.seller, n.step("counter", 80))
    n.apply(buyer, n.step("accept", 80))
    assert (n.state, n.offer) == ("accepted", 80)
    with pytest.raises(NegotiationError, match="accepted already"):
        n.apply(listing.seller, n.step("decline", reason="busy"))


def test_negotiation_rounds_are_bounded(town):
    listing = _listing(town)
    buyer = b"b" * 32
    n = Negotiation.new(listing, buyer)
    parties = [buyer, listing.seller]
    for i in range(MAX_ROUNDS):
        n.apply(parties[i % 2], n.step("propose" if i == 0 else "counter", 10 + i))
    with pytest.raises(NegotiationError, match="rounds"):
        n.apply(parties[MAX_ROUNDS % 2], n.step("counter", 99))


def test_strategies_converge_or_decline_within_the_bounds(town):
    listing = _listing(town)
    buyer = b"b" * 32
    for max_price, expected in ((85, "accepted"), (30, "declined")):
        n = Negotiation.new(listing, buyer)
        n.apply(buyer, n.step("propose", 20))
        seller, shopper = SellerStrategy(floor=0.8), BuyerStrategy(max_price)
        while n.state == "open":
            mover = listing.seller if n.offered_by == buyer else buyer
            step = seller.respond(n, listing, "live") if mover == listing.seller else shopper.respond(n)
            n.apply(mover, step)
        assert n.state == expected
        if expected == "accepted":
            assert 80 <= n.offer <= 85
    n = Negotiation.new(listing, buyer)
    n.apply(buyer, n.step("propose", 100))
    assert SellerStrategy().respond(n, listing, "withdrawn").reason == "listing_withdrawn"


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff", b"\xa0", encode_step(Step("00" * 16, bytes(32), "accept", 5))[:-1]],
)
def test_malformed_steps_are_refused(data):
    with pytest.raises(EncodingError):
        decode_step(data)


@pytest.mark.parametrize(
    "fields",
    [dict(step="haggle", price=5), dict(step="accept"), dict(step="decline", reason=None),
     dict(step="counter", price=5, reason="cheap"), dict(step="propose", price=0)],
)
def test_ill_formed_steps_cannot_be_built(fields):
    with pytest.raises(EncodingError):
        Step("00" * 16, bytes(32), **fields)


def test_matching_requests_cheapest_then_oldest_and_never_own_listings(town):
    seller, buyer = town.add(), town.add()
    dear = seller.sell(readings_bytes(1), DESCRIPTOR, 20)
    cheap = seller.sell(readings_bytes(2), DESCRIPTOR, 8)
    own = buyer.sell(readings_bytes(3), DESCRIPTOR, 1)
    identity = buyer.ledger.identity
    early = StandingRequest.create(identity, Query(area="26", max_price=20), created=1)
    late = StandingRequest.create(identity, Query(max_price=10), created=2)
    expired = StandingRequest.create(identity, Query(max_price=99), created=0, expires=town.clock_ms)
    pairs = match_requests([late, expired, early], buyer.book.search(), town.clock_ms)
    assert [(r.request_id, x.listing_id) for r, x in pairs] == [
        (early.request_id, cheap.listing_id), (early.request_id, dear.listing_id),
        (late.request_id, cheap.listing_id),
    ]
    assert own.listing_id not in {x.listing_id for _, x in pairs}
    with pytest.raises(NegotiationError):
        StandingRequest.create(Identity.generate(), Query(kind="gas"), created=0)


def test_a_relayed_request_with_a_bad_query_is_refused_as_malformed():
    identity = Identity.generate()
    request = StandingRequest.create(identity, Query(max_price=5), created=1)
    bad = StandingRequest(request.request_id, request.buyer, Query(max_price=5), 1, None)
    object.__setattr__(bad.query, "start", "not a date")  # what a malicious relay could sign and send
    forged = StandingRequest(bad.request_id, bad.buyer, bad.query, 1, None,
                             identity.sign(b"enerdatx:request:v1\n" + bad.body()))
    with pytest.raises(EncodingError, match="bad standing request"):
        StandingRequest.decode(forged.encode())


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), st.text(max_size=40))
_descriptors = st.dictionaries(
    st.text(min_size=1, max_size=20), st.one_of(_scalars, st.lists(_scalars, max_size=5)), max_size=10
)


@settings(max_examples=60, deadline=None)
@given(descriptor=_descriptors, price=st.integers(1, 2**53 - 1), expires=st.one_of(st.none(), st.integers(1, 2**62)))
def test_any_valid_listing_survives_signing_encoding_and_decoding(descriptor, price, expires):
    from enerdatx.market.formats import LISTING, parse_listing
    from enerdatx.trustchain import GENESIS_HASH, NO_COUNTERPARTY, HalfBlock

    tx = listing_transaction(descriptor, price, "bafkreigh2akiscaildc", bytes(32), expires)
    block = HalfBlock.create(Identity.from_seed(bytes(32)), sequence_number=1, previous_hash=GENESIS_HASH,
                             link_public_key=NO_COUNTERPARTY, link_sequence_number=0, block_type=LISTING,
                             transaction=tx, timestamp=1)
    listing = parse_listing(HalfBlock.decode(block.encode()))
    assert (listing.descriptor, listing.price, listing.expires) == (descriptor, price, expires)
    assert listing.listing_id == block.hash.hex()


@pytest.mark.parametrize("expires_in", ["5", b"5", [], True, 0, -1, 1.5, 2**63])
def test_a_standing_request_that_expires_in_no_milliseconds_is_refused_and_not_posted(expires_in):
    published = []
    board = RequestBoard(Identity.generate(), clock=lambda: 1_780_000_000_000, publish=published.append)
    with pytest.raises(MarketError, match="expires_in is a positive number of milliseconds"):
        board.post(Query(max_price=5), expires_in=expires_in)
    assert board.requests == {} and published == []
    assert board.post(Query(max_price=5), expires_in=60_000).expires == 1_780_000_060_000


@pytest.mark.parametrize("own_only", ["no", 1, None])
def test_matches_own_only_is_a_bool(own_only):
    board = RequestBoard(Identity.generate(), clock=lambda: 1, publish=lambda _data: None)
    with pytest.raises(MarketError, match="own_only is True"):
        board.matches([], own_only=own_only)


async def test_an_offer_no_payment_can_carry_is_refused_before_a_negotiation_is_opened(town):
    seller, buyer = town.add(), town.add()
    listing = seller.sell(readings_bytes(1), DESCRIPTOR, 10)
    sent = []
    desk = NegotiationDesk(buyer.public_key, buyer.book, send=lambda to, step: sent.append(step))
    with pytest.raises(NegotiationError, match="at most 2\\*\\*53-1 tokens"):
        await desk.negotiate(listing.listing_id, 2**53, 2**60, timeout=0.1)
    assert desk.negotiations == {} and desk._waiting == {} and sent == []


@pytest.mark.parametrize("timeout", [float("nan"), -1, "5", True, float("inf")])
async def test_waiting_on_the_order_book_takes_a_finite_timeout(timeout):
    # NaN hung for ever on a listing that never came, and "5" was a TypeError from the loop's clock.
    book = OrderBook(clock=lambda: 1)
    with pytest.raises(MarketError, match="timeout is a finite number of seconds, 0 or more"):
        await asyncio.wait_for(book.wait_for_listing("ab" * 32, timeout), 2)
    with pytest.raises(TimeoutError):
        await book.wait_for_listing("ab" * 32, 0)
