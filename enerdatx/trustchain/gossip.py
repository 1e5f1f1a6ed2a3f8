"""Whom gossip goes to: the witnesses of a half-block, and the rumours of fraud proofs.

Each new half-block also goes to its *witnesses*, the known peers whose keys are closest
(XOR) to sha256(public key, sequence number): both halves of a fork reach the same
witnesses, who then hold the proof. A new proof is pushed at once to ``fraud_fanout`` random peers, then in ``fraud_rounds``
more rounds to ``fraud_round_fanout`` each, so lost packets do not stop the rumour. Peers
known to hold a proof (its sender, the forker) are not pushed to again. Network-free: the
community gives the ``push`` callback that sends.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from enerdatx.trustchain.fraud import FraudProof
    from enerdatx.trustchain.settings import TrustChainSettings

__all__ = ["FraudRumours", "Rumour", "witnesses"]

def witnesses(public_key: bytes, sequence_number: int, candidates: Iterable[bytes], count: int) -> list[bytes]:
    """The ``count`` candidates whose keys are XOR-closest to sha256(public key, sequence number)."""
    target = int.from_bytes(hashlib.sha256(public_key + sequence_number.to_bytes(8, "big")).digest(), "big")
    others = [key for key in candidates if key != public_key]
    return heapq.nsmallest(count, others, key=lambda key: int.from_bytes(key, "big") ^ target)


Push = Callable[[bytes, set[bytes], int], None]
"""(encoded proof, peers to leave out, how many to send it to)."""


@dataclass
class Rumour:
    """One forker's proof and how it spreads."""

    proof: bytes
    rounds_left: int
    holders: set[bytes]  # peers known to hold the proof: they sent it to us


class FraudRumours:
    """The fraud proofs this peer spreads, one rumour per forker."""

    def __init__(self, settings: TrustChainSettings, push: Push) -> None:
        self.settings = settings
        self._push = push
        self._rumours: dict[bytes, Rumour] = {}

    def __contains__(self, forker: bytes) -> bool:
        return forker in self._rumours

    def __len__(self) -> int:
        return len(self._rumours)

    def newest(self) -> bytes | None:
        """The forker whose rumour started last, if any."""
        return next(reversed(self._rumours), None)

    def start(self, proof: FraudProof) -> bool:
        """Spread a proof we just learned; False (and nothing sent) if we spread it already."""
        if proof.public_key in self._rumours:
            return False
        rumour = Rumour(proof.encode(), self.settings.fraud_rounds, {proof.public_key})
        self._rumours[proof.public_key] = rumour
        self._push(rumour.proof, rumour.holders, self.settings.fraud_fanout)
        return True

    @property
    def spreading(self) -> bool:
        """True while some rumour has pushes left."""
        return any(rumour.rounds_left > 0 for rumour in self._rumours.values())

    def heard_from(self, forker: bytes, holder: bytes) -> None:
        """``holder`` sent us the proof against ``forker``: it needs no push."""
        rumour = self._rumours.get(forker)
        if rumour is not None:
            rumour.holders.add(holder)

    def round(self) -> None:
        """One more push of every rumour with rounds left (peers pushed to before stay candidates)."""
        for rumour in self._rumours.values():
            if rumour.rounds_left > 0:
                rumour.rounds_left -= 1
                self._push(rumour.proof, rumour.holders, self.settings.fraud_round_fanout)
