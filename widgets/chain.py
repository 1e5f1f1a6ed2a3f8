"""The chain explorer: what one peer's ledger holds, block by block, and who traded with whom.

Everything shown is read from the ledger's public API (its BlockStore and ``validate``), as
seen by one peer: another peer may hold more or less of the same chains.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime

import ipywidgets as widgets
import networkx as nx
import pandas as pd
import plotly.graph_objects as go

from enerdatx.trustchain import NO_COUNTERPARTY, BlockStore, HalfBlock, TrustChain

from .panel import Panel, short_key, show_figure
from .tables import frame_html

__all__ = ["ChainExplorer", "chain_frame", "fraud_frame", "trade_graph"]

CHAIN_COLUMNS = ["seq", "type", "counterparty", "link_seq", "counterpart", "validation", "hash", "time"]


def _name(public_key: bytes, names: Mapping[bytes, str]) -> str:
    if public_key == NO_COUNTERPARTY:
        return "-"
    return names.get(public_key, short_key(public_key))


def _counterpart(block: HalfBlock, store: BlockStore, names: Mapping[bytes, str]) -> str:
    """Where the other half of the pair is, as far as this store knows."""
    if block.is_record:
        return "record"
    other = store.linked(block)
    if other is None:
        return "awaiting agreement" if block.is_proposal else "proposal not held"
    return f"{_name(other.public_key, names)} #{other.sequence_number}"


def chain_frame(ledger: TrustChain, public_key: bytes, names: Mapping[bytes, str] | None = None) -> pd.DataFrame:
    """One chain as ``ledger`` holds it: a row per block with its validation level and counterpart."""
    names = names or {}
    rows = [
        {
            "seq": block.sequence_number,
            "type": block.type,
            "counterparty": _name(block.link_public_key, names),
            "link_seq": block.link_sequence_number,
            "counterpart": _counterpart(block, ledger.store, names),
            "validation": ledger.validate(block).level.value,
            "hash": block.hash.hex()[:16],
            "time": datetime.fromtimestamp(block.timestamp / 1000, UTC).replace(tzinfo=None),
        }
        for block in ledger.store.chain(public_key)
    ]
    return pd.DataFrame(rows, columns=CHAIN_COLUMNS).set_index("seq")


def fraud_frame(store: BlockStore, names: Mapping[bytes, str] | None = None) -> pd.DataFrame:
    """The fraud proofs ``store`` holds: who forked where, the two conflicting blocks, and whether the proof checks."""
    names = names or {}
    rows = [
        {
            "forker": _name(proof.public_key, names),
            "seq": proof.sequence_number,
            "block_a": proof.block_a.hash.hex()[:16],
            "block_b": proof.block_b.hash.hex()[:16],
            "verified": proof.verify(),
        }
        for proof in store.fraud_proofs()
    ]
    return pd.DataFrame(rows, columns=["forker", "seq", "block_a", "block_b", "verified"])


def trade_graph(store: BlockStore, names: Mapping[bytes, str] | None = None) -> go.Figure:
    """A plotly graph of who traded with whom: an edge per pair of peers with countersigned blocks."""
    names = names or {}
    trades: Counter[tuple[bytes, bytes]] = Counter()
    for block in store.blocks():
        if block.is_proposal and not block.is_record and store.linked(block) is not None:
            trades[(block.public_key, block.link_public_key)] += 1
    graph = nx.DiGraph()
    graph.add_nodes_from(sorted(store.public_keys()))
    for (proposer, agreer), count in sorted(trades.items()):
        graph.add_edge(proposer, agreer, trades=count)
    positions = nx.circular_layout(graph) if graph.number_of_nodes() <= 12 else nx.spring_layout(graph, seed=7)

    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for proposer, agreer in graph.edges:
        edge_x += [float(positions[proposer][0]), float(positions[agreer][0]), None]
        edge_y += [float(positions[proposer][1]), float(positions[agreer][1]), None]
    nodes = list(graph.nodes)
    degree = {node: sum(d["trades"] for *_, d in graph.in_edges(node, data=True))
              + sum(d["trades"] for *_, d in graph.out_edges(node, data=True)) for node in nodes}
    figure = go.Figure(
        [
            go.Scatter(x=edge_x, y=edge_y, mode="lines", line={"width": 1, "color": "#888"}, hoverinfo="skip", name="trades"),
            go.Scatter(
                x=[float(positions[node][0]) for node in nodes],
                y=[float(positions[node][1]) for node in nodes],
                mode="markers+text",
                text=[_name(node, names) for node in nodes],
                textposition="top center",
                hovertext=[f"{_name(node, names)}: {degree[node]} countersigned blocks" for node in nodes],
                hoverinfo="text",
                marker={
                    "size": [10 + 2 * min(degree[node], 20) for node in nodes],
                    "color": ["#d62728" if store.is_fraudulent(node) else "#1f77b4" for node in nodes],
                },
                name="peers",
            ),
        ]
    )
    figure.update_layout(
        title="Who traded with whom (red: proven forker)",
        showlegend=False,
        xaxis={"visible": False},
        yaxis={"visible": False},
        height=400,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return figure


class ChainExplorer(Panel):
    """Pick a peer (whose view) and a chain; see its blocks, fraud proofs and the trade graph."""

    def __init__(self, ledgers: Mapping[str, TrustChain]) -> None:
        self.viewer = widgets.Dropdown(description="As seen by")
        self.owner = widgets.Dropdown(description="Chain of")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.blocks = widgets.HTML()
        self.proofs = widgets.HTML()
        self.graph = widgets.Output()
        self.figure: go.Figure | None = None
        super().__init__(
            "Chain explorer",
            [
                widgets.HBox([self.viewer, self.owner, self.refresh_button]),
                self.blocks,
                self.proofs,
                self.graph,
            ],
        )
        self._ledgers: dict[str, TrustChain] = {}
        self.when_picked(self.viewer, self._list_chains)
        self.when_picked(self.owner, self.refresh)
        self.refresh_button.on_click(lambda _: self.attempt(self.refresh))
        self.set_ledgers(ledgers)

    @property
    def names(self) -> dict[bytes, str]:
        """Names of the peers this explorer knows, by public key."""
        return {ledger.public_key: name for name, ledger in self._ledgers.items()}

    def set_ledgers(self, ledgers: Mapping[str, TrustChain]) -> None:
        """Show these peers' ledgers (name -> ledger); keeps the viewer if it is still there."""
        self._ledgers = dict(ledgers)
        self.pick(self.viewer, list(self._ledgers))
        self.attempt(self._list_chains)

    def _list_chains(self) -> None:
        ledger = self._ledgers.get(self.viewer.value)
        if ledger is None:
            self.pick(self.owner, [])
            return self.refresh()
        names = self.names
        keys = sorted(ledger.store.public_keys(), key=lambda key: (key != ledger.public_key, _name(key, names)))
        keys = keys or [ledger.public_key]
        self.pick(self.owner, [(_name(key, names), key) for key in keys])
        self.refresh()

    def refresh(self) -> None:
        """Read the chosen ledger again and redraw the tables and the graph."""
        ledger = self._ledgers.get(self.viewer.value)
        if ledger is None or self.owner.value is None:
            self.blocks.value = "<i>no peers yet</i>"
            self.proofs.value = ""
            self.figure = None
            self.graph.outputs = ()
            # Not the last chain's "peer-000: 7 blocks held ...": those peers may have stopped.
            self.show_info("no peers yet")
            return
        names = self.names
        frame = chain_frame(ledger, self.owner.value, names)
        proofs = fraud_frame(ledger.store, names)
        self.blocks.value = frame_html(frame, "edx-chain", empty="no blocks held")
        self.proofs.value = (
            f"<b>Fraud proofs held</b>{frame_html(proofs, 'edx-fraud', index=False)}" if len(proofs) else ""
        )
        self.figure = trade_graph(ledger.store, names)
        show_figure(self.graph, self.figure)
        owner = _name(self.owner.value, names)
        self.show_info(f"{owner}: {len(frame)} blocks held by {self.viewer.value}; {len(proofs)} fraud proofs")
