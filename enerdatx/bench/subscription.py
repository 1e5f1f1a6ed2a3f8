"""Subscription periods settled per second on one seller, and live ingest telegrams/s vs bare dsmr-parser.

Settlement: one seller, ``--subscribers`` peers subscribed to one offer (in-memory IPv8, one
process). For each of ``--periods`` periods the seller lists the period and every subscriber
pays for it and decrypts it (autopay); the clock runs from the first listing to the last
verified key. Baseline, same run, same peers: the same number of ordinary data-set trades
(one listing per period, every peer buys it concurrently), i.e. the settlement subscriptions
reuse, without the subscription layer.

Ingest: DSMR 5 telegrams at 10-second rate into ``readings.sqlite``: from a file (1000 per
transaction), and over loopback TCP from a sender that writes them all at once, each read's
telegrams committed before the next read (what ``peer run --meter`` does; a real meter
delivers one telegram per read), durable (fsync) and not; beside dsmr-parser's own
TelegramParser (full V5 spec and its CRC) on the same telegrams. Whichever of subscription
periods and baseline runs second runs on longer chains; ``--baseline-first`` swaps them.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import operator
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser

from enerdatx.bench.limits import count, require_memory
from enerdatx.bench.stats import percentile

HOUR_MS = 3_600_000
# A full peer holds 234 KB in `bench fraud`; a subscriber also keeps its periods' data: 1 MiB is
# a generous bound, used only to refuse a run that cannot fit before it starts.
SUBSCRIBER_BYTES = 1 << 20
PRICE = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``enerdatx bench subscription``."""
    parser.add_argument("--subscribers", type=count(1, 10_000), default=100, help="subscribers of the one seller")
    parser.add_argument("--periods", type=count(1, 8_760), default=5, help="periods to settle (one hour of 15-min readings each)")
    parser.add_argument("--telegrams", type=count(10, 1_000_000), default=5000, help="10-second telegrams for the ingest figures")
    parser.add_argument("--baseline-first", action="store_true",
                        help="run the data-set trade baseline before the subscription periods")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run both parts and return their figures."""
    require_memory(args.subscribers + 1, SUBSCRIBER_BYTES, "subscriber peers")
    with tempfile.TemporaryDirectory(prefix="enerdatx-bench-sub-") as tmp:
        figures = asyncio.run(_settlement(Path(tmp), args.subscribers, args.periods, args.baseline_first))
        figures.update(_ingest(Path(tmp), args.telegrams))
    figures["machine_note"] = "2 shared cores; other jobs may run: compare figures within one run"
    return figures


async def _settlement(directory: Path, subscribers: int, periods: int, baseline_first: bool) -> dict[str, Any]:
    from enerdatx.lab import Lab
    from enerdatx.market.service import MarketService
    from enerdatx.market.subscription import SubscriptionService
    from enerdatx.market.subscription_formats import Terms
    from enerdatx.meter import cut_dataset, synthetic_household
    from enerdatx.meter.ingest import ReadingStore

    readings = ReadingStore(directory / "readings.sqlite", fsync=False)
    frame = synthetic_household(seed=2, start="2026-03-01", days=2 * periods // 24 + 2, resolution="15min")
    descriptor = {"kind": "electricity", "resolution_seconds": 900, "location": "2628", "household_type": "family"}
    start = pd.Timestamp("2026-03-01T00:00:00Z").value // 1_000_000
    async with Lab(directory / "lab", market=lambda: MarketService(grant=10**9), progress=False,
                   durable=False) as lab:
        seller, *buyers = await lab.start(subscribers + 1)
        services = [SubscriptionService(readings=readings)] + [SubscriptionService() for _ in buyers]
        for peer, service in zip((seller, *buyers), services, strict=True):
            peer.add_service(service)
        subs = [service.subscriptions for service in services]
        offer = subs[0].offer(descriptor, PRICE, period_ms=HOUR_MS, start=start, periods=2 * periods,
                              terms=Terms("benchmark", 1, False))
        for sub in subs[1:]:
            await sub.wait_for(functools.partial(operator.contains, sub.offers, offer.offer_id), timeout=60)
            await sub.subscribe(offer.offer_id)
        market = seller.market.market

        async def subscription_periods(first: int) -> list[float]:
            latencies = []
            for period in range(first, first + periods):
                readings.add(frame.iloc[: (period + 1) * 4 + 1], source="bench")
                listed_at = time.perf_counter()
                subs[0].publish_due()
                for sub in subs[1:]:
                    held = next(iter(sub.held.values()))
                    await sub.wait_for(functools.partial(operator.contains, held.trades, period), timeout=120)
                latencies.append(time.perf_counter() - listed_at)
            return latencies

        async def dataset_trades(first: int) -> None:
            # The same settlements as ordinary data-set trades between the same peers.
            for period in range(first, first + periods):
                lo = pd.Timestamp(start + period * HOUR_MS, unit="ms", tz="UTC")
                dataset = cut_dataset(frame.loc[lo - pd.Timedelta("15min"):lo + pd.Timedelta("75min")],
                                      start=lo, end=lo + pd.Timedelta("1h"), resolution="900s",
                                      location="2628", household_type="family", kind="electricity")
                listing = market.sell(dataset.plaintext, dataset.descriptor, PRICE)

                async def buy(peer: Any, listing_id: str = listing.listing_id) -> None:
                    await peer.market.buy(listing_id, timeout=60)

                await asyncio.gather(*(buy(peer) for peer in buyers))

        # Whichever runs second runs on chains that much longer: --baseline-first swaps them.
        first_sub, first_base = (periods, 0) if baseline_first else (0, periods)
        if baseline_first:
            base_started = time.perf_counter()
            await dataset_trades(first_base)
            base_elapsed = time.perf_counter() - base_started
        started = time.perf_counter()
        latencies = await subscription_periods(first_sub)
        elapsed = time.perf_counter() - started
        if not baseline_first:
            base_started = time.perf_counter()
            await dataset_trades(first_base)
            base_elapsed = time.perf_counter() - base_started
    readings.close()
    settled = subscribers * periods
    return {
        "subscribers": subscribers,
        "periods": periods,
        "period_settlements": settled,
        "period_settlements_per_s": round(settled / elapsed, 1),
        "periods_to_all_subscribers_per_s": round(periods / elapsed, 3),
        "period_latency_s_p50": round(percentile(latencies, 0.5), 3),
        "period_latency_s_max": round(max(latencies), 3),
        "baseline_dataset_trades_per_s": round(settled / base_elapsed, 1),
        "subscription_vs_baseline": round((settled / elapsed) / (settled / base_elapsed), 2),
        "baseline_ran_first": baseline_first,
    }


def _telegrams(count: int) -> list[str]:
    from enerdatx.meter import render_telegrams, synthetic_household

    frame = synthetic_household(seed=7, start="2026-01-01", days=-(-count * 10 // 86400), resolution="10s", gas=True)
    return list(render_telegrams(frame.iloc[:count], "v5"))


def _ingest(directory: Path, count: int) -> dict[str, Any]:
    from enerdatx.meter.ingest import ReadingStore, ingest_dsmr

    telegrams = _telegrams(count)
    parser = TelegramParser(telegram_specifications.V5)
    started = time.perf_counter()
    for telegram in telegrams:
        parser.parse(telegram)
    bare_s = time.perf_counter() - started

    path = directory / "p1.txt"
    path.write_text("".join(telegrams), encoding="ascii")
    store = ReadingStore(directory / "file.sqlite")
    started = time.perf_counter()
    ingest_dsmr(path, store)
    file_s = time.perf_counter() - started
    assert len(store) == count
    store.close()

    live_durable = _ingest_tcp(directory / "live.sqlite", telegrams, fsync=True)
    live_fast = _ingest_tcp(directory / "live-nofsync.sqlite", telegrams, fsync=False)
    return {
        "telegrams": count,
        "dsmr_parser_bare_telegrams_per_s": round(count / bare_s),
        "ingest_file_telegrams_per_s": round(count / file_s),
        "ingest_live_tcp_telegrams_per_s": live_durable,
        "ingest_live_tcp_nofsync_telegrams_per_s": live_fast,
    }


def _ingest_tcp(path: Path, telegrams: list[str], *, fsync: bool) -> int:
    """Telegrams/s over loopback TCP, one transaction per telegram (``peer run --meter``)."""
    from enerdatx.meter.ingest import ReadingStore, ingest_dsmr

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    payload = "".join(telegrams).encode("ascii")

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(payload)

    sender = threading.Thread(target=serve, daemon=True)
    sender.start()
    store = ReadingStore(path, fsync=fsync)
    started = time.perf_counter()
    ingest_dsmr(f"tcp://127.0.0.1:{port}", store, timeout=30)
    elapsed = time.perf_counter() - started
    stored = len(store)
    store.close()
    sender.join(5)
    server.close()
    if stored != len(telegrams):
        raise SystemExit(f"live ingest stored {stored} of {len(telegrams)} telegrams")
    return round(stored / elapsed)
