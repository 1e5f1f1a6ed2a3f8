"""The market-side panels and the Workbench over a real in-memory Lab with a market on every peer."""

from __future__ import annotations

import pytest

from enerdatx.errors import MarketError
from enerdatx.widgets import MarketPanel, PeersPanel, PurchasesPanel, Workbench


@pytest.fixture
async def workbench(tmp_path):
    bench = Workbench(directory=tmp_path)
    await bench.start(3)
    yield bench
    await bench.stop()


async def test_start_lists_peers_with_keys_contacts_and_grants(workbench):
    panel = workbench.peers
    assert panel.error == "" and panel.info == "3 peers running"
    table = panel.table.value
    for peer in workbench.lab.peers:
        assert peer.public_key.hex()[:16] in table
    assert table.count("<td>1000</td>") == 3  # every wallet starts with the grant
    assert panel.progress.value == panel.progress.max == 3
    assert workbench.market.seller.options == ("peer-000", "peer-001", "peer-002")
    assert workbench.market.buyer.value == "peer-001"
    assert [label for label, _ in workbench.chain.owner.options] == ["peer-000"]


async def test_sell_then_buy_shows_the_decrypted_data_in_purchases(workbench):
    market = workbench.market
    listing = await market.sell()
    assert market.error == "", market.error
    assert market.listing.value == listing.listing_id
    assert listing.listing_id[:12] in market.book.value  # the buyer's book has it
    trade = await market.buy()
    assert market.error == "", market.error
    assert trade.amount == 40
    assert market.last_trade == ("peer-001", trade)
    purchases = workbench.purchases
    assert workbench.tabs.selected_index == workbench.panels.index(purchases)
    assert purchases.buyer.value == "peer-001" and purchases.purchase.value == listing.listing_id
    assert purchases.frame.equals(trade.dataframe())
    assert [trace.name for trace in purchases.figure.data] == ["import_wh"]  # no PV: nothing exported
    assert "peer-000" in purchases.table.value and "<td>40</td>" in purchases.table.value
    # the peers table follows: the buyer paid 40, the seller earned it
    assert "<td>960</td>" in workbench.peers.table.value and "<td>1040</td>" in workbench.peers.table.value


async def test_buying_twice_is_refused_with_a_message(workbench):
    market = workbench.market
    await market.sell()
    await market.buy()
    market.buyer.value = "peer-002"
    await market.buy()
    assert market.error == ""
    market.buyer.value = "peer-000"  # the seller itself
    market.refresh()
    market.listing.value = market.listing.options[0][1]
    assert await market.buy() is None
    assert market.error == "a peer cannot buy its own listing"


async def test_a_bid_on_the_buyers_own_listing_is_refused_like_a_buy(workbench):
    # It said "no address known for peer <its own key>" and left an open negotiation behind.
    market = workbench.market
    await market.sell()
    market.buyer.value = "peer-000"  # the seller itself
    market.refresh()
    market.offer.value, market.max_price.value = 20, 30
    assert await market.bid() is None
    assert market.error == "a peer cannot buy its own listing"
    assert "no negotiations" in market.negotiations.value


async def test_a_bid_within_the_sellers_range_buys_at_the_agreed_price(workbench):
    market = workbench.market
    market.price.value = 40
    await market.sell()
    market.offer.value, market.max_price.value = 36, 40
    trade = await market.bid()
    assert market.error == "", market.error
    assert 36 <= trade.amount <= 40
    assert "accepted" in market.negotiations.value


async def test_a_bid_the_seller_declines_is_reported_and_listed(workbench):
    market = workbench.market
    market.price.value = 100
    await market.sell()
    market.offer.value, market.max_price.value = 1, 2
    assert await market.bid() is None
    assert "declined" in market.error
    assert "declined" in market.negotiations.value


async def test_a_standing_request_matches_cheap_enough_listings(workbench):
    market = workbench.market
    market.price.value = 30
    await market.sell()
    market.max_price.value = 35
    market.post_request()
    assert market.error == ""
    assert market.info.endswith("1 listings match")


async def test_errors_without_peers_are_messages(tmp_path):
    bench = Workbench(directory=tmp_path)
    assert await bench.market.sell() is None
    assert bench.market.error == "start some peers first"
    assert await bench.market.buy() is None
    assert bench.purchases.attempt(bench.purchases.decrypt) is None
    assert bench.purchases.error.startswith("nothing bought yet")
    assert bench.peers.table.value.endswith("no peers running</i>")


async def test_buy_without_listings_says_so(workbench):
    assert await workbench.market.buy() is None
    assert workbench.market.error == "no listing to buy: sell one first"


async def test_stop_all_empties_every_panel(workbench):
    await workbench.peers.stop()
    assert workbench.peers.error == "" and workbench.lab.peers == []
    assert "no peers running" in workbench.market.book.value
    assert workbench.chain.blocks.value == "<i>no peers yet</i>"


async def test_panels_work_alone_over_a_lab(tmp_path):
    from enerdatx.lab import Lab
    from enerdatx.meter import cut_dataset, synthetic_household

    lab = Lab(tmp_path, market=True, progress=False)
    peers = PeersPanel(lab)
    dataset = cut_dataset(synthetic_household(seed=3, days=2), resolution="1h")
    market = MarketPanel(lab, lambda peer: dataset)
    purchases = PurchasesPanel(lab)
    try:
        await peers.start(2)
        market.refresh()
        await market.sell()
        await market.buy()
        purchases.refresh()
        assert purchases.purchase.options == ()  # peer-000 sold, it bought nothing
        purchases.buyer.value = "peer-001"
        frame = purchases.attempt(purchases.decrypt)
        assert frame is not None and frame.equals(dataset.frame)
    finally:
        await lab.stop()
    with pytest.raises(MarketError):
        market._service("peer-000")


async def test_trades_made_through_the_api_show_up_in_the_panels(workbench):
    import asyncio

    from enerdatx.meter import cut_dataset, synthetic_household

    seller, buyer = workbench.markets[0], workbench.markets[2]
    listing = seller.sell(cut_dataset(synthetic_household(seed=9, days=1), resolution="1h"), 15)
    await buyer.market.book.wait_for_listing(listing.listing_id)
    await buyer.buy(listing.listing_id)
    redrawn = asyncio.Event()
    workbench.peers.table.observe(lambda _: redrawn.set(), "value")
    await asyncio.wait_for(redrawn.wait(), 5)
    assert "<td>985</td>" in workbench.peers.table.value and "<td>1015</td>" in workbench.peers.table.value


async def test_a_fork_is_proven_and_shown_everywhere(workbench):
    attack = workbench.attack
    assert attack.forker.value == "peer-002"
    blocks = await attack.fork()
    assert attack.error == "", attack.error
    first, second = blocks
    assert first.sequence_number == second.sequence_number and first.hash != second.hash
    forker = workbench.lab.peers[2]
    holders = [peer for peer in workbench.lab.peers if peer.ledger.is_fraudulent(forker.public_key)]
    assert holders and attack.info.endswith(f"{len(holders)} peers hold the proof")
    assert "peer-002" in attack.table.value
    explorer = workbench.chain
    explorer.viewer.value = "peer-000" if holders[0] is workbench.lab.peers[0] else "peer-001"
    assert "Fraud proofs held" in explorer.proofs.value and "peer-002" in explorer.proofs.value


async def test_a_fork_needs_three_peers(tmp_path):
    bench = Workbench(directory=tmp_path)
    await bench.start(2)
    try:
        assert await bench.attack.fork() is None
        assert bench.attack.error == "a fork needs three peers: the forker and two victims"
    finally:
        await bench.stop()


async def test_a_second_click_while_the_first_runs_is_refused_with_a_message(tmp_path):
    # Two quick clicks on Start peers opened one directory twice ("peer-000: in use by process
    # <our own>"); two on Found left one union waiting for members in vain for 10 s.
    import asyncio

    bench = Workbench(directory=tmp_path)
    try:
        bench.peers.count.value = 3
        bench.peers.start_button.click()
        bench.peers.start_button.click()
        assert bench.peers.error == "still busy with the last start: wait for it to finish"
        await asyncio.wait_for(bench.peers.settle(), 30)
        assert bench.peers.error == "" and bench.peers.info == "3 peers running"
        union = bench.union
        union.threshold.value = 2
        union.found_button.click()
        union.found_button.click()
        assert union.error == "still busy with the last found: wait for it to finish"
        await asyncio.wait_for(union.settle(), 5)
        assert union.error == "" and len(union.union.members) == 2
        assert await bench.peers.start(1) is not None  # once done, the action runs again
    finally:
        await bench.stop()


async def test_ipywidgets_close_is_its_own_and_stop_stops_the_peers(tmp_path, recwarn):
    # An `async def close` overrode ipywidgets' Widget.close, which ipywidgets calls itself (on
    # collection, on a parent's close): the coroutine was never awaited and the comm stayed open.
    bench = Workbench(directory=tmp_path)
    await bench.start(2)
    assert bench.close() is None and bench.comm is None
    assert not [w for w in recwarn if "never awaited" in str(w.message)]
    assert all(peer.running for peer in bench.lab.peers)  # closing the widget stops nothing
    await bench.stop()
    assert bench.lab.peers == []


async def test_peers_started_before_one_failed_are_shown_everywhere(tmp_path):
    # A third peer that could not start left the table at "no peers running" and the other
    # panels without the two peers that did start (and were running).
    (tmp_path / "peer-002").write_text("not a directory")
    bench = Workbench(directory=tmp_path)
    try:
        bench.peers.count.value = 4
        assert await bench.peers.start() is None
        assert bench.peers.error.endswith("peer-002: not a directory")
        assert len(bench.lab.peers) == 2
        assert bench.peers.table.value.count("peer-00") == 2
        assert bench.market.seller.options == ("peer-000", "peer-001")
    finally:
        await bench.stop()


async def test_stop_all_while_peers_start_is_refused_and_start_while_they_stop(tmp_path):
    # Stop all during a start stopped the peers started so far; the start ran on, and peers ran
    # after the user had stopped them all ("3 peers running"). A start during a stop likewise.
    import asyncio

    bench = Workbench(directory=tmp_path)
    try:
        bench.peers.count.value = 3
        bench.peers.start_button.click()
        bench.peers.stop_button.click()
        assert bench.peers.error == "still busy with the last start: wait for it to finish"
        await asyncio.wait_for(bench.peers.settle(), 30)
        assert len(bench.lab.peers) == 3 and bench.peers.info == "3 peers running"
        bench.peers.stop_button.click()
        bench.peers.start_button.click()
        assert bench.peers.error == "still busy with the last stop: wait for it to finish"
        await asyncio.wait_for(bench.peers.settle(), 30)
        assert bench.lab.peers == [] and bench.peers.info == "all peers stopped"
        bench.peers.start_button.click()
        await bench.stop()  # waits for the start instead of being refused
        await asyncio.wait_for(bench.peers.settle(), 30)
        assert bench.lab.peers == [] and bench.peers.info == "all peers stopped"
    finally:
        await bench.stop()


async def test_a_sell_cut_short_by_stop_all_says_so(workbench):
    # It showed "TraitError: Invalid selection: value not found" (logged as a bug).
    import asyncio

    workbench.market.sell_button.click()
    workbench.peers.stop_button.click()
    await asyncio.wait_for(workbench.market.settle(), 30)
    await asyncio.wait_for(workbench.peers.settle(), 30)
    assert workbench.market.error.endswith("but no buyer's book shows it: were the peers stopped?")
    assert workbench.market.listing.options == ()
