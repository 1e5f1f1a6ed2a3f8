import dataclasses

import pytest

from enerdatx.reputation.scenarios import double_spender, free_rider, key_withholder, sybil_region


@pytest.mark.parametrize(
    "scenario, kwargs",
    [
        (sybil_region, dict(honest=5, sybils=4, rounds=4)),
        (double_spender, dict(honest=6, rounds=4)),
        (key_withholder, dict(honest=5, rounds=4)),
        (free_rider, dict(sellers=3, listings_per_seller=1)),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_a_scenario_is_reproducible_from_its_seed(scenario, kwargs):
    assert dataclasses.asdict(scenario(7, **kwargs)) == dataclasses.asdict(scenario(7, **kwargs))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sybils_gain_no_more_netflow_than_their_real_work(seed):
    result = sybil_region(seed, honest=6, sybils=6, rounds=6, real_trades=2)
    for entry in result.timeline:
        assert entry["max_sybil_netflow"] <= entry["real_work"]
    assert result.figures["real_work"] > 0  # the bound is not vacuous


def test_a_double_spender_is_detected_and_then_refused_by_every_honest_peer():
    result = double_spender(3, honest=8, rounds=8)
    assert result.detected_first_round is not None
    assert result.detected_all_round is not None and result.detected_all_round <= 8
    assert result.figures["refused_after_detection"] == 8
    gain_at_detection = result.timeline[result.detected_all_round - 1]["gain"]
    assert result.attacker_gain == gain_at_detection  # nothing more once everyone knows
    assert result.attacker_gain >= 100  # it did spend its balance twice


def test_a_seller_without_usable_keys_is_found_out_by_its_first_victim():
    result = key_withholder(2, honest=6, rounds=6)
    assert result.detected_first_round == 1
    assert result.attacker_gain > 0
    assert result.timeline[-1]["honest_with_complaint"] >= 1


def test_a_free_rider_copying_cids_reads_nothing_a_paying_buyer_reads():
    result = free_rider(4, sellers=3, listings_per_seller=2)
    assert result.figures["listings_seen"] > 0
    assert result.attacker_gain == 0
    assert result.figures["paying_buyer_bytes"] == 256 * result.figures["listings_seen"]
