"""The one way in: ``Lab(market=True)``, ``peer.market``, and a ``buy`` that waits for its listing."""

from __future__ import annotations

import threading

import pytest

from enerdatx import Lab
from enerdatx.errors import ConfigurationError, ListingNotFoundError, MarketError, NegotiationError
from enerdatx.market.orderbook import Query
from enerdatx.market.service import MarketService
from tests.support.market import DESCRIPTOR, DataSet, readings_bytes


async def test_buy_right_after_the_sale_waits_for_the_listing_to_arrive(tmp_path):
    async with Lab(tmp_path, market=True, progress=False, durable=False) as lab:
        seller, buyer = await lab.start(2)
        listing = seller.market.sell(DataSet(readings_bytes(31), DESCRIPTOR), price=40)
        assert listing.listing_id not in {x.listing_id for x in buyer.market.search()}  # not there yet

        trade = await buyer.market.buy(listing.listing_id)

        assert trade.plaintext == readings_bytes(31) and trade.amount == 40
        assert buyer.market.balance().available == 960


async def test_buying_a_listing_nobody_sells_fails_after_the_timeout_with_a_typed_error(tmp_path):
    async with Lab(tmp_path, market=True, progress=False, durable=False) as lab:
        _, buyer = await lab.start(2)
        with pytest.raises(ListingNotFoundError, match="did not reach this peer in 0.2 s") as caught:
            await buyer.market.buy("ab" * 32, timeout=0.2)
        assert isinstance(caught.value, MarketError) and isinstance(caught.value, KeyError)
        assert buyer.market.balance().available == 1000 and buyer.store.chain(buyer.public_key) == []


async def test_a_peer_without_a_market_says_how_to_get_one(tmp_path):
    async with Lab(tmp_path, progress=False, durable=False) as lab:
        (peer,) = await lab.start(1)
        assert not peer.has_market
        with pytest.raises(MarketError, match=r"Lab\(market=True\)"):
            peer.market  # noqa: B018
        market = peer.add_market()
        assert peer.market is market and peer.has_market
        with pytest.raises(MarketError, match="has a market already"):
            peer.add_market()


async def test_start_chooses_the_market_per_batch_and_restarts_keep_it(tmp_path):
    async with Lab(tmp_path, progress=False, durable=False) as lab:
        await lab.start(1)
        rich, poor = (await lab.start(2, market=lambda: MarketService(grant=500)))[1:]
        assert not lab.peers[0].has_market
        assert rich.market.balance().available == poor.market.balance().available == 500
        restarted = await lab.restart(1)
        assert restarted is not rich and restarted.market.balance().available == 500


def test_a_market_option_that_is_not_one_is_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="factory of MarketService"):
        Lab(tmp_path, market="yes")  # type: ignore[arg-type]


async def test_what_is_not_a_data_set_or_a_listing_id_is_refused_at_once(tmp_path):
    import time

    import pandas as pd

    async with Lab(tmp_path, market=True, progress=False, durable=False) as lab:
        seller, buyer = await lab.start(2)
        for not_a_dataset in (None, pd.DataFrame({"x": [1]}), b"bytes", DataSet("text", DESCRIPTOR)):
            with pytest.raises(MarketError, match="sell takes a DataSet"):
                seller.market.sell(not_a_dataset, price=5)  # type: ignore[arg-type]
        started = time.monotonic()
        for not_an_id in (None, 7, "garbage", "AB" * 32, "ab" * 31, "ab" * 33, "ab" * 31 + "zz"):
            with pytest.raises(ListingNotFoundError, match="not a listing id"):
                await buyer.market.buy(not_an_id)  # type: ignore[arg-type]
        assert time.monotonic() - started < 2  # refused, not waited for (each wait would be 10 s)
        assert seller.store.chain(seller.public_key) == [] and buyer.store.chain(buyer.public_key) == []


def test_a_dask_lab_refuses_what_is_not_a_worker_count_or_a_client(tmp_path):
    for workers in (0, -1, "2", 2.0, True, 10**6):
        with pytest.raises(ConfigurationError, match="workers must be a whole number"):
            Lab(tmp_path, workers=workers)
    with pytest.raises(ConfigurationError, match="must be a distributed.Client, not str"):
        Lab(tmp_path, cluster="tcp://127.0.0.1:8786")


async def test_the_facade_refuses_what_no_market_can_do(tmp_path):
    async with Lab(tmp_path, market=True, progress=False, durable=False) as lab:
        seller, buyer = await lab.start(2)
        listing = seller.market.sell(DataSet(readings_bytes(32), DESCRIPTOR), price=40)
        market = buyer.market
        with pytest.raises(ListingNotFoundError, match="not a listing id: None"):
            seller.market.withdraw(None)  # a TypeError: the id's own KeyError was caught and sliced
        with pytest.raises(MarketError, match="a Query has the fields .*; not nope"):
            market.search(nope=1)  # a TypeError
        with pytest.raises(MarketError, match="a search takes a Query"):
            market.search("electricity")  # found nothing, silently
        for fields, message in (({"kind": 5}, "kind is text, not int"), ({"area": 26}, "area is text"),
                                ({"seller": "ab" * 32}, "seller is a 32-byte public key")):
            with pytest.raises(MarketError, match=message):  # matched nothing, silently
                market.search(**fields)
        with pytest.raises(MarketError, match="a Query or its fields as keywords, not both"):
            market.search(Query(kind="gas"), max_price=5)  # max_price was ignored
        for key in (b"x", "ab" * 32, 5):  # b"x" had a balance: the full grant of no peer
            with pytest.raises(MarketError, match="a balance is of a 32-byte public key"):
                market.balance(key)
        with pytest.raises(NegotiationError, match="a standing request is made of a Query"):
            market.post_request("electricity")  # an AttributeError
        with pytest.raises(MarketError, match="a seller strategy has a respond"):
            seller.market.seller_strategy = None  # kept, and failed at the first offer
        for timeout in (-1, float("nan"), float("inf"), "1", True):  # nan bought, -1 said "in -1 s"
            with pytest.raises(MarketError, match="timeout is a finite number of seconds 0 or more"):
                await market.buy(listing.listing_id, timeout=timeout)
            with pytest.raises(MarketError, match="timeout is a finite number of seconds above 0"):
                await market.negotiate(listing.listing_id, 30, 40, timeout=timeout)
        with pytest.raises(MarketError, match="timeout is a finite number of seconds above 0, not 0"):
            await market.negotiate(listing.listing_id, 30, 40, timeout=0)
        await market.wait_for_listing(listing.listing_id)
        with pytest.raises(NegotiationError, match="whole numbers of tokens"):
            await market.negotiate(listing.listing_id, "30", 40)  # a TypeError
        assert market.purchases() == [] and market.balance().available == 1000


def test_the_market_called_from_another_thread_runs_the_call_on_its_event_loop(tmp_path):
    # A Lab's run_sync runs the peers' loop in a thread of its own. Called from the main thread
    # beside it, sell() failed deep in sqlite3 ("objects created in a thread can only be used in
    # that same thread") and balance() read state the loop was writing.
    lab = Lab(tmp_path, market=True, progress=False, durable=False)
    with lab:
        seller, buyer = lab.run_sync(lab.start(2))
        calls_on = []
        original = seller.market.market.sell

        def sell(*args, **kwargs):
            calls_on.append(threading.current_thread().name)
            return original(*args, **kwargs)

        seller.market.market.sell = sell
        listing = seller.market.sell(DataSet(readings_bytes(31), DESCRIPTOR), price=40)
        assert calls_on == ["enerdatx-lab"]  # the lab's loop thread, not this one
        assert seller.market.search(seller=seller.public_key) == [listing]
        trade = lab.run_sync(buyer.market.buy(listing.listing_id))
        assert trade.amount == 40 and buyer.market.balance().available == 960
        assert [p.listing_id for p in buyer.market.purchases()] == [listing.listing_id]
        request = buyer.market.post_request(Query(kind="electricity", max_price=30))
        assert buyer.market.live_requests() == [request]
        with pytest.raises(ListingNotFoundError):  # an error on the loop reaches the caller
            seller.market.withdraw("ab" * 32)
    with pytest.raises(MarketError, match=r"peer\.market\.balance\(\) was called from another thread.*not running"):
        buyer.market.balance()  # the lab is closed: no loop to take the call


async def test_a_stopped_peer_says_its_stores_are_closed(tmp_path):
    # Each was sqlite3.ProgrammingError "Cannot operate on a closed database.", naming no store.
    from enerdatx.errors import StorageError

    async with Lab(tmp_path, market=True, progress=False, durable=False) as lab:
        seller, buyer = await lab.start(2)
        await seller.stop()
        calls = [
            ("peer-000: cannot use the market", lambda: seller.market.sell(DataSet(readings_bytes(7), DESCRIPTOR), 5)),
            ("chain.sqlite: cannot use the block store", seller.market.balance),
            ("chain.sqlite: cannot use the block store", lambda: seller.ledger.record("edx.note", {})),
        ]
        for message, call in calls:
            with pytest.raises(StorageError, match=f"{message}: it is closed"):
                call()
        await seller.stop()  # and stopping again changes nothing
        assert buyer.market.balance().available == 1000


async def test_a_stopped_peers_market_signs_and_sends_nothing(tmp_path):
    # post_request signed a request and spread it; sell wrote its ciphertext into the directory
    # the peer had let go; negotiate sent offers and waited its whole timeout for "not settled".
    from enerdatx.errors import StorageError

    async with Lab(tmp_path, market=True, progress=False, durable=False) as lab:
        seller, buyer = await lab.start(2)
        listing = buyer.market.sell(DataSet(readings_bytes(9), DESCRIPTOR), 5)
        await seller.market.wait_for_listing(listing.listing_id)
        market = seller.market
        await seller.stop()
        stored = sorted((seller.directory / "ipfs").rglob("*"))
        sent = seller.community.packets_sent + market.community.packets_sent
        calls = {
            "post_request": lambda: market.post_request(Query(max_price=30)),
            "sell": lambda: market.sell(DataSet(readings_bytes(10), DESCRIPTOR), 5),
            "withdraw": lambda: market.withdraw(listing.listing_id),
            "buy": lambda: market.buy(listing.listing_id),
            "negotiate": lambda: market.negotiate(listing.listing_id, 3, 5, timeout=5),
            "negotiate_and_buy": lambda: market.negotiate_and_buy(listing.listing_id, 3, 5),
            "fill_requests": market.fill_requests,
        }
        for name, call in calls.items():
            with pytest.raises(StorageError, match="cannot use the market: it is closed \\(was its peer stopped\\?\\)"):
                result = call()
                if name in ("buy", "negotiate", "negotiate_and_buy", "fill_requests"):
                    await result
        assert market.live_requests() == [] and market.negotiations == {}
        assert sorted((seller.directory / "ipfs").rglob("*")) == stored
        assert seller.community.packets_sent + market.community.packets_sent == sent


async def test_a_purchase_option_of_the_wrong_kind_is_refused_before_paying(tmp_path):
    # again="no" bought the listing a second time (any string is true); an amount "5" failed with
    # a TypeError from comparing it with the balance.
    async with Lab(tmp_path, market=True, progress=False, durable=False) as lab:
        seller, buyer = await lab.start(2)
        listing = seller.market.sell(DataSet(readings_bytes(8), DESCRIPTOR), price=5)
        await buyer.market.buy(listing.listing_id)
        for options, message in (({"again": "no"}, "again is True .* or False, not 'no'"),
                                 ({"again": 1}, "again is True"),
                                 ({"amount": "5", "again": True}, "amount is None .* or a whole number of tokens, not '5'"),
                                 ({"amount": 5.0, "again": True}, "not 5.0")):
            for market in (buyer.market, buyer.market.market):  # the facade, and the Market it wraps
                with pytest.raises(MarketError, match=message):
                    await market.buy(listing.listing_id, **options)
        assert buyer.market.balance().available == 995 and len(buyer.market.purchases()) == 1
