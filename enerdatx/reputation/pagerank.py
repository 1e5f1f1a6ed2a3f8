"""Personalised Temporal PageRank: random walks from the evaluator towards those who served it.

The walk starts at the evaluator i. At node u it follows, with probability ``alpha``, an
edge to one of the peers v that contributed to u, chosen in proportion to the value of v's
contributions to u, each decayed by its age (factor 2^(-age / half-life)); otherwise, and at
a node nobody contributed to, it jumps home to i. A peer's score is the share of time the
walk spends there: the scores of all peers but i sum to less than 1.

Because the walk normalises the weights out of every node, ageing every contribution by the
same time changes nothing: only relative age counts (a contribution made one half-life
before another of the same value weighs half as much). Ages are therefore measured from the
newest interaction in the graph, and the scores do not depend on the clock.

Tribler's market (2018) ran personalised PageRank on a time-expanded graph of interactions,
which lets a walk move only forward in time; here time enters as a decay of each edge's
weight instead, so the graph stays one node per peer and grows incrementally.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from typing import TypeVar

import networkx as nx

from enerdatx.errors import ReputationError
from enerdatx.reputation.graph import InteractionGraph

Node = TypeVar("Node", bound=Hashable)  # a graph node: a peer's public key in EnerDatX

__all__ = ["temporal_pagerank"]

ALPHA = 0.85  # the usual damping factor (Brin and Page), also Tribler's
TOLERANCE = 1e-10


def temporal_pagerank(
    interactions: InteractionGraph,
    evaluator: Node,
    *,
    alpha: float = ALPHA,
    exclude: Collection[Node] = (),
) -> dict[Node, float]:
    """The evaluator's Temporal PageRank of every other node (0.0 for excluded ones)."""
    if not 0 < alpha < 1:
        raise ReputationError(f"alpha must be strictly between 0 and 1, not {alpha}")
    excluded = set(exclude)
    walk = nx.DiGraph()
    walk.add_nodes_from(node for node in interactions.graph if node not in excluded)
    walk.add_node(evaluator)
    decay = interactions.decay
    now = max((as_of for _, _, as_of in interactions.graph.edges(data="as_of")), default=0)
    # The walk moves from the beneficiary to the contributor: the reverse of each edge.
    walk.add_weighted_edges_from(
        (beneficiary, contributor, data["decayed"] * decay(now - data["as_of"]))
        for contributor, beneficiary, data in interactions.graph.edges(data=True)
        if contributor not in excluded and beneficiary not in excluded
    )
    ranks = nx.pagerank(
        walk,
        alpha=alpha,
        personalization={evaluator: 1.0},
        dangling={evaluator: 1.0},
        tol=TOLERANCE,
        max_iter=1000,
        weight="weight",
    )
    scores = {node: 0.0 for node in interactions.graph if node != evaluator}
    scores.update((node, rank) for node, rank in ranks.items() if node != evaluator)
    return scores
