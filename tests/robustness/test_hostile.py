"""Hostile peers: floods, oversized and malformed packets, replays, aggressive crawls, lying sellers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nacl.utils
import pytest

from enerdatx.bench.scenarios import dataset, flood, market_lab
from enerdatx.crypto import encrypt_data, new_data_key
from enerdatx.errors import DataVerificationError
from enerdatx.market.formats import LISTING, SALT_SIZE, commitment, listing_transaction, make_opening, parse_listing
from enerdatx.market.payload import RecordMessage
from enerdatx.trustchain.payload import CrawlRequestMessage, ProposalMessage


async def test_flooded_seller_keeps_serving_with_bounded_memory(tmp_path: Path) -> None:
    figures = await flood(tmp_path, packets=6000, seed=21, limits={"rate_per_second": 50, "rate_burst": 50})
    assert figures["flood_honest_trade_completed"]
    assert figures["flood_peak_heap_mib"] < 32  # 6,000 packets of up to 70 kB: nothing is kept
    assert figures["flood_dropped_trustchain"] > 0 and figures["flood_dropped_market"] > 0
    assert figures["flood_seller_blocks"] == 3  # its listing and one countersigned pair: nothing for the flooder


async def test_replayed_proposal_is_answered_never_signed_again(tmp_path: Path) -> None:
    async with market_lab(tmp_path) as lab:
        seller, buyer = await lab.start(2)
        listing = seller.market.sell(dataset(1), price=10)
        await buyer.market.book.wait_for_listing(listing.listing_id)
        trade = await buyer.market.buy(listing.listing_id)
        chain, balance = seller.store.chain(seller.public_key), seller.market.balance()
        peer = buyer.community.peer_for(seller.public_key)
        replays_before = seller.community.drops["replay"]
        for _ in range(50):
            buyer.community.send(peer, ProposalMessage(trade.proposal.encode(), []))
        await seller.community.wait_for_drops(replays_before + 50, "replay")  # each answered from the store
        assert seller.store.chain(seller.public_key) == chain
        assert seller.market.balance() == balance


async def test_aggressive_crawler_is_rate_limited_and_honest_crawls_still_work(tmp_path: Path) -> None:
    async with market_lab(tmp_path, settings={"rate_per_second": 50, "rate_burst": 50}) as lab:
        seller, crawler, honest = await lab.start(3)
        for i in range(5):
            seller.market.sell(dataset(i), price=5)
        peer = crawler.community.peer_for(seller.public_key)
        sent_before = seller.community.packets_sent
        for i in range(2000):
            crawler.community.send(peer, CrawlRequestMessage(i, seller.public_key, 1, 0))
        await seller.community.wait_for_drops(1900)  # fails after 10 s unless the limit drops them
        answered = seller.community.packets_sent - sent_before
        assert seller.community.packets_dropped >= 1900 and answered <= 100
        blocks = await honest.community.crawl(seller.public_key)
        assert [b.sequence_number for b in blocks] == [1, 2, 3, 4, 5]


async def test_oversized_and_malformed_market_packets_are_dropped(tmp_path: Path) -> None:
    async with market_lab(tmp_path) as lab:
        seller, hostile = await lab.start(2)
        market = seller.market.community
        prefix = market._prefix
        for junk in (prefix + b"\x01", prefix + b"\x03\xff", prefix + b"\x09" + bytes(40)):
            hostile.ipv8.endpoint.send(seller.address, junk)
        hostile.ipv8.endpoint.send(seller.address, prefix + b"\x01" + bytes(70_000))
        await market.wait_for_drops(1)  # the oversized one, delivered after the junk (in order)
        assert market.packets_dropped == 1  # the junk failed to decode, harmlessly
        assert seller.store.count() == 0


async def lying_listing(seller: object, *, listed: bytes, served: bytes, descriptor: dict) -> object:
    """A listing whose commitment is to ``listed`` while its ciphertext holds ``served``."""
    market = seller.market.market
    key, salt = new_data_key(), nacl.utils.random(SALT_SIZE)
    committed = commitment(salt, listed)
    cid = market.content.add_bytes(encrypt_data(key, served))
    market.keyring.put_listing_secret(committed, make_opening(key, salt))
    return parse_listing(seller.ledger.record(LISTING, listing_transaction(descriptor, 10, cid, committed, None)))


async def test_seller_lying_about_its_data_is_caught_by_the_commitment(tmp_path: Path) -> None:
    async with market_lab(tmp_path) as lab:
        seller, buyer, bystander = await lab.start(3)
        honest, other = dataset(1), dataset(2)
        listing = await lying_listing(seller, listed=honest.plaintext, served=other.plaintext,
                                      descriptor=honest.descriptor)
        await buyer.market.book.wait_for_listing(listing.listing_id)
        with pytest.raises(DataVerificationError) as caught:
            await buyer.market.buy(listing.listing_id)
        complaint = caught.value.complaint
        assert complaint.transaction["reason"] == "commitment_mismatch"
        assert buyer.market.purchases() == []
        book = bystander.market.book
        await book.wait_for(lambda b: b.complaints_against(seller.public_key) == 1, timeout=5)


async def test_seller_serving_other_bytes_than_the_cid_is_refused(tmp_path: Path) -> None:
    async with market_lab(tmp_path, fetch_timeout=2.0) as lab:
        seller, buyer = await lab.start(2)
        listing = seller.market.sell(dataset(3), price=10)
        seller.market.ciphertext = lambda cid: b"not the listed ciphertext"  # the liar's server
        await buyer.market.book.wait_for_listing(listing.listing_id)
        with pytest.raises(DataVerificationError) as caught:
            await buyer.market.buy(listing.listing_id)
        assert caught.value.complaint.transaction["reason"] == "ciphertext_unavailable"
        assert not buyer.market.market.content.has(listing.cid)


async def test_forged_listing_of_another_seller_is_not_accepted(tmp_path: Path) -> None:
    async with market_lab(tmp_path) as lab:
        seller, forger, buyer = await lab.start(3)
        listing = seller.market.sell(dataset(4), price=10)
        await buyer.market.book.wait_for_listing(listing.listing_id)
        block = seller.store.get_by_hash(listing.block_hash)
        forged = dataclasses.replace(block, transaction={**block.transaction, "price": 1})
        forger.market.community.broadcast(RecordMessage(forged.encode()))
        await buyer.market.community.wait_for_drops(1, "invalid_record")  # the forged copy fails the signature check
        assert [x.price for x in buyer.market.search()] == [10]
        assert buyer.store.get_by_hash(forged.hash) is None
