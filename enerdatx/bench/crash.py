"""Crash consistency: peers in their own OS process, killed with SIGKILL at random points, then checked.

The worker (``python -m enerdatx.bench.crash worker DIR SEED``) runs a seller and a buyer
peer from DIR (one Lab, real SQLite databases and content stores, durable as by default)
and loops: ingest readings, list a data set, buy it, now and then withdraw an old listing.
It prints each phase as it enters it. On start it first resumes what a kill interrupted:
proposals the seller never answered are sent again, agreements not yet opened are opened.

``kill_loop`` starts the worker, kills it at a random moment, and checks the directories
with ``check_directory`` before the next start: chains valid, balances as the chains
imply, no listing without its key or ciphertext, no purchase without its agreement,
every content block verifies. A last clean run then checks that no trade is stuck.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["KillReport", "check_directory", "kill_loop"]

GRANT = 1000
PRICE_RANGE = (1, 9)  # small prices, so the buyer's grant lasts for hundreds of trades
PHASES = ("ingestion", "listing", "settlement", "withdrawal")  # what the worker prints as it enters each


# --- the worker (the killed process) ----------------------------------------------------


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def _resume(seller: Any, buyer: Any, *, wait: float) -> dict[str, int]:
    """Finish what a kill interrupted: unanswered proposals are sent again, agreements opened."""
    from enerdatx.errors import EnerDatXError
    from enerdatx.market.formats import PAYMENT, parse_listing
    from enerdatx.trustchain.payload import ProposalMessage

    counts = {"resent": 0, "opened": 0, "refused": 0}
    market = buyer.market.market
    for proposal in buyer.store.chain(buyer.public_key):
        if proposal.type != PAYMENT or not proposal.is_proposal or buyer.store.linked(proposal) is not None:
            continue
        counts["resent"] += 1
        peer = buyer.community.peer_for(seller.public_key)
        deadline = time.monotonic() + wait
        while buyer.store.linked(proposal) is None and time.monotonic() < deadline:
            buyer.community.send(peer, ProposalMessage(proposal.encode(), []))
            await asyncio.sleep(0.05)  # the seller answers with an agreement or a rejection
        if buyer.store.linked(proposal) is None:
            counts["refused"] += 1
    for proposal in buyer.store.chain(buyer.public_key):
        agreement = buyer.store.linked(proposal) if proposal.type == PAYMENT and proposal.is_proposal else None
        if agreement is None:
            continue
        listing = parse_listing(seller.store.get_by_hash(proposal.transaction["listing"]))
        if market.keyring.purchase(listing.listing_id) is None:
            try:
                await market.open_agreement(listing, agreement)
                counts["opened"] += 1
            except EnerDatXError:
                pass  # a complaint is recorded; the checker finds no purchase, which is correct
    return counts


async def _work(directory: Path, seed: int, final: bool, concurrency: int = 1) -> None:
    from enerdatx.bench.scenarios import dataset, market_lab
    from enerdatx.errors import EnerDatXError

    rng = random.Random(seed)
    lab = market_lab(directory, seed=seed, propose_timeout=2.0, fetch_timeout=2.0)
    lab.durable = True  # the default configuration: own blocks wait for the disk
    async with lab:
        peers = await lab.start(2)
        counts: dict[str, int] = {}
        for seller, buyer in (peers, peers[::-1]):  # both peers sell and buy, so money goes round
            for name, value in (await _resume(seller, buyer, wait=3.0 if final else 0.5)).items():
                counts[name] = counts.get(name, 0) + value
        _emit("ready", **counts)
        if final:
            return
        for round_ in itertools.count():
            seller, buyer = peers if round_ % 2 == 0 else peers[::-1]
            sell, buy = seller.market, buyer.market
            _emit("phase", phase="ingestion")
            data = dataset(rng.randrange(1_000_000), days=rng.choice((1, 2, 7)))
            _emit("phase", phase="listing")
            listings = [sell.sell(data, price=rng.randint(*PRICE_RANGE)) for _ in range(concurrency)]
            _emit("phase", phase="settlement")
            for listing in listings:
                await buy.market.book.wait_for_listing(listing.listing_id)
            # Several purchases at once: their proposals are signed in one turn and group-committed.
            for outcome in await asyncio.gather(*(buy.buy(listing.listing_id) for listing in listings),
                                                return_exceptions=True):
                if isinstance(outcome, EnerDatXError):
                    _emit("failed", error=type(outcome).__name__)
                elif isinstance(outcome, BaseException):
                    raise outcome
            live = sell.search(seller=seller.public_key)
            if len(live) > 3 and rng.random() < 0.5:
                _emit("phase", phase="withdrawal")
                sell.market.withdraw(rng.choice(live).listing_id)


# --- the checker ----------------------------------------------------------------------------


@dataclass
class Check:
    """Inconsistencies found in one look at a crashed lab's directories (empty: consistent)."""

    problems: list[str] = field(default_factory=list)
    blocks: int = 0
    listings: int = 0
    purchases: int = 0
    temporaries: int = 0

    def fail(self, message: str) -> None:
        """Record one inconsistency."""
        self.problems.append(message)


def check_directory(directory: Path) -> Check:
    """Check the two peers of a crashed lab from their directories alone (nothing is running)."""
    from enerdatx.crypto import decrypt_data
    from enerdatx.ipfs import EmbeddedStore
    from enerdatx.market.formats import LISTING, PAYMENT, commitment, parse_listing, split_opening
    from enerdatx.market.keyring import Keyring
    from enerdatx.market.wallet import Wallet, released_payments
    from enerdatx.trustchain import GENESIS_HASH, BlockStore

    check = Check()
    peers = sorted(p for p in directory.glob("peer-*") if (p / "chain.sqlite").exists())
    views: dict[tuple[bytes, int], bytes] = {}
    for path in peers:
        from enerdatx.crypto import Identity

        me = Identity.load(path / "identity.key").public_key
        store, keyring = BlockStore(path / "chain.sqlite"), Keyring(path / "market.sqlite")
        content = EmbeddedStore(path / "ipfs")
        try:
            check.temporaries += content.blocks.remove_temporaries()
            for cid in content.blocks:
                try:
                    content.blocks.get(cid)
                except Exception as exc:  # noqa: BLE001 - any failure to read back is a finding
                    check.fail(f"{path.name}: content block {cid} does not verify: {exc}")
            chain = store.chain(me)
            previous = GENESIS_HASH
            for number, block in enumerate(chain, start=1):
                if block.sequence_number != number or block.previous_hash != previous or not block.verify_signature():
                    check.fail(f"{path.name}: own chain broken at {number}")
                previous = block.hash
            for block in store.blocks():
                check.blocks += 1
                key = (block.public_key, block.sequence_number)
                if views.setdefault(key, block.hash) != block.hash:
                    check.fail(f"{path.name}: holds another block at {block.sequence_number} than its peer (fork)")
            if store.fraud_proofs():
                check.fail(f"{path.name}: holds a fraud proof: an honest peer forked after a crash")
            spent = earned = 0
            released = released_payments(chain)  # unanswered payments taken back after their deadline
            for block in chain:
                if block.type != PAYMENT:
                    continue
                if block.is_proposal:
                    spent += 0 if block.hash in released else block.transaction["amount"]
                elif (proposal := store.linked(block)) is None:
                    check.fail(f"{path.name}: agreement {block.sequence_number} stored without its proposal")
                elif proposal.hash not in released_payments(store.chain(proposal.public_key)):
                    earned += block.transaction["amount"]
            balance = Wallet(store, grant=GRANT).balance(me)
            if (balance.earned, balance.spent) != (earned, spent) or balance.available < 0:
                check.fail(f"{path.name}: balance {balance} is not what the chain implies ({earned}, {spent})")
            for block in chain:
                if block.type != LISTING:
                    continue
                check.listings += 1
                listing = parse_listing(block)
                opening = keyring.listing_secret(listing.commitment)
                if opening is None:
                    check.fail(f"{path.name}: listing {block.sequence_number} without its key")
                    continue
                data_key, salt = split_opening(opening)
                try:
                    plaintext = decrypt_data(data_key, content.cat(listing.cid))
                except Exception as exc:  # noqa: BLE001
                    check.fail(f"{path.name}: listing {block.sequence_number}: ciphertext unreadable: {exc}")
                    continue
                if commitment(salt, plaintext) != listing.commitment:
                    check.fail(f"{path.name}: listing {block.sequence_number}: data does not match its commitment")
            for purchase in keyring.purchases():
                check.purchases += 1
                agreement = store.get_by_hash(purchase.agreement_hash)
                if agreement is None or store.linked(agreement) is None:
                    check.fail(f"{path.name}: purchase {purchase.listing_id[:12]} without its settled pair")
                    continue
                data_key, _salt = split_opening(purchase.opening)
                try:
                    decrypt_data(data_key, content.cat(purchase.cid))
                except Exception as exc:  # noqa: BLE001
                    check.fail(f"{path.name}: purchase {purchase.listing_id[:12]}: data unreadable: {exc}")
        finally:
            store.close()
            keyring.close()
    return check


# --- the kill loop --------------------------------------------------------------------------


@dataclass
class KillReport:
    """Figures of one kill loop."""

    kills: int = 0
    consistent_after_kill: int = 0
    phases_killed: dict[str, int] = field(default_factory=dict)
    trades_failed: dict[str, int] = field(default_factory=dict)
    resumed: dict[str, int] = field(default_factory=lambda: {"resent": 0, "opened": 0, "refused": 0})
    final: dict[str, int] = field(default_factory=dict)
    stuck_after_final_run: int = 0
    problems: list[str] = field(default_factory=list)
    blocks: int = 0
    listings: int = 0
    purchases: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain JSON values."""
        out = dict(self.__dict__)
        out["problems"] = self.problems[:20]
        out["seconds"] = round(self.seconds, 1)
        return out


def _worker(directory: Path, seed: int, final: bool = False, concurrency: int = 1) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "enerdatx.bench.crash", "worker", str(directory), str(seed),
               "--concurrency", str(concurrency)]
    if final:
        command.append("--final")
    root = Path(__file__).resolve().parent.parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0, env=env)


class _Events:
    """The worker's printed events, read straight off the pipe's descriptor: a buffered reader
    could hold a line that select() no longer reports, and an aimed kill would strike late."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.fd = process.stdout.fileno()
        self.pending = b""
        self.closed = False

    def read(self, until: float, stop_at_ready: bool = False, stop_at_phase: str | None = None) -> list[dict[str, Any]]:
        """Events until ``until`` (monotonic), the worker's exit, or (optionally) 'ready' or its
        entering the phase ``stop_at_phase``; lines after the one it stopped at stay pending."""
        import selectors

        events: list[dict[str, Any]] = []
        with selectors.DefaultSelector() as selector:
            selector.register(self.fd, selectors.EVENT_READ)
            while True:
                for event in self._lines_one_by_one():
                    events.append(event)
                    if (stop_at_ready and event["event"] == "ready") or (
                            stop_at_phase is not None and event.get("phase") == stop_at_phase):
                        return events
                remaining = until - time.monotonic()
                if self.closed or remaining <= 0 or not selector.select(remaining):
                    return events
                chunk = os.read(self.fd, 65536)
                self.closed = not chunk
                self.pending += chunk

    def _lines_one_by_one(self) -> Iterator[dict[str, Any]]:
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)

    def rest(self) -> list[dict[str, Any]]:
        """What a dead worker printed and was not read yet (the pipe keeps it past the kill)."""
        while not self.closed:
            chunk = os.read(self.fd, 65536)
            self.closed = not chunk
            self.pending += chunk
        return list(self._lines_one_by_one())


def kill_loop(directory: Path, kills: int, *, seed: int = 0, max_run: float = 1.5,
              progress: Any = None, concurrency: int = 1, aim: tuple[str, ...] = ()) -> KillReport:
    """Start, SIGKILL at a random moment and check, ``kills`` times; then one clean run that must
    leave no trade stuck. ``concurrency``: purchases the worker makes at once (group commits).

    ``aim``: phases (of ``PHASES``) that every other kill goes for in turn: that kill waits a
    random time, then for the worker to enter the phase, and strikes at once. A short phase
    (listing takes milliseconds) is otherwise hit only by luck. The phase a kill is counted in
    is the last one the worker printed before it died, whatever was aimed at."""
    unknown = set(aim) - set(PHASES)
    if unknown:
        raise ValueError(f"unknown phase(s) {sorted(unknown)}; known: {', '.join(PHASES)}")
    rng = random.Random(seed)
    report = KillReport()
    started = time.monotonic()
    for kill in range(kills):
        process = _worker(directory, seed * 1000 + kill, concurrency=concurrency)
        printed = _Events(process)
        events = printed.read(time.monotonic() + 60, stop_at_ready=True)
        if not events or events[-1]["event"] != "ready":
            process.kill()
            process.wait()
            report.problems.append(f"kill {kill}: the worker did not come up")
            continue
        for name in report.resumed:
            report.resumed[name] += events[-1].get(name, 0)
        events = printed.read(time.monotonic() + rng.uniform(0.05, max_run))
        if aim and kill % 2 == 1:
            events += printed.read(time.monotonic() + 30, stop_at_phase=aim[(kill // 2) % len(aim)])
        process.send_signal(signal.SIGKILL)
        process.wait()
        events += printed.rest()
        phases = [e["phase"] for e in events if e["event"] == "phase"]
        phase = phases[-1] if phases else "resume"
        report.phases_killed[phase] = report.phases_killed.get(phase, 0) + 1
        for event in events:
            if event["event"] == "failed":
                report.trades_failed[event["error"]] = report.trades_failed.get(event["error"], 0) + 1
        report.kills += 1
        check = check_directory(directory)
        if check.problems:
            report.problems.extend(f"kill {kill} ({phase}): {p}" for p in check.problems)
        else:
            report.consistent_after_kill += 1
        if progress is not None:
            progress(kill + 1)
    process = _worker(directory, seed * 1000 + kills, final=True)
    events = _Events(process).read(time.monotonic() + 120)
    process.wait()
    ready = [e for e in events if e["event"] == "ready"]
    report.final = {k: v for k, v in ready[0].items() if k != "event"} if ready else {}
    report.stuck_after_final_run = _stuck(directory) if ready else -1
    check = check_directory(directory)
    report.problems.extend(f"final: {p}" for p in check.problems)
    report.blocks, report.listings, report.purchases = check.blocks, check.listings, check.purchases
    report.seconds = time.monotonic() - started
    return report


def _stuck(directory: Path) -> int:
    """Payments that neither settled (agreement and purchase), nor name a listing its seller withdrew,
    nor expired unanswered (their reservation is released, or will be at the buyer's next purchase)."""
    from enerdatx.crypto import Identity
    from enerdatx.market.formats import PAYMENT, WITHDRAWAL
    from enerdatx.market.keyring import Keyring
    from enerdatx.market.market import RELEASE_GRACE
    from enerdatx.trustchain import BlockStore, now_ms

    stuck = 0
    for path in sorted(directory.glob("peer-*")):
        me = Identity.load(path / "identity.key").public_key
        store, keyring = BlockStore(path / "chain.sqlite"), Keyring(path / "market.sqlite")
        try:
            withdrawn = {b.transaction["listing"] for b in store.blocks(block_type=WITHDRAWAL)}
            for proposal in store.chain(me):
                if proposal.type != PAYMENT or not proposal.is_proposal:
                    continue
                listing = proposal.transaction["listing"]
                settled = store.linked(proposal) is not None and keyring.purchase(listing.hex()) is not None
                deadline = proposal.transaction.get("deadline")
                expired = store.linked(proposal) is None and deadline is not None and now_ms() > deadline + RELEASE_GRACE
                if not settled and listing not in withdrawn and not expired:
                    stuck += 1
        finally:
            store.close()
            keyring.close()
    return stuck


def main(argv: list[str]) -> None:
    """``worker DIR SEED [--final] [--concurrency N]``."""
    if len(argv) < 3 or argv[0] != "worker":
        raise SystemExit("usage: python -m enerdatx.bench.crash worker DIR SEED [--final] [--concurrency N]")
    concurrency = int(argv[argv.index("--concurrency") + 1]) if "--concurrency" in argv else 1
    asyncio.run(_work(Path(argv[1]), int(argv[2]), final="--final" in argv, concurrency=concurrency))


if __name__ == "__main__":
    main(sys.argv[1:])
