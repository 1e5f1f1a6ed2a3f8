"""The attack scenarios on the network Lab (memory transport)."""

from enerdatx.attacks import lab_double_spender, lab_sybil_region
from enerdatx.lab import Lab


async def test_a_double_spender_on_the_lab_is_detected_and_refused_by_every_honest_peer(tmp_path):
    async with Lab(tmp_path, transport="memory", seed=1, durable=False) as lab:
        result = await lab_double_spender(lab, honest=8, seed=1, timeout=20)
    assert result.attacker_gain == 1  # both victims countersigned the same sequence number
    assert result.figures["honest_with_proof"] == 8
    assert result.figures["detected_all_seconds"] is not None
    assert result.figures["refused_after_detection"] == 8


async def test_sybils_on_the_lab_gain_no_more_netflow_than_their_real_work(tmp_path):
    async with Lab(tmp_path, transport="memory", seed=2, durable=False) as lab:
        result = await lab_sybil_region(lab, honest=5, sybils=4, honest_trades=8, fake_trades=12, seed=2)
    assert result.figures["sybil_pairs_seen"] > 0  # the honest views did see the fake trades
    assert 0 < result.figures["real_work"]
    assert result.attacker_gain <= result.figures["real_work"]
