"""Subscriptions on in-process markets: offer, agree, pay period by period, revoke, complain."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from enerdatx.errors import MarketError, SubscriptionEndedError, SubscriptionNotFoundError, TransactionRejectedError
from enerdatx.market.subscription import Subscriptions, verify_missed_period
from enerdatx.market.subscription_formats import Terms
from enerdatx.meter import cut_dataset, synthetic_household
from enerdatx.meter.ingest import ReadingStore

HOUR_MS = 3_600_000
START = pd.Timestamp("2026-03-01T00:00:00Z")
TERMS = Terms("grid-research", 30, False)
DESCRIPTOR = {"kind": "electricity", "resolution_seconds": 900, "location": "2628", "household_type": "family"}


@pytest.fixture(scope="module")
def day() -> pd.DataFrame:
    return synthetic_household(seed=5, start="2026-03-01", days=2, resolution="15min")


@pytest.fixture
def readings(tmp_path) -> ReadingStore:
    store = ReadingStore(tmp_path / "readings.sqlite", fsync=False)
    yield store
    store.close()


@pytest.fixture
def world(town, readings):
    seller = town.add()
    buyers = [town.add(), town.add()]
    subs = {
        "seller": Subscriptions(seller, readings=readings),
        "a": Subscriptions(buyers[0]),
        "b": Subscriptions(buyers[1]),
    }
    offer = subs["seller"].offer(DESCRIPTOR, 7, period_ms=HOUR_MS, start=START.value // 1_000_000, periods=48,
                                 terms=TERMS)
    return town, seller, buyers, subs, offer


def feed(readings: ReadingStore, day: pd.DataFrame, hours: int) -> None:
    """The meter delivered ``hours`` hours (and the first reading of the next)."""
    readings.add(day.iloc[: hours * 4 + 1], source="test")


async def test_each_paid_period_decrypts_to_the_sellers_readings(world, day, readings) -> None:
    town, seller, buyers, subs, offer = world
    agreement = await subs["a"].subscribe(offer.offer_id)
    assert agreement.terms == TERMS and agreement.seller == seller.public_key
    feed(readings, day, 3)
    listings = subs["seller"].publish_due()
    assert [subs["seller"].periods[(offer.offer_id, n)] for n in range(3)] == listings
    await subs["a"].settled()
    held = subs["a"].held[agreement.subscription_id]
    assert sorted(held.trades) == [0, 1, 2]
    for period, trade in held.trades.items():
        lo, hi = (pd.Timestamp(ms, unit="ms", tz="UTC") for ms in offer.period_bounds(period))
        reference = cut_dataset(day, start=lo, end=hi, resolution="900s", location="2628",
                                household_type="family", kind="electricity")
        assert trade.plaintext == reference.plaintext  # exactly the seller's readings of that hour
        sold = trade.dataframe()
        assert len(sold) == 4 and sold.index[0] == lo
        own = day.loc[lo:hi, "import_kwh"]
        assert abs(int(sold["import_wh"].sum()) - round((own.iloc[-1] - own.iloc[0]) * 1000)) <= 1
    assert buyers[0].balance().available == town.grant - 3 * 7
    assert seller.balance().available == town.grant + 3 * 7
    assert subs["b"].held == {}  # b never subscribed and paid nothing
    assert buyers[1].balance().available == town.grant


async def test_a_non_subscriber_is_refused_a_period(world, day, readings) -> None:
    _town, _seller, buyers, subs, _offer = world
    feed(readings, day, 1)
    (listing,) = subs["seller"].publish_due()
    with pytest.raises(TransactionRejectedError, match="not_subscribed"):
        await buyers[1].buy(listing.listing_id)


async def test_no_key_is_released_after_a_revocation(world, day, readings) -> None:
    _town, _seller, buyers, subs, offer = world
    a = await subs["a"].subscribe(offer.offer_id)
    b = await subs["b"].subscribe(offer.offer_id)
    feed(readings, day, 2)
    subs["seller"].publish_due()
    await subs["a"].settled()
    await subs["b"].settled()
    subs["a"].revoke(a.subscription_id)
    assert subs["seller"].subscription_status(a.subscription_id) == "revoked_by_buyer"  # gossiped
    feed(readings, day, 5)
    subs["seller"].publish_due()
    await subs["a"].settled()
    await subs["b"].settled()
    assert sorted(subs["a"].held[a.subscription_id].trades) == [0, 1]
    assert sorted(subs["b"].held[b.subscription_id].trades) == [0, 1, 2, 3, 4]
    # Even a buyer that tries on purpose gets no key for a later period.
    later = subs["seller"].periods[(offer.offer_id, 4)]
    with pytest.raises(TransactionRejectedError, match="subscription_revoked"):
        await buyers[0].buy(later.listing_id)
    consent = subs["seller"].consent().set_index("buyer")
    assert consent.loc[buyers[0].public_key.hex(), "periods_held"] == [0, 1]
    assert consent.loc[buyers[0].public_key.hex(), "status"] == "revoked_by_buyer"
    assert consent.loc[buyers[1].public_key.hex(), "periods_held"] == [0, 1, 2, 3, 4]
    assert consent.loc[buyers[1].public_key.hex(), "purpose"] == "grid-research"


async def test_a_seller_revocation_ends_key_release_too(world, day, readings) -> None:
    _town, _seller, buyers, subs, offer = world
    b = await subs["b"].subscribe(offer.offer_id)
    subs["seller"].revoke(b.subscription_id, "buyer_breached_terms")
    assert subs["b"].subscription_status(b.subscription_id) == "revoked_by_seller"
    chain_length = len(subs["seller"].ledger.store.chain(subs["seller"].public_key))
    for revoke_again in (lambda: subs["seller"].revoke(b.subscription_id), lambda: subs["b"].revoke(b.subscription_id)):
        with pytest.raises(SubscriptionEndedError, match="no longer active: revoked_by_seller"):
            revoke_again()  # each call signed one more revocation block
    assert len(subs["seller"].ledger.store.chain(subs["seller"].public_key)) == chain_length
    feed(readings, day, 1)
    (listing,) = subs["seller"].publish_due()
    await subs["b"].settled()
    assert subs["b"].held[b.subscription_id].trades == {}
    with pytest.raises(TransactionRejectedError, match="subscription_revoked"):
        await buyers[1].buy(listing.listing_id)


async def test_a_revoked_offer_lists_nothing_and_takes_no_one(world, day, readings) -> None:
    _town, _seller, _buyers, subs, offer = world
    subs["seller"].revoke_offer(offer.offer_id)
    with pytest.raises(SubscriptionEndedError, match="revoked already"):
        subs["seller"].revoke_offer(offer.offer_id)
    feed(readings, day, 2)
    assert subs["seller"].publish_due() == []
    with pytest.raises(MarketError, match="revoked"):
        await subs["a"].subscribe(offer.offer_id)


async def test_a_first_period_past_the_offers_end_is_refused_before_anything_is_sent(world) -> None:
    # The seller's policy refused it: a TransactionRejectedError (a 502 over REST) for what the
    # buyer could tell from the offer it holds.
    _town, _seller, buyers, subs, offer = world
    head = buyers[0].ledger.head
    for first in (48, 10**6):
        with pytest.raises(MarketError, match="below the offer's 48 periods") as refused:
            await subs["a"].subscribe(offer.offer_id, first_period=first)
        assert not isinstance(refused.value, TransactionRejectedError)
    assert buyers[0].ledger.head == head  # no proposal was signed


async def test_terms_other_than_the_offers_are_refused(world) -> None:
    from enerdatx.market.subscription_formats import (
        SUBSCRIPTION,
        subscription_transaction,
    )

    _town, seller, buyers, _subs, offer = world
    greedy = subscription_transaction(offer.block_hash, Terms("grid-research", 30, True), 0)
    with pytest.raises(TransactionRejectedError, match="terms_differ"):
        await buyers[0].propose(seller.public_key, SUBSCRIPTION, greedy)


async def test_a_buyer_that_stops_paying_gets_no_more_keys(world, day, readings) -> None:
    town, seller, _buyers, subs, offer = world
    a = await subs["a"].subscribe(offer.offer_id)
    feed(readings, day, 1)
    subs["seller"].publish_due()
    await subs["a"].settled()
    subs["a"].pause(a.subscription_id)
    feed(readings, day, 3)
    subs["seller"].publish_due()
    await subs["a"].settled()
    assert sorted(subs["a"].held[a.subscription_id].trades) == [0]
    assert subs["seller"].consent()["periods_held"].iloc[0] == [0]
    assert seller.balance().available == town.grant + 7


async def test_a_missed_period_is_a_verifiable_complaint(world, day, readings) -> None:
    town, seller, buyers, subs, offer = world
    a = await subs["a"].subscribe(offer.offer_id)
    feed(readings, day, 1)
    subs["seller"].publish_due()
    await subs["a"].settled()
    with pytest.raises(MarketError, match="was listed"):
        subs["a"].complain_missed(a.subscription_id, 0)
    complaint = subs["a"].complain_missed(a.subscription_id, 1)  # the seller stopped delivering
    assert verify_missed_period(buyers[0].ledger.store, complaint)
    held_by_b = buyers[1].ledger.store.get_by_hash(complaint.hash)  # gossiped: a record
    assert held_by_b is not None and verify_missed_period(buyers[1].ledger.store, held_by_b)
    # The seller delivers late: an honest verifier now sees a listing only after the complaint.
    town.clock_ms += 60_000
    feed(readings, day, 2)
    subs["seller"].publish_due()
    assert verify_missed_period(seller.ledger.store, complaint)
    # A complaint about a period that was listed in time does not hold.
    town.clock_ms += 60_000
    feed(readings, day, 3)
    subs["seller"].publish_due()
    town.clock_ms += 60_000
    unfounded = buyers[0].ledger.record(complaint.type, {**complaint.transaction, "period": 2})
    assert not verify_missed_period(buyers[0].ledger.store, unfounded)


async def test_a_restarted_subscriptions_view_remembers_everything(world, day, readings) -> None:
    _town, seller, buyers, subs, offer = world
    a = await subs["a"].subscribe(offer.offer_id)
    feed(readings, day, 2)
    subs["seller"].publish_due()
    await subs["a"].settled()
    subs["a"].revoke(a.subscription_id)
    again = Subscriptions(seller, readings=readings)
    assert again.offers.keys() == subs["seller"].offers.keys()
    assert again.subscription_status(a.subscription_id) == "revoked_by_buyer"
    assert again.due_periods(offer) == []
    buyer_again = Subscriptions(buyers[0])
    assert sorted(buyer_again.held[a.subscription_id].trades) == [0, 1]


async def test_a_third_party_cannot_revoke_someone_elses_subscription(world, day, readings) -> None:
    town, seller, buyers, subs, offer = world
    a = await subs["a"].subscribe(offer.offer_id)
    from enerdatx.market.subscription_formats import REVOCATION, revocation_transaction

    buyers[1].ledger.record(REVOCATION, revocation_transaction(bytes.fromhex(a.subscription_id), "spite"))
    assert subs["seller"].subscription_status(a.subscription_id) == "active"
    feed(readings, day, 1)
    subs["seller"].publish_due()
    await subs["a"].settled()
    assert sorted(subs["a"].held[a.subscription_id].trades) == [0]
    subs["a"].revoke(a.subscription_id)  # the buyer's own revocation still counts
    assert subs["seller"].subscription_status(a.subscription_id) == "revoked_by_buyer"


async def test_a_buyer_complains_once_about_each_period_not_delivered(world, day, readings) -> None:
    town, seller, buyers, subs, offer = world
    a = await subs["a"].subscribe(offer.offer_id)
    feed(readings, day, 1)
    subs["seller"].publish_due()
    await subs["a"].settled()
    # The seller goes silent; three hours later the buyer checks, with a quarter hour's grace.
    now = offer.start + 3 * HOUR_MS + 20 * 60_000
    complaints = subs["a"].check_deliveries(now, grace_ms=15 * 60_000)
    from enerdatx.market.subscription_formats import parse_missed_period

    assert [parse_missed_period(c)[1] for c in complaints] == [1, 2]  # period 3 is still running
    assert all(verify_missed_period(buyers[0].ledger.store, c) for c in complaints)
    assert subs["a"].check_deliveries(now, grace_ms=15 * 60_000) == []  # each period once
    subs["a"].revoke(a.subscription_id)
    assert subs["a"].check_deliveries(now + 10 * HOUR_MS) == []  # nothing is owed after a revocation


async def test_a_period_without_readings_does_not_hold_up_the_next(world, day, readings) -> None:
    _town, _seller, _buyers, subs, offer = world
    readings.add(day.iloc[:1], source="test")  # 00:00, then the meter is dark until 04:00
    readings.add(day.iloc[16:21], source="test")
    listed = subs["seller"].publish_due()
    from enerdatx.market.subscription_formats import period_of

    # Hours 1 and 2 hold no reading at all: not listed, still owed. Hour 0 is listed with its
    # intervals unknown (never a guess), hours 3 and 4 as usual.
    assert [period_of(listing.descriptor)[1] for listing in listed] == [0, 3, 4]
    assert [listing.descriptor["n_complete"] for listing in listed] == [0, 0, 4]
    assert subs["seller"].due_periods(offer) == [1, 2]


async def test_unknown_ids_and_bad_arguments_are_market_errors(world) -> None:
    # Unknown ids were KeyErrors (offer_status, subscription_status, received), None a TypeError
    # (subscribe, revoke), an unknown pause went through silently, and check_deliveries("x") found
    # nothing due; terms=None failed with an AttributeError while the offer was encoded.
    _town, _seller, _buyers, subs, offer = world
    seller, buyer = subs["seller"], subs["a"]
    for unknown in ("nope", None, 5):
        with pytest.raises(SubscriptionNotFoundError, match="no offer .* is known"):
            seller.offer_status(unknown)
        with pytest.raises(SubscriptionNotFoundError, match="no offer .* is known"):
            await buyer.subscribe(unknown)
        for call in (buyer.subscription_status, buyer.revoke):
            with pytest.raises(SubscriptionNotFoundError, match="no subscription .* is known"):
                call(unknown)
        for call in (buyer.pause, buyer.received, lambda sid: buyer.complain_missed(sid, 0)):
            with pytest.raises(SubscriptionNotFoundError, match="we hold no such subscription"):
                call(unknown)
    assert buyer.paused == set()
    agreement = await buyer.subscribe(offer.offer_id)
    with pytest.raises(MarketError, match="a period is a whole number"):
        buyer.complain_missed(agreement.subscription_id, "0")
    for now_ms, grace_ms in (("x", 0), (-1, 0), (0, -5), (True, 0)):
        with pytest.raises(MarketError, match="is a whole number of milliseconds"):
            buyer.check_deliveries(now_ms, grace_ms=grace_ms)
    with pytest.raises(MarketError, match="terms must be Terms, not NoneType"):
        seller.offer(DESCRIPTOR, 7, period_ms=HOUR_MS, start=0, periods=2, terms=None)
    assert issubclass(SubscriptionNotFoundError, KeyError)  # what callers caught before


async def test_subscribing_again_to_an_offer_held_is_refused_until_revoked(world, day, readings) -> None:
    # A second agreement (a notebook cell run again) was signed: each period was paid once, and
    # every payment of the other agreement failed as bought already.
    _town, _seller, buyers, subs, offer = world
    first = await subs["a"].subscribe(offer.offer_id)
    head = buyers[0].ledger.head
    with pytest.raises(MarketError, match=f"we hold subscription {first.subscription_id[:16]}… to offer .* already"):
        await subs["a"].subscribe(offer.offer_id)
    assert buyers[0].ledger.head == head and list(subs["a"].held) == [first.subscription_id]
    subs["a"].revoke(first.subscription_id)
    again = await subs["a"].subscribe(offer.offer_id, first_period=2)
    assert subs["a"].subscription_status(again.subscription_id) == "active"


async def test_two_subscribes_at_once_sign_one_agreement(world, monkeypatch) -> None:
    # Both passed the check for a held subscription before either agreement was signed.
    _town, _seller, buyers, subs, offer = world
    propose = subs["a"].market.propose

    async def over_a_network(*args, **kwargs):
        await asyncio.sleep(0.01)  # the proposal on its way: the other call runs meanwhile
        return await propose(*args, **kwargs)

    monkeypatch.setattr(subs["a"].market, "propose", over_a_network)
    results = await asyncio.gather(subs["a"].subscribe(offer.offer_id), subs["a"].subscribe(offer.offer_id),
                                   return_exceptions=True)
    agreements = [result for result in results if not isinstance(result, BaseException)]
    refusals = [result for result in results if isinstance(result, BaseException)]
    assert len(agreements) == 1 and list(subs["a"].held) == [agreements[0].subscription_id]
    assert len(refusals) == 1 and isinstance(refusals[0], MarketError)
    assert "is being agreed already" in str(refusals[0])


async def test_paying_a_period_not_listed_is_a_market_error(world) -> None:
    # It was a KeyError of the (offer id, period) pair.
    _town, _seller, _buyers, subs, offer = world
    agreement = await subs["a"].subscribe(offer.offer_id)
    with pytest.raises(MarketError, match="period 3 of subscription .* is not listed"):
        await subs["a"].pay_period(agreement.subscription_id, 3)
    for period in (-1, 48, "0", True, [], {}):  # [] and {} were TypeErrors (unhashable)
        with pytest.raises(MarketError, match=r"a period of offer .* is a whole number from 0 to 47, not"):
            await subs["a"].pay_period(agreement.subscription_id, period)
    del subs["a"].offers[offer.offer_id]  # an offer this peer has not heard of (yet)
    with pytest.raises(MarketError, match=r"a period is a whole number, not \[\]"):
        await subs["a"].pay_period(agreement.subscription_id, [])


async def test_publishing_a_period_outside_a_live_offer_of_ours_is_refused(world, day, readings) -> None:
    # Each was cut, signed and listed: a period past the offer's end, one listed already (a
    # second listing of it), a revoked offer's; another seller's offer under our key; and
    # without readings an AssertionError.
    _town, seller, buyers, subs, offer = world
    feed(readings, day, 47)
    subs["seller"].publish_period(offer, 0)
    chain_length = len(seller.ledger.store.chain(seller.public_key))
    for period, message in ((48, "a whole number from 0 to 47, not 48"), (-1, "not -1"), ("1", "not '1'"),
                            (0, "period 0 of offer .* is listed already")):
        with pytest.raises(MarketError, match=message):
            subs["seller"].publish_period(offer, period)
    buyer_offers = Subscriptions(buyers[0], readings=readings)
    with pytest.raises(MarketError, match="only the seller publishes"):
        buyer_offers.publish_period(buyer_offers.offers[offer.offer_id], 1)
    with pytest.raises(MarketError, match="no readings to publish"):
        Subscriptions(seller).publish_period(offer, 1)
    subs["seller"].revoke_offer(offer.offer_id)
    with pytest.raises(SubscriptionEndedError, match="is revoked: no period of it is listed"):
        subs["seller"].publish_period(offer, 1)
    assert len(seller.ledger.store.chain(seller.public_key)) == chain_length + 1  # the revocation alone


def test_revoking_an_unknown_offer_says_it_is_unknown(world) -> None:
    # It said "only the seller can revoke an offer", to the seller.
    _town, _seller, _buyers, subs, _offer = world
    for unknown in ("nope", None, "00" * 32):
        with pytest.raises(SubscriptionNotFoundError, match="no offer .* is known"):
            subs["seller"].revoke_offer(unknown)


async def test_waiting_refuses_a_timeout_it_could_never_meet_and_says_what_timed_out(world) -> None:
    # A NaN or negative timeout was a bare TimeoutError at once (settled(nan) returned at once
    # when nothing was under way, and would never have given up otherwise).
    _town, _seller, _buyers, subs, _offer = world
    for timeout in (float("nan"), -1, 0, "5", True):
        with pytest.raises(MarketError, match="timeout is a finite number of seconds above 0"):
            await subs["a"].wait_for(lambda: False, timeout=timeout)
        with pytest.raises(MarketError, match="timeout is a finite number of seconds above 0"):
            await subs["a"].settled(timeout=timeout)
    with pytest.raises(TimeoutError, match="the condition did not hold within 0.05 s"):
        await subs["a"].wait_for(lambda: False, timeout=0.05)


@pytest.mark.parametrize(("options", "message"), [
    ({"oehu_interval": 0}, "oehu_interval is a finite number of seconds above 0, not 0"),  # polled without pause
    ({"oehu_interval": float("nan")}, "oehu_interval is a finite number of seconds above 0"),
    ({"meter_timeout": float("nan")}, "meter_timeout is a finite number of seconds above 0"),  # killed the reader
    ({"meter_timeout": "2"}, "meter_timeout is a finite number"),
    ({"meter": "tcp://127.0.0.1:1", "oehu": (object(), "dev")}, "give meter or oehu, not both"),
    ({"oehu": "http://127.0.0.1:8080"}, "oehu is an \\(OEHUClient, device id\\) pair"),
    ({"oehu": (object(), " ")}, "oehu is an \\(OEHUClient, device id\\) pair"),
    ({"autopay": "no"}, "autopay is True or False, not 'no'"),  # any string is true: it paid
    ({"on_event": "print"}, "on_event is None or a function"),
])
def test_a_subscription_service_refuses_options_its_reader_would_fail_on(options, message) -> None:
    from enerdatx.market.subscription import SubscriptionService

    with pytest.raises(MarketError, match=message):
        SubscriptionService(**options)
