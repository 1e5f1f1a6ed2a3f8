import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enerdatx.errors import ReputationError
from enerdatx.reputation import netflow_capacities, netflow_scores

from .conftest import contribution_graph

ENGINES = ["networkx", "scipy"]

# (edges contributor -> beneficiary, expected capacities, expected scores), evaluator "i".
HAND_BUILT = {
    "direct contributor": ([("a", "i", 7)], {"a": 7}, {"a": 7}),
    "pure consumer": ([("i", "a", 7)], {"a": 0}, {"a": 0}),
    "net of consumption": ([("a", "i", 7), ("i", "a", 3)], {"a": 4}, {"a": 4}),
    "transitive, bounded by the middle": (
        [("j", "k", 5), ("k", "i", 3)],
        {"j": 3, "k": 3},
        {"j": 3, "k": 3},
    ),
    "consumption flows back through the middle": (
        [("j", "k", 5), ("k", "i", 3), ("i", "j", 2)],
        {"j": 1, "k": 1},
        {"j": 1, "k": 1},
    ),
    "two paths add up": (
        [("a", "b", 4), ("a", "c", 4), ("b", "i", 3), ("c", "i", 2)],
        {"a": 5, "b": 3, "c": 2},
        {"a": 5, "b": 3, "c": 2},
    ),
    "a middle man who consumed as much as he gave blocks the path": (
        [("a", "b", 4), ("a", "c", 4), ("b", "i", 3), ("c", "i", 2), ("i", "b", 3)],
        {"a": 5, "b": 0, "c": 2},
        {"a": 2, "b": 0, "c": 2},
    ),
    "a middle man's capacity bounds what flows through him": (
        [("a", "i", 10), ("i", "a", 6), ("b", "a", 50)],
        {"a": 4, "b": 10},
        {"a": 4, "b": 4},
    ),
    "no path to the evaluator": ([("a", "b", 9)], {"a": 0, "b": 0}, {"a": 0, "b": 0}),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", HAND_BUILT, ids=list(HAND_BUILT))
def test_hand_built_graphs(case, engine):
    edges, capacities, scores = HAND_BUILT[case]
    graph = contribution_graph(edges)
    assert netflow_capacities(graph, "i", engine=engine) == capacities
    assert netflow_scores(graph, "i", engine=engine) == scores


def test_an_evaluator_outside_the_graph_sees_nothing():
    graph = contribution_graph([("a", "b", 9)])
    assert netflow_scores(graph, "i") == {"a": 0, "b": 0}


@pytest.mark.parametrize("engine", ENGINES)
def test_an_excluded_node_scores_nothing_and_carries_no_flow(engine):
    graph = contribution_graph([("a", "b", 5), ("b", "i", 5), ("a", "i", 1)])
    assert netflow_scores(graph, "i", engine=engine)["a"] == 6
    assert netflow_scores(graph, "i", exclude={"b"}, engine=engine) == {"a": 1, "b": 0}


def test_an_unknown_engine_is_refused():
    with pytest.raises(ReputationError, match="engine"):
        netflow_scores(contribution_graph([("a", "i", 1)]), "i", engine="igraph")


def test_amounts_beyond_int32_are_exact_on_auto_and_refused_by_scipy():
    big = 2**40
    graph = contribution_graph([("a", "i", big), ("b", "a", big)])
    assert netflow_scores(graph, "i") == {"a": big, "b": big}
    with pytest.raises(ReputationError, match="int32"):
        netflow_scores(graph, "i", engine="scipy")


def random_graph(draw, nodes: list, max_edges: int, max_amount: int) -> nx.DiGraph:
    edges = draw(
        st.lists(
            st.tuples(st.sampled_from(nodes), st.sampled_from(nodes), st.integers(1, max_amount)).filter(
                lambda edge: edge[0] != edge[1]
            ),
            max_size=max_edges,
        )
    )
    graph = contribution_graph(edges)
    graph.add_nodes_from(nodes)
    return graph


@st.composite
def graphs(draw) -> nx.DiGraph:
    return random_graph(draw, ["i", *range(draw(st.integers(1, 9)))], 40, 30)


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_both_engines_agree(graph):
    assert netflow_scores(graph, "i", engine="networkx") == netflow_scores(graph, "i", engine="scipy")


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_no_score_exceeds_the_capacity_or_the_direct_bound(graph):
    capacities = netflow_capacities(graph, "i")
    for node, score in netflow_scores(graph, "i").items():
        assert 0 <= score <= capacities[node] <= nx.maximum_flow_value(graph, node, "i", capacity="amount")


@st.composite
def sybil_attacks(draw) -> tuple[nx.DiGraph, list, list]:
    """An honest region around evaluator "i", a Sybil region trading freely among itself,
    and a few real trades between the two."""
    honest = ["i", *(f"h{n}" for n in range(draw(st.integers(0, 5))))]
    sybils = [f"s{n}" for n in range(draw(st.integers(1, 8)))]
    graph = random_graph(draw, honest, 15, 20)
    # Fake trades among Sybils cost nothing: arbitrary amounts.
    graph.update(random_graph(draw, sybils, 30, 10_000))
    attack_edges = draw(
        st.lists(
            st.tuples(st.sampled_from(sybils), st.sampled_from(honest), st.integers(1, 20), st.booleans()),
            max_size=5,
        )
    )
    for sybil, honest_peer, amount, sybil_served in attack_edges:
        u, v = (sybil, honest_peer) if sybil_served else (honest_peer, sybil)
        if graph.has_edge(u, v):
            graph[u][v]["amount"] += amount
        else:
            graph.add_edge(u, v, amount=amount)
    return graph, honest, sybils


def real_work(graph: nx.DiGraph, honest: list, sybils: list) -> int:
    """What the Sybil region contributed to honest peers."""
    return sum(graph[u][v]["amount"] for u, v in graph.edges if u in sybils and v in honest)


@settings(max_examples=80, deadline=None)
@given(sybil_attacks())
def test_no_sybil_scores_more_than_the_real_work_of_its_region(attack):
    graph, honest, sybils = attack
    work = real_work(graph, honest, sybils)
    scores = netflow_scores(graph, "i")
    assert all(scores[sybil] <= work for sybil in sybils)


def test_serving_sybils_as_much_as_they_score_can_exceed_their_real_work():
    """NetFlow bounds each score, not the total a peer hands out by serving scores in turn
    (found by hypothesis): s2's path through s0 still counts after s0 was paid back."""
    graph = contribution_graph([("s0", "i", 4), ("s1", "i", 10), ("s1", "s0", 2), ("s2", "i", 1), ("s2", "s0", 1)])
    served = []
    for sybil in ["s1", "s0", "s2", "s2"]:
        score = netflow_scores(graph, "i")[sybil]
        served.append(score)
        graph.add_edge("i", sybil, amount=graph.get_edge_data("i", sybil, {"amount": 0})["amount"] + score)
    assert served == [12, 2, 1, 1]
    assert sum(served) == 16 > 15 == real_work(graph, ["i"], ["s0", "s1", "s2"])
    assert max(netflow_scores(graph, "i").values()) == 0
