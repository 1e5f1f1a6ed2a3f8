import pytest

from enerdatx.errors import ReputationError
from enerdatx.reputation import InteractionGraph, temporal_pagerank

from .conftest import DAY_MS, START_MS, identity, signed_pair


def graph_of(pairs, half_life_days: int = 30) -> InteractionGraph:
    graph = InteractionGraph(half_life_ms=half_life_days * DAY_MS)
    for pair in pairs:
        assert graph.add_pair(*pair)
    return graph


def test_older_contributions_count_less():
    me, old, recent, newest = identity(), identity(), identity(), identity()
    # Each seller sold me data worth 10, at days 0, 30 and 60 (sequence numbers of my chain).
    pairs = [
        signed_pair(me, seller, {"amount": 10}, timestamp=START_MS + day * DAY_MS, sequence_number=n)
        for n, (seller, day) in enumerate([(old, 0), (recent, 30), (newest, 60)], start=1)
    ]
    scores = temporal_pagerank(graph_of(pairs), me.public_key)
    assert scores[old.public_key] < scores[recent.public_key] < scores[newest.public_key]
    # One half-life apart: half the weight out of my node, so half the rank.
    assert scores[old.public_key] / scores[recent.public_key] == pytest.approx(0.5)


def test_equal_work_at_equal_times_scores_equally_and_the_total_stays_below_one():
    me, a, b = identity(), identity(), identity()
    pairs = [signed_pair(me, a, {"amount": 10}), signed_pair(me, b, {"amount": 10}, sequence_number=2)]
    scores = temporal_pagerank(graph_of(pairs), me.public_key)
    assert scores[a.public_key] == pytest.approx(scores[b.public_key])
    assert 0 < sum(scores.values()) < 1


def test_only_relative_age_counts():
    def scores_at(offset_days: int) -> list[float]:
        me, a, b = identity_pool
        pairs = [
            signed_pair(me, a, {"amount": 10}, timestamp=START_MS + offset_days * DAY_MS),
            signed_pair(me, b, {"amount": 10}, timestamp=START_MS + (offset_days + 7) * DAY_MS, sequence_number=2),
        ]
        scores = temporal_pagerank(graph_of(pairs), me.public_key)
        return [scores[a.public_key], scores[b.public_key]]

    identity_pool = identity(), identity(), identity()
    assert scores_at(0) == pytest.approx(scores_at(400))


def test_the_walk_reaches_contributors_of_contributors_but_not_consumers():
    me, seller, upstream, consumer = identity(), identity(), identity(), identity()
    pairs = [
        signed_pair(me, seller, {"amount": 10}),  # seller served me
        signed_pair(seller, upstream, {"amount": 10}, sequence_number=2),  # upstream served seller
        signed_pair(consumer, me, {"amount": 10}, sequence_number=3),  # I served the consumer
    ]
    scores = temporal_pagerank(graph_of(pairs), me.public_key)
    assert scores[seller.public_key] > scores[upstream.public_key] > 0
    assert scores[consumer.public_key] == 0


def test_excluded_peers_score_nothing_and_pass_nothing_on():
    me, seller, upstream = identity(), identity(), identity()
    pairs = [signed_pair(me, seller, {"amount": 10}), signed_pair(seller, upstream, {"amount": 10}, sequence_number=2)]
    scores = temporal_pagerank(graph_of(pairs), me.public_key, exclude={seller.public_key})
    assert scores == {seller.public_key: 0.0, upstream.public_key: 0.0}


def test_alpha_must_be_a_probability():
    with pytest.raises(ReputationError):
        temporal_pagerank(InteractionGraph(), b"me", alpha=1.0)
