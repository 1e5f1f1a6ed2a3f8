import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enerdatx.errors import ReputationError
from enerdatx.reputation import ContributionRule, Direction, ReputationView

from .conftest import DAY_MS, Clock, fork_of, ledger, trade


def test_a_view_follows_its_ledger_and_counts_each_pair_once():
    me, seller = ledger(), ledger()
    view = ReputationView(me)
    assert view.netflow(seller.public_key) == 0
    trade(me, seller, 12)
    assert view.graph[seller.public_key][me.public_key]["amount"] == 12
    assert view.netflow(seller.public_key) == 12
    trade(seller, me, 5)  # now I sold to the seller: its net contribution shrinks
    assert view.netflow() == {seller.public_key: 7}
    assert view.pagerank(seller.public_key) > 0


def test_a_view_counts_what_the_ledger_held_before_it_was_made():
    me, seller = ledger(), ledger()
    trade(me, seller, 12)
    assert ReputationView(me).netflow(seller.public_key) == 12


def test_a_view_over_a_bare_store_needs_an_evaluator_and_is_fed_by_hand():
    me, seller, other = ledger(), ledger(), ledger()
    with pytest.raises(ReputationError, match="evaluator"):
        ReputationView(me.store)
    view = ReputationView(me.store, me.public_key)
    proposal, agreement = trade(me, seller, 12)
    assert view.netflow(seller.public_key) == 0  # nobody told it yet
    assert view.add_block(proposal)
    assert not view.add_block(agreement)  # the same pair
    assert view.netflow(seller.public_key) == 12
    assert not view.add_block(other.record("edx.listing", {"price": 1}))


def test_a_proven_forker_scores_nothing_from_the_moment_of_proof():
    me, seller = ledger(), ledger()
    view = ReputationView(me)
    _, agreement = trade(me, seller, 12)
    assert view.netflow(seller.public_key) == 12 and view.pagerank(seller.public_key) > 0
    assert me.receive(fork_of(seller, agreement)).is_invalid
    assert view.forkers == {seller.public_key}
    assert view.netflow(seller.public_key) == 0 and view.pagerank(seller.public_key) == 0
    # A view made later reads the proof from the store.
    assert ReputationView(me).netflow(seller.public_key) == 0


def test_the_contribution_rule_reaches_the_view():
    me, seller = ledger(), ledger()
    view = ReputationView(me, rule=ContributionRule(direction=Direction.FROM_PROPOSER))
    trade(seller, me, 12)  # the seller proposed a payment to me: counted as its contribution
    assert view.netflow(seller.public_key) == 12


trades = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(1, 50), st.integers(0, 20), st.booleans()).filter(
        lambda t: t[0] != t[1]
    ),
    max_size=20,
)


@settings(max_examples=25, deadline=None)
@given(trades)
def test_incremental_equals_recomputed_from_scratch(history):
    """Peer 0 watches every trade as it happens, halves in either order; a fresh view over its store must agree."""
    clock = Clock()
    peers = [ledger(clock) for _ in range(5)]
    evaluator = peers[0]
    live = ReputationView(evaluator, half_life_ms=7 * DAY_MS)
    for buyer, seller, amount, days, agreement_first in history:
        clock.now += days * DAY_MS
        witnesses = [] if 0 in (buyer, seller) else [evaluator]
        trade(peers[buyer], peers[seller], amount, *witnesses, agreement_first=agreement_first)
        live.netflow(), live.pagerank()  # scores asked in between must not go stale
    scratch = ReputationView(evaluator.store, evaluator.public_key, half_life_ms=7 * DAY_MS)
    assert sorted(live.graph.edges(data="amount")) == sorted(scratch.graph.edges(data="amount"))
    assert live.netflow() == scratch.netflow()
    live_ranks, scratch_ranks = live.pagerank(), scratch.pagerank()
    assert live_ranks.keys() == scratch_ranks.keys()
    for key, rank in live_ranks.items():
        assert rank == pytest.approx(scratch_ranks[key], abs=1e-9)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda me: ReputationView(None), "a view reads a TrustChain ledger or a BlockStore, not NoneType"),
        (lambda me: ReputationView(me, alpha=2), "alpha must be strictly between 0 and 1"),  # failed at pagerank()
        (lambda me: ReputationView(me, alpha=float("nan")), "alpha must be strictly between 0 and 1"),
        (lambda me: ReputationView(me, engine="x"), "unknown max-flow engine 'x'"),  # failed at netflow()
        (lambda me: ReputationView(me.store, b"x"), "evaluator is a 32-byte public key"),  # scored 0 for all
        (lambda me: ReputationView(me).netflow("ab" * 32), "public_key is a 32-byte public key, not str"),
        (lambda me: ReputationView(me).pagerank(b"x"), "public_key is a 32-byte public key"),
    ],
)
def test_a_view_refuses_what_no_evaluator_can_ask(make, message):
    with pytest.raises(ReputationError, match=message):
        make(ledger())
