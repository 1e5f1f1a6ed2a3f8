"""The subscriptions panel, headless: offer, subscribe, the plot grows each period, revoke."""

from __future__ import annotations

import pandas as pd

from enerdatx.lab import Lab
from enerdatx.market.service import MarketService
from enerdatx.market.subscription import SubscriptionService
from enerdatx.meter import synthetic_household
from enerdatx.meter.ingest import ReadingStore
from enerdatx.widgets import SubscriptionsPanel, subscriptions_of
from enerdatx.widgets.subscriptions import _ranges


def test_ranges_are_compact() -> None:
    assert _ranges([0, 1, 2, 5, 7, 8]) == "0-2, 5, 7-8"
    assert _ranges([]) == "none"


async def test_offer_subscribe_watch_and_revoke(tmp_path) -> None:
    frame = synthetic_household(seed=4, start="2026-03-01", days=1, resolution="15min")
    readings = ReadingStore(tmp_path / "readings.sqlite", fsync=False)
    readings.add(frame.iloc[:1], source="test")
    async with Lab(tmp_path / "lab", services=lambda p: [MarketService()], progress=False) as lab:
        seller, a, b = await lab.start(3)
        seller.add_service(SubscriptionService(readings=readings))
        for peer in (a, b):
            peer.add_service(SubscriptionService())
        panel = SubscriptionsPanel(lab)
        assert panel.seller.value == "peer-000" and "no subscribers yet" in panel.table.value
        offer = panel.make_offer()
        assert offer.start == pd.Timestamp("2026-03-01T00:00:00Z").value // 1_000_000
        for name, peer in (("peer-001", a), ("peer-002", b)):
            await subscriptions_of(peer).wait_for(lambda p=peer: offer.offer_id in subscriptions_of(p).offers)
            panel.subscriber.value = name
            panel.refresh()
            assert panel.offer.value == offer.offer_id
            await panel.attempt_async(panel.subscribe)
            assert panel.error == "", panel.error
        sizes = []
        for period in range(3):
            if period == 1:
                panel.subscriber.value = "peer-001"
                panel.refresh()
                assert panel.attempt(panel.revoke) is not None
            readings.add(frame.iloc[: (period + 1) * 4 + 1], source="test")
            subscriptions_of(seller).publish_due()
            for peer in (a, b):  # the period's listing reaches each subscriber by gossip, then it pays
                subs = subscriptions_of(peer)
                await subs.wait_for(lambda s=subs, p=period: (offer.offer_id, p) in s.periods)
                await subs.settled()
            panel.refresh()
            sizes.append({trace.name: len(trace.x) for trace in panel.figure.data})
        assert sizes == [{"peer-001": 4, "peer-002": 4}, {"peer-001": 4, "peer-002": 8},
                         {"peer-001": 4, "peer-002": 12}]
        assert "0-2" in panel.table.value and "revoked_by_buyer" in panel.table.value
    readings.close()
