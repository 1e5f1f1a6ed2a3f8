"""Subscriptions end to end: a P1 meter on loopback TCP, a seller peer and two subscriber peers.

The quick test runs in one process on the in-memory transport; the slow one runs the seller
as ``enerdatx peer run --meter tcp://...`` on UDP, kills it with SIGKILL mid-period and
restarts it.
"""

from __future__ import annotations

import asyncio
import json

import pandas as pd
import pytest

from enerdatx.errors import ConfigurationError
from enerdatx.lab import Lab
from enerdatx.market.subscription import SubscriptionService
from enerdatx.market.subscription_formats import Terms
from enerdatx.market.wallet import DEFAULT_GRANT, Wallet
from enerdatx.meter import cut_dataset, synthetic_household
from enerdatx.meter.ingest import ReadingStore
from enerdatx.meter.simulator import MeterSimulator
from enerdatx.trustchain import BlockStore

HOUR_MS = 3_600_000
PRICE = 5
START = pd.Timestamp("2026-03-01T00:00:00Z")
DESCRIPTOR = {"kind": "electricity", "resolution_seconds": 900, "location": "2628", "household_type": "family"}
TERMS = Terms("flexibility-forecasting", 7, False)
PER_PERIOD = 4  # 15-minute telegrams in an hour


def household(hours: int) -> pd.DataFrame:
    frame = synthetic_household(seed=11, start="2026-03-01", days=hours // 24 + 1, resolution="15min")
    return frame.iloc[: hours * PER_PERIOD + 1]


def subs_of(peer):
    return next(s for s in peer.services if isinstance(s, SubscriptionService)).subscriptions


def check_received(held, readings: pd.DataFrame, offer) -> None:
    """Every paid period decrypts to exactly the seller's cut of its own readings."""
    for period, trade in held.trades.items():
        lo, hi = (pd.Timestamp(ms, unit="ms", tz="UTC") for ms in offer.period_bounds(period))
        reference = cut_dataset(readings, start=lo, end=hi, resolution="900s", location="2628",
                                household_type="family", kind="electricity")
        assert trade.plaintext == reference.plaintext, f"period {period}"


def check_balances(peers, paid: dict[bytes, int]) -> None:
    """Every peer's view of every chain gives the same balances, and they add up."""
    total = sum(paid.values())
    seller = peers[0]
    for viewer in peers:
        market = viewer.market.market
        assert market.balance(seller.public_key).available == DEFAULT_GRANT + PRICE * total
        for buyer in peers[1:]:
            assert market.balance(buyer.public_key).available == DEFAULT_GRANT - PRICE * paid[buyer.public_key]


async def run_periods(sim, seller_subs, buyers, offer_id, periods, revoke_at, revoker):
    """Feed ``periods`` hours; ``revoker`` revokes after ``revoke_at`` periods were paid."""
    await sim.send(1)  # the first reading, at the offer's start
    for period in range(periods):
        if period == revoke_at:
            agreement = next(iter(subs_of(revoker).held.values())).agreement
            subs_of(revoker).revoke(agreement.subscription_id)
            await seller_subs.wait_for(lambda a=agreement: a.subscription_id in seller_subs.revocations)
        await sim.send(PER_PERIOD)  # the last telegram starts the next hour: the period is complete
        await seller_subs.wait_for(lambda p=period: (offer_id, p) in seller_subs.periods)
        for buyer in buyers:
            subs = subs_of(buyer)
            held = next(iter(subs.held.values()))
            if subs.subscription_status(held.agreement.subscription_id) == "active":
                await subs.wait_for(lambda h=held, p=period: p in h.trades and h.trades[p] is not None)


async def test_two_subscribers_over_a_loopback_p1_meter(tmp_path) -> None:
    periods, revoke_at = 6, 3
    frame = household(periods + 1)
    async with MeterSimulator(frame) as sim, Lab(tmp_path / "lab", market=True) as lab:
        seller, a, b = await lab.start(3)
        seller.add_service(SubscriptionService(meter=sim.url, meter_timeout=0.5))
        for buyer in (a, b):
            buyer.add_service(SubscriptionService())
        offer = subs_of(seller).offer(DESCRIPTOR, PRICE, period_ms=HOUR_MS, start=START.value // 1_000_000,
                                      periods=24, terms=TERMS)
        for buyer in (a, b):
            subs = subs_of(buyer)
            await subs.wait_for(lambda s=subs: offer.offer_id in s.offers)
            await subs.subscribe(offer.offer_id)
        await run_periods(sim, subs_of(seller), [a, b], offer.offer_id, periods, revoke_at, a)
        held_a, held_b = (next(iter(subs_of(p).held.values())) for p in (a, b))
        assert sorted(held_a.trades) == list(range(revoke_at))
        assert sorted(held_b.trades) == list(range(periods))
        store_readings = subs_of(seller).readings.readings()
        assert len(store_readings) == sim.sent  # every telegram sent is stored
        check_received(held_a, store_readings, offer)
        check_received(held_b, store_readings, offer)
        # No key after the revocation: a's chain holds no payment for a later period, the seller signed none.
        consent = subs_of(seller).consent().set_index("buyer")
        assert consent.loc[a.public_key.hex(), "periods_held"] == list(range(revoke_at))
        assert consent.loc[a.public_key.hex(), "status"] == "revoked_by_buyer"
        assert consent.loc[b.public_key.hex(), "periods_held"] == list(range(periods))
        # b sees a's revocation too: it is a gossiped record.
        await subs_of(b).wait_for(lambda: held_a.agreement.subscription_id in subs_of(b).revocations)
        await asyncio.gather(*(subs_of(p).settled() for p in (a, b)))
        check_balances([seller, a, b], {a.public_key: revoke_at, b.public_key: periods})


@pytest.mark.slow
async def test_24_periods_with_a_seller_killed_mid_period(tmp_path) -> None:
    periods, revoke_at, kill_at = 24, 10, 16
    frame = household(periods + 1)
    offer_file = tmp_path / "offer.json"
    offer_file.write_text(json.dumps({"descriptor": DESCRIPTOR, "price": PRICE, "period_seconds": 3600,
                                      "start": START.isoformat(), "periods": periods,
                                      "terms": {"purpose": TERMS.purpose, "retention_days": TERMS.retention_days,
                                                "resale": TERMS.resale}}))
    async with MeterSimulator(frame) as sim, Lab(tmp_path / "lab", "udp", market=True) as lab:
        a, b = await lab.start(2)
        for buyer in (a, b):
            buyer.add_service(SubscriptionService())
        contacts = [f"{p.public_key.hex()}@{p.address[0]}:{p.address[1]}" for p in (a, b)]
        seller = SellerProcess(tmp_path / "seller", sim.url, offer_file, contacts)
        await seller.start()
        try:
            for buyer in (a, b):
                buyer.add_contacts([(seller.public_key, seller.address)])
            offer_id = seller.offers[0]
            for buyer in (a, b):
                subs = subs_of(buyer)
                await subs.wait_for(lambda s=subs: offer_id in s.offers, timeout=30)
                await subs.subscribe(offer_id)
            offer = subs_of(a).offers[offer_id]
            await sim.send(1)
            for period in range(periods):
                if period == revoke_at:
                    held = next(iter(subs_of(a).held.values()))
                    subs_of(a).revoke(held.agreement.subscription_id)
                if period == kill_at:
                    await sim.send(2)  # half an hour into the period
                    await seller.readings_stored(sim.sent)
                    await seller.kill()
                    assert len(ReadingStore(tmp_path / "seller" / "readings.sqlite")) == sim.sent  # nothing lost
                    await seller.start()
                    assert seller.offers == [offer_id]  # the same offer file: no second offer signed
                    await sim.send(PER_PERIOD - 2)
                else:
                    await sim.send(PER_PERIOD)
                await seller.period_listed(period)
                for buyer in (a, b):
                    subs = subs_of(buyer)
                    held = next(iter(subs.held.values()))
                    if subs.subscription_status(held.agreement.subscription_id) == "active":
                        await subs.wait_for(lambda h=held, p=period: h.trades.get(p) is not None, timeout=30)
        finally:
            await seller.stop()
        held_a, held_b = (next(iter(subs_of(p).held.values())) for p in (a, b))
        assert sorted(held_a.trades) == list(range(revoke_at))
        assert sorted(held_b.trades) == list(range(periods))
        readings = ReadingStore(tmp_path / "seller" / "readings.sqlite")
        assert len(readings) == sim.sent == 1 + periods * PER_PERIOD  # every telegram, across the kill
        check_received(held_a, readings.readings(), offer)
        check_received(held_b, readings.readings(), offer)
        # Balances add up on every chain, the seller's own included (read from its directory).
        seller_store = BlockStore(tmp_path / "seller" / "chain.sqlite")
        paid = {a.public_key: revoke_at, b.public_key: periods}
        expected = {seller.public_key: DEFAULT_GRANT + PRICE * (revoke_at + periods),
                    **{buyer.public_key: DEFAULT_GRANT - PRICE * paid[buyer.public_key] for buyer in (a, b)}}
        # The seller crawled each buyer's chain before countersigning: it can check all three.
        for key, balance in expected.items():
            assert Wallet(seller_store).balance(key).available == balance
        for buyer in (a, b):  # each buyer's own chain, and the seller's as far as the buyer holds it whole
            assert Wallet(buyer.store).balance(buyer.public_key).available == expected[buyer.public_key]
            view = Wallet(buyer.store).balance(seller.public_key)
            assert not view.complete or view.available == expected[seller.public_key]
        seller_store.close()


class SellerProcess:
    """``enerdatx peer run --meter URL --offer FILE`` in its own process, with its JSON events."""

    def __init__(self, directory, meter: str, offer_file, contacts: list[str]) -> None:
        self.directory = directory
        self.args = ["peer", "run", "--dir", str(directory), "--meter", meter, "--offer", str(offer_file),
                     "--report-readings", "--port", "0"]
        for contact in contacts:
            self.args += ["--contact", contact]
        self.port = 0
        self.process = None
        self.public_key = b""
        self.offers: list[str] = []
        self.listed: set[int] = set()
        self.stored = 0
        self._events: asyncio.Queue = asyncio.Queue()
        self._reader = None

    @property
    def address(self):
        from ipv8.messaging.interfaces.udp.endpoint import UDPv4Address

        return UDPv4Address("127.0.0.1", self.port)

    async def start(self) -> None:
        import sys

        args = list(self.args)
        if self.port:
            args[args.index("--port") + 1] = str(self.port)  # the same address after a restart
        self.process = await asyncio.create_subprocess_exec(sys.executable, "-m", "enerdatx", *args,
                                                            stdout=asyncio.subprocess.PIPE)
        ready = json.loads(await asyncio.wait_for(self.process.stdout.readline(), 60))
        assert ready["event"] == "ready", ready
        self.public_key = bytes.fromhex(ready["public_key"])
        self.port = int(ready["address"].rpartition(":")[2])
        self.offers = ready["offers"]
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        while line := await self.process.stdout.readline():
            event = json.loads(line)
            if event["event"] == "period":
                self.listed.add(event["period"])
            elif event["event"] == "readings":
                self.stored = event["total"]
            await self._events.put(event)

    async def _until(self, predicate, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._events.get()

    async def readings_stored(self, n: int) -> None:
        await self._until(lambda: self.stored >= n)

    async def period_listed(self, period: int) -> None:
        await self._until(lambda: period in self.listed)

    async def kill(self) -> None:
        self.process.kill()
        await self.process.wait()
        await self._reader

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 30)
        if self._reader is not None:
            await self._reader


@pytest.mark.parametrize("host", ["", " ", None])
def test_a_meter_simulator_never_listens_on_every_interface(host) -> None:
    # asyncio.start_server took "" and None for every interface.
    frame = synthetic_household(seed=1, days=1)
    with pytest.raises(ConfigurationError, match="host is the address to listen on, such as 127.0.0.1"):
        MeterSimulator(frame, host=host)


async def test_a_stopped_peers_subscriptions_sign_send_and_store_nothing(tmp_path) -> None:
    # publish_period (and publish_due) wrote a period's ciphertext into the directory the stopped
    # peer had let go, and only then did its closed key ring refuse the listing.
    from enerdatx.errors import StorageError

    frame = household(10)
    readings = ReadingStore(tmp_path / "readings.sqlite")
    readings.add(frame.iloc[: 6 * PER_PERIOD + 1], source="test")
    try:
        async with Lab(tmp_path / "lab", "memory", market=True, progress=False, durable=False) as lab:
            seller, buyer = await lab.start(2)
            seller_service = SubscriptionService(readings=readings)
            seller.add_service(seller_service)
            buyer.add_service(SubscriptionService())
            subs, theirs = subs_of(seller), subs_of(buyer)
            start = START.value // 1_000_000
            offer = subs.offer(DESCRIPTOR, PRICE, period_ms=HOUR_MS, start=start, periods=24, terms=TERMS)
            other = subs.offer(DESCRIPTOR, PRICE, period_ms=HOUR_MS, start=start, periods=24, terms=TERMS)
            await theirs.wait_for(lambda: other.offer_id in theirs.offers)
            agreement = await theirs.subscribe(offer.offer_id)
            seller_service.publish_due()  # periods 0 to 5
            await theirs.wait_for(lambda: 0 in theirs.held[agreement.subscription_id].trades)
            await theirs.settled()
            readings.add(frame.iloc[6 * PER_PERIOD + 1:], source="test")  # periods 6 to 9 are due now
            await seller.stop()
            await buyer.stop()
            stored = sorted((seller.directory / "ipfs").rglob("*"))
            sent = [p.community.packets_sent + p.market.community.packets_sent for p in (seller, buyer)]
            sid = agreement.subscription_id
            calls = {
                "publish_due": seller_service.publish_due,
                "publish_period": lambda: subs.publish_period(offer, 7),
                "offer": lambda: subs.offer(DESCRIPTOR, PRICE, period_ms=HOUR_MS, start=start, periods=2, terms=TERMS),
                "revoke_offer": lambda: subs.revoke_offer(offer.offer_id),
                "revoke": lambda: subs.revoke(sid),
                "subscribe": lambda: theirs.subscribe(other.offer_id),
                "pay_period": lambda: theirs.pay_period(sid, 7),
                "complain_missed": lambda: theirs.complain_missed(sid, 20),
                "check_deliveries": lambda: theirs.check_deliveries(start + 30 * HOUR_MS),
            }
            for name, call in calls.items():
                with pytest.raises(StorageError) as raised:  # noqa: PT012
                    result = call()
                    if name in ("subscribe", "pay_period"):
                        await result
                assert sorted((seller.directory / "ipfs").rglob("*")) == stored, f"{name} stored a ciphertext"
                assert "cannot use the market: it is closed (was its peer stopped?)" in str(raised.value), name
            assert [p.community.packets_sent + p.market.community.packets_sent for p in (seller, buyer)] == sent
            assert theirs.held[sid].trades[0] is not None  # what it holds stays readable
            assert await theirs.pay_period(sid, 0) is theirs.held[sid].trades[0]
    finally:
        readings.close()
