"""The four attacks on Lab(workers=2), beside the same runs in one process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from enerdatx.cluster import DaskLab, scenarios
from enerdatx.lab import Lab
from enerdatx.reputation.scenarios import ScenarioResult

# One LocalCluster for the module (about 4 s to start here); the three attacks take about 3 s more.

SETTINGS = {"rate_per_second": 1e6, "rate_burst": 1_000_000}


@pytest.fixture(scope="module")
def lab() -> Iterator[DaskLab]:
    with Lab(workers=2, durable=False, settings=SETTINGS, seed=4) as made:
        yield made


def one_process(tmp_path: Path, attack: str, **options: object) -> ScenarioResult:
    with Lab(tmp_path, "udp", durable=False, progress=False, settings=SETTINGS, seed=4) as lab:
        result: ScenarioResult = getattr(scenarios, attack)(lab, **options)
    assert result.parameters["groups"] == 1
    return result


def spans_both_workers(lab: DaskLab, before: int, result: ScenarioResult) -> None:
    assert result.parameters["groups"] == 2
    assert {lab.groups.group_of(i) for i in range(before, sum(lab.groups.sizes))} == {0, 1}


def test_the_double_spender_gains_one_agreement_and_is_refused_by_all_on_workers_as_in_one_process(
    lab: DaskLab, tmp_path: Path
) -> None:
    # First in the module: the fraud run starts its peers in an empty lab.
    on_workers = scenarios.double_spender(lab, honest=9, seed=1, timeout=30)
    spans_both_workers(lab, 0, on_workers)
    alone = one_process(tmp_path, "double_spender", honest=9, seed=1, timeout=30)
    for result in (on_workers, alone):
        assert result.attacker_gain == 1  # both victims countersigned the same sequence number
        assert result.figures["honest_with_proof"] == 9 == result.figures["refused_after_detection"]
        assert 0 < result.figures["detected_first_seconds"] <= result.figures["detected_all_seconds"]
        assert len(result.timeline) == 9


def test_the_sybil_region_gains_no_more_than_its_real_work_on_workers_as_in_one_process(
    lab: DaskLab, tmp_path: Path
) -> None:
    options = {"honest": 5, "sybils": 4, "honest_trades": 8, "fake_trades": 12, "seed": 2}
    before = sum(lab.groups.sizes)
    on_workers = scenarios.sybil_region(lab, **options)
    spans_both_workers(lab, before, on_workers)
    alone = one_process(tmp_path, "sybil_region", **options)
    for result in (on_workers, alone):
        assert result.figures["sybil_pairs_seen"] > 0  # every honest view saw the fake trades
        assert 0 < result.figures["real_work"] and result.attacker_gain <= result.figures["real_work"]
        assert len(result.timeline) == 5  # one view per honest peer
    assert on_workers.figures["real_work"] == alone.figures["real_work"]  # the seed fixes the trades


def test_the_key_withholder_is_complained_about_by_every_honest_peer_on_workers_as_in_one_process(
    lab: DaskLab, tmp_path: Path
) -> None:
    options = {"honest": 6, "rounds": 4, "buys_per_round": 2, "price": 20, "seed": 1, "timeout": 30}
    before = sum(lab.groups.sizes)
    on_workers = scenarios.key_withholder(lab, **options)
    spans_both_workers(lab, before, on_workers)
    alone = one_process(tmp_path, "key_withholder", **options)
    for result in (on_workers, alone):
        figures = result.figures
        assert 1 <= figures["victims"] <= 6  # a victim complains itself, so it is cheated once at most
        assert result.attacker_gain == figures["victims"] * 20 == figures["withholder_received"]
        assert figures["victims"] + figures["refused"] == 8 and figures["failed"] == 0
        assert figures["honest_with_complaint"] == 6 and figures["detected_all_seconds"] is not None
        assert len({row["peer"] for row in result.timeline}) == 6  # one row per honest peer
        assert all(row["seconds"] >= 0 for row in result.timeline)


def test_the_free_rider_opens_no_plaintext_on_workers_and_sees_what_it_sees_in_one_process(
    lab: DaskLab, tmp_path: Path
) -> None:
    options = {"sellers": 3, "listings_per_seller": 2, "seed": 2, "timeout": 30}
    before = sum(lab.groups.sizes)
    on_workers = scenarios.free_rider(lab, **options)
    spans_both_workers(lab, before, on_workers)
    figures = on_workers.figures
    assert figures["listings_seen"] == figures["sealed_keys_seen"] == 6
    assert figures["ciphertext_bytes"] > figures["paying_buyer_bytes"] > 0  # ciphertext: plaintext + overhead
    assert on_workers.attacker_gain == figures["plaintext_bytes"] == 0
    rider, payer = before + 3, before + 4
    spent = {i: lab.groups.on(lab.groups.group_of(i), "balances", [i])[0]["spent"] for i in (rider, payer)}
    assert spent[rider] == 0 and spent[payer] > 0  # it never paid; the control did
    assert one_process(tmp_path, "free_rider", **options).figures == figures  # the seed fixes data and prices
