"""Peers in separate OS processes over real UDP on 127.0.0.1: trading, joining, SIGKILL."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from enerdatx.errors import ConfigurationError, PeerProcessError, TransactionTimeoutError
from enerdatx.lab import Lab, PeerProcess
from enerdatx.trustchain import BlockStore, HalfBlock
from tests.network.chains import PING, assert_own_chain_valid


def stored_chain(directory: Path, public_key: bytes) -> list[HalfBlock]:
    """A stopped peer's own chain, read from its database."""
    store = BlockStore(directory / "chain.sqlite")
    try:
        return store.chain(public_key)
    finally:
        store.close()


async def test_two_processes_trade_over_udp(tmp_path: Path) -> None:
    other = PeerProcess(tmp_path / "other", accept=[PING])
    await other.start()
    try:
        async with Lab(tmp_path / "lab", transport="udp") as lab:
            (peer,) = await lab.start(1)
            peer.add_contacts([(other.public_key, other.address)])
            agreements = [
                (await peer.community.propose(other.public_key, PING, {"n": n}, timeout=5))[1] for n in range(5)
            ]
            assert await peer.community.crawl(other.public_key) == agreements
    finally:
        assert await other.stop() == 0
    assert stored_chain(other.directory, other.public_key) == agreements


async def test_a_peer_given_only_an_address_joins(tmp_path: Path) -> None:
    async with Lab(tmp_path / "lab", transport="udp") as lab:
        (peer,) = await lab.start(1)
        introduced = asyncio.get_running_loop().create_future()
        callback = peer.community.introduction_request_callback

        def on_introduction(*args) -> None:
            callback(*args)
            if not introduced.done():
                introduced.set_result(None)

        peer.community.introduction_request_callback = on_introduction
        newcomer = PeerProcess(tmp_path / "newcomer", peers=[peer.address])
        await newcomer.start()
        try:
            await asyncio.wait_for(introduced, 10)
            assert peer.community.peer_for(newcomer.public_key) is not None
        finally:
            assert await newcomer.stop(signum=signal.SIGINT) == 0
        assert newcomer.process is not None and newcomer.process.stdout is not None
        last = json.loads((await newcomer.process.stdout.read()).splitlines()[-1])
        assert last == {"event": "stopped", "public_key": newcomer.public_key.hex()}


async def test_sigkill_mid_transaction_then_restart(tmp_path: Path) -> None:
    victim = PeerProcess(tmp_path / "victim", accept=[PING])
    await victim.start()
    async with Lab(tmp_path / "lab", transport="udp") as lab:
        (peer,) = await lab.start(1)
        peer.add_contacts([(victim.public_key, victim.address)])
        outcomes: list[object] = []
        progressed = asyncio.Event()
        stopping = False

        async def stream() -> None:
            """Propose back to back, so that one transaction is always in flight."""
            while not stopping:
                try:
                    outcomes.append(await peer.community.propose(victim.public_key, PING, {}, timeout=8))
                except TransactionTimeoutError as exc:
                    outcomes.append(exc)
                progressed.set()

        streaming = asyncio.ensure_future(stream())
        while len(outcomes) < 5:
            progressed.clear()
            await progressed.wait()
        await victim.kill()
        await victim.start()  # same directory, same port
        stopping = True
        await streaming

        assert all(isinstance(o, tuple) for o in outcomes[:5])
        assert all(isinstance(o, tuple | TransactionTimeoutError) for o in outcomes)
        crawled = await peer.community.crawl(victim.public_key)
        assert [b.sequence_number for b in crawled] == list(range(1, len(crawled) + 1))
        _, agreement = await peer.community.propose(victim.public_key, PING, {"after": "restart"}, timeout=5)
        assert agreement.sequence_number == len(crawled) + 1
        assert await victim.stop() == 0

        victim_chain = stored_chain(victim.directory, victim.public_key)
        assert victim_chain == crawled + [agreement]
        assert_own_chain_valid(peer)
        # Every agreement the victim signed answers a proposal of ours; each one we received is its.
        for block in victim_chain:
            proposal = peer.store.get(peer.public_key, block.link_sequence_number)
            assert proposal is not None and proposal.link_public_key == victim.public_key
            held = peer.store.linked(proposal)
            assert held is None or held == block
        completed = [o for o in outcomes if isinstance(o, tuple)]
        assert all(agreement in victim_chain for _, agreement in completed)


@pytest.mark.parametrize(("options", "message"), [
    ({"port": -1}, "port is a UDP port from 0 to 65535, not -1"),
    ({"port": 70000}, "port is a UDP port from 0 to 65535"),
    ({"port": True}, "port is a UDP port"),
    ({"accept": "edx.note"}, "accept is a list of block types, not the one string"),  # took "e", "d", "x", ...
    ({"accept": [""]}, "no block can be of type ''"),
    ({"peers": [("127.0.0.1", 0)]}, "a peer's port is a UDP port from 1 to 65535, not 0"),
    ({"peers": ["127.0.0.1:8090"]}, "peers are \\(host, port\\) pairs"),
    ({"peers": [("", 8090)]}, "peers are \\(host, port\\) pairs"),
])
def test_a_peer_process_refuses_bad_options_before_spawning(tmp_path: Path, options: dict, message: str) -> None:
    # The child refused each with a usage error; here that was only "did not start: {'event': 'exited'}".
    with pytest.raises(ConfigurationError, match=message):
        PeerProcess(tmp_path / "p", **options)
    with pytest.raises(ConfigurationError, match="expected a peer directory"):
        PeerProcess("")


async def test_a_peer_process_is_one_process_stopped_as_often_as_asked(tmp_path: Path) -> None:
    # start() again spawned a second child (which could not bind the first one's port) and lost
    # the first one's handle: it ran on, unstoppable. stop() or kill() before start() was an
    # AssertionError, and after the exit a ProcessLookupError.
    peer = PeerProcess(tmp_path / "p")
    for call in (peer.stop, peer.kill):
        with pytest.raises(PeerProcessError, match="never started"):
            await call()
    await peer.start()
    first = peer.process
    assert first is not None
    try:
        with pytest.raises(PeerProcessError, match=f"the peer process {first.pid} runs already"):
            await peer.start()
        assert peer.process is first and peer.running
    finally:
        assert await peer.stop() == 0
    assert await peer.stop() == 0 and await peer.kill() == 0 and not peer.running


async def test_a_peer_process_not_ready_in_time_is_killed(tmp_path: Path) -> None:
    # A TimeoutError, and the child ran on with the directory locked.
    peer = PeerProcess(tmp_path / "p")
    with pytest.raises(PeerProcessError, match="did not say it was ready in 0.01 s"):
        await peer.start(timeout=0.01)
    assert peer.process is not None and peer.process.returncode is not None
    for timeout in (float("nan"), 0, "30"):
        with pytest.raises(ConfigurationError, match="timeout must be a positive number of seconds"):
            await peer.start(timeout=timeout)
