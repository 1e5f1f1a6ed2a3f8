"""The attack scenarios on the network Lab (memory transport)."""

from enerdatx.attacks import lab_double_spender, lab_free_rider, lab_key_withholder, lab_sybil_region
from enerdatx.lab import Lab
from enerdatx.market import COMPLAINT


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


def market_lab(directory, seed: int) -> Lab:
    return Lab(directory, transport="memory", seed=seed, durable=False, progress=False,
               market=True)


async def test_a_key_withholder_cheats_each_victim_once_and_every_honest_peer_holds_a_complaint(tmp_path):
    async with market_lab(tmp_path, seed=1) as lab:
        result = await lab_key_withholder(lab, honest=6, rounds=4, buys_per_round=2, price=20, seed=1, timeout=20)
        withholder, good = lab.peers[-1], lab.peers[:-1]
        figures = result.figures
        assert 1 <= figures["victims"] <= 6  # a victim complains itself, so it is cheated once at most
        assert result.attacker_gain == figures["victims"] * 20 == figures["withholder_received"]
        assert figures["victims"] + figures["refused"] == 8 and figures["failed"] == 0
        assert figures["honest_with_complaint"] == 6 and figures["detected_all_seconds"] is not None
        complainers = set()
        for peer in good:
            complaints = [b for b in peer.ledger.store.blocks(block_type=COMPLAINT)
                          if b.transaction["seller"] == withholder.public_key]
            assert complaints  # every honest peer holds one, its own or gossiped
            for complaint in complaints:
                agreement = withholder.ledger.store.get_by_hash(complaint.transaction["agreement"])
                assert complaint.verify_signature() and agreement.verify_signature()
                assert complaint.transaction["reason"] == "ciphertext_does_not_decrypt"
                # The complaint names a payment the withholder countersigned for the complainer.
                assert (agreement.public_key, agreement.link_public_key) == (withholder.public_key, complaint.public_key)
                complainers.add(complaint.public_key)
        assert len(complainers) == figures["victims"]


async def test_a_free_rider_fetches_every_ciphertext_but_opens_no_plaintext(tmp_path):
    async with market_lab(tmp_path / "a", seed=2) as lab:
        result = await lab_free_rider(lab, sellers=3, listings_per_seller=2, seed=2, timeout=20)
        rider = lab.peers[-2].market
        assert rider.market.purchases() == [] and rider.market.trades() == []  # it never paid
    figures = result.figures
    assert figures["listings_seen"] == figures["sealed_keys_seen"] == 6
    assert figures["ciphertext_bytes"] > figures["paying_buyer_bytes"] > 0  # ciphertext: plaintext + overhead
    assert result.attacker_gain == figures["plaintext_bytes"] == 0
    async with market_lab(tmp_path / "b", seed=2) as lab:  # the seed fixes the data sets and prices
        again = await lab_free_rider(lab, sellers=3, listings_per_seller=2, seed=2, timeout=20)
    assert again.figures == figures


async def test_the_market_attacks_give_their_peers_a_market_on_a_lab_without_one(tmp_path):
    async with Lab(tmp_path, transport="memory", seed=3, durable=False, progress=False) as lab:
        result = await lab_key_withholder(lab, honest=2, rounds=1, buys_per_round=1, seed=3, timeout=20)
        assert all(peer.market is not None for peer in lab.peers)
    assert result.figures["victims"] == 1 and result.figures["honest_with_complaint"] == 2
