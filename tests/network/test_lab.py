"""The Lab: many peers in one process, trading, cheating, losing packets, restarting."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from ipv8.messaging.interfaces.udp.endpoint import UDPv4Address

from enerdatx.errors import (
    ChainIdentityError,
    ConfigurationError,
    EncodingError,
    FraudDetectedError,
    NetworkError,
    StorageError,
    TransactionRejectedError,
    TransactionTimeoutError,
)
from enerdatx.lab import Lab, MemoryEndpoint
from enerdatx.market.service import MarketService
from enerdatx.peer import Peer
from tests.network.chains import PING, assert_consistent, fraud_everywhere, trade
from tests.support.lab_options import BAD_LAB_OPTIONS


async def test_peers_have_their_own_directories_and_restart_from_them(tmp_path: Path) -> None:
    async with Lab(tmp_path, transport="memory") as lab:
        lab.accept(PING)
        a, b = await lab.start(2)
        assert {p.name for p in a.directory.iterdir()} >= {"identity.key", "chain.sqlite", "ipfs"}
        assert a.directory != b.directory
        cid = a.content.add_bytes(b"hello world\n")
        assert cid == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o" and not b.content.has(cid)
        await a.community.propose(b.public_key, PING, {"n": 1})
        restarted = await lab.restart(1)
        assert restarted is not b and restarted.public_key == b.public_key
        assert restarted.store.latest_sequence_number(b.public_key) == 1
        _, agreement = await a.community.propose(b.public_key, PING, {"n": 2})
        assert agreement.sequence_number == 2
        assert_consistent(lab.peers)
    assert not b.running and (tmp_path / "peer-001" / "chain.sqlite").exists()


def test_sync_lab_for_scripts(tmp_path: Path) -> None:
    with Lab(tmp_path, transport="udp") as lab:
        lab.accept(PING)
        a, b = lab.run_sync(lab.start(2))
        assert a.address[0] == "127.0.0.1"
        assert all(peer.community.bootstrappers == [] for peer in (a, b))  # no public trackers
        proposal, agreement = lab.run_sync(a.community.propose(b.public_key, PING, {}))
        assert lab.run_sync(b.community.crawl(a.public_key)) == [proposal]
        port = b.address[1]
        b = lab.run_sync(lab.restart(1))
        assert b.address[1] == port and b.store.chain(b.public_key) == [agreement]
        _, again = lab.run_sync(a.community.propose(b.public_key, PING, {}))
        assert again.sequence_number == 2
    assert not a.running


def test_lab_refuses_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="transport"):
        Lab(tmp_path, transport="tcp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="packet_loss"):
        Lab(tmp_path, transport="udp", packet_loss=1.0)
    # retry_interval 0 or -1 resent a request in a busy loop until its timeout; "x" and NaN failed in a task.
    for interval in (0, -1, float("nan"), "x"):
        with pytest.raises(ConfigurationError, match="retry_interval must be a finite number of seconds above 0"):
            Lab(tmp_path, settings={"retry_interval": interval})
        with pytest.raises(ConfigurationError, match="MarketSettings retry_interval"):
            MarketService(settings={"retry_interval": interval})
    # A NaN or negative timeout gave every purchase up at once; a bad grant failed only at the peer's start.
    for timeout in (0, -1, float("nan"), float("inf"), "10", True):
        with pytest.raises(ConfigurationError, match="propose_timeout is a finite number of seconds above 0"):
            MarketService(propose_timeout=timeout)  # type: ignore[arg-type]
    for grant in (-1, 1.5, "1000", True):
        with pytest.raises(ConfigurationError, match="grant is a whole number of tokens"):
            MarketService(grant=grant)  # type: ignore[arg-type]
    for name, value in (("witnesses", -1), ("gossip_fanout", 1.5), ("anonymize", 1), ("crawl_timeout", float("inf"))):
        with pytest.raises(ConfigurationError, match=f"TrustChainSettings {name} must be"):
            Lab(tmp_path, settings={name: value})
    for options, message in BAD_LAB_OPTIONS:
        with pytest.raises(ConfigurationError, match=message):
            Lab(tmp_path, **options)
    with Lab(tmp_path, transport="memory") as lab:
        for n in (-1, 1.5, "2", True):  # True started one peer; 1.5 and "2" failed with range's TypeError
            with pytest.raises(ConfigurationError, match="n is a whole number of peers, 0 or more"):
                lab.run_sync(lab.start(n))  # type: ignore[arg-type]
        assert lab.peers == [] and not (tmp_path / "peer-000").exists()
        with pytest.raises(ConfigurationError, match=r"10,000,000 more peers need about 4,882.8 GiB .* available"):
            lab.run_sync(lab.start(10**7))  # started peers until the machine swapped
        assert lab.peers == [] and not (tmp_path / "peer-000").exists()
        with pytest.raises(ConfigurationError, match="no block can be of type 5"):
            lab.accept(5)  # type: ignore[arg-type]  # was kept, and never matched a block
        assert lab.accepted == set()
        with pytest.raises(ConfigurationError, match="the lab has no running peers: no peer 0 to restart"):
            lab.run_sync(lab.restart(0))  # was IndexError: list index out of range
        lab.run_sync(lab.start(2))
        for i in (-1, 2, "0", True):  # -1 restarted the last peer; "0" was a TypeError of list indices
            with pytest.raises(ConfigurationError, match=rf"i is the number of a running peer, 0 to 1, not {i!r}"):
                lab.run_sync(lab.restart(i))  # type: ignore[arg-type]


# 2,200 full peers opened the 20,000 files a process may open here; the next one failed deep in
# sqlite3 ("unable to open database file"), half-started. Run in a child with its own limits.
_START_UNDER_A_LIMIT = """
import resource, sys, tempfile
from enerdatx import Lab
from enerdatx.errors import ConfigurationError
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])))
with Lab(tempfile.mkdtemp(), "memory", market=True, progress=False, durable=False) as lab:
    try:
        peers = lab.run_sync(lab.start(30))
    except ConfigurationError as error:
        print("refused:", error, len(lab.peers))
    else:
        print("started", len(peers), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


@pytest.mark.parametrize(("soft", "hard", "expected"), [
    (150, 150, "refused: 30 more peers need about 300 open files (about 10 each), but this process may open 150 (ulimit -n)"),
    (150, 2000, "started 30 "),  # the soft limit is raised as far as needed, within the hard one
])
def test_more_peers_than_the_open_file_limit_allows_are_refused_before_any_starts(
    soft: int, hard: int, expected: str
) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", _START_UNDER_A_LIMIT, str(soft), str(hard)],
                            capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.startswith(expected), result.stdout + result.stderr
    if expected.startswith("refused"):
        assert result.stdout.rstrip().endswith(" 0")  # no peer was left half-started
    else:
        assert 300 <= int(result.stdout.split()[-1]) <= 2000


@pytest.mark.parametrize("block_type", ["", 5, "x" * 65, "caf\u00e9", "new\nline"])
def test_a_policy_for_a_type_no_block_can_have_is_refused(tmp_path: Path, block_type: object) -> None:
    # Registered silently: the lab (and its restarted peers) then never countersigned anything.
    with Lab(tmp_path, transport="memory") as lab:
        with pytest.raises(ConfigurationError, match="no block can be of type .*: a block type is"):
            lab.accept(block_type)  # type: ignore[arg-type]
        assert lab.accepted == set()
        (peer,) = lab.run_sync(lab.start(1))
        with pytest.raises(EncodingError, match="a block type is"):
            peer.ledger.register_policy(block_type, lambda _ledger, _proposal: None)  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["", " ", "127.0.0.1 ", "::1", "300.1.1.1", "127.0.0.1\x00"])
def test_a_udp_lab_refuses_a_host_it_cannot_bind(tmp_path: Path, host: str) -> None:
    # "" bound every interface (0.0.0.0) unasked; the others started peers without a socket, whose
    # address was an AttributeError from inside IPv8.
    with pytest.raises(ConfigurationError, match="host"):
        Lab(tmp_path, transport="udp", host=host)
    assert list(tmp_path.iterdir()) == []
    Lab(tmp_path, transport="memory", host=host)  # no socket: nothing to bind


@pytest.mark.parametrize("directory", ["", "  ", "peers\x00"])
async def test_lab_and_peer_refuse_a_directory_that_names_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 directory: str) -> None:
    # "" is the current directory to the OS: the peers (or the peer itself) were made there, unasked.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="expected a directory for the lab's peers"):
        Lab(directory)
    with pytest.raises(ConfigurationError, match="expected a peer directory"):
        await Peer.open(directory, MemoryEndpoint(UDPv4Address("10.9.9.9", 7759)))
    assert list(tmp_path.iterdir()) == []


async def test_a_peer_that_fails_to_start_takes_the_others_of_its_call_down_with_it(tmp_path: Path) -> None:
    # peer-001 cannot start; peer-000 and peer-002 of the same batch did, and were lost: running,
    # unknown to the lab, so stop() never stopped them and their directories stayed locked.
    (tmp_path / "peer-001").write_text("not a directory")
    async with Lab(tmp_path, transport="memory", market=True) as lab:
        with pytest.raises(StorageError, match="peer-001: not a directory"):
            await lab.start(3)
        assert lab.peers == []
        async with Lab(tmp_path, transport="memory") as other:
            (peer,) = await other.start(1)  # peer-000 is free again
            assert peer.directory == tmp_path / "peer-000"
        (tmp_path / "peer-001").unlink()
        peers = await lab.start(3)
        assert len(peers) == 3 and all(peer.has_market for peer in peers)


async def test_a_peer_whose_service_fails_is_stopped_again(tmp_path: Path) -> None:
    def broken(peer: Peer) -> list[Any]:
        raise ValueError("no such service")

    async with Lab(tmp_path, transport="memory", services=broken) as lab:
        with pytest.raises(ValueError, match="no such service"):
            await lab.start(1)
    async with Lab(tmp_path, transport="memory") as lab:  # the opened peer released its directory
        assert len(await lab.start(1)) == 1


@pytest.mark.slow
async def test_hundred_peers_trade_and_stay_consistent(tmp_path: Path) -> None:
    rng = random.Random(5)
    async with Lab(tmp_path, durable=False, seed=5) as lab:
        lab.accept(PING)
        peers = await lab.start(100)
        outcomes = await trade(peers, 3, rng)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        assert failures == []
        assert assert_consistent(peers) == 300
        # Gossip spread the blocks beyond the two parties of each transaction.
        assert sum(peer.store.count() for peer in peers) > 3 * 2 * 300


async def test_forker_is_detected_and_refused_by_every_honest_peer(tmp_path: Path) -> None:
    async with Lab(tmp_path, durable=False, seed=1) as lab:
        lab.accept(PING)
        peers = await lab.start(30)
        forker, honest = peers[0], peers[1:]
        await trade(honest, 1, random.Random(1))
        await lab.fork(forker, honest[0], honest[1], PING)
        await fraud_everywhere(honest, forker, timeout=10)
        for peer in honest:
            with pytest.raises(FraudDetectedError):
                await peer.community.propose(forker.public_key, PING, {})
        refusals = await asyncio.gather(
            *(forker.community.propose(p.public_key, PING, {}, timeout=5) for p in honest[:10]),
            return_exceptions=True,
        )
        assert all(isinstance(r, TransactionRejectedError) and r.reason == "fraud" for r in refusals)
        assert_consistent(honest)


@pytest.mark.slow
async def test_with_a_fifth_of_packets_lost_trades_complete_and_fraud_is_found(tmp_path: Path) -> None:
    rng = random.Random(20)
    async with Lab(tmp_path, packet_loss=0.2, durable=False, seed=20) as lab:
        lab.accept(PING)
        peers = await lab.start(40)
        forker, honest = peers[0], peers[1:]
        outcomes = await trade(honest, 2, rng, timeout=15)
        assert [o for o in outcomes if isinstance(o, BaseException)] == []
        assert sum(p.ipv8.endpoint.bytes_up for p in peers) > 0
        await lab.fork(forker, honest[0], honest[1], PING)
        await fraud_everywhere(honest, forker, timeout=15)
        # Lost packets may leave an agreement known to one side only until retried; none may differ.
        assert_consistent(honest)


async def test_restart_mid_transaction_completes_or_times_out(tmp_path: Path) -> None:
    async with Lab(tmp_path) as lab:
        lab.accept(PING)
        a, b = await lab.start(2)
        pending = asyncio.ensure_future(a.community.propose(b.public_key, PING, {}, timeout=3))
        await asyncio.sleep(0)  # the proposal is on its way
        await lab.restart(1)
        try:
            proposal, agreement = await pending
        except TransactionTimeoutError:
            assert lab.peers[1].store.latest_sequence_number(b.public_key) in (0, 1)
        else:
            assert lab.peers[1].store.linked(proposal) == agreement
        assert_consistent(lab.peers)


class Recorder:
    """A service: registers a policy and an extra overlay's worth of state, records its life."""

    def __init__(self) -> None:
        self.peer: Peer | None = None
        self.closed = False

    def attach(self, peer: Peer) -> None:
        self.peer = peer
        peer.ledger.register_policy("test.service", lambda ledger, proposal: {"seen_by": "service"})

    async def close(self) -> None:
        self.closed = True


async def test_services_attach_to_every_peer_and_close_with_it(tmp_path: Path) -> None:
    services: list[Recorder] = []

    def make(peer: Peer) -> list[Recorder]:
        services.append(Recorder())
        return services[-1:]

    async with Lab(tmp_path, services=make) as lab:
        a, b = await lab.start(2)
        assert {s.peer for s in services} == {a, b}
        _, agreement = await a.community.propose(b.public_key, "test.service", {})
        assert agreement.transaction == {"seen_by": "service"}
        await lab.restart(1)
        assert [s.closed for s in services if s.peer is b] == [True]
        assert services[2].peer is lab.peers[1] and not services[2].closed
    assert all(s.closed for s in services)


async def test_quiet_waits_until_no_peer_receives_packets(tmp_path: Path) -> None:
    # Benchmarks start measuring after it: on UDP a burst's packets are still read for seconds
    # after the last was sent, and the market's first sync was counted as trading.
    async with Lab(tmp_path, transport="udp", progress=False, durable=False) as lab:
        lab.accept(PING)
        a, b = await lab.start(2)
        stop = asyncio.Event()

        async def chatter() -> None:
            n = 0
            while not stop.is_set():
                await a.community.propose(b.public_key, PING, {"n": n}, timeout=5)
                n += 1

        task = asyncio.ensure_future(chatter())
        try:
            with pytest.raises(TimeoutError, match="still received packets after 0.5 s"):
                await lab.quiet(0.2, timeout=0.5)
        finally:
            stop.set()
            await task
        assert a.community.packets_received > 0 and b.community.packets_received > 0
        assert 0.2 <= await lab.quiet(0.2, timeout=10) < 10


@pytest.mark.parametrize(("options", "name"), [
    ({"seconds": float("nan")}, "seconds"), ({"seconds": 0}, "seconds"), ({"timeout": float("nan")}, "timeout"),
    ({"timeout": -1}, "timeout"), ({"seconds": "0.3"}, "seconds"), ({"timeout": True}, "timeout"),
])
async def test_quiet_refuses_durations_it_could_never_meet(tmp_path: Path, options: dict, name: str) -> None:
    # A NaN timeout was never reached: quiet waited forever beside a busy peer.
    async with Lab(tmp_path, transport="memory", progress=False, durable=False) as lab:
        with pytest.raises(ConfigurationError, match=f"{name} must be a positive number of seconds"):
            await lab.quiet(**options)


@pytest.mark.parametrize("timeout", [float("nan"), 0, -1, "10", True])
async def test_fork_refuses_a_timeout_it_could_never_meet(tmp_path: Path, timeout: Any) -> None:
    # A NaN timeout never expired: victims that do not countersign the type were sent proposals forever.
    async with Lab(tmp_path, transport="memory", progress=False, durable=False) as lab:
        forker, first, second = await lab.start(3)
        with pytest.raises(ConfigurationError, match="timeout must be a positive number of seconds"):
            await asyncio.wait_for(lab.fork(forker, first, second, PING, timeout=timeout), 10)
        assert forker.store.latest_sequence_number(forker.public_key) == 0  # refused before signing anything


@pytest.mark.parametrize(("contact", "message"), [
    ((b"\xff" * 32, ("127.0.0.1", 8090)), "bad contact key: not an Ed25519 public key: ffffffffffffffff"),
    (("ab" * 32, ("127.0.0.1", 8090)), "bad contact key: a public key is 32 bytes, not str"),  # a TypeError
    ((b"x", ("127.0.0.1", 8090)), "bad contact key: not an Ed25519 public key"),
    (("key", "127.0.0.1:8090", "extra"), "a contact is \\(public key, \\(host, port\\)\\)"),
    ((None, ("localhost", 8090)), "bad contact key"),
    ((0, "127.0.0.1:8090"), "bad contact key"),
])
async def test_a_contact_that_is_no_key_and_address_is_refused_and_breaks_nothing(
    tmp_path: Path, contact: Any, message: str
) -> None:
    # It was taken, and every later proposal of the peer, to anyone, failed on it ("not an
    # Ed25519 public key: ffff...", or "TypeError: cannot convert 'str' object to bytes").
    async with Lab(tmp_path, transport="memory", progress=False, durable=False) as lab:
        lab.accept(PING)
        a, b = await lab.start(2)
        with pytest.raises(ConfigurationError, match=message):
            a.add_contacts([contact])
        await a.community.propose(b.public_key, PING, {"n": 1})


@pytest.mark.parametrize("address", [("localhost", 8090), ("127.0.0.1", 0), ("127.0.0.1", 65536), ("127.0.0.1", True),
                                     "127.0.0.1:8090", (2130706433, 8090)])
async def test_a_contact_address_ipv8_cannot_send_to_is_refused(tmp_path: Path, address: Any) -> None:
    async with Lab(tmp_path, transport="memory", progress=False, durable=False) as lab:
        a, b = await lab.start(2)
        with pytest.raises(ConfigurationError, match="a contact's address is \\(IPv4 address, port 1-65535\\)"):
            a.add_contacts([(b.public_key, address)])
        assert a.community.contacts[b.public_key] == b.address  # the one the lab gave stays


async def test_a_stopped_peer_does_not_start_again(tmp_path: Path) -> None:
    # It started: a peer without its database and without the lock on its directory, beside
    # which a second process could open the same chain.
    async with Lab(tmp_path, transport="memory", progress=False, durable=False) as lab:
        (peer,) = await lab.start(1)
        await peer.stop()
        with pytest.raises(NetworkError, match="was stopped and does not start again"):
            await peer.start()
        with pytest.raises(NetworkError, match="was stopped"):  # it opened market.sqlite without the lock
            peer.add_market()
        assert not peer.running and not (peer.directory / "market.sqlite").exists()
        again = await Peer.open(peer.directory, MemoryEndpoint(UDPv4Address("10.9.9.9", 7759)))
        assert again.public_key == peer.public_key  # the directory itself opens anew
        await again.stop()


@pytest.mark.parametrize(("settings", "message"), [
    ({"nope": 1}, "unknown TrustChainSettings field 'nope'"),
    ("abc", "settings must be a dict of TrustChainSettings fields, not str"),  # a TypeError from **
])
async def test_a_peer_refused_its_settings_leaves_its_directory_free(tmp_path: Path, settings: Any, message: str) -> None:
    # The directory stayed locked by the peer that was never made: made again with the settings
    # corrected, it was "in use by process <this one>" until the interpreter exited.
    endpoint = MemoryEndpoint(UDPv4Address("10.9.9.8", 7759))
    with pytest.raises(ConfigurationError, match=message):
        Peer(tmp_path / "p", endpoint, settings=settings)
    peer = await Peer.open(tmp_path / "p", endpoint)
    await peer.stop()


@pytest.mark.parametrize("endpoint", [None, "127.0.0.1:8090"])
def test_a_peer_without_an_endpoint_is_refused_not_bound_to_every_interface(tmp_path: Path, endpoint: Any) -> None:
    # IPv8 made its own endpoint for None: UDP on 0.0.0.0:8090 once started.
    with pytest.raises(ConfigurationError, match="a peer needs an IPv8 endpoint"):
        Peer(tmp_path / "p", endpoint)
    assert not (tmp_path / "p").exists()  # refused before its directory is made or locked


async def test_a_service_without_attach_is_refused(tmp_path: Path) -> None:
    # None failed with "'NoneType' object has no attribute 'attach'".
    async with Lab(tmp_path, transport="memory", progress=False, durable=False) as lab:
        (peer,) = await lab.start(1)
        for service in (None, "market"):
            with pytest.raises(ConfigurationError, match="a service has an attach\\(peer\\) method"):
                peer.add_service(service)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="a service is an instance: MarketService\\(\\), not the class"):
            peer.add_service(MarketService)  # type: ignore[arg-type]  # a TypeError from attach
        assert peer.services == [] and not peer.has_market


def test_run_sync_cancels_what_it_gives_up_on_and_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    # A timeout left the coroutine running unseen (start(3) given up on still started its peers),
    # and said nothing; 5 was a TypeError from the loop's thread, a NaN timeout waited forever.
    with Lab(tmp_path, transport="memory", progress=False, durable=False) as lab:
        finished = []

        async def slow() -> None:
            await asyncio.sleep(0.5)
            finished.append(True)

        with pytest.raises(TimeoutError, match="run_sync gave up after 0.05 s and cancelled the coroutine"):
            lab.run_sync(slow(), timeout=0.05)
        lab.run_sync(asyncio.sleep(0.7))
        assert finished == []

        async def own_timeout() -> None:
            raise TimeoutError("the coroutine's own")

        with pytest.raises(TimeoutError, match="the coroutine's own"):
            lab.run_sync(own_timeout(), timeout=5)
        with pytest.raises(ConfigurationError, match="run_sync runs a coroutine, such as lab.start\\(2\\), not 5"):
            lab.run_sync(5)  # type: ignore[arg-type]
        for timeout in (float("nan"), -1, "1"):
            with pytest.raises(ConfigurationError, match="timeout must be a positive number of seconds"):
                lab.run_sync(slow(), timeout=timeout)  # type: ignore[arg-type]
        assert lab.run_sync(lab.start(1)) and lab.peers


async def test_a_restart_never_starts_another_identity_in_a_peers_place(tmp_path: Path) -> None:
    # A directory deleted under a running peer restarted as a new key, silently; so did one with
    # another peer's key and chain copied in. Either is a peer of the lab that is not peer i.
    import shutil

    async with Lab(tmp_path / "other", transport="memory", progress=False, durable=False) as other_lab:
        (stranger,) = await other_lab.start(1)
        stranger_directory = stranger.directory
    async with Lab(tmp_path / "lab", transport="memory", progress=False, durable=False) as lab:
        first, _second = await lab.start(2)
        directory = first.directory
        shutil.rmtree(directory)
        with pytest.raises(ChainIdentityError, match="identity.key is gone: restarting peer 0 would start a new identity"):
            await lab.restart(0)
        assert lab.peers[0] is first and first.running and not directory.exists()  # left as it was
        directory.mkdir()
        for name in ("identity.key", "chain.sqlite"):
            shutil.copy2(stranger_directory / name, directory / name)
        with pytest.raises(ChainIdentityError, match=f"holds the key of {stranger.public_key.hex()[:16]}…, not peer 0's"):
            await lab.restart(0)
        assert lab.peers[0].public_key == first.public_key
