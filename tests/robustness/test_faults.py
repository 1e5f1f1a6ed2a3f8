"""Network faults injected into the transport: trades complete or fail cleanly on both sides, fraud is still found."""

from __future__ import annotations

from pathlib import Path

import pytest

from enerdatx.bench.faults import PROFILES, FaultProfile, Faults
from enerdatx.bench.scenarios import TradeReport, faulty_trades, fraud_detection_seconds


def assert_clean(report: TradeReport) -> None:
    """Every attempted trade is accounted for, and the two sides agree on all of them."""
    assert report.completed + report.failed_cleanly + report.listing_not_seen == report.attempted, report
    assert report.inconsistent == 0, report


@pytest.mark.parametrize("name", sorted(PROFILES))
async def test_trades_under_each_fault_profile(tmp_path: Path, name: str) -> None:
    report = await faulty_trades(tmp_path, PROFILES[name], seed=11)
    assert_clean(report)
    assert report.completed >= 1, report
    if name == "none":
        assert report.completed == report.attempted


async def test_seller_restarting_mid_trade(tmp_path: Path) -> None:
    report = await faulty_trades(tmp_path, PROFILES["loss_20"], seed=12, restart_seller_mid_trade=True)
    assert_clean(report)
    assert report.completed + report.recovered_after_heal >= 1


async def test_partition_that_heals_before_the_timeout(tmp_path: Path) -> None:
    report = await faulty_trades(tmp_path, PROFILES["none"], seed=13, partition_seconds=1.0, propose_timeout=5.0)
    assert_clean(report)
    assert report.completed == report.attempted  # proposals are sent again until the partition heals


async def test_partition_longer_than_the_timeout_fails_cleanly(tmp_path: Path) -> None:
    report = await faulty_trades(tmp_path, PROFILES["none"], seed=14, partition_seconds=2.5, propose_timeout=1.0)
    assert_clean(report)
    assert report.completed < report.attempted  # the buyers gave up, with typed errors


async def test_fraud_is_found_under_chaos(tmp_path: Path) -> None:
    seconds = await fraud_detection_seconds(tmp_path, peers=12, loss=0.2, profile=PROFILES["chaos"], seed=15)
    assert seconds < 30


async def test_faults_drop_duplicate_and_partition(tmp_path: Path) -> None:
    from enerdatx.lab import Lab

    async with Lab(tmp_path, "memory", durable=False, progress=False) as lab:
        lab.accept("edx.note")
        alice, bob = await lab.start(2)
        faults = Faults(FaultProfile("dup", duplicate=1.0), seed=1)
        faults.attach(alice)
        await alice.community.propose(bob.public_key, "edx.note", {"n": 1})
        assert faults.duplicated >= 1 and faults.dropped == 0
        faults.partition([alice], [bob])
        with pytest.raises(Exception) as caught:
            await alice.community.propose(bob.public_key, "edx.note", {"n": 2}, timeout=0.5)
        assert type(caught.value).__name__ == "TransactionTimeoutError"
        assert faults.dropped >= 1
