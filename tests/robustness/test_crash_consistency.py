"""A market peer process SIGKILLed at random points: after every kill its directory is consistent."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from enerdatx.bench.crash import check_directory, kill_loop


def assert_survived(report, kills: int) -> None:
    assert report.kills == kills, report.problems
    assert report.problems == []
    assert report.consistent_after_kill == kills
    assert report.stuck_after_final_run == 0
    assert report.listings > 0 and report.purchases > 0


def test_a_few_kills_leave_every_peer_consistent(tmp_path: Path) -> None:
    report = kill_loop(tmp_path, 4, seed=31, max_run=1.0)
    assert_survived(report, 4)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fifty_kills_during_ingestion_listing_and_settlement(tmp_path: Path) -> None:
    # Every other kill is aimed at a phase in turn: listing lasts milliseconds, and a purely
    # random kill lands in it only by luck (one CI run of 50 missed it).
    report = kill_loop(tmp_path, 50, seed=32, aim=("ingestion", "listing", "settlement"))
    assert_survived(report, 50)
    assert set(report.phases_killed) >= {"ingestion", "listing", "settlement"}


def test_group_commit_loses_no_block_under_sigkill(tmp_path: Path) -> None:
    # Four purchases at once: the buyer signs their proposals in one turn of the event loop and
    # they share one commit; a kill between signing and that commit must leave nothing that
    # was sent (a peer holding a block its owner lost would be a fork after the restart).
    report = kill_loop(tmp_path, 6, seed=34, max_run=1.5, concurrency=4)
    assert_survived(report, 6)


def test_the_checker_finds_what_a_bad_crash_would_leave(tmp_path: Path) -> None:
    kill_loop(tmp_path, 1, seed=33, max_run=1.5)
    assert check_directory(tmp_path).problems == []
    seller = tmp_path / "peer-000"
    with sqlite3.connect(seller / "market.sqlite") as db:  # a listing whose key was lost
        db.execute("DELETE FROM listing_secret WHERE rowid = (SELECT MIN(rowid) FROM listing_secret)")
    block = next(p for p in (seller / "ipfs" / "blocks").rglob("baf*") if p.is_file())  # not a temporary
    block.write_bytes(block.read_bytes()[:-1] + b"\x00")  # a content block that no longer verifies
    os.sync()
    problems = check_directory(tmp_path).problems
    assert any("without its key" in p for p in problems), problems
    assert any("does not verify" in p for p in problems), problems
