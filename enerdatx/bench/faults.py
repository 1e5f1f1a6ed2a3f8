"""Network faults injected into a running peer's transport: loss, duplication, reordering, delay, partitions.

``Faults(profile).attach(peer)`` wraps the ``send`` of the peer's IPv8 endpoint (the
in-memory one or real UDP alike), so every packet the peer sends passes through it:

>>> from enerdatx.bench.faults import PROFILES
>>> PROFILES["chaos"]
FaultProfile(name='chaos', loss=0.1, duplicate=0.1, reorder=0.2, delay=0.005, jitter=0.05)

A partition drops every packet between two groups of peers until it heals.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["FaultProfile", "PROFILES", "Faults"]


@dataclass(frozen=True)
class FaultProfile:
    """What happens to each packet: lost, sent twice, held back (reordered), delayed."""

    name: str
    loss: float = 0.0  # share of packets dropped
    duplicate: float = 0.0  # share of packets delivered twice
    reorder: float = 0.0  # share of packets held back by up to ``jitter`` seconds, so later ones overtake
    delay: float = 0.0  # seconds every packet takes
    jitter: float = 0.0


PROFILES = {
    profile.name: profile
    for profile in (
        FaultProfile("none"),
        FaultProfile("loss_20", loss=0.2),
        FaultProfile("duplicate_30", duplicate=0.3),
        FaultProfile("reorder_30", reorder=0.3, jitter=0.05),
        FaultProfile("delay_50ms", delay=0.05, jitter=0.02, reorder=1.0),
        FaultProfile("chaos", loss=0.1, duplicate=0.1, reorder=0.2, delay=0.005, jitter=0.05),
    )
}


class Faults:
    """Applies one fault profile (and any partitions) to the packets of the peers it is attached to."""

    def __init__(self, profile: FaultProfile, *, seed: int | None = None) -> None:
        self.profile = profile
        self.rng = random.Random(seed)
        self.enabled = True
        self.sent = self.dropped = self.duplicated = self.delayed = 0
        self._partition: tuple[set[Any], set[Any]] | None = None

    def attach(self, peer: Any) -> None:
        """Route every packet ``peer`` sends through the faults (again after each restart)."""
        endpoint = peer.ipv8.endpoint
        original = type(endpoint).send.__get__(endpoint)
        source = peer.address

        def send(address: Any, packet: bytes) -> None:
            self._send(original, source, address, packet)

        endpoint.send = send

    def partition(self, side_a: Iterable[Any], side_b: Iterable[Any]) -> None:
        """Drop every packet between the peers of ``side_a`` and those of ``side_b``."""
        self._partition = ({p.address for p in side_a}, {p.address for p in side_b})

    def heal(self) -> None:
        """End the partition."""
        self._partition = None

    def _cut(self, source: Any, address: Any) -> bool:
        if self._partition is None:
            return False
        a, b = self._partition
        return (source in a and address in b) or (source in b and address in a)

    def _send(self, original: Any, source: Any, address: Any, packet: bytes) -> None:
        self.sent += 1
        if self._cut(source, address):
            self.dropped += 1
            return
        profile = self.profile
        if not self.enabled:
            original(address, packet)
            return
        if self.rng.random() < profile.loss:
            self.dropped += 1
            return
        copies = 2 if self.rng.random() < profile.duplicate else 1
        self.duplicated += copies - 1
        for _ in range(copies):
            delay = profile.delay
            if self.rng.random() < profile.reorder:
                delay += self.rng.uniform(0, profile.jitter)
            if delay > 0:
                self.delayed += 1
                asyncio.get_running_loop().call_later(delay, _quietly, original, address, packet)
            else:
                original(address, packet)


def _quietly(send: Any, address: Any, packet: bytes) -> None:
    try:
        send(address, packet)
    except Exception:  # noqa: BLE001 - a peer that stopped meanwhile: the packet is lost, as on UDP
        pass
