"""The garbage collector is kept off started peers while a Lab runs, and gets them back after."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from enerdatx import heap
from enerdatx.lab import Lab


@pytest.fixture(autouse=True)
def no_other_host() -> Iterator[None]:
    if heap.hosts():  # a lab of an earlier test still runs: it holds the heap frozen
        pytest.skip("another lab in this process holds the heap frozen")
    yield
    assert heap.hosts() == 0 and gc.get_freeze_count() == 0


async def test_started_peers_are_frozen_until_their_lab_stops(tmp_path: Path) -> None:
    async with Lab(tmp_path / "a") as first:
        [peer] = await first.start(1)
        assert not _collector_sees(peer)
        async with Lab(tmp_path / "b") as second:
            [other] = await second.start(1)
            assert heap.hosts() == 2 and not _collector_sees(other)
        assert heap.hosts() == 1 and not _collector_sees(peer)  # the first lab still runs
    assert gc.get_freeze_count() == 0 and _collector_sees(peer)


async def test_a_restarted_peer_is_collected(tmp_path: Path) -> None:
    # Frozen objects are never collected; a peer's objects refer to each other in cycles, so
    # without a collection at restart every restart would keep the stopped peer in memory.
    async with Lab(tmp_path) as lab:
        await lab.start(2)
        stopped = weakref.ref(lab.peers[1])
        restarted = await lab.restart(1)
        gc.collect()
        assert stopped() is None and restarted.running
        assert gc.get_freeze_count() > 0


def _collector_sees(thing: object) -> bool:
    # gc.get_objects() lists what the collector walks: the permanent (frozen) generation is not in it.
    return any(tracked is thing for tracked in gc.get_objects())
