"""The market on real peers: IPv8 in memory, embedded content stores, TrustChain communities."""

from __future__ import annotations

import asyncio

import pytest

from enerdatx.errors import NegotiationError
from enerdatx.lab import Lab
from enerdatx.market import Query
from enerdatx.market.negotiation import SellerStrategy
from tests.support.market import DESCRIPTOR, DataSet, readings_bytes


@pytest.fixture
async def market_peers(tmp_path):
    lab = Lab(tmp_path, "memory", market=True, progress=False, durable=False)
    async with lab:
        peers = await lab.start(4)
        yield [peer.market for peer in peers]


async def test_a_listing_spreads_and_is_bought_across_the_network(market_peers):
    seller, buyer, other, late = market_peers
    plaintext = readings_bytes(21)
    listing = seller.sell(DataSet(plaintext, DESCRIPTOR), 40)
    await buyer.market.book.wait_for_listing(listing.listing_id)

    trade = await buyer.buy(listing.listing_id)

    assert trade.plaintext == plaintext
    assert buyer.market.balance().available == 960
    await other.market.book.wait_for_listing(listing.listing_id)
    assert seller.market.balance().available == 1040
    # The buyer's copy came over the market community and was added to its own store.
    assert buyer.market.content.has(listing.cid)


async def test_a_newcomer_learns_listings_and_withdrawals_by_asking(tmp_path):
    lab = Lab(tmp_path, "memory", market=True, progress=False, durable=False)
    async with lab:
        [seller_peer] = await lab.start(1)
        seller = seller_peer.market
        kept = seller.sell(DataSet(readings_bytes(22), DESCRIPTOR), 10)
        gone = seller.sell(DataSet(readings_bytes(23), DESCRIPTOR), 10)
        seller.market.withdraw(gone.listing_id)
        peers = await lab.start(1)
        newcomer = peers[1].market
        await newcomer.market.book.wait_for(
            lambda book: len(book) == 2 and book.search(include_unavailable=False) == [kept]
        )
        frame = newcomer.market.book.dataframe()
        assert sorted(frame["status"]) == ["live", "withdrawn"]


async def test_negotiation_agrees_on_a_price_and_the_payment_settles_at_it(market_peers):
    seller, buyer, *_ = market_peers
    listing = seller.sell(DataSet(readings_bytes(24), DESCRIPTOR), 100)
    await buyer.market.book.wait_for_listing(listing.listing_id)

    negotiation = await buyer.negotiate(listing.listing_id, offer=50, max_price=90)
    assert negotiation.state == "accepted"
    assert 80 <= negotiation.offer <= 90
    steps = [step.step for _, step in negotiation.history]
    assert steps[0] == "propose" and steps[-1] == "accept" and "counter" in steps

    trade = await buyer.buy(listing.listing_id, amount=negotiation.offer, negotiation=negotiation.negotiation)
    assert trade.amount == negotiation.offer
    assert seller.market.balance().available == 1000 + negotiation.offer


async def test_a_seller_declines_with_a_reason(market_peers):
    seller, buyer, *_ = market_peers
    seller.seller_strategy = SellerStrategy(floor=1.0)
    listing = seller.sell(DataSet(readings_bytes(25), DESCRIPTOR), 100)
    await buyer.market.book.wait_for_listing(listing.listing_id)
    too_cheap = await buyer.negotiate(listing.listing_id, offer=10, max_price=20)
    decliner, last = too_cheap.history[-1]
    assert too_cheap.state == "declined" and last.step == "decline"
    # Whoever runs out of rounds first says why: the seller's floor or the buyer's ceiling.
    assert too_cheap.reason == {seller.public_key: "price_too_low", buyer.public_key: "too_expensive"}[decliner]
    assert all(step.price <= 20 for who, step in too_cheap.history if who == buyer.public_key and step.price)

    seller.market.withdraw(listing.listing_id)
    declined = await buyer.negotiate(listing.listing_id, offer=100, max_price=100)
    assert (declined.state, declined.reason) == ("declined", "listing_withdrawn")
    with pytest.raises(NegotiationError):
        await buyer.negotiate_and_buy(listing.listing_id, 100, 100)


async def test_standing_requests_spread_and_are_filled_cheapest_first(market_peers):
    seller_a, seller_b, buyer, watcher = market_peers
    dear = seller_a.sell(DataSet(readings_bytes(26), DESCRIPTOR), 18)
    cheap = seller_b.sell(DataSet(readings_bytes(27), DESCRIPTOR), 12)
    too_dear = seller_b.sell(DataSet(readings_bytes(28), DESCRIPTOR), 25)
    elsewhere = seller_a.sell(DataSet(readings_bytes(29), {**DESCRIPTOR, "location": "1011"}), 5)
    await buyer.market.book.wait_for(lambda book: len(book) == 4)

    request = buyer.post_request(Query(kind="electricity", area="2628", start="2026-01-01", end="2026-02-01",
                                       resolution="15min", max_price=20))
    await watcher.market.book.wait_for(lambda book: len(book) == 4)
    pairs = [(r.request_id, listing.listing_id) for r, listing in buyer.matches()]
    assert pairs == [(request.request_id, cheap.listing_id), (request.request_id, dear.listing_id)]
    assert too_dear.listing_id not in dict(pairs).values() and elsewhere.listing_id not in dict(pairs).values()

    trades = await buyer.fill_requests()
    assert [t.listing.listing_id for t in trades] == [cheap.listing_id]


async def test_a_seller_restarted_from_its_directory_still_sells_its_listings(tmp_path):
    lab = Lab(tmp_path, "memory", market=True, progress=False, durable=True)
    async with lab:
        peers = await lab.start(2)
        seller, buyer = (peer.market for peer in peers)
        plaintext = readings_bytes(31)
        listing = seller.sell(DataSet(plaintext, DESCRIPTOR), 20)
        await buyer.market.book.wait_for_listing(listing.listing_id)

        restarted = (await lab.restart(0)).market
        assert restarted.market.book.get(listing.listing_id) == listing  # rebuilt from the chain
        trade = await buyer.buy(listing.listing_id)
        assert trade.plaintext == plaintext  # the key survived in market.sqlite
        assert restarted.market.balance().available == 1020


async def test_a_seller_serves_only_the_ciphertexts_of_its_own_listings(market_peers):
    from enerdatx.errors import MarketError

    seller, buyer, *_ = market_peers
    private = seller.market.content.add_bytes(b"the seller's own notes")
    with pytest.raises(MarketError, match="does not serve"):
        await buyer.community.fetch(seller.public_key, private)
    listing = seller.sell(DataSet(readings_bytes(32) * 60, DESCRIPTOR), 20)  # several chunks
    ciphertext = await buyer.community.fetch(seller.public_key, listing.cid)
    assert ciphertext == seller.market.content.cat(listing.cid) and len(ciphertext) > 3 * 16 * 1024


async def test_a_double_spend_over_the_network_is_proven_and_the_forker_shut_out(market_peers):
    import asyncio
    import contextlib

    from enerdatx.errors import EnerDatXError, FraudDetectedError, ListingUnavailableError, TransactionRejectedError
    from enerdatx.market import PAYMENT
    from enerdatx.market.formats import payment_transaction
    from enerdatx.trustchain import BlockStore, TrustChain
    from enerdatx.trustchain.payload import ProposalMessage

    seller_a, seller_b, forker, seller_c = market_peers
    a = seller_a.sell(DataSet(readings_bytes(33), DESCRIPTOR), 900)
    b = seller_b.sell(DataSet(readings_bytes(34), DESCRIPTOR), 900)
    c = seller_c.sell(DataSet(readings_bytes(35), DESCRIPTOR), 10)
    own = forker.sell(DataSet(readings_bytes(36), DESCRIPTOR), 10)
    await forker.market.book.wait_for(lambda book: len(book) == 4)
    await seller_c.market.book.wait_for(lambda book: len(book) == 4)
    proven = asyncio.get_running_loop().create_future()
    seller_c.peer.ledger.on_fraud(lambda proof: proven.done() or proven.set_result(proof))

    # The forker signs a second payment at the same height from a copy of its chain and sends
    # both at once, before gossip could tell either seller about the other.
    twin = TrustChain(forker.peer.identity, BlockStore(":memory:"))
    twin.receive_many(forker.peer.store.chain(forker.public_key))
    second = twin.propose(seller_b.public_key, PAYMENT, payment_transaction(b.block_hash, 900))
    first_trade = asyncio.ensure_future(forker.buy(a.listing_id))
    forker.peer.community.send(forker.peer.community.peer_for(seller_b.public_key), ProposalMessage(second.encode(), []))
    with contextlib.suppress(EnerDatXError):  # the first seller may hear of the fork in time, or not
        await first_trade

    proof = await asyncio.wait_for(proven, 10)
    assert proof.public_key == forker.public_key and proof.verify()
    with pytest.raises((FraudDetectedError, TransactionRejectedError)):
        await forker.buy(c.listing_id)
    await seller_c.market.book.wait_for(lambda book: book.status(book.get(own.listing_id)) == "fraudulent_seller")
    with pytest.raises(ListingUnavailableError):
        await seller_c.buy(own.listing_id)


async def test_a_late_double_spend_is_proven_by_the_seller_it_is_sent_to(market_peers):
    import asyncio

    from enerdatx.market import PAYMENT
    from enerdatx.market.formats import payment_transaction
    from enerdatx.trustchain import BlockStore, TrustChain
    from enerdatx.trustchain.payload import ProposalMessage

    seller_a, seller_b, forker, _ = market_peers
    a = seller_a.sell(DataSet(readings_bytes(37), DESCRIPTOR), 900)
    b = seller_b.sell(DataSet(readings_bytes(38), DESCRIPTOR), 900)
    await forker.market.book.wait_for(lambda book: len(book) == 2)
    twin = TrustChain(forker.peer.identity, BlockStore(":memory:"))
    twin.receive_many(forker.peer.store.chain(forker.public_key))
    gossiped = asyncio.get_running_loop().create_future()
    seller_b.peer.ledger.subscribe(lambda block: gossiped.done() or block.type != PAYMENT or gossiped.set_result(block))
    trade = await forker.buy(a.listing_id)
    await asyncio.wait_for(gossiped, 5)  # seller B holds the first payment (one half or both)
    assert seller_b.peer.store.get(forker.public_key, trade.proposal.sequence_number) is not None
    proven = asyncio.get_running_loop().create_future()
    seller_b.peer.ledger.on_fraud(lambda proof: proven.done() or proven.set_result(proof))

    second = twin.propose(seller_b.public_key, PAYMENT, payment_transaction(b.block_hash, 900))
    forker.peer.community.send(forker.peer.community.peer_for(seller_b.public_key), ProposalMessage(second.encode(), []))
    await asyncio.wait_for(proven, 3)


def sent_to(service, address, message_id: int) -> list[bytes]:
    """Every market packet of ``message_id`` that ``service``'s peer sends to ``address`` from now on."""
    endpoint = service.peer.ipv8.endpoint
    prefix, send, packets = service.community._prefix, endpoint.send, []

    def watched(to, packet):
        if to == address and packet[:22] == prefix and packet[22] == message_id:
            packets.append(packet)
        return send(to, packet)

    endpoint.send = watched
    return packets


class TestAnswerBudgets:
    """A fetch or listings request's address can be forged: what one address gets back is bounded."""

    async def test_many_fetch_requests_from_one_address_get_bounded_bytes_back(self, market_peers):
        # Each ~100-byte request for chunk 0 bought every chunk of the ciphertext (14, ~220 KB here)
        # for its address, however many came: 50 of them sent 11 MB to whoever the address named.
        from enerdatx.market.payload import FetchRequestMessage, FetchResponseMessage
        from enerdatx.overlay import AnswerBudget

        seller, buyer, *_ = market_peers
        seller.community.fetch_answers = AnswerBudget(rate=0.0, burst=40_000)
        listing = seller.sell(DataSet(readings_bytes(33) * 60, DESCRIPTOR), 20)
        answers = sent_to(seller, buyer.peer.address, FetchResponseMessage.msg_id)
        peer = buyer.peer_for(seller.public_key)
        for identifier in range(50):
            buyer.community.send_packet(peer, FetchRequestMessage(identifier, listing.cid, 0))
        await seller.community.wait_for_drops(50, "fetch_budget")  # 49 requests, and the answer cut short
        chunk = max(map(len, answers))
        assert chunk > 16 * 1024 and 1 < len(answers) < 4
        assert sum(map(len, answers)) <= 40_000 + chunk  # the burst, and the chunk that spent it

    async def test_a_ciphertext_beyond_the_burst_is_fetched_as_the_budget_refills(self, market_peers):
        from enerdatx.overlay import AnswerBudget

        seller, buyer, *_ = market_peers
        seller.community.fetch_answers = AnswerBudget(rate=200_000.0, burst=20_000)  # about one chunk
        listing = seller.sell(DataSet(readings_bytes(34) * 15, DESCRIPTOR), 20)  # four chunks
        ciphertext = await buyer.community.fetch(seller.public_key, listing.cid)
        assert ciphertext == seller.market.content.cat(listing.cid)
        assert seller.community.drops["fetch_budget"] > 0  # the first answer stopped; the buyer asked again

    async def test_a_fetch_longer_than_its_timeout_goes_on_while_chunks_come(self, market_peers):
        # The timeout was for the whole fetch: with the default budget a ciphertext beyond some
        # 25 MiB (the format allows 64) came slower than fetch_timeout and every purchase failed.
        from enerdatx.overlay import AnswerBudget

        seller, buyer, *_ = market_peers
        seller.community.fetch_answers = AnswerBudget(rate=40_000.0, burst=20_000)  # a chunk every 0.4 s
        buyer.community.settings.fetch_timeout = 0.6
        listing = seller.sell(DataSet(readings_bytes(35) * 15, DESCRIPTOR), 20)  # four chunks: over 1 s
        ciphertext = await buyer.community.fetch(seller.public_key, listing.cid)
        assert ciphertext == seller.market.content.cat(listing.cid)

    async def test_a_fetch_with_no_chunk_for_its_timeout_gives_up(self, market_peers):
        from enerdatx.errors import MarketError
        from enerdatx.overlay import AnswerBudget

        seller, buyer, *_ = market_peers
        seller.community.fetch_answers = AnswerBudget(rate=0.0, burst=20_000)  # one chunk, then nothing
        buyer.community.settings.fetch_timeout = 0.3
        listing = seller.sell(DataSet(readings_bytes(36) * 15, DESCRIPTOR), 20)
        with pytest.raises(MarketError, match="was not served .* in time"):
            await asyncio.wait_for(buyer.community.fetch(seller.public_key, listing.cid), 5)

    async def test_many_listings_requests_from_one_address_get_bounded_bytes_back(self, market_peers):
        # Each listings request bought all our market records for its address, however many came.
        from enerdatx.market.payload import ListingsRequestMessage, RecordMessage
        from enerdatx.overlay import AnswerBudget

        seller, buyer, *_ = market_peers
        listings = [seller.sell(DataSet(readings_bytes(40 + n), DESCRIPTOR), 10) for n in range(5)]
        await buyer.market.book.wait_for(lambda book: len(book) == 5)
        seller.community.listings_answers = AnswerBudget(rate=0.0, burst=1_000)
        records = sent_to(seller, buyer.peer.address, RecordMessage.msg_id)
        peer = buyer.peer_for(seller.public_key)
        for _ in range(20):
            buyer.community.send_packet(peer, ListingsRequestMessage(1))
        await seller.community.wait_for_drops(19, "listings_budget")
        assert len(records) == len(listings)  # one answer, all of it; then nothing
        assert seller.community.drops["listings_budget"] == 19

    def test_an_answer_burst_of_no_bytes_is_refused(self):
        from enerdatx.errors import ConfigurationError
        from enerdatx.market.community import MarketSettings

        for name in ("fetch_answer_burst", "listings_answer_burst"):
            with pytest.raises(ConfigurationError, match=f"{name} must be a whole number, 1 or more"):
                MarketSettings().update(**{name: 0})


async def test_a_listing_lost_on_the_way_is_asked_for_again_by_a_buyer_waiting_for_it(tmp_path):
    # The broadcast and the first sync are each sent once: a listing whose records were all lost
    # (here: a partition while it was listed) never reached the buyer, and buy() waited in vain.
    from enerdatx.bench.faults import PROFILES, Faults

    lab = Lab(tmp_path, "memory", market=True, progress=False, durable=False)
    async with lab:
        seller_peer, buyer_peer = await lab.start(2)

        async def first_sync_over() -> None:  # else it would bring the listing after the heal
            while seller_peer.market.community.unsynced or buyer_peer.market.community.unsynced:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # its answers delivered

        await asyncio.wait_for(first_sync_over(), 10)
        faults = Faults(PROFILES["none"])
        faults.attach(seller_peer)
        faults.partition([seller_peer], [buyer_peer])
        listing = seller_peer.market.sell(DataSet(readings_bytes(24), DESCRIPTOR), 10)
        await asyncio.sleep(0.3)  # the broadcast is gone
        assert listing.listing_id not in {found.listing_id for found in buyer_peer.market.search()}
        faults.heal()

        trade = await buyer_peer.market.buy(listing.listing_id, timeout=5)

        assert trade.plaintext == readings_bytes(24)


async def test_listings_requests_signed_with_made_up_keys_are_remembered_within_a_bound(market_peers, monkeypatch):
    # Every sender's key was kept as "synced": a sender signing each request with a new key grew
    # the set by one key a packet, without bound.
    from ipv8.keyvault.crypto import default_eccrypto
    from ipv8.peer import Peer as IPv8Peer

    from enerdatx.market import community as market_community
    from enerdatx.market.payload import ListingsRequestMessage

    monkeypatch.setattr(market_community, "MAX_SYNCED_KEYS", 10)
    seller, buyer, *_ = market_peers
    sender = buyer.community
    real_peer, real_secret = sender.my_peer, sender._ed25519_secret
    sender._ed25519_secret = None  # pyipv8's own signing, with the key of my_peer
    try:
        for _ in range(30):
            sender.my_peer = IPv8Peer(default_eccrypto.generate_key("curve25519"))
            buyer.peer.ipv8.endpoint.send(seller.peer.address, sender.ezr_pack(
                ListingsRequestMessage.msg_id, ListingsRequestMessage(1)))
    finally:
        sender.my_peer, sender._ed25519_secret = real_peer, real_secret
    await asyncio.sleep(0.3)
    assert len(seller.community._synced) <= 10
