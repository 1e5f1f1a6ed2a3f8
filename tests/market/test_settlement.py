"""Selling, buying and the checks on both sides, with real ledgers handing blocks to each other."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from enerdatx.crypto import decrypt_data, seal_to
from enerdatx.errors import (
    DataVerificationError,
    EncodingError,
    InsufficientFundsError,
    ListingNotFoundError,
    ListingUnavailableError,
    MarketError,
    TransactionRejectedError,
)
from enerdatx.market import COMPLAINT, PAYMENT
from enerdatx.market.formats import make_opening, payment_transaction, split_opening
from tests.support.market import DESCRIPTOR, readings_bytes


async def test_end_to_end_trade_moves_tokens_and_delivers_the_committed_data(town):
    seller, buyer = town.add(), town.add()
    plaintext = readings_bytes(1)
    listing = seller.sell(plaintext, DESCRIPTOR, 25)
    assert buyer.book.get(listing.listing_id) == listing

    trade = await buyer.buy(listing.listing_id)

    assert trade.plaintext == plaintext
    assert trade.proposal.type == trade.agreement.type == PAYMENT
    assert trade.agreement.public_key == seller.public_key
    assert trade.agreement.link_sequence_number == trade.proposal.sequence_number
    assert buyer.balance().available == 1000 - 25
    assert seller.balance().available == 1000 + 25
    # The seller judges the buyer's balance from its own copy of the buyer's chain.
    assert seller.balance(buyer.public_key).available == 1000 - 25
    assert buyer.purchased_data(listing.listing_id) == plaintext
    assert [t["role"] for t in buyer.trades()] == ["buyer"] and buyer.trades()[0]["settled"]
    assert [t["role"] for t in seller.trades()] == ["seller"]


async def test_copying_the_cid_without_paying_yields_only_ciphertext(town):
    seller, freeloader = town.add(), town.add()
    plaintext = readings_bytes(2)
    listing = seller.sell(plaintext, DESCRIPTOR, 25)
    copied = seller.content.cat(freeloader.book.get(listing.listing_id).cid)
    assert plaintext not in copied and copied[24:] != plaintext
    assert b"enerdatx-readings" not in copied
    # Neither the listing's public fields nor a guessed key open it.
    with pytest.raises(DataVerificationError):
        decrypt_data(listing.commitment, copied)


async def test_a_tampered_ciphertext_is_detected_and_complained_about(town):
    seller, buyer = town.add(), town.add()
    listing = seller.sell(readings_bytes(3), DESCRIPTOR, 10)
    original = seller.content.cat(listing.cid)
    tampered = original[:-1] + bytes([original[-1] ^ 1])
    # The seller's store serves other bytes under the listed CID (a corrupted or lying node).
    seller.content.blocks[listing.cid] = tampered

    with pytest.raises(MarketError):
        await buyer.buy(listing.listing_id)
    complaints = [b for b in buyer.ledger.store.chain(buyer.public_key) if b.type == COMPLAINT]
    assert [c.transaction["reason"] for c in complaints] == ["ciphertext_unavailable"]
    assert buyer.purchases() == []


async def test_ciphertext_that_does_not_decrypt_is_complained_about(town):
    seller, buyer = town.add(), town.add()
    listing = seller.sell(readings_bytes(3), DESCRIPTOR, 10)
    original = seller.content.cat(listing.cid)
    tampered = original[:-1] + bytes([original[-1] ^ 1])
    buyer.content.blocks[listing.cid] = tampered  # e.g. a poisoned local cache

    with pytest.raises(DataVerificationError) as caught:
        await buyer.buy(listing.listing_id)
    complaint = caught.value.complaint
    assert complaint.type == COMPLAINT and complaint.transaction["reason"] == "ciphertext_does_not_decrypt"
    assert complaint.transaction["seller"] == seller.public_key
    assert seller.book.complaints_against(seller.public_key) == 1  # the complaint spread


async def test_a_seller_sealing_a_bad_key_is_caught_by_the_complaint(town):
    seller, buyer = town.add(), town.add()
    listing = seller.sell(readings_bytes(4), DESCRIPTOR, 10)
    honest = seller.payment_policy

    def cheating_policy(ledger, proposal):
        agreement = honest(ledger, proposal)
        # A well-formed opening of the wrong key: it seals fine but decrypts nothing.
        agreement["sealed_key"] = seal_to(proposal.public_key, make_opening(bytes(32), bytes(32)))
        return agreement

    seller.ledger.register_policy(PAYMENT, cheating_policy)
    with pytest.raises(DataVerificationError) as caught:
        await buyer.buy(listing.listing_id)
    complaint = caught.value.complaint
    assert complaint.transaction["reason"] == "ciphertext_does_not_decrypt"
    assert complaint.transaction["agreement"] == buyer.ledger.store.head(seller.public_key).hash
    assert split_opening(complaint.transaction["opening"])[0] == bytes(32)
    assert complaint.verify_signature()
    assert buyer.book.complaints_against(seller.public_key) == 1
    assert buyer.balance().available == 990  # paid: the complaint is the buyer's recourse


async def test_a_seller_sealing_garbage_or_committing_to_other_data_is_caught(town):
    seller, buyer = town.add(), town.add()
    first = seller.sell(readings_bytes(5), DESCRIPTOR, 10)
    second = seller.sell(readings_bytes(6), DESCRIPTOR, 10)
    honest = seller.payment_policy
    seller.ledger.register_policy(PAYMENT, lambda ledger, p: {**honest(ledger, p), "sealed_key": b"not a box"})
    with pytest.raises(DataVerificationError, match="key_does_not_open"):
        await buyer.buy(first.listing_id)

    def other_listings_key(ledger, proposal):
        # The opening of the first data set, sold as the second: decrypts, fails the commitment.
        opening = seller.keyring.listing_secret(first.commitment)
        return {**honest(ledger, proposal), "sealed_key": seal_to(proposal.public_key, opening)}

    seller.content.blocks[second.cid] = seller.content.blocks[first.cid]
    seller.ledger.register_policy(PAYMENT, other_listings_key)
    buyer.content.blocks.pop(first.cid, None)
    with pytest.raises(DataVerificationError, match="(commitment_mismatch|ciphertext_unavailable)"):
        await buyer.buy(second.listing_id)


async def test_an_overspend_is_refused_by_the_counterparty(town):
    seller, buyer = town.add(), town.add()
    cheap = seller.sell(readings_bytes(7), DESCRIPTOR, 600)
    dear = seller.sell(readings_bytes(8), DESCRIPTOR, 600)
    await buyer.buy(cheap.listing_id)
    # The buyer's own market refuses before signing anything ...
    with pytest.raises(InsufficientFundsError) as caught:
        await buyer.buy(dear.listing_id)
    assert (caught.value.balance, caught.value.amount) == (400, 600)
    # ... and a buyer that bypasses it is refused by the seller, who reads the buyer's chain.
    proposal = buyer.ledger.propose(seller.public_key, PAYMENT, payment_transaction(dear.block_hash, 600))
    with pytest.raises(TransactionRejectedError, match="insufficient_funds"):
        seller.ledger.countersign(proposal)
    assert seller.balance().available == 1600


async def test_a_payment_below_the_price_or_for_an_unknown_listing_is_refused(town):
    seller, buyer = town.add(), town.add()
    listing = seller.sell(readings_bytes(9), DESCRIPTOR, 50)
    low = buyer.ledger.propose(seller.public_key, PAYMENT, payment_transaction(listing.block_hash, 49))
    with pytest.raises(TransactionRejectedError, match="price_too_low"):
        seller.ledger.countersign(low)
    unknown = buyer.ledger.propose(seller.public_key, PAYMENT, payment_transaction(bytes(32), 50))
    with pytest.raises(TransactionRejectedError, match="unknown_listing"):
        seller.ledger.countersign(unknown)
    with pytest.raises(ListingNotFoundError):
        await buyer.buy("00" * 32)


async def test_withdrawn_and_expired_listings_cannot_be_bought(town):
    seller, buyer = town.add(), town.add()
    withdrawn = seller.sell(readings_bytes(10), DESCRIPTOR, 10)
    expiring = seller.sell(readings_bytes(11), DESCRIPTOR, 10, expires_in=60_000)
    seller.withdraw(withdrawn.listing_id)
    town.clock_ms += 60_000

    for listing, status in ((withdrawn, "withdrawn"), (expiring, "expired")):
        assert buyer.book.status(buyer.book.get(listing.listing_id)) == status
        with pytest.raises(ListingUnavailableError):
            await buyer.buy(listing.listing_id)
        # A buyer that has not heard yet, or ignores it, is refused by the seller's policy.
        proposal = buyer.ledger.propose(seller.public_key, PAYMENT, payment_transaction(listing.block_hash, 10))
        with pytest.raises(TransactionRejectedError, match=f"listing_{status}"):
            seller.ledger.countersign(proposal)
    assert buyer.book.search() == []
    with pytest.raises(ListingUnavailableError):
        seller.withdraw(withdrawn.listing_id)


async def test_concurrent_buyers_of_one_listing_each_get_their_own_sealed_key(town):
    seller = town.add()
    buyers = [town.add() for _ in range(4)]
    plaintext = readings_bytes(12)
    listing = seller.sell(plaintext, DESCRIPTOR, 30)

    trades = await asyncio.gather(*(b.buy(listing.listing_id) for b in buyers))

    sealed = {t.agreement.transaction["sealed_key"] for t in trades}
    assert len(sealed) == len(buyers)
    assert all(t.plaintext == plaintext for t in trades)
    # A key sealed to one buyer does not open for another.
    with pytest.raises(DataVerificationError):
        buyers[1].ledger.identity.unseal(trades[0].agreement.transaction["sealed_key"])
    assert seller.balance().available == 1000 + 4 * 30


async def test_a_double_spend_needs_a_fork_which_is_proven(town):
    from enerdatx.errors import FraudDetectedError
    from enerdatx.trustchain import BlockStore, TrustChain

    seller_a, seller_b, buyer = town.add(), town.add(), town.add()
    a = seller_a.sell(readings_bytes(13), DESCRIPTOR, 800)
    b = seller_b.sell(readings_bytes(14), DESCRIPTOR, 800)
    await buyer.buy(a.listing_id)
    # Paying B as well from the same chain is refused: B reads the payment to A on it.
    with pytest.raises(InsufficientFundsError):
        await buyer.buy(b.listing_id)
    # So the buyer rewinds a copy of its chain to before the payment and pays B from there.
    clone = TrustChain(buyer.ledger.identity, BlockStore(fsync=False), clock=town.clock)
    first = next(blk for blk in buyer.ledger.store.chain(buyer.public_key) if blk.type == PAYMENT)
    clone.receive_many(buyer.ledger.store.chain(buyer.public_key, 1, first.sequence_number - 1))
    second = clone.propose(seller_b.public_key, PAYMENT, payment_transaction(b.block_hash, 800))
    assert second.sequence_number == first.sequence_number and second.hash != first.hash
    agreement = seller_b.ledger.countersign(second)  # B has not heard of the first payment yet
    assert agreement.transaction["sealed_key"]
    # Gossip brings B the first payment: two signed blocks at one position prove the fork.
    seller_b.ledger.receive(first)
    assert seller_b.ledger.is_fraudulent(buyer.public_key)
    proof = seller_b.ledger.store.fraud_proofs(buyer.public_key)[0]
    assert proof.verify() and {proof.block_a.hash, proof.block_b.hash} == {first.hash, second.hash}
    # From now on B refuses the forker.
    third = seller_b.sell(readings_bytes(16), DESCRIPTOR, 1)
    proposal = clone.propose(seller_b.public_key, PAYMENT, payment_transaction(third.block_hash, 1))
    with pytest.raises(FraudDetectedError):
        seller_b.ledger.countersign(proposal)


def test_bad_listings_are_refused_without_partial_state(town):
    seller = town.add()
    before = seller.ledger.store.count()
    for price in (0, -1, 2**60, 1.5):
        with pytest.raises(MarketError):
            seller.sell(readings_bytes(), DESCRIPTOR, price)
    with pytest.raises(MarketError):
        seller.sell(readings_bytes(), {**DESCRIPTOR, "mean": 1.5}, 10)
    with pytest.raises(MarketError):
        seller.sell(readings_bytes(), DESCRIPTOR, 10, expires_in=0)
    # An expiry past 64 bits failed the block's encoding (an EncodingError naming no field) after the
    # ciphertext and its key were stored.
    for expires_in in (10**30, 2**63):
        with pytest.raises(MarketError, match="expires_in is a positive number of milliseconds, at most 2"):
            seller.sell(readings_bytes(), DESCRIPTOR, 10, expires_in=expires_in)
    assert seller.ledger.store.count() == before
    assert seller.content.blocks == {}


def test_a_listing_is_a_signed_block_with_a_salted_commitment(town):
    seller = town.add()
    plaintext = readings_bytes(15)
    one = seller.sell(plaintext, DESCRIPTOR, 10)
    two = seller.sell(plaintext, DESCRIPTOR, 10)
    # Same data, different salts: the commitment does not reveal equality (nor the data).
    assert one.commitment != two.commitment
    block = seller.ledger.store.get_by_hash(one.block_hash)
    assert block.verify_signature() and block.is_record
    assert dataclasses.asdict(one)["descriptor"] == DESCRIPTOR


async def test_income_counts_only_with_the_payers_signed_proposal(town):
    from enerdatx.crypto import Identity
    from enerdatx.market import Wallet
    from enerdatx.trustchain import BlockStore, TrustChain

    seller, buyer = town.add(), town.add()
    listing = seller.sell(readings_bytes(30), DESCRIPTOR, 70)
    trade = await buyer.buy(listing.listing_id)
    observer = TrustChain(Identity.generate(), BlockStore(fsync=False), clock=town.clock)
    observer.receive_many(seller.ledger.store.chain(seller.public_key))  # the agreement, not the proposal
    wallet = Wallet(observer.store, grant=500)
    balance = wallet.balance(seller.public_key)
    assert (balance.earned, balance.unverified_income, balance.available) == (0, 70, 500)
    assert balance.complete
    observer.receive(trade.proposal)
    assert wallet.balance(seller.public_key).available == 570
    # A chain we hold only in part is flagged, so no one judges a payer by half its history.
    assert not wallet.balance(buyer.public_key, before=5).complete
    with pytest.raises(ValueError):
        Wallet(observer.store, grant=-1)


async def test_a_paid_data_set_that_could_not_be_fetched_can_be_fetched_again(town):
    from enerdatx.errors import PeerUnreachableError

    seller, buyer = town.add(), town.add()
    plaintext = readings_bytes(41)
    listing = seller.sell(plaintext, DESCRIPTOR, 10)
    fetch = buyer._fetch

    async def unreachable(_listing):
        raise PeerUnreachableError("seller offline")

    buyer._fetch = unreachable
    with pytest.raises(DataVerificationError, match="ciphertext_unavailable"):
        await buyer.buy(listing.listing_id)
    assert buyer.purchases() == [] and buyer.balance().available == 990
    buyer._fetch = fetch
    assert await buyer.retry_purchase(listing.listing_id) == plaintext
    assert [p.listing_id for p in buyer.purchases()] == [listing.listing_id]
    with pytest.raises(MarketError, match="no settled payment"):
        await seller.retry_purchase(listing.listing_id)


def _gated(buyer, *, until: str):
    """Hold the buyer's proposal back until its fetch of the ciphertext has begun (or ended)."""
    propose, fetch = buyer._propose, buyer._fetch
    began, ended = asyncio.Event(), asyncio.Event()

    async def gated_propose(*args):
        await asyncio.wait_for((began if until == "began" else ended).wait(), 2)  # before: never, a timeout
        return await propose(*args)

    async def watched_fetch(listing):
        began.set()
        try:
            return await fetch(listing)
        finally:
            ended.set()

    buyer._propose, buyer._fetch = gated_propose, watched_fetch


async def test_the_ciphertext_is_fetched_while_the_payment_is_agreed(town):
    seller, buyer = town.add(), town.add()
    plaintext = readings_bytes(43)
    listing = seller.sell(plaintext, DESCRIPTOR, 10)
    _gated(buyer, until="began")
    trade = await buyer.buy(listing.listing_id)
    assert trade.plaintext == plaintext and buyer.purchased_data(listing.listing_id) == plaintext


async def test_a_refused_payment_keeps_no_ciphertext_it_fetched(town):
    seller, buyer = town.add(), town.add()
    listing = seller.sell(readings_bytes(44), DESCRIPTOR, 10)

    def refuse(_buyer, _listing):
        raise TransactionRejectedError("not_you")

    seller.payment_checks.append(refuse)
    _gated(buyer, until="ended")  # the ciphertext is in the buyer's hands when the refusal comes
    with pytest.raises(TransactionRejectedError, match="not_you"):
        await buyer.buy(listing.listing_id)
    assert not buyer.content.has(listing.cid) and buyer.purchases() == []


async def test_a_fetch_that_failed_before_the_agreement_is_made_again_after_it(town):
    from enerdatx.errors import PeerUnreachableError

    seller, buyer = town.add(), town.add()
    plaintext = readings_bytes(45)
    listing = seller.sell(plaintext, DESCRIPTOR, 10)
    fetch, calls = buyer._fetch, []

    async def lost_once(listing_):
        calls.append(listing_.cid)
        if len(calls) == 1:
            raise PeerUnreachableError("the first answer was lost")
        return await fetch(listing_)

    buyer._fetch = lost_once
    assert (await buyer.buy(listing.listing_id)).plaintext == plaintext
    assert calls == [listing.cid, listing.cid]


@pytest.mark.parametrize("listing_id", [None, [], 10**30, "\udcff", "ab" * 31])
async def test_a_market_asked_about_no_listing_id_says_so_before_the_keyring_or_the_purchase_table(town, listing_id):
    buyer = town.add()
    with pytest.raises(ListingNotFoundError, match="not a listing id"):
        buyer.purchased_data(listing_id)
    with pytest.raises(ListingNotFoundError, match="not a listing id"):
        await buyer.buy(listing_id)
    assert buyer.balance().available == 1000 and buyer.ledger.store.chain(buyer.public_key) == []


@pytest.mark.parametrize("plaintext", [None, "readings", 5])
def test_selling_plaintext_that_is_not_bytes_is_refused_before_anything_is_stored(town, plaintext):
    seller = town.add()
    with pytest.raises(MarketError, match=f"plaintext is bytes, not {type(plaintext).__name__}"):
        seller.sell(plaintext, DESCRIPTOR, 10)
    assert seller.content.blocks == {} and seller.ledger.store.chain(seller.public_key) == []


async def test_a_negotiation_id_utf8_cannot_encode_is_refused_before_anything_is_signed(town):
    seller, buyer = town.add(), town.add()
    listing = seller.sell(readings_bytes(4), DESCRIPTOR, 10)
    with pytest.raises(EncodingError, match="bad negotiation id"):
        await buyer.buy(listing.listing_id, negotiation="\udcff")
    assert buyer.balance().available == 1000 and buyer.ledger.store.chain(buyer.public_key) == []


async def test_an_amount_below_the_price_without_a_negotiation_is_refused_before_it_reserves_tokens(town):
    seller, buyer = town.add(), town.add()
    listing = seller.sell(readings_bytes(5), DESCRIPTOR, 10)
    with pytest.raises(MarketError, match="amount 5 is below the listing's price 10"):
        await buyer.buy(listing.listing_id, amount=5)
    assert buyer.balance().available == 1000 and buyer.ledger.store.chain(buyer.public_key) == []
    assert (await buyer.buy(listing.listing_id, amount=12)).amount == 12  # paying more is the buyer's to choose
