"""The subscription endpoints of the REST API: a buyer subscribes and revokes, the seller sees consent."""

from __future__ import annotations

import aiohttp
import pandas as pd

from enerdatx.lab import Lab
from enerdatx.market.rest import RestServer
from enerdatx.market.subscription import SubscriptionService
from enerdatx.market.subscription_formats import Terms
from enerdatx.market.subscription_rest import add_subscription_routes
from enerdatx.meter import synthetic_household
from enerdatx.meter.ingest import ReadingStore


async def test_subscribe_watch_consent_and_revoke_over_http(tmp_path) -> None:
    readings = ReadingStore(tmp_path / "readings.sqlite", fsync=False)
    frame = synthetic_household(seed=8, start="2026-03-01", days=1, resolution="15min")
    async with Lab(tmp_path / "lab", market=True, progress=False) as lab:
        seller, buyer = await lab.start(2)
        seller.add_service(SubscriptionService(readings=readings))
        buyer.add_service(SubscriptionService())
        shop, mine = seller.services[1].subscriptions, buyer.services[1].subscriptions
        servers = [RestServer(peer.market) for peer in (seller, buyer)]
        for server, subs in zip(servers, (shop, mine), strict=True):
            add_subscription_routes(server, subs)
            await server.start()
        offer = shop.offer({"kind": "electricity", "resolution_seconds": 900}, 4, period_ms=3_600_000,
                           start=pd.Timestamp("2026-03-01T00:00Z").value // 1_000_000, periods=24,
                           terms=Terms("research", 14, True))
        await mine.wait_for(lambda: offer.offer_id in mine.offers)
        auth = [{"Authorization": f"Bearer {s.token}"} for s in servers]
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{servers[1].url}/subscriptions/offers", headers=auth[1]) as answer:
                    (listed,) = (await answer.json())["offers"]
                assert listed["offer_id"] == offer.offer_id and listed["terms"]["resale"] is True
                async with http.get(f"{servers[1].url}/subscriptions/offers") as answer:
                    assert answer.status == 401
                async with http.post(f"{servers[1].url}/subscriptions/offers/{offer.offer_id}/subscribe",
                                     headers=auth[1], json={"first_period": "one"}) as answer:
                    assert answer.status == 400
                    assert (await answer.json())["error"]["message"] == "first_period must be an integer"  # "a int"
                for body in (b"[" * 100_000 + b"]" * 100_000, b'{"first_period": 0, "first_period": 1}'):
                    async with http.post(f"{servers[1].url}/subscriptions/offers/{offer.offer_id}/subscribe",
                                         headers={**auth[1], "Content-Type": "application/json"}, data=body) as answer:
                        assert answer.status == 400  # nested too deeply: a RecursionError, a 500
                        assert (await answer.json())["error"]["code"] == "bad_json"
                async with http.post(f"{servers[1].url}/subscriptions/offers/{offer.offer_id}/subscribe",
                                     headers=auth[1], json={"first_period": 0}) as answer:
                    assert answer.status == 201
                    subscription_id = (await answer.json())["subscription_id"]
                async with http.post(f"{servers[1].url}/subscriptions/offers/{offer.offer_id}/subscribe",
                                     headers=auth[1], json={"first_period": 0}) as answer:
                    assert answer.status == 400  # a second agreement, signed: see Subscriptions.subscribe
                    assert "already: revoke it first" in (await answer.json())["error"]["message"]
                readings.add(frame.iloc[:9], source="test")
                shop.publish_due()
                held = mine.held[subscription_id]
                await mine.wait_for(lambda: all(held.trades.get(p) is not None for p in (0, 1)))
                async with http.get(f"{servers[1].url}/subscriptions/held", headers=auth[1]) as answer:
                    (row,) = (await answer.json())["subscriptions"]
                assert row["periods_held"] == [0, 1] and row["status"] == "active"
                async with http.post(f"{servers[1].url}/subscriptions/{subscription_id}/revoke",
                                     headers=auth[1], json={"reason": "\udcff"}) as answer:
                    assert answer.status == 400  # a 500: the revocation's CBOR could not encode it
                    assert "UTF-8" in (await answer.json())["error"]["message"]
                async with http.post(f"{servers[1].url}/subscriptions/{subscription_id}/revoke",
                                     headers=auth[1], json={}) as answer:
                    assert answer.status == 201
                async with http.post(f"{servers[1].url}/subscriptions/{subscription_id}/revoke",
                                     headers=auth[1], json={}) as answer:
                    assert answer.status == 409  # a 201, and one more revocation block, each time
                    assert (await answer.json())["error"]["code"] == "subscription_ended"
                await shop.wait_for(lambda: subscription_id in shop.revocations)
                async with http.get(f"{servers[0].url}/subscriptions/consent", headers=auth[0]) as answer:
                    (row,) = (await answer.json())["consent"]
                assert row["buyer"] == buyer.public_key.hex() and row["periods_held"] == [0, 1]
                assert row["status"] == "revoked_by_buyer" and row["purpose"] == "research"
                async with http.post(f"{servers[1].url}/subscriptions/{'00' * 32}/revoke",
                                     headers=auth[1]) as answer:
                    assert answer.status == 404  # 400 bad_request before: the request was fine, the id unknown
                    assert (await answer.json())["error"]["code"] == "subscription_not_found"
                async with http.post(f"{servers[1].url}/subscriptions/offers/{'00' * 32}/subscribe",
                                     headers=auth[1], json={}) as answer:
                    assert answer.status == 404
                    assert (await answer.json())["error"]["code"] == "subscription_not_found"
        finally:
            for server in servers:
                await server.stop()
    readings.close()
