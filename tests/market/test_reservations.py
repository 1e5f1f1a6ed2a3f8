"""Reservations with a lifetime, late agreements, and one purchase per listing (issue 13)."""

from __future__ import annotations

import asyncio

import pytest

from enerdatx.errors import PurchaseConflictError, TransactionRejectedError, TransactionTimeoutError
from enerdatx.market.formats import PAYMENT, RELEASE, parse_payment
from enerdatx.market.market import AGREE_MARGIN, PAYMENT_LIFETIME, RELEASE_GRACE
from tests.support.market import DESCRIPTOR, readings_bytes


def silence(market) -> list:
    """Make ``market``'s proposals go unanswered (a seller that never replies); returns the proposals."""
    sent = []

    async def propose(counterparty: bytes, block_type: str, transaction: dict):
        sent.append(market.ledger.propose(counterparty, block_type, transaction))
        raise TransactionTimeoutError("no agreement in time")

    market._propose = propose  # noqa: SLF001 - the network seam
    return sent


async def test_a_silent_sellers_reservation_is_released_after_the_deadline(town):
    seller, buyer = town.add(), town.add()
    listing = seller.sell(readings_bytes(), DESCRIPTOR, 300)
    sent = silence(buyer)
    with pytest.raises(TransactionTimeoutError):
        await buyer.buy(listing.listing_id)
    [proposal] = sent
    deadline = parse_payment(proposal.transaction).deadline
    assert deadline == town.clock_ms + PAYMENT_LIFETIME
    assert buyer.balance().available == 700  # reserved: the seller may still countersign
    town.clock_ms = deadline + RELEASE_GRACE  # not yet: an in-time agreement may be on its way
    assert buyer.balance().available == 700 and buyer.reservations() == [proposal]
    town.clock_ms += 1
    assert buyer.balance().available == 1000
    release = buyer.ledger.head
    assert release.type == RELEASE and release.transaction["proposal"] == proposal.hash
    assert buyer.reservations() == [] and buyer.release_expired() == []  # released once
    # Anyone holding the buyer's chain sees the same: a seller judging the next payment.
    for block in buyer.ledger.store.chain(buyer.public_key):
        seller.ledger.receive(block)
    assert seller.wallet.balance(buyer.public_key).available == 1000
    assert seller.wallet.balance(buyer.public_key).released == 300


async def test_a_late_agreement_is_refused_and_cannot_make_the_buyer_pay_twice(town):
    seller, buyer = town.add(), town.add()
    listing = seller.sell(readings_bytes(), DESCRIPTOR, 300)
    sent = silence(buyer)
    with pytest.raises(TransactionTimeoutError):
        await buyer.buy(listing.listing_id)
    [proposal] = sent
    # The seller's own policy refuses once too little of the deadline is left...
    town.clock_ms = parse_payment(proposal.transaction).deadline - AGREE_MARGIN + 1
    for block in buyer.ledger.store.chain(buyer.public_key):
        seller.ledger.receive(block)
    with pytest.raises(TransactionRejectedError, match="deadline_passed"):
        seller.ledger.countersign(proposal)
    # ...and a dishonest seller that countersigns anyway, after the buyer released, is paid nothing.
    town.clock_ms += AGREE_MARGIN + RELEASE_GRACE
    assert buyer.balance().available == 1000  # released
    late = seller.ledger.countersign(proposal, {**proposal.transaction, "sealed_key": b""})
    buyer.ledger.receive(late)
    for block in buyer.ledger.store.chain(buyer.public_key):
        seller.ledger.receive(block)
    assert buyer.balance().available == 1000 and buyer.balance().spent == 0
    assert seller.balance().earned == 0 and seller.balance().unverified_income == 300
    # The buyer buys for real: charged exactly once.
    buyer._propose = town._proposer(buyer.ledger)  # noqa: SLF001
    trade = await buyer.buy(listing.listing_id)
    assert trade.amount == 300 and buyer.balance().available == 700 and seller.balance().earned == 300
    assert len([b for b in buyer.ledger.store.chain(buyer.public_key) if b.type == PAYMENT]) == 2


async def test_an_agreement_signed_after_the_deadline_is_not_taken(town):
    seller, buyer = town.add(), town.add()
    listing = seller.sell(readings_bytes(), DESCRIPTOR, 300)
    honest = town._proposer(buyer.ledger)  # noqa: SLF001

    async def slow(counterparty: bytes, block_type: str, transaction: dict):
        proposal = buyer.ledger.propose(counterparty, block_type, transaction)
        for block in buyer.ledger.store.chain(buyer.public_key):
            seller.ledger.receive(block)
        town.clock_ms = transaction["deadline"] + 1  # the seller's clock, when it finally signs
        agreement = seller.ledger.countersign(proposal, {**transaction, "sealed_key": b""})
        buyer.ledger.receive(agreement)
        return proposal, agreement

    buyer._propose = slow  # noqa: SLF001
    with pytest.raises(TransactionRejectedError, match="late_agreement"):
        await buyer.buy(listing.listing_id)
    assert buyer.purchases() == []
    del honest


async def test_two_concurrent_buys_of_one_listing_charge_once(town):
    seller, buyer = town.add(), town.add()
    listing = seller.sell(readings_bytes(), DESCRIPTOR, 300)
    honest = town._proposer(buyer.ledger)  # noqa: SLF001
    first_in = asyncio.Event()
    release_first = asyncio.Event()

    async def propose(*args):
        first_in.set()
        await release_first.wait()  # the first purchase is under way while the second arrives
        return await honest(*args)

    buyer._propose = propose  # noqa: SLF001
    first = asyncio.create_task(buyer.buy(listing.listing_id))
    await first_in.wait()
    second = asyncio.create_task(buyer.buy(listing.listing_id))
    await asyncio.sleep(0)  # let the second reach its wait
    release_first.set()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert results[0].amount == 300
    assert isinstance(results[1], PurchaseConflictError)
    assert buyer.balance().available == 700 and seller.balance().earned == 300
    # Asked for explicitly, a second purchase of the same listing is allowed.
    again = await buyer.buy(listing.listing_id, again=True)
    assert again.amount == 300 and buyer.balance().available == 400


async def test_a_failed_first_buy_lets_the_waiting_second_try(town):
    seller, buyer = town.add(), town.add()
    listing = seller.sell(readings_bytes(), DESCRIPTOR, 300)
    honest = town._proposer(buyer.ledger)  # noqa: SLF001
    calls = []

    async def flaky(*args):
        calls.append(args)
        if len(calls) == 1:  # signed and sent, but the answer is lost
            buyer.ledger.propose(*args)
            await asyncio.sleep(0)
            raise TransactionTimeoutError("lost")
        return await honest(*args)

    buyer._propose = flaky  # noqa: SLF001
    results = await asyncio.gather(
        buyer.buy(listing.listing_id), buyer.buy(listing.listing_id), return_exceptions=True
    )
    assert isinstance(results[0], TransactionTimeoutError) and results[1].amount == 300
    # The lost first proposal is still reserved until its deadline: 1000 - 300 - 300.
    assert buyer.balance().available == 400
    town.clock_ms += PAYMENT_LIFETIME + RELEASE_GRACE + 1
    assert buyer.balance().available == 700
