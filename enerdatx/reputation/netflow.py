"""NetFlow: a Sybil-resistant, subjective reputation by maximum flow (Otte 2016; Seuken and Parkes 2014).

From the evaluator i's view of the contribution graph G (capacity of u -> v = what u gave v):

1. every other node k gets the capacity cap(k) = max(0, MF(k -> i) - MF(i -> k)): what k
   contributed to i, directly or through others, minus what it consumed from i that way;
2. each node k is split into k_in -> k_out with capacity cap(k) (i is not split), every
   edge u -> v becomes u_out -> v_in with its own capacity;
3. the score of j is the maximum flow from j_in to i in that graph.

A node therefore never scores more than its own net contribution, and no flow passes through
a node that consumed as much as it gave. Every flow from a Sybil region to i crosses the
edges from that region to honest peers, so no Sybil scores more than the work the region did
for honest peers, however many identities and fake trades it makes.

Two max-flow engines give the same integers: networkx (any integer size) and
scipy.sparse.csgraph (compiled, about ten times faster, but int32 only: used by ``auto`` when
every capacity of the flow network sums below 2^31).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from typing import Literal, TypeVar

import networkx as nx
import numpy as np
import scipy.sparse
from networkx.algorithms.flow import build_residual_network, shortest_augmenting_path
from scipy.sparse.csgraph import maximum_flow

from enerdatx.errors import ReputationError

Node = TypeVar("Node", bound=Hashable)  # a graph node: a peer's public key in EnerDatX

__all__ = ["Engine", "netflow_capacities", "netflow_scores"]

Engine = Literal["auto", "networkx", "scipy"]
ENGINES: tuple[Engine, ...] = ("auto", "networkx", "scipy")

CAPACITY = "amount"
INT32_LIMIT = 2**31 - 1


class _FlowNetwork:
    """One directed network with integer capacities, asked many max-flow questions."""

    def __init__(self, graph: nx.DiGraph, engine: Engine) -> None:
        if engine not in ENGINES:
            raise ReputationError(f"unknown max-flow engine {engine!r}; use {', '.join(ENGINES)}")
        total = sum(capacity for _, _, capacity in graph.edges(data=CAPACITY))
        if engine == "scipy" and total > INT32_LIMIT:
            raise ReputationError("capacities too large for the scipy engine (int32); use networkx")
        self.graph = graph
        self.use_scipy = engine == "scipy" or (engine == "auto" and total <= INT32_LIMIT)
        if self.use_scipy:
            self.index = {node: position for position, node in enumerate(graph)}
            edges = [(self.index[u], self.index[v], c) for u, v, c in graph.edges(data=CAPACITY) if c > 0]
            rows, cols, data = zip(*edges, strict=True) if edges else ((), (), ())
            size = len(self.index)
            indices = (np.asarray(rows, dtype=np.int32), np.asarray(cols, dtype=np.int32))
            self.matrix = scipy.sparse.csr_array((np.asarray(data, dtype=np.int32), indices), shape=(size, size))
        else:
            self.residual = build_residual_network(graph, CAPACITY)

    def value(self, source: Hashable, sink: Hashable, cutoff: int | None = None) -> int:
        """The maximum flow from source to sink (the networkx engine may stop once it reaches cutoff)."""
        if source == sink or source not in self.graph or sink not in self.graph:
            return 0
        if self.use_scipy:
            return int(maximum_flow(self.matrix, self.index[source], self.index[sink], method="dinic").flow_value)
        # Reusing one residual network saves rebuilding it for each of the many flows.
        residual = shortest_augmenting_path(
            self.graph, source, sink, capacity=CAPACITY, residual=self.residual, cutoff=cutoff
        )
        return int(residual.graph["flow_value"])


def _without(graph: nx.DiGraph, excluded: Collection[Hashable]) -> nx.DiGraph:
    excluded = [node for node in excluded if node in graph]
    return nx.restricted_view(graph, excluded, []) if excluded else graph


def netflow_capacities(
    graph: nx.DiGraph, evaluator: Node, *, exclude: Collection[Node] = (), engine: Engine = "auto"
) -> dict[Node, int]:
    """cap(k) = max(0, MF(k -> evaluator) - MF(evaluator -> k)) for every other node (0 included)."""
    graph = _without(graph, exclude)
    capacities: dict[Node, int] = {node: 0 for node in graph if node != evaluator}
    if evaluator not in graph:
        return capacities
    network = _FlowNetwork(graph, engine)
    # Only a node with a path to the evaluator can have contributed to it.
    reaching = nx.ancestors(graph, evaluator)
    reached = nx.descendants(graph, evaluator)
    for node in reaching:
        contributed = network.value(node, evaluator)
        if contributed == 0:
            continue
        # Consumption beyond the contribution cannot lower the capacity below 0: stop there.
        consumed = network.value(evaluator, node, cutoff=contributed) if node in reached else 0
        capacities[node] = max(0, contributed - consumed)
    return capacities


def netflow_scores(
    graph: nx.DiGraph, evaluator: Node, *, exclude: Collection[Node] = (), engine: Engine = "auto"
) -> dict[Node, int]:
    """The NetFlow score of every node but the evaluator (excluded nodes score 0 and carry no flow)."""
    capacities = netflow_capacities(graph, evaluator, exclude=exclude, engine=engine)
    scores: dict[Node, int] = {node: 0 for node in graph if node != evaluator}
    if evaluator not in graph:
        return scores
    split = _split_by_capacity(_without(graph, exclude), evaluator, capacities)
    network = _FlowNetwork(split, engine)
    for node, capacity in capacities.items():
        if capacity > 0:
            scores[node] = network.value((node, "in"), evaluator)
    return scores


def _split_by_capacity(graph: nx.DiGraph, evaluator: Node, capacities: dict[Node, int]) -> nx.DiGraph:
    """Node k becomes (k, "in") -> (k, "out") with capacity cap(k); nodes of capacity 0 carry nothing, so they go."""

    def entry(node: Node) -> Hashable:
        return node if node == evaluator else (node, "in")

    def exit_(node: Node) -> Hashable:
        return node if node == evaluator else (node, "out")

    def carries(node: Node) -> bool:
        return node == evaluator or capacities.get(node, 0) > 0

    split = nx.DiGraph()
    split.add_node(evaluator)
    for node, capacity in capacities.items():
        if capacity > 0:
            split.add_edge(entry(node), exit_(node), **{CAPACITY: capacity})
    for u, v, capacity in graph.edges(data=CAPACITY):
        if carries(u) and carries(v) and v != u:
            split.add_edge(exit_(u), entry(v), **{CAPACITY: capacity})
    return split
