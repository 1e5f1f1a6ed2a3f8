import pytest

from enerdatx.errors import ReputationError
from enerdatx.reputation import ContributionRule, Direction, InteractionGraph
from enerdatx.trustchain import HalfBlock

from .conftest import DAY_MS, PAY, START_MS, identity, signed_pair


def test_a_payment_is_a_contribution_from_the_seller_to_the_buyer():
    buyer, seller = identity(), identity()
    graph = InteractionGraph()
    assert graph.add_pair(*signed_pair(buyer, seller, {"amount": 20}))
    assert list(graph.graph.edges(data="amount")) == [(seller.public_key, buyer.public_key, 20)]


def test_the_direction_is_configurable():
    buyer, seller = identity(), identity()
    graph = InteractionGraph(ContributionRule(direction=Direction.FROM_PROPOSER))
    graph.add_pair(*signed_pair(buyer, seller, {"amount": 20}))
    assert list(graph.graph.edges) == [(buyer.public_key, seller.public_key)]


def test_a_pair_counts_once():
    pair = signed_pair(identity(), identity(), {"amount": 5})
    graph = InteractionGraph()
    assert graph.add_pair(*pair)
    assert not graph.add_pair(*pair)
    assert graph.add_blocks(pair) == 0
    assert len(graph) == 1
    assert [amount for *_, amount in graph.graph.edges(data="amount")] == [5]


@pytest.mark.parametrize(
    "transaction", [{}, {"amount": 0}, {"amount": -3}, {"amount": True}, {"amount": "7"}, {"price": 7}]
)
def test_pairs_without_a_positive_integer_amount_do_not_count(transaction):
    graph = InteractionGraph()
    assert not graph.add_pair(*signed_pair(identity(), identity(), transaction))
    assert graph.graph.number_of_edges() == 0


def test_a_custom_weight_and_block_types():
    rule = ContributionRule(
        weight=lambda proposal, agreement: proposal.transaction["bytes"] // 1000, block_types={"edx.bandwidth"}
    )
    up, down = identity(), identity()
    graph = InteractionGraph(rule)
    assert graph.add_pair(*signed_pair(up, down, {"bytes": 5000}, block_type="edx.bandwidth"))
    assert not graph.add_pair(*signed_pair(identity(), identity(), {"bytes": 5000}, block_type=PAY))
    assert graph.graph[down.public_key][up.public_key]["amount"] == 5
    # A transaction the weight function cannot read counts for nothing, and raises nothing.
    assert not graph.add_pair(*signed_pair(identity(), identity(), {"size": 5000}, block_type="edx.bandwidth"))


def test_add_blocks_pairs_halves_in_any_order_and_skips_lone_halves():
    first = signed_pair(identity(), identity(), {"amount": 3})
    second = signed_pair(identity(), identity(), {"amount": 4})
    lone_proposal = signed_pair(identity(), identity(), {"amount": 9})[0]
    lone_agreement = signed_pair(identity(), identity(), {"amount": 9})[1]
    graph = InteractionGraph()
    assert graph.add_blocks([second[1], lone_proposal, first[0], lone_agreement, first[1], second[0]]) == 2
    assert sorted(amount for *_, amount in graph.graph.edges(data="amount")) == [3, 4]


def test_an_agreement_by_someone_else_than_the_addressee_does_not_pair():
    proposer, addressee, stranger = identity(), identity(), identity()
    proposal, _ = signed_pair(proposer, addressee, {"amount": 3})
    forged = HalfBlock.create(
        stranger,
        sequence_number=1,
        previous_hash=bytes(32),
        link_public_key=proposer.public_key,
        link_sequence_number=1,
        block_type=PAY,
        transaction={"amount": 3},
        timestamp=START_MS,
    )
    graph = InteractionGraph()
    assert graph.add_blocks([proposal, forged]) == 0
    assert not graph.add_pair(proposal, forged)


def test_decayed_weight_halves_per_half_life_and_ignores_arrival_order():
    seller, buyer = identity(), identity()
    pairs = [
        signed_pair(buyer, seller, {"amount": 8}, timestamp=START_MS + day * DAY_MS, sequence_number=n)
        for n, day in enumerate((0, 10, 20), start=1)
    ]
    in_order, reversed_order = InteractionGraph(half_life_ms=10 * DAY_MS), InteractionGraph(half_life_ms=10 * DAY_MS)
    for pair in pairs:
        in_order.add_pair(*pair)
    for pair in reversed(pairs):
        reversed_order.add_pair(*pair)
    now = START_MS + 30 * DAY_MS
    for graph in (in_order, reversed_order):
        # 8 * (1/8 + 1/4 + 1/2)
        assert graph.decayed_weight(seller.public_key, buyer.public_key, now) == pytest.approx(7.0)
        assert graph.graph[seller.public_key][buyer.public_key]["count"] == 3


def test_half_life_must_be_positive():
    with pytest.raises(ReputationError):
        InteractionGraph(half_life_ms=0)
