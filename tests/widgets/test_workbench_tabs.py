"""The workbench's Subscriptions, Privacy and Union tabs over a real in-memory Lab, and their bad input."""

from __future__ import annotations

import pandas as pd
import pytest

from enerdatx.widgets import Workbench, subscriptions_of


@pytest.fixture
async def workbench(tmp_path):
    bench = Workbench(directory=tmp_path)
    await bench.start(3)
    yield bench
    await bench.stop()


def trace_lengths(panel) -> dict[str, int]:
    return {trace.name: len(trace.x) for trace in panel.figure.data}


async def test_the_new_tabs_follow_the_lab(workbench):
    titles = [workbench.tabs.get_title(i) for i in range(len(workbench.panels))]
    assert titles[-3:] == ["Subscriptions", "Privacy", "Union"]
    assert workbench.panels[-3:] == (workbench.subscriptions, workbench.privacy, workbench.union)
    assert workbench.subscriptions.meter_peer.options == ("peer-000", "peer-001", "peer-002")
    assert workbench.privacy.seller.options == ("peer-000", "peer-001", "peer-002")
    assert workbench.union.operator.value == "peer-000"
    assert workbench.union.candidates.value == ("peer-001", "peer-002")  # every other peer, to begin with
    workbench.union.candidates.value = ("peer-001",)
    await workbench.start(1)  # the revision of the peers panel refreshes the others
    assert workbench.privacy.seller.options[-1] == "peer-003"
    assert workbench.union.candidates.options == ("peer-001", "peer-002", "peer-003")
    assert workbench.union.candidates.value == ("peer-001", "peer-003")  # the choice kept, the new peer added


async def test_offer_subscribe_the_plot_grows_each_period_and_revoke_stops_it(workbench):
    panel = workbench.subscriptions
    meter = await panel.start_meter()
    assert panel.error == "", panel.error
    assert meter.url.startswith("tcp://127.0.0.1:") and meter.sent == 1
    assert panel.seller.value == "peer-000" and "no subscribers yet" in panel.table.value
    assert panel.meter_peer.options == ("peer-000",)  # the others subscribe: they are no meter's readers
    panel.price.value = "7"
    offer = panel.make_offer()
    assert offer.price == 7 and offer.start == pd.Timestamp("2026-03-01T00:00Z").value // 1_000_000
    peers = workbench.lab.peers
    for name, peer in (("peer-001", peers[1]), ("peer-002", peers[2])):
        subs = subscriptions_of(peer)
        await subs.wait_for(lambda s=subs: offer.offer_id in s.offers)  # the offer arrives by gossip
        panel.subscriber.value = name
        panel.refresh()  # the workbench redraws a quarter second after a block; do not wait for it
        assert panel.offer.value == offer.offer_id
        assert await panel.attempt_async(panel.subscribe) is not None, panel.error
    assert await panel.send_period() == [0]
    assert panel.error == "", panel.error
    assert panel.info.endswith("period 0 listed; paid and decrypted by peer-001, peer-002")
    assert trace_lengths(panel) == {"peer-001": 4, "peer-002": 4}
    assert await panel.send_period() == [1]
    assert trace_lengths(panel) == {"peer-001": 8, "peer-002": 8}

    panel.subscriber.value = "peer-001"
    assert panel.attempt(panel.revoke) is not None
    assert panel.info.startswith("peer-001 revoked")
    assert await panel.send_period() == [2]
    assert panel.info.endswith("paid and decrypted by peer-002")
    assert trace_lengths(panel) == {"peer-001": 8, "peer-002": 12}  # no key after the revocation
    assert "revoked_by_buyer" in panel.table.value and "0-2" in panel.table.value and "0-1" in panel.table.value
    balances = [peer.market.balance().available for peer in peers]
    assert balances == [1000 + 5 * 7, 1000 - 2 * 7, 1000 - 3 * 7]

    opened = []  # a redraw with nothing new decrypts nothing again (the workbench redraws on every block burst)
    subs = subscriptions_of(peers[2])
    read = subs.received
    subs.received = lambda sid: opened.append(sid) or read(sid)
    workbench.refresh()
    assert opened == [] and trace_lengths(panel) == {"peer-001": 8, "peer-002": 12}

    panel.subscriber.value = "peer-001"
    assert panel.attempt(panel.revoke) is None
    assert panel.error.endswith("is no longer active: revoked_by_buyer")


async def test_subscription_bad_input_is_a_message(workbench):
    panel = workbench.subscriptions
    assert await panel.send_period() is None
    assert panel.error == "start a meter first"
    assert panel.attempt(panel.make_offer) is None
    assert panel.error == "no peer with a meter to sell from"
    await panel.start_meter()
    assert await panel.send_period() is None
    assert panel.error == "peer-000 offers no subscription yet: offer one first"
    panel.price.value = "five"
    assert panel.attempt(panel.make_offer) is None
    assert panel.error == "the price per period is a whole number of tokens, not 'five'"
    panel.price.value, panel.purpose.value = "5", "\udcff"  # a bare codec error before
    assert panel.attempt(panel.make_offer) is None
    assert panel.error == "cannot offer this subscription: purpose must be text that UTF-8 can encode"
    assert panel.attempt(panel.revoke) is None
    assert panel.error == "pick a subscriber and one of its subscriptions"
    assert await panel.attempt_async(panel.subscribe) is None
    assert panel.error == "pick a subscriber and an offer it knows"
    assert await panel.start_meter() is None
    assert panel.error == "peer-000 reads a meter already: one meter per workbench"


async def test_subscriptions_without_peers_say_so(tmp_path):
    bench = Workbench(directory=tmp_path)
    assert await bench.subscriptions.start_meter() is None
    assert bench.subscriptions.error == "start some peers first"
    assert "start a meter below" in bench.subscriptions.table.value


async def test_privacy_measures_what_a_peer_sells_and_lists_it_only_when_allowed(workbench):
    panel = workbench.privacy
    panel.source.value, panel.seller.value = "seller", "peer-001"
    report = await panel.measure()
    assert panel.error == "", panel.error
    assert report.resolution == "PT1H"  # the market panel's data set: a week at 1 h
    assert "linkage, top 1" in panel.figures.value
    figure = panel.plot.outputs[0]["data"]["application/vnd.plotly.v1+json"]
    assert [trace["name"] for trace in figure["data"]] == ["linkage, top 1", "linkage, top 5", "uniqueness of own days"]
    seller = workbench.lab.peers[1]
    panel.max_score.value = max(report.score - 1, 0)
    assert panel.attempt(panel.list_dataset) is None
    assert "above the policy" in panel.error and seller.market.search() == []
    panel.max_score.value = 100
    listing = panel.attempt(panel.list_dataset)
    assert listing is not None, panel.error
    assert listing.descriptor["privacy_score"] == report.score
    assert [found.listing_id for found in seller.market.search()] == [listing.listing_id]
    market = workbench.market  # kept in step: the market panel's seller sees the listing
    market.buyer.value = "peer-001"
    assert listing.listing_id in [value for _, value in market.listing.options]


async def test_privacy_lists_nothing_after_a_failed_measure(workbench):
    # The earlier report stayed: "List if allowed" then listed the data set measured before.
    panel = workbench.privacy
    panel.seller.value, panel.max_score.value = "peer-001", 100
    assert await panel.measure() is not None
    panel.location.value = "\udcff"  # an area no household can be made for
    assert await panel.measure() is None and "location must be text" in panel.error
    assert panel.figures.value == "" and panel.verdict.value == ""
    assert panel.attempt(panel.list_dataset) is None
    assert panel.error == "measure a data set first" and workbench.lab.peers[1].market.search() == []


async def test_privacy_bad_input_is_a_message(workbench):
    panel = workbench.privacy
    assert panel.attempt(panel.list_dataset) is None
    assert panel.error == "measure a data set first"
    panel.price.value = "12.5"
    assert panel.attempt(panel.list_dataset) is None
    assert panel.error == "a price is a whole number of tokens, not '12.5'"
    bench = Workbench()
    bench.privacy.source.value = "seller"
    assert await bench.privacy.measure() is None
    assert bench.privacy.error == "start some peers first"


async def test_a_union_of_peers_sells_splits_and_a_leaver_is_gone(tmp_path):
    bench = Workbench(directory=tmp_path)
    await bench.start(5)
    try:
        panel = bench.union
        panel.candidates.value = ("peer-001", "peer-002", "peer-003")
        panel.threshold.value, panel.aggregate_kind.value = 3, "sum"
        union = await panel.found()
        assert panel.error == "", panel.error
        assert len(union.members) == 3 and panel.leaver.options == ("peer-001", "peer-002", "peer-003")
        assert panel.buyer.options == ("peer-004",)  # members do not buy their own aggregate
        again = await panel.found()
        assert panel.error == "", panel.error
        assert again is union  # Found again: the same union, not refused
        assert len(union.members) == 3
        first = await panel.aggregate()
        assert first.dataset.descriptor["union_members"] == 3
        assert panel.plot.outputs  # the aggregate's figure
        panel.price.value = "60"
        trade = await panel.sell()
        assert panel.error == "", panel.error
        assert trade.amount == 60 and panel.info.endswith("3 members were paid their shares")
        frame = panel.members_frame()
        assert frame["shares received"].tolist() == [20, 20, 20]
        assert "<td>1020</td>" in panel.table.value
        assert bench.lab.peers[4].market.balance().available == 940

        panel.leaver.value = "peer-002"
        await panel.leave()
        assert panel.info == "peer-002 left; 2 remain"
        assert await panel.aggregate() is None
        assert panel.error == "2 members, the union's terms need at least 3"
    finally:
        await bench.stop()


async def test_union_bad_input_is_a_message(workbench):
    panel = workbench.union
    assert await panel.aggregate() is None
    assert panel.error == "found a union first"
    assert await panel.sell() is None
    assert panel.error == "found a union first"
    assert await panel.leave() is None
    assert panel.error == "found a union first"
    panel.candidates.value = ()
    assert await panel.found() is None
    assert panel.error == "0 members chosen, the threshold is 3"
    panel.candidates.value = panel.candidates.options
    panel.threshold.value = 3
    assert await panel.found() is None
    assert panel.error == "2 members chosen, the threshold is 3"
    panel.threshold.value = 2
    panel.epsilon.value = "lots"
    assert await panel.found() is None
    assert "epsilon" in panel.error
    panel.epsilon.value = ""
    assert await panel.found() is not None
    assert await panel.sell() is None
    assert panel.error == "aggregate a round first"
    assert await panel.aggregate() is not None
    assert await panel.sell() is None
    assert panel.error == "pick a buyer that is not a member"  # both other peers joined
    panel.price.value = "fifty"
    assert await panel.sell() is None
    assert panel.error == "a price is a whole number of tokens, not 'fifty'"


async def test_a_union_founded_while_the_peers_stop_is_not_reported_as_joined(workbench):
    # It said "2 peers joined the union of peer-000" of peers Stop all had just stopped.
    import asyncio

    union = workbench.union
    union.threshold.value = 2
    union.found_button.click()
    workbench.peers.stop_button.click()
    await asyncio.wait_for(union.settle(), 30)
    await asyncio.wait_for(workbench.peers.settle(), 30)
    assert union.error == "the peers stopped before the union was founded"
    assert union.union is None and union.info == ""


async def test_a_meter_started_while_the_peers_stop_is_closed_and_says_so(workbench):
    # It said "Peer(8633…, …/peer-000) was stopped and does not start again: make a new Peer of its
    # directory (Lab.restart(i) in a lab)" and left the simulated meter listening, as the panel's meter.
    import asyncio

    panel = workbench.subscriptions
    panel.meter_button.click()
    workbench.peers.stop_button.click()
    await asyncio.wait_for(panel.settle(), 30)
    await asyncio.wait_for(workbench.peers.settle(), 30)
    assert panel.error == "the peers stopped before the meter started"
    assert panel.meter is None
