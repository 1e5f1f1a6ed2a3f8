"""The shared scenarios on a single-process Lab: the same calls as on Dask workers."""

from __future__ import annotations

import re

import pytest

from enerdatx.cluster import groups_of, scenarios
from enerdatx.errors import ConfigurationError, EnerDatXError
from enerdatx.lab import Lab


def test_the_market_scenario_on_one_process(tmp_path) -> None:
    with Lab(tmp_path, "udp", durable=False, progress=False) as lab:
        run = scenarios.market(lab, peers=6, trades=9, price=3)
        assert len(lab.peers) == 6 and len(groups_of(lab)) == 1
    assert run.figures["failed_trades"] == 0 and run.figures["groups"] == 1
    assert run.figures["cpu_ms_per_trade"] > 0
    assert run.balances["spent"].sum() == run.balances["earned"].sum() == 27
    assert len(run.chains) == 2 * 9 + 3  # a proposal and an agreement per trade, a listing record per seller
    assert (run.trades["amount"] == 3).all()


@pytest.mark.parametrize(
    ("concurrency", "sizes", "shares"),
    [
        (10, [1000, 1000], [5, 5]),
        (10, [0, 2000], [0, 10]),  # a group without trades gets no share
        (10, [700, 300], [7, 3]),
        (10, [1, 1, 1], [4, 3, 3]),  # largest remainders, the first on a tie
        (2, [5, 5, 5], [1, 1, 1]),  # every group with trades gets one, even past the total
        (5, [0, 0], [0, 0]),
    ],
)
def test_trades_in_flight_are_shared_by_trades(concurrency, sizes, shares) -> None:
    assert scenarios.in_flight_shares(concurrency, sizes) == shares


def test_the_market_scenario_checks_its_sizes(tmp_path) -> None:
    with Lab(tmp_path, durable=False, progress=False) as lab:
        with pytest.raises(ValueError, match="trades must be a whole number from 1 to 4, not 5"):
            scenarios.market(lab, peers=4, trades=5)


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("market", {"peers": 1}, "peers must be a whole number of 2 or more, not 1"),
        ("market", {"peers": "4"}, "peers must be a whole number of 2 or more, not '4'"),
        ("market", {"peers": 4, "trades": 0}, "trades must be a whole number from 1 to 4, not 0"),
        ("market", {"peers": 4, "price": 0}, "price must be a whole number from 1 to"),
        ("market", {"peers": 4, "price": True}, "price must be a whole number"),
        ("market", {"peers": 4, "concurrency": 0}, "concurrency must be a whole number of 1 or more"),
        ("market", {"peers": 4, "days": 0}, "days must be a whole number from 1 to 3,660, not 0"),
        ("market", {"peers": 4, "timeout": 0}, "timeout must be a positive number of seconds, not 0"),
        ("market", {"peers": 4, "market_options": {"nope": 1}}, "market_options: MarketService.__init__() got an "
         "unexpected keyword argument 'nope'"),  # a TypeError on every worker, the peers already starting
        ("market", {"peers": 4, "market_options": {"grant": 5}}, "market_options cannot set grant"),
        ("market", {"peers": 4, "market_options": {"propose_timeout": -1}}, "propose_timeout is a finite number"),
        ("market", {"peers": 4, "market_options": ["grant"]}, "market_options must be a dict"),
        ("fraud", {"peers": 4.5}, "peers must be a whole number of 1 or more, not 4.5"),
        ("fraud", {"peers": 3}, "the fraud scenario needs at least 4 peers, not 3"),
        ("fraud", {"peers": 8, "timeout": float("nan")}, "timeout must be a positive number of seconds"),
        ("fraud", {"peers": 8, "trade_timeout": -1}, "trade_timeout must be a positive number of seconds"),
        ("double_spender", {"honest": 2}, "honest must be a whole number of 3 or more, not 2"),
        ("sybil_region", {"honest": 1}, "honest must be a whole number of 2 or more, not 1"),
        ("sybil_region", {"sybils": 0}, "sybils must be a whole number of 1 or more, not 0"),
        ("sybil_region", {"fake_trades": -1}, "fake_trades must be a whole number of 0 or more, not -1"),
        ("sybil_region", {"fake_amount": 0}, "fake_amount must be a whole number of 1 or more, not 0"),
        ("key_withholder", {"honest": 0}, "honest must be a whole number of 1 or more, not 0"),
        ("key_withholder", {"rounds": 0}, "rounds must be a whole number of 1 or more, not 0"),
        ("key_withholder", {"buys_per_round": 0}, "buys_per_round must be a whole number of 1 or more"),
        ("free_rider", {"sellers": 0}, "sellers must be a whole number of 1 or more, not 0"),
        ("free_rider", {"listings_per_seller": -1}, "listings_per_seller must be a whole number of 1 or more"),
        ("free_rider", {"timeout": float("inf")}, "timeout must be a positive number of seconds, not inf"),
    ],
)
def test_a_scenario_refuses_bad_arguments_before_it_starts_a_peer(tmp_path, name, arguments, message) -> None:
    # They failed halfway before (an IndexError, a TypeError, a bare TimeoutError, or a
    # MeterDataError once the peers ran), and left those peers running in the lab.
    with Lab(tmp_path, durable=False, progress=False) as lab:
        with pytest.raises(ConfigurationError, match=re.escape(message)):
            getattr(scenarios, name)(lab, **arguments)
        assert lab.peers == []


def test_the_fraud_scenario_wants_an_empty_lab(tmp_path) -> None:
    with Lab(tmp_path, durable=False, progress=False) as lab:
        scenarios.fraud(lab, peers=8)
        with pytest.raises(EnerDatXError, match="empty lab"):
            scenarios.fraud(lab, peers=8)


def test_light_peers_run_no_services(tmp_path) -> None:
    with Lab(tmp_path, durable=False, progress=False) as lab:
        groups = groups_of(lab, light=True)
        with pytest.raises(EnerDatXError, match="no services"):
            groups.start(2, scenarios.MarketPeers(10))


def test_packet_loss_on_udp_drops_on_arrival_and_every_honest_peer_still_gets_the_proof(tmp_path) -> None:
    with Lab(tmp_path, "udp", durable=False, progress=False, packet_loss=0.2, seed=7) as lab:
        run = scenarios.fraud(lab, peers=12, seed=7, timeout=60)
        dropped = sum(p.ipv8.endpoint.dropped for p in lab.peers)
    assert run.figures["honest_with_proof"] == 11
    assert run.figures["packets_dropped"] == dropped > 0  # the loss did happen, at the receiving sockets


def test_a_fraud_proof_nobody_learns_is_null_figures_and_a_message(tmp_path, monkeypatch) -> None:
    # Before: IndexError (seconds[-1]) or KeyError (a DataFrame without columns) when no honest peer
    # stored the proof within the timeout; here the waiting is made to see nobody learn it.
    from enerdatx.cluster.groups import Groups

    each = Groups.each

    def nobody_learns(self, method, *args):
        results = each(self, method, *args)
        return [[] for _ in results] if method == "wait_fraud" else results

    monkeypatch.setattr(Groups, "each", nobody_learns)
    with Lab(tmp_path, durable=False, progress=False) as lab:
        run = scenarios.fraud(lab, peers=6, timeout=5)
    figures = run.figures
    assert figures["honest_with_proof"] == 0 and run.times.empty
    assert figures["seconds_all_honest"] is figures["seconds_first_proof"] is figures["seconds_median_honest"] is None
    assert figures["message"] == "no honest peer stored the fraud proof within 5 s"
