import pytest

from enerdatx.errors import ReputationError, TransactionRejectedError
from enerdatx.reputation import ReputationView
from enerdatx.reputation.market import acceptable, rank_by_reputation, refuse_below, score
from enerdatx.trustchain import HalfBlock

from .conftest import PAY, fork_of, ledger, trade


@pytest.fixture
def market():
    """Me, a good seller (sold me 30), a small seller (sold me 5) and a stranger."""
    me, good, small, stranger = ledger(), ledger(), ledger(), ledger()
    trade(me, good, 30)
    trade(me, small, 5)
    return me, good, small, stranger, ReputationView(me)


def test_acceptable_applies_the_threshold(market):
    me, good, small, stranger, view = market
    assert acceptable(view, good.public_key, 10)
    assert not acceptable(view, small.public_key, 10)
    assert not acceptable(view, stranger.public_key, 1)
    assert acceptable(view, stranger.public_key, 0)
    assert score(view, small.public_key, "pagerank") > 0
    with pytest.raises(ReputationError, match="measure"):
        score(view, small.public_key, "karma")


def test_the_order_book_sorts_by_reputation_and_keeps_price_order_among_equals(market):
    me, good, small, stranger, view = market
    other_stranger = ledger()
    book = [(10, stranger.public_key), (11, small.public_key), (12, other_stranger.public_key), (13, good.public_key)]
    ranked = rank_by_reputation(view, book, key=lambda order: order[1])
    assert [price for price, _ in ranked] == [13, 11, 10, 12]
    assert rank_by_reputation(view, book, key=lambda order: order[1], measure="pagerank")[0][0] == 13


def test_a_guarded_policy_refuses_proposers_below_the_threshold(market):
    me, good, small, stranger, view = market
    me.register_policy(PAY, refuse_below(view, 10, lambda ledger, proposal: {"accepted": True}))
    with pytest.raises(TransactionRejectedError, match="below 10"):
        me.countersign(HalfBlock.decode(small.propose(me.public_key, PAY, {"amount": 1}).encode()))
    agreement = me.countersign(HalfBlock.decode(good.propose(me.public_key, PAY, {"amount": 1}).encode()))
    assert agreement.transaction == {"accepted": True}


def test_a_proven_forker_is_refused_at_any_threshold_and_ranked_last(market):
    me, good, small, stranger, view = market
    agreement = me.store.head(good.public_key)
    assert me.receive(fork_of(good, agreement)).is_invalid
    assert not acceptable(view, good.public_key, 0)
    book = [good.public_key, stranger.public_key, small.public_key]
    ranked = rank_by_reputation(view, book, key=lambda key: key)
    assert ranked == [small.public_key, stranger.public_key, good.public_key]


@pytest.mark.parametrize("threshold", ["5", float("nan"), float("inf"), None, True])
def test_a_threshold_is_a_finite_number(market, threshold):
    # "5" failed with a TypeError at the first proposal; NaN refused every proposer (score >= NaN is false).
    _me, good, _small, _stranger, view = market
    with pytest.raises(ReputationError, match="a reputation threshold is a finite number"):
        refuse_below(view, threshold, lambda _ledger, _proposal: None)
    with pytest.raises(ReputationError, match="a reputation threshold is a finite number"):
        acceptable(view, good.public_key, threshold)
