"""The attack panel: make a peer fork its chain, and watch honest peers prove it and shut it out."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import ipywidgets as widgets
import pandas as pd

from enerdatx.conditions import wait_within
from enerdatx.errors import NetworkError

from .panel import Panel
from .tables import frame_html, peer_name

if TYPE_CHECKING:
    from enerdatx.lab import Lab
    from enerdatx.peer import Peer
    from enerdatx.trustchain import FraudProof, HalfBlock

__all__ = ["FORK_TYPE", "ForkPanel", "fraud_awareness_frame"]

FORK_TYPE = "edx.demo.fork"  # a block type every lab peer countersigns, so the victims take the bait
PROOF_SECONDS = 10.0


def fraud_awareness_frame(peers: list[Peer]) -> pd.DataFrame:
    """Per peer: how many fraud proofs it holds, and against whom."""
    names = {peer.public_key: peer_name(peer) for peer in peers}
    rows = []
    for peer in peers:
        proofs = peer.store.fraud_proofs()
        forkers = sorted(names.get(proof.public_key, proof.public_key.hex()[:8]) for proof in proofs)
        rows.append({"peer": peer_name(peer), "fraud_proofs": len(proofs), "refuses": ", ".join(forkers)})
    return pd.DataFrame(rows, columns=["peer", "fraud_proofs", "refuses"])


class ForkPanel(Panel):
    """Pick a forker; it signs two different blocks at one sequence number and sends one to each of two victims."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.forker = widgets.Dropdown(description="Forker")
        self.fork_button = widgets.Button(description="Fork its chain", icon="code-fork", button_style="danger")
        self.table = widgets.HTML()
        super().__init__("Attack: a fork", [widgets.HBox([self.forker, self.fork_button]), self.table])
        self._proofs: dict[bytes, asyncio.Event] = {}
        self._watched: set[int] = set()
        self.fork_button.on_click(lambda _: self.fork())
        self.refresh()

    def refresh(self) -> None:
        """Read the peers and the proofs they hold again."""
        names = [peer_name(peer) for peer in self.lab.peers]
        self.pick(self.forker, names[::-1])  # the newest peer by default: the victims are the oldest
        self.table.value = frame_html(fraud_awareness_frame(self.lab.peers), "edx-fraud-awareness",
                                      empty="no peers running", index=False)  # fmt: skip

    def fork(self) -> asyncio.Task[tuple[HalfBlock, HalfBlock] | None]:
        """Make the chosen peer fork against the first two others; wait until a peer proves it; a task."""

        async def fork() -> tuple[HalfBlock, HalfBlock]:
            peers = {peer_name(peer): peer for peer in self.lab.peers}
            forker = peers.get(self.forker.value)
            victims = [peer for name, peer in peers.items() if name != self.forker.value][:2]
            if forker is None or len(victims) < 2:
                raise NetworkError("a fork needs three peers: the forker and two victims")
            self._watch(list(peers.values()))
            proven = self._proofs.setdefault(forker.public_key, asyncio.Event())
            self.lab.accept(FORK_TYPE)
            first, second = victims
            with self.working("Forking", 2) as advance:
                blocks = await self.lab.fork(forker, first, second, FORK_TYPE)
                advance()
                try:
                    await wait_within(proven.wait(), PROOF_SECONDS)
                except TimeoutError:
                    raise NetworkError(f"no peer proved the fork within {PROOF_SECONDS:.0f} s") from None
                advance()
            self.refresh()
            holders = sum(peer.ledger.is_fraudulent(forker.public_key) for peer in peers.values())
            self.show_info(
                f"{self.forker.value} forked at #{blocks[0].sequence_number} against "
                f"{peer_name(victims[0])} and {peer_name(victims[1])}; {holders} peers hold the proof"
            )
            self.changed()
            return blocks

        return self.attempt_async(fork)

    def _watch(self, peers: list[Peer]) -> None:
        for peer in peers:
            if id(peer.ledger) not in self._watched:
                self._watched.add(id(peer.ledger))
                peer.ledger.on_fraud(self._on_fraud)

    def _on_fraud(self, proof: FraudProof) -> None:
        self._proofs.setdefault(proof.public_key, asyncio.Event()).set()
