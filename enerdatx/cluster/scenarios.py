"""Experiments that run unchanged on one process or on N Dask workers: market trades and fraud detection.

Each scenario takes a lab (a single-process :class:`~enerdatx.lab.Lab` or ``Lab(workers=N)``),
starts its own peers in it, drives them through :class:`~enerdatx.cluster.groups.Groups` and
returns pandas DataFrames and a dict of figures.

>>> import tempfile
>>> from enerdatx.lab import Lab
>>> from enerdatx.cluster import scenarios
>>> with Lab(tempfile.mkdtemp(), durable=False, progress=False) as lab:  # doctest: +SKIP
...     run = scenarios.fraud(lab, peers=20)

docs/network.md runs this example.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from enerdatx.bench.stats import percentile
from enerdatx.cluster.groups import groups_of
from enerdatx.errors import EnerDatXError

__all__ = ["FraudRun", "MarketPeers", "MarketRun", "fraud", "market"]

FRAUD_TYPE = "edx.scenario.ping"
PRICE = 5


class MarketPeers:
    """Services of a market peer with ``grant`` tokens; picklable, so Dask can ship it to workers."""

    def __init__(self, grant: int, **options: Any) -> None:
        self.grant = grant
        self.options = options

    def __call__(self, _peer: Any) -> list[Any]:
        from enerdatx.market.service import MarketService

        return [MarketService(grant=self.grant, **self.options)]


@dataclass
class MarketRun:
    """One market run: a row per trade, the chains and balances afterwards, and its figures."""

    trades: pd.DataFrame
    chains: pd.DataFrame
    balances: pd.DataFrame
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class FraudRun:
    """One fraud run: when each honest peer learnt the proof, and the figures."""

    times: pd.DataFrame
    figures: dict[str, Any] = field(default_factory=dict)


def market(
    lab: Any, *, peers: int = 20, trades: int | None = None, price: int = PRICE, concurrency: int = 10,
    days: int = 1, timeout: float = 120.0, market_options: dict[str, Any] | None = None,
) -> MarketRun:
    """Half the peers sell one data set each, the other half buy; ``trades`` distinct (buyer, listing) pairs."""
    sellers_n, buyers_n = peers // 2, peers - peers // 2
    trades = sellers_n * buyers_n if trades is None else trades
    if sellers_n < 1 or trades < 1 or trades > sellers_n * buyers_n:
        raise ValueError(f"need 2+ peers and 1 to {sellers_n * buyers_n} trades, not {peers} peers, {trades} trades")
    groups = groups_of(lab)
    per_buyer = -(-trades // buyers_n)
    contacts = groups.start(peers, MarketPeers(per_buyer * price, **(market_options or {})))
    indices = [c[0] for c in contacts]
    sellers, buyers = indices[:sellers_n], indices[sellers_n:]
    by_group: list[list[int]] = [[] for _ in range(len(groups))]
    for i in sellers:
        by_group[groups.group_of(i)].append(i)
    listings = dict(pair for rows in groups.map("sell", [(g, price, days) for g in by_group]) for pair in rows)
    listing_ids = [listings[i] for i in sellers]
    buyers_by_group: list[list[int]] = [[] for _ in range(len(groups))]
    for i in buyers:
        buyers_by_group[groups.group_of(i)].append(i)
    groups.map("wait_for_listings", [(b, listing_ids, timeout) for b in buyers_by_group])
    # Trade k: buyer k mod B buys listing (k div B + b) mod S: distinct pairs, spread over the sellers.
    plans: list[list[tuple[int, str]]] = [[] for _ in range(len(groups))]
    for k in range(trades):
        b = k % buyers_n
        buyer = buyers[b]
        plans[groups.group_of(buyer)].append((buyer, listing_ids[(k // buyers_n + b) % sellers_n]))
    share = -(-concurrency // len(groups))
    rows = [row for group in groups.map("buy_many", [(plan, share) for plan in plans]) for row in group]
    table = pd.DataFrame(rows)
    done = table[table["error"].isna()]
    seconds = table["finished"].max() - table["started"].min()
    latencies = list(done["seconds"])
    figures = {
        "groups": len(groups),
        "peers": peers,
        "trades": trades,
        "failed_trades": int(table["error"].notna().sum()),
        "trades_per_s": round(float(len(done) / seconds), 1) if seconds > 0 else None,
        "trade_latency_p50_ms": round(1000 * percentile(latencies, 0.50), 2) if latencies else None,
        "trade_latency_p99_ms": round(1000 * percentile(latencies, 0.99), 2) if latencies else None,
    }
    chains = _frame(groups.each("chains"))
    ours = [[i for i in indices if groups.group_of(i) == g] for g in range(len(groups))]
    balances = _frame(groups.map("balances", [(mine,) for mine in ours]))
    return MarketRun(table, chains[chains["peer"].isin(indices)].reset_index(drop=True), balances, figures)


def fraud(lab: Any, *, peers: int = 100, light: bool = False, timeout: float = 120.0, seed: int = 1,
          refusals: bool = False) -> FraudRun:
    """One peer forks its chain at two honest peers; seconds until every honest peer holds the proof.

    The clock starts when the forker sends its two proposals and stops when the last honest
    peer stores a fraud proof; bytes count what each honest peer sent from then until the
    rumour died out. The baseline is one plain transaction in the same network. With
    ``refusals``, the forker then asks every honest peer for one more transaction (as
    :func:`enerdatx.attacks.lab_double_spender` does): ``refused_after_detection`` counts the no's.
    """
    groups = groups_of(lab, light=light)
    if sum(groups.sizes):
        raise EnerDatXError("the fraud scenario starts its own peers in an empty lab")
    if peers < 4 * len(groups):
        raise ValueError(f"the fraud scenario needs at least 4 peers per group ({4 * len(groups)})")
    rng = random.Random(seed)
    groups.each("accept", FRAUD_TYPE)
    contacts = groups.start(peers)
    keys = {index: key for index, key, _, _ in contacts}
    memory = groups.each("memory")
    home = [i for i in keys if groups.group_of(i) == 0]  # the forker and its victims share group 0
    forker, first, second = home[0], *rng.sample(home[1:], 2)
    witness = rng.choice([i for i in keys if i not in (forker, first, second)])
    baseline = groups.on(0, "transact", first, keys[witness], FRAUD_TYPE)

    groups.each("watch_fraud", keys[forker])
    before = {row["peer"]: row["bytes_sent"] for rows in groups.each("traffic") for row in rows}
    attack = groups.submit(0, "fork", forker, first, second, FRAUD_TYPE)
    learned = [row for rows in groups.each("wait_fraud", timeout) for row in rows]
    started = attack.result()
    cpu = groups.each("fraud_cpu_seconds")
    groups.on(0, "rumour_done")
    after = [row for rows in groups.each("traffic") for row in rows]
    sent = [row["bytes_sent"] - before[row["peer"]] for row in after if row["peer"] != forker]

    asked = {}
    if refusals:
        asked = groups.on(0, "ask_everyone", forker, [k for i, k in keys.items() if i != forker], FRAUD_TYPE)

    times = pd.DataFrame(learned)
    times["seconds"] = times["learned_at"] - started
    times["group"] = times["peer"].map(groups.owner)
    seconds = sorted(times["seconds"])
    peer_memory = sum(m["rss"] - m["rss_before_start"] for m in memory) / max(1, sum(m["peers"] for m in memory))
    figures = {
        "groups": len(groups),
        "peers": peers,
        "light": light,
        "honest_with_proof": len(seconds),
        "seconds_all_honest": round(seconds[-1], 3),
        "seconds_first_proof": round(seconds[0], 3),
        "seconds_median_honest": round(statistics.median(seconds), 3),
        # On a busy machine the wall time says how much CPU the run got; this says what it needed.
        "cpu_seconds_to_all_honest": round(sum(cpu), 3),
        "bytes_sent_per_peer_mean": round(statistics.mean(sent)),
        "bytes_sent_per_peer_max": max(sent),
        "memory_per_peer_bytes": round(peer_memory),
        "baseline_transaction_seconds": round(baseline, 4),
    }
    if refusals:
        figures["refused_after_detection"] = asked["refused"]
    return FraudRun(times.sort_values("peer").reset_index(drop=True), figures)


def _frame(per_group: list[list[dict[str, Any]]]) -> pd.DataFrame:
    rows = [row for group in per_group for row in group]
    return pd.DataFrame(rows).sort_values("peer", kind="stable").reset_index(drop=True) if rows else pd.DataFrame()
