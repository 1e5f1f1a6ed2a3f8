"""Experiments that run unchanged on one process or on N Dask workers: market trades, fraud and the attacks.

``double_spender`` (a :func:`fraud` run with refusals), ``sybil_region``, ``key_withholder`` and
``free_rider`` are the four attacks of :mod:`enerdatx.attacks` (whose ``lab_*`` coroutines run
these on a Lab's own event loop). The attacks return the :class:`~enerdatx.reputation.scenarios.ScenarioResult`
of the in-process versions, on either engine.

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
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from enerdatx.bench.stats import percentile_ms
from enerdatx.cluster.groups import Groups, groups_of
from enerdatx.errors import ConfigurationError, EnerDatXError
from enerdatx.lab import check_seconds
from enerdatx.market.formats import MAX_PRICE
from enerdatx.market.wallet import DEFAULT_GRANT
from enerdatx.meter.synthetic import MAX_DAYS
from enerdatx.reputation.scenarios import PAYMENT, ScenarioResult

__all__ = ["FraudRun", "MarketPeers", "MarketRun", "double_spender", "free_rider", "fraud", "key_withholder",
           "market", "sybil_region"]

FRAUD_TYPE = "edx.scenario.ping"
PRICE = 5


def _whole(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    """Refuse a count or amount that is not a whole number in range, before any peer starts.

    A scenario that failed on its arguments halfway left its peers running in the lab, and
    said so with an IndexError or a TypeError from deep inside.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (
        maximum is not None and value > maximum
    ):
        span = f"from {minimum:,} to {maximum:,}" if maximum is not None else f"of {minimum:,} or more"
        raise ConfigurationError(f"{name} must be a whole number {span}, not {value!r}")


def _market_options(options: Any) -> dict[str, Any]:
    """MarketService options for every peer, refused here: a bad one failed with a TypeError on
    each worker once the peers were starting, and ``grant`` clashed with the scenario's own."""
    from enerdatx.market.service import MarketService

    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ConfigurationError(f"market_options must be a dict of MarketService options, not {type(options).__name__}")
    if "grant" in options:
        raise ConfigurationError("market_options cannot set grant: each buyer is granted what its trades cost")
    try:
        MarketService(**options)
    except TypeError as error:
        raise ConfigurationError(f"market_options: {error}") from None
    return dict(options)


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


def in_flight_shares(concurrency: int, plan_sizes: list[int]) -> list[int]:
    """Split ``concurrency`` trades in flight over groups in proportion to their trades.

    The shares add up to ``concurrency`` (largest remainders first), except that every group
    with trades gets at least one; a group without trades gets none.
    """
    total = sum(plan_sizes)
    if total == 0:
        return [0] * len(plan_sizes)
    exact = [concurrency * size / total for size in plan_sizes]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda g: exact[g] - shares[g], reverse=True)
    for g in by_remainder[: concurrency - sum(shares)]:
        shares[g] += 1
    return [max(share, 1) if size else 0 for share, size in zip(shares, plan_sizes, strict=True)]


def market(
    lab: Any, *, peers: int = 20, trades: int | None = None, price: int = PRICE, concurrency: int = 10,
    days: int = 1, timeout: float = 120.0, market_options: dict[str, Any] | None = None,
) -> MarketRun:
    """Half the peers sell one data set each, the other half buy; ``trades`` distinct (buyer, listing) pairs."""
    _whole("peers", peers, 2)
    _whole("price", price, 1, MAX_PRICE)
    _whole("concurrency", concurrency, 1)
    _whole("days", days, 1, MAX_DAYS)
    check_seconds("timeout", timeout)
    options = _market_options(market_options)
    sellers_n, buyers_n = peers // 2, peers - peers // 2
    trades = sellers_n * buyers_n if trades is None else trades
    _whole("trades", trades, 1, sellers_n * buyers_n)  # distinct (buyer, listing) pairs
    groups = groups_of(lab)
    per_buyer = -(-trades // buyers_n)
    contacts = groups.start(peers, MarketPeers(per_buyer * price, **options))
    indices = [c[0] for c in contacts]
    # Every other peer sells: the groups hold peers in runs, so each group gets its share of
    # both sides (sellers first, then buyers, put all the buying on the last workers).
    sellers, buyers = indices[1::2], indices[0::2]
    by_group: list[list[int]] = [[] for _ in range(len(groups))]
    for i in sellers:
        by_group[groups.group_of(i)].append(i)
    listings = dict(pair for rows in groups.map("sell", [(g, price, days) for g in by_group]) for pair in rows)
    listing_ids = [listings[i] for i in sellers]
    buyers_by_group: list[list[int]] = [[] for _ in range(len(groups))]
    for i in buyers:
        buyers_by_group[groups.group_of(i)].append(i)
    groups.map("wait_for_listings", [(b, listing_ids, timeout) for b in buyers_by_group])
    # The market's first sync may still be queued on UDP: its seconds are no trading (Lab.quiet).
    groups.each("quiet", 0.3, timeout)
    # Trade k: buyer k mod B buys listing (k div B + b) mod S: distinct pairs, spread over the sellers.
    plans: list[list[tuple[int, str]]] = [[] for _ in range(len(groups))]
    for k in range(trades):
        b = k % buyers_n
        buyer = buyers[b]
        plans[groups.group_of(buyer)].append((buyer, listing_ids[(k // buyers_n + b) % sellers_n]))
    shares = in_flight_shares(concurrency, [len(plan) for plan in plans])
    cpu_before = groups.each("cpu_seconds")
    rows = [row for group in groups.map("buy_many", list(zip(plans, shares, strict=True))) for row in group]
    cpu = sum(after - before for before, after in zip(cpu_before, groups.each("cpu_seconds"), strict=True))
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
        "trade_latency_p50_ms": percentile_ms(latencies, 0.50),
        "trade_latency_p99_ms": percentile_ms(latencies, 0.99),
        # Summed over the groups' processes (one group per Dask worker): what the trades cost,
        # whatever the wall time says about how many cores they got.
        "cpu_ms_per_trade": round(1000 * cpu / len(table), 3),
    }
    chains = _frame(groups.each("chains"))
    ours = [[i for i in indices if groups.group_of(i) == g] for g in range(len(groups))]
    balances = _frame(groups.map("balances", [(mine,) for mine in ours]))
    return MarketRun(table, chains[chains["peer"].isin(indices)].reset_index(drop=True), balances, figures)


def fraud(lab: Any, *, peers: int = 100, light: bool = False, timeout: float = 120.0, seed: int = 1,
          refusals: bool = False, trade_timeout: float = 3.0) -> FraudRun:
    """One peer forks its chain at two honest peers; seconds until every honest peer holds the proof.

    The clock starts when the forker sends its two proposals and stops when the last honest
    peer stores a fraud proof; bytes count what each honest peer sent from then until the
    rumour died out. The baseline is one plain transaction in the same network. With
    ``refusals``, the forker then asks every honest peer for one more transaction (waiting
    ``trade_timeout`` for each): ``refused_after_detection`` counts the no's;
    ``victims_countersigned`` says how many victims signed the fork (2: it got one agreement more
    than its sequence number allowed). :func:`double_spender` is this run as an attack.
    """
    _whole("peers", peers, 1)  # at least 4 per group: below, once the groups are known
    check_seconds("timeout", timeout)
    check_seconds("trade_timeout", trade_timeout)
    groups = groups_of(lab, light=light)
    if sum(groups.sizes):
        raise EnerDatXError("the fraud scenario starts its own peers in an empty lab")
    if peers < 4 * len(groups):
        on = f" (4 per worker, on {len(groups)} workers)" if len(groups) > 1 else ""
        raise ConfigurationError(f"the fraud scenario needs at least {4 * len(groups)} peers{on}, not {peers}")
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
    victims_countersigned = groups.on(0, "countersigned", [first, second], keys[forker])
    cpu = groups.each("fraud_cpu_seconds")
    groups.on(0, "rumour_done")
    after = [row for rows in groups.each("traffic") for row in rows]
    sent = [row["bytes_sent"] - before[row["peer"]] for row in after if row["peer"] != forker]
    dropped = sum(row["packets_dropped"] for row in after)

    asked = {}
    if refusals:
        asked = groups.on(0, "ask_everyone", forker, [k for i, k in keys.items() if i != forker], FRAUD_TYPE,
                          trade_timeout)

    times = pd.DataFrame(learned, columns=["peer", "learned_at"])  # the columns even when nobody learnt it
    times["seconds"] = times["learned_at"] - started
    times["group"] = times["peer"].map(groups.owner)
    seconds = sorted(times["seconds"])

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 3)
    peer_memory = sum(m["rss"] - m["rss_before_start"] for m in memory) / max(1, sum(m["peers"] for m in memory))
    figures = {
        "groups": len(groups),
        "peers": peers,
        "light": light,
        "honest_with_proof": len(seconds),
        # No honest peer holding the proof within the timeout has no times: null, not an IndexError.
        "seconds_all_honest": rounded(seconds[-1] if seconds else None),
        "seconds_first_proof": rounded(seconds[0] if seconds else None),
        "seconds_median_honest": rounded(statistics.median(seconds) if seconds else None),
        # On a busy machine the wall time says how much CPU the run got; this says what it needed.
        "cpu_seconds_to_all_honest": round(sum(cpu), 3),
        "bytes_sent_per_peer_mean": round(statistics.mean(sent)),
        "bytes_sent_per_peer_max": max(sent),
        "memory_per_peer_bytes": round(peer_memory),
        "packets_dropped": dropped,  # by simulated loss on UDP, since the peers started
        "baseline_transaction_seconds": round(baseline, 4),
        "victims_countersigned": victims_countersigned,
    }
    if refusals:
        figures["refused_after_detection"] = asked["refused"]
    if not seconds:
        figures["message"] = f"no honest peer stored the fraud proof within {timeout} s"
    return FraudRun(times.sort_values("peer").reset_index(drop=True), figures)


def double_spender(lab: Any, *, honest: int = 8, seed: int = 1, timeout: float = 30.0,
                   trade_timeout: float = 3.0) -> ScenarioResult:
    """A peer signs two payments at one sequence number (``Lab.fork``) to two honest victims: :func:`fraud`.

    Gain: the agreements it obtained for that one sequence number beyond the one it was
    entitled to. Detection: seconds from the fork until the first and until every honest peer
    stored the fraud proof (``timeline``: one row per honest peer). Then the forker asks every
    honest peer for one more trade; ``refused_after_detection`` counts the refusals.
    """
    _whole("honest", honest, 3)  # with the forker, the 4 peers fraud needs
    run = fraud(lab, peers=honest + 1, timeout=timeout, seed=seed, refusals=True, trade_timeout=trade_timeout)
    figures = run.figures
    return ScenarioResult(
        "lab_double_spender",
        seed,
        {"honest": honest, "transport": _transport(lab), "groups": figures["groups"]},
        attacker_gain=max(figures["victims_countersigned"] - 1, 0),
        timeline=run.times.to_dict("records"),
        figures={
            "detected_first_seconds": figures["seconds_first_proof"],
            "detected_all_seconds": figures["seconds_all_honest"] if figures["honest_with_proof"] == honest else None,
            "honest_with_proof": figures["honest_with_proof"],
            "refused_after_detection": figures["refused_after_detection"],
        },
    )


def sybil_region(
    lab: Any, *, honest: int = 6, sybils: int = 4, honest_trades: int = 12, fake_trades: int = 20,
    real_trades: int = 2, fake_amount: int = 10_000, seed: int = 1, trade_timeout: float = 5.0,
) -> ScenarioResult:
    """Sybils trade huge fake amounts among themselves and sell a little to honest peers.

    Before scoring, every honest peer crawls every chain it knows of (the defender sees
    everything: the Sybils' fake trades included). Gain: the best NetFlow any Sybil has in
    any honest view, against the real work the region did for honest peers.
    """
    _whole("honest", honest, 2)  # honest trades pair two honest peers
    _whole("sybils", sybils, 1)
    for name, count in (("honest_trades", honest_trades), ("fake_trades", fake_trades), ("real_trades", real_trades)):
        _whole(name, count, 0)
    _whole("fake_amount", fake_amount, 1)
    check_seconds("trade_timeout", trade_timeout)
    rng = random.Random(seed)
    groups = groups_of(lab)
    contacts = groups.start(honest + sybils)
    groups.each("accept", PAYMENT)  # after the start: plain payments, even on a lab whose peers run a market
    keys = {index: key for index, key, _, _ in contacts}
    good, fake = list(keys)[:honest], list(keys)[honest:]
    plan: list[tuple[int, int, int]] = []  # (payer, payee, amount), in the order of the one-process run
    for _ in range(honest_trades):
        payer, payee = rng.sample(good, 2)
        plan.append((payer, payee, rng.randint(1, 50)))
    for _ in range(fake_trades if sybils > 1 else 0):
        payer, payee = rng.sample(fake, 2)
        plan.append((payer, payee, fake_amount))
    real = []
    for _ in range(real_trades):
        amount = rng.randint(1, 50)
        real.append((rng.choice(good), rng.choice(fake), amount))
    plans: list[list[tuple[int, str, int]]] = [[] for _ in range(len(groups))]
    for payer, payee, amount in plan + real:  # each group's payers in turn, the groups at once
        plans[groups.group_of(payer)].append((payer, keys[payee], amount))
    groups.map("pay_many", [(p, trade_timeout) for p in plans])
    viewers = _by_group(groups, good)
    crawl_seconds = max(groups.map("crawl_all", [(v, list(keys.values())) for v in viewers]))
    sybil_keys = [keys[i] for i in fake]
    views = [row for rows in groups.map("sybil_views", [(v, sybil_keys) for v in viewers]) for row in rows]
    best = max(view["max_sybil_netflow"] for view in views)
    return ScenarioResult(
        "lab_sybil_region",
        seed,
        {"honest": honest, "sybils": sybils, "fake_trades": fake_trades, "transport": _transport(lab),
         "groups": len(groups)},
        attacker_gain=best,
        timeline=sorted(views, key=lambda row: row["peer"]),
        figures={
            "real_work": sum(amount for _, _, amount in real),
            "max_sybil_netflow": best,
            "sybil_pairs_seen": min(view["sybil_pairs_seen"] for view in views),
            "crawl_seconds": round(crawl_seconds, 3),
        },
    )


def key_withholder(
    lab: Any, *, honest: int = 8, rounds: int = 4, buys_per_round: int = 2, price: int = 20, seed: int = 1,
    timeout: float = 30.0,
) -> ScenarioResult:
    """A seller lists a data set and, paid, seals a well-formed key that decrypts nothing.

    Each round ``buys_per_round`` honest buyers try to buy it at once. A victim's market finds
    out when it opens the agreement and records a signed complaint, which the market community
    spreads; an honest buyer refuses a seller its book holds a complaint against. Gain: what
    the withholder was paid for useless keys (at most one payment per honest peer: a victim
    complains itself). Detection: seconds from the first bid until the first and until every
    honest peer holds a complaint against the withholder (``timeline``: one row per peer).
    """
    _whole("honest", honest, 1)
    _whole("rounds", rounds, 1)
    _whole("buys_per_round", buys_per_round, 1)
    _whole("price", price, 1, MAX_PRICE)
    check_seconds("timeout", timeout)
    rng = random.Random(seed)
    groups = groups_of(lab)
    contacts = groups.start(honest + 1, _market_peers(lab))
    keys = {index: key for index, key, _, _ in contacts}
    *good, withholder = list(keys)
    home = groups.group_of(withholder)
    listing_id = groups.on(home, "withhold_keys", withholder, price, rng.randrange(2**31))
    watchers = _by_group(groups, good)
    groups.map("wait_for_listings", [(mine, [listing_id], timeout) for mine in watchers])
    groups.map("watch_complaints", [(keys[withholder], mine) for mine in watchers])
    started = time.time()
    outcomes: list[str] = []
    for _ in range(rounds):
        buyers = _by_group(groups, rng.sample(good, min(buys_per_round, honest)))
        outcomes += [o for group in groups.map("try_to_buy", [(b, listing_id, keys[withholder]) for b in buyers])
                     for o in group]
    left = timeout - (time.time() - started)
    learned = sorted((row for rows in groups.each("wait_complaints", left) for row in rows),
                     key=lambda row: row["peer"])
    times = sorted(row["learned_at"] - started for row in learned)
    for row in learned:
        row["seconds"] = round(row["learned_at"] - started, 3)
    balance = groups.on(home, "balances", [withholder])[0]
    victims = outcomes.count("cheated")
    return ScenarioResult(
        "lab_key_withholder",
        seed,
        {"honest": honest, "rounds": rounds, "buys_per_round": buys_per_round, "price": price,
         "transport": _transport(lab), "groups": len(groups)},
        attacker_gain=victims * price,
        timeline=learned,
        figures={
            "detected_first_seconds": round(times[0], 3) if times else None,
            "detected_all_seconds": round(times[-1], 3) if len(times) == honest else None,
            "honest_with_complaint": len(times),
            "victims": victims,
            "refused": outcomes.count("refused"),
            "failed": outcomes.count("failed"),
            "withholder_received": balance["available"] - balance["grant"],
        },
    )


def free_rider(
    lab: Any, *, sellers: int = 4, listings_per_seller: int = 2, seed: int = 1, timeout: float = 30.0
) -> ScenarioResult:
    """A peer copies every CID from the order book and fetches the ciphertext, but never pays.

    A paying buyer buys every listing first (the control). Then the free rider fetches each
    listed ciphertext from its seller (served to anyone who asks, and checked against its
    CID), crawls every seller's chain for the agreements that carry sealed keys, and tries to
    open each with its own identity. Gain: the plaintext bytes it obtained.
    """
    _whole("sellers", sellers, 1)
    _whole("listings_per_seller", listings_per_seller, 1)
    check_seconds("timeout", timeout)
    rng = random.Random(seed)
    groups = groups_of(lab)
    contacts = groups.start(sellers + 2, _market_peers(lab))
    keys = {index: key for index, key, _, _ in contacts}
    *good, rider, payer = list(keys)
    offers: list[list[tuple[int, int, int]]] = [[] for _ in range(len(groups))]
    for _ in range(listings_per_seller):
        for seller in good:
            data_seed = rng.randrange(2**31)  # the data set first, then its price, as one process always drew them
            offers[groups.group_of(seller)].append((seller, rng.randint(5, 50), data_seed))
    listing_ids = [i for ids in groups.map("sell_each", [(o,) for o in offers]) for i in ids]
    groups.map("wait_for_listings", [(mine, listing_ids, timeout) for mine in _by_group(groups, [rider, payer])])
    paid_for = groups.on(groups.group_of(payer), "buy_each", payer, listing_ids)
    stolen = groups.on(groups.group_of(rider), "free_ride", rider, listing_ids, [keys[i] for i in good])
    return ScenarioResult(
        "lab_free_rider",
        seed,
        {"sellers": sellers, "listings_per_seller": listings_per_seller, "transport": _transport(lab),
         "groups": len(groups)},
        attacker_gain=stolen["plaintext_bytes"],
        figures={**stolen, "paying_buyer_bytes": paid_for},
    )


def _market_peers(lab: Any) -> MarketPeers | None:
    """No services if the lab gives its peers a market already (``Lab(market=...)``), else a market each."""
    return None if getattr(lab, "market", None) is not None else MarketPeers(DEFAULT_GRANT)


def _by_group(groups: Groups, indices: list[int]) -> list[list[int]]:
    """These peers, split by the group that holds them (in their order)."""
    split: list[list[int]] = [[] for _ in range(len(groups))]
    for index in indices:
        split[groups.group_of(index)].append(index)
    return split


def _transport(lab: Any) -> str:
    return str(getattr(lab, "transport", "udp"))  # peers on Dask workers talk UDP


def _frame(per_group: list[list[dict[str, Any]]]) -> pd.DataFrame:
    rows = [row for group in per_group for row in group]
    return pd.DataFrame(rows).sort_values("peer", kind="stable").reset_index(drop=True) if rows else pd.DataFrame()
