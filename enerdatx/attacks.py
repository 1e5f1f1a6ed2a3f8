"""Attack scenarios on the network Lab: real peers, real IPv8 messages, time in seconds.

The in-process versions (:mod:`enerdatx.reputation.scenarios`) count gossip rounds; these run
the same attacks through :class:`enerdatx.lab.Lab` peers, so detection is measured in seconds
of the community's own gossip and fraud rumours. The seed fixes every choice the scenario
makes (who trades with whom, amounts, which peers are victims); packet timing is the
network's, so detection times vary between runs while the bounds do not.

The double spender and the Sybil region trade plain transactions (``Lab.accept``); the key
withholder and the free rider run the real market on the peers they start. All four are the
scenarios of :mod:`enerdatx.cluster.scenarios`, which run unchanged on ``Lab(workers=N)``; the
coroutines here run them on the event loop of an ``async with Lab()`` block.

In a notebook::

    async with Lab(directory, transport="memory") as lab:
        result = await lab_double_spender(lab, honest=8, seed=1)
    result.figures["detected_all_seconds"], result.figures["refused_after_detection"]
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from enerdatx.cluster import scenarios
from enerdatx.cluster.groups import groups_of
from enerdatx.lab import Lab
from enerdatx.reputation.scenarios import ScenarioResult

__all__ = ["lab_double_spender", "lab_free_rider", "lab_key_withholder", "lab_sybil_region"]


async def lab_double_spender(
    lab: Lab, *, honest: int = 8, seed: int = 1, timeout: float = 30.0, trade_timeout: float = 3.0
) -> ScenarioResult:
    """A peer signs two payments at one sequence number (``Lab.fork``) to two honest victims.

    Gain: the agreements it obtained for that one sequence number beyond the one it was
    entitled to. Detection: seconds from the fork until the first and until every honest peer
    stored the fraud proof. Then the forker asks every honest peer for one more trade. The
    scenario is :func:`enerdatx.cluster.scenarios.double_spender`, the fraud run (which also runs
    on Dask workers); it starts its peers in an empty lab.
    """
    return await _on_this_loop(
        scenarios.double_spender, lab, honest=honest, seed=seed, timeout=timeout, trade_timeout=trade_timeout
    )


async def lab_sybil_region(
    lab: Lab,
    *,
    honest: int = 6,
    sybils: int = 4,
    honest_trades: int = 12,
    fake_trades: int = 20,
    real_trades: int = 2,
    fake_amount: int = 10_000,
    seed: int = 1,
    trade_timeout: float = 5.0,
) -> ScenarioResult:
    """Sybils trade huge fake amounts among themselves and sell a little to honest peers.

    Before scoring, every honest peer crawls every chain it knows of (the defender sees
    everything: the Sybils' fake trades included). Gain: the best NetFlow any Sybil has in
    any honest view, against the real work the region did for honest peers. The scenario is
    :func:`enerdatx.cluster.scenarios.sybil_region` (which also runs on Dask workers).
    """
    return await _on_this_loop(
        scenarios.sybil_region, lab, honest=honest, sybils=sybils, honest_trades=honest_trades,
        fake_trades=fake_trades, real_trades=real_trades, fake_amount=fake_amount, seed=seed,
        trade_timeout=trade_timeout,
    )


async def lab_key_withholder(
    lab: Lab,
    *,
    honest: int = 8,
    rounds: int = 4,
    buys_per_round: int = 2,
    price: int = 20,
    seed: int = 1,
    timeout: float = 30.0,
) -> ScenarioResult:
    """A seller lists a data set and, paid, seals a well-formed key that decrypts nothing.

    Runs :func:`enerdatx.cluster.scenarios.key_withholder` (which says what is measured, and
    also runs on Dask workers) on this lab from its own event loop. The peers it starts run the
    lab's market (``Lab(market=...)``), or a default ``MarketService`` each.
    """
    return await _on_this_loop(
        scenarios.key_withholder, lab, honest=honest, rounds=rounds, buys_per_round=buys_per_round,
        price=price, seed=seed, timeout=timeout,
    )


async def lab_free_rider(
    lab: Lab, *, sellers: int = 4, listings_per_seller: int = 2, seed: int = 1, timeout: float = 30.0
) -> ScenarioResult:
    """A peer copies every CID from the order book and fetches the ciphertext, but never pays.

    A paying buyer buys every listing first (the control). Then the free rider fetches each
    listed ciphertext from its seller (served to anyone who asks, and checked against its
    CID), crawls every seller's chain for the agreements that carry sealed keys, and tries to
    open each with its own identity. Gain: the plaintext bytes it obtained. The scenario is
    :func:`enerdatx.cluster.scenarios.free_rider` (which also runs on Dask workers).
    """
    return await _on_this_loop(
        scenarios.free_rider, lab, sellers=sellers, listings_per_seller=listings_per_seller, seed=seed,
        timeout=timeout,
    )


async def _on_this_loop(scenario: Callable[..., ScenarioResult], lab: Lab, **options: Any) -> ScenarioResult:
    """Run a (blocking) shared scenario in a thread, its steps on this event loop, where the lab's peers live."""
    groups_of(lab, loop=asyncio.get_running_loop())
    return await asyncio.to_thread(scenario, lab, **options)
