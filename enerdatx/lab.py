"""Many local peers at once: in memory (hundreds in one process) or on real UDP.

>>> import tempfile
>>> from enerdatx.lab import Lab
>>> with Lab(tempfile.mkdtemp(), transport="memory") as lab:
...     peers = lab.run_sync(lab.start(2))
...     print(len(peers), peers[1].public_key in peers[0].community.contacts)
2 True

In a notebook, ``async with Lab(market=True) as lab: peers = await lab.start(5)``; the peers
keep working between cells, and each peer's ``.market`` sells and buys. In a script,
``with Lab(...) as lab`` runs the peers on an event loop of their own, and
``lab.run_sync(coroutine)`` runs a coroutine there.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from ipv8.messaging.interfaces.udp.endpoint import UDPv4Address
from ipv8.test.mocking.endpoint import MockEndpoint, internet
from tqdm.auto import tqdm

from enerdatx import heap
from enerdatx.bench.limits import FULL_PEER_BYTES, FULL_PEER_FILES, require_files, require_memory
from enerdatx.conditions import wait_within
from enerdatx.datadir import KEY_FILE
from enerdatx.errors import ChainIdentityError, ConfigurationError, EncodingError, PeerProcessError
from enerdatx.files import named_path
from enerdatx.market.service import MarketService
from enerdatx.peer import Peer, Service
from enerdatx.trustchain import BlockStore, HalfBlock, TrustChain
from enerdatx.trustchain.encoding import encode_type
from enerdatx.trustchain.payload import ProposalMessage
from enerdatx.trustchain.settings import TrustChainSettings
from enerdatx.udp import UDPEndpoint

__all__ = [
    "Lab", "LossyUDPEndpoint", "MarketFactory", "MemoryEndpoint", "PeerProcess", "Transport", "check_peer_count",
    "check_seconds",
]

Transport = Literal["memory", "udp"]
MarketFactory = Callable[[], MarketService]
"""Makes one peer's market, e.g. ``lambda: MarketService(grant=500)``."""
# Peers opened at once: their key files and databases are written in worker threads.
START_BATCH = 16
T = TypeVar("T")


class MemoryEndpoint(MockEndpoint):
    """pyipv8's in-memory test endpoint, opened by IPv8, dropping a share of the packets it sends."""

    SEND_INET_EXCEPTION_TO_LOOP = False  # an unknown address loses the packet, as on UDP

    def __init__(self, address: UDPv4Address, packet_loss: float = 0.0, rng: random.Random | None = None) -> None:
        super().__init__(address, address)
        self.packet_loss = packet_loss
        self.rng = rng or random.Random()
        self.bytes_up = 0
        self.dropped = 0

    async def open(self) -> bool:  # type: ignore[override]  # IPv8.start awaits it
        """Start taking packets."""
        super().open()
        return True

    def send(self, socket_address: Any, packet: bytes) -> None:
        """Deliver ``packet`` in a later loop iteration, unless it is chosen to be lost."""
        if not self.is_open():
            return
        self.bytes_up += len(packet)
        if self.packet_loss and self.rng.random() < self.packet_loss:
            self.dropped += 1
            return
        try:
            super().send(socket_address, packet)
        except AssertionError:  # nobody at that address
            pass

    def forget(self) -> None:
        """Leave the in-memory internet."""
        if internet.get(self.wan_address) is self:
            del internet[self.wan_address]


class LossyUDPEndpoint(UDPEndpoint):
    """A real UDP socket that drops a share of the datagrams it receives (seeded), as a lossy link would.

    Loss is simulated where the packet arrives, so that it also holds between processes and
    machines (peers on Dask workers), where no single sender sees the whole network.
    """

    def __init__(self, port: int = 0, ip: str = "127.0.0.1", packet_loss: float = 0.0,
                 rng: random.Random | None = None) -> None:
        super().__init__(port=port, ip=ip)
        self.packet_loss = packet_loss
        self.rng = rng or random.Random()
        self.dropped = 0

    def datagram_received(self, datagram: bytes, addr: Any) -> None:
        """Hand the datagram on, unless it is chosen to be lost."""
        if self.packet_loss and self.rng.random() < self.packet_loss:
            self.dropped += 1
            return
        super().datagram_received(datagram, addr)


def _accept_all(_ledger: TrustChain, _proposal: HalfBlock) -> None:
    return None


def _market_factory(market: bool | MarketFactory) -> MarketFactory | None:
    if market is True:
        return MarketService
    if market is False:
        return None
    if not callable(market):
        raise ConfigurationError(f"market is True, False or a factory of MarketService, not {market!r}")
    return market


def _free_memory_address(rng: random.Random) -> UDPv4Address:
    while True:
        address = UDPv4Address(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}", 7759)
        if address not in internet:
            return address


def _check_host(host: object) -> None:
    """A UDP lab's address to bind. An empty one silently bound every interface (0.0.0.0); one
    that cannot be bound (" ", "::1", "300.1.1.1") left each peer without a socket, to fail later
    with an AttributeError from inside IPv8 (which first tries the next 10,000 ports)."""
    if not isinstance(host, str) or not host or host != host.strip() or "\x00" in host:
        raise ConfigurationError(f"host is an IPv4 address or name to bind, such as 127.0.0.1, not {host!r}")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
    except (OSError, OverflowError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigurationError(f"host {host!r} cannot be listened on: {reason}") from None


def check_peer_count(n: object, bytes_each: int | None = FULL_PEER_BYTES, files_each: int | None = FULL_PEER_FILES) -> None:
    """``n`` peers to start is a whole number, 0 or more (True started one, 1.5 failed with a TypeError),
    of peers that fit in this machine's memory at ``bytes_each`` (None: they start elsewhere) and in
    this process's open files at ``files_each`` (None: not in this process).
    ``start(10**6)`` started peers until the machine swapped or the kernel killed the notebook."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigurationError(f"n is a whole number of peers, 0 or more, not {n!r}")
    try:
        if bytes_each is not None:
            require_memory(n, bytes_each, "more peers")
        if files_each is not None:
            require_files(n, files_each, "more peers")
    except ValueError as error:
        raise ConfigurationError(str(error)) from None


def check_seconds(name: str, value: object) -> None:
    """Refuse a duration that is not a positive, finite number of seconds (NaN waited forever)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")


def check_block_type(block_type: object) -> None:
    """A type a block can have (1 to 64 printable ASCII characters); accept(5) was taken silently."""
    try:
        encode_type(block_type)  # type: ignore[arg-type]
    except EncodingError as error:
        raise ConfigurationError(f"no block can be of type {block_type!r}: {error}") from None


def check_lab_options(packet_loss: object, settings: object, seed: object, *, durable: object = True,
                      progress: object = None, services: object = None) -> dict[str, Any]:
    """Refuse a lab's options before anything starts; returns the settings as a dict of their own.

    Both labs share this, so a bad option fails alike in one process and before a Dask cluster is
    started: packet_loss "0.1" failed with a TypeError, a seed "x" made random.Random("x") here
    and a TypeError (seed + i) on workers, settings "abc" a ValueError from dict(), durable "no"
    ran durable peers (any string is true), services 5 failed with "'int' object is not callable"
    at every peer's start.
    """
    if not isinstance(durable, bool):
        raise ConfigurationError(f"durable must be True or False, not {durable!r}")
    if progress is not None and not isinstance(progress, bool):
        raise ConfigurationError(f"progress must be True, False or None (bars on a terminal only), not {progress!r}")
    if services is not None and not callable(services):
        raise ConfigurationError(f"services is None or a function of a peer returning its services, not {services!r}")
    if isinstance(packet_loss, bool) or not isinstance(packet_loss, int | float) or not 0.0 <= packet_loss < 1.0:
        raise ConfigurationError(f"packet_loss must be in [0, 1), not {packet_loss!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigurationError(f"seed must be a whole number or None, not {seed!r}")
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise ConfigurationError(f"settings must be a dict of TrustChainSettings fields, not {type(settings).__name__}")
    TrustChainSettings().update(**settings)  # a bad one is refused now, not at every peer's start
    return dict(settings)


class Lab:
    """Start, stop and restart N local peers, each in its own directory, all knowing each other.

    With ``market=True`` (or a factory of MarketService) every peer runs the market: ``peer.market``.
    ``Lab(workers=N)`` or ``Lab(cluster=client)`` gives a :class:`enerdatx.cluster.DaskLab`
    instead: the peers live on Dask worker processes (see docs/network.md). From the first start to
    :meth:`stop`, the garbage collector leaves the started peers alone (:mod:`enerdatx.heap`).
    """

    def __new__(cls, *args: Any, workers: int | None = None, cluster: Any = None, **options: Any) -> Any:
        if workers is None and cluster is None:
            return super().__new__(cls)
        from enerdatx.cluster import DaskLab

        return DaskLab(*args, workers=workers, cluster=cluster, **options)

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        transport: Transport = "memory",
        *,
        packet_loss: float = 0.0,
        settings: dict[str, Any] | None = None,
        market: bool | MarketFactory = False,
        services: Callable[[Peer], Iterable[Service]] | None = None,
        seed: int | None = None,
        progress: bool | None = None,
        durable: bool = True,
        host: str = "127.0.0.1",
        workers: None = None,  # taken by __new__: a number gives a DaskLab instead
        cluster: None = None,
    ) -> None:
        if transport not in ("memory", "udp"):
            raise ConfigurationError(f"transport must be 'memory' or 'udp', not {transport!r}")
        settings = check_lab_options(packet_loss, settings, seed, durable=durable, progress=progress, services=services)
        if transport == "udp":
            _check_host(host)
        self._temporary = directory is None
        self.directory = (Path(tempfile.mkdtemp(prefix="enerdatx-lab-")) if directory is None
                          else named_path(directory, "a directory for the lab's peers (None: a temporary one)"))
        self.transport = transport
        self.packet_loss = packet_loss
        self.settings = settings
        self.market = _market_factory(market)
        self.services = services
        self._markets: dict[Path, MarketFactory] = {}  # peer directory -> its market, kept over restarts
        self.rng = random.Random(seed)
        self.progress = progress
        self.durable = durable
        self.host = host  # where UDP peers listen: loopback unless asked
        self.accepted: set[str] = set()
        self.peers: list[Peer] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- peers ---------------------------------------------------------------------

    async def start(self, n: int = 1, *, market: bool | MarketFactory | None = None) -> list[Peer]:
        """Start ``n`` more peers and introduce every peer to every other; returns all peers.

        ``market`` overrides the lab's ``market`` for these ``n`` peers.
        All or nothing: when one peer fails to start (its directory is a file, or locked by
        another process), the peers this call started are stopped again and the error is raised.
        """
        check_peer_count(n)
        first = len(self.peers)
        directories = [self._directory(i) for i in range(first, first + n)]
        factory = self.market if market is None else _market_factory(market)
        markets = {directory: self._markets[directory] for directory in directories if directory in self._markets}
        if factory is not None:
            self._markets.update(dict.fromkeys(directories, factory))
        started: list[Peer] = []
        disable = None if self.progress is not False else True  # None: only on a terminal
        try:
            with tqdm(total=n, desc="starting peers", disable=disable, leave=False) as bar:
                for batch in range(0, n, START_BATCH):
                    tasks = [asyncio.ensure_future(self._start_peer(directory, address=None))
                             for directory in directories[batch : batch + START_BATCH]]
                    try:  # every start of the batch is awaited, so one that fails cannot orphan the others
                        await asyncio.gather(*tasks, return_exceptions=True)
                    finally:
                        started += [task.result() for task in tasks
                                    if task.done() and not task.cancelled() and task.exception() is None]
                    for task in tasks:
                        if (error := task.exception()) is not None:
                            raise error
                    bar.update(len(tasks))
        except BaseException:
            await asyncio.gather(*(self._stop_peer(peer) for peer in started), return_exceptions=True)
            for directory in directories:
                self._markets.pop(directory, None)
            self._markets.update(markets)
            raise
        self.peers += started
        self.introduce()
        self.settle()
        return list(self.peers)

    async def quiet(self, seconds: float = 0.3, timeout: float = 60.0) -> float:
        """Wait until no peer here has received a packet for ``seconds``; the seconds it took.

        Benchmarks start measuring only then. On UDP the kernel queues what a burst sends: the
        market's first sync of 100 peers (9,900 listing requests, about 5,000 records) was still
        being read for 1-2 s after every request had been sent, and those seconds were counted
        as trading. Raises TimeoutError if the peers are still busy after ``timeout``.
        """
        check_seconds("seconds", seconds)  # NaN: never quiet; a NaN timeout: never given up
        check_seconds("timeout", timeout)
        loop = asyncio.get_running_loop()
        started = loop.time()
        received, since = -1, started
        while True:
            now_received = sum(getattr(overlay, "packets_received", 0)
                               for peer in self.peers for overlay in peer.ipv8.overlays)
            now = loop.time()
            if now_received != received:
                received, since = now_received, now
            elif now - since >= seconds:
                return now - started
            if now - started > timeout:
                raise TimeoutError(f"the peers still received packets after {timeout} s")
            await asyncio.sleep(min(0.05, seconds / 4))

    def settle(self) -> None:
        """Keep the garbage collector off the peers started so far (see :mod:`enerdatx.heap`), until :meth:`stop`."""
        heap.freeze(self)

    async def _start_peer(self, directory: Path, address: Any) -> Peer:
        if self.transport == "memory":
            endpoint: Any = MemoryEndpoint(address or _free_memory_address(self.rng), self.packet_loss, self.rng)
        else:
            endpoint = LossyUDPEndpoint(address[1] if address else 0, self.host, self.packet_loss, self.rng)
        peer = await Peer.open(directory, endpoint, settings=self.settings, durable=self.durable)
        try:
            for block_type in self.accepted:
                peer.ledger.register_policy(block_type, _accept_all)
            await peer.start()
            factory = self._markets.get(directory)
            if factory is not None:
                peer.add_market(factory())
            for service in self.services(peer) if self.services else ():
                peer.add_service(service)
        except BaseException:
            await self._stop_peer(peer)  # its directory stays locked otherwise, by a peer nobody holds
            raise
        return peer

    def _directory(self, i: int) -> Path:
        return self.directory / f"peer-{i:03d}"

    def introduce(self) -> None:
        """Give every peer the key and address of every other peer."""
        contacts = [(peer.public_key, peer.address) for peer in self.peers]
        for peer in self.peers:
            peer.learn_contacts(contacts)  # the peers' own keys and addresses: nothing to check

    def accept(self, block_type: str) -> None:
        """Every peer, now and after restarts, countersigns any proposal of ``block_type``."""
        check_block_type(block_type)
        self.accepted.add(block_type)
        for peer in self.peers:
            peer.ledger.register_policy(block_type, _accept_all)

    async def fork(
        self, forker: Peer, first: Peer, second: Peer, block_type: str, timeout: float = 10.0
    ) -> tuple[HalfBlock, HalfBlock]:
        """Make ``forker`` cheat: sign two proposals at one sequence number and send one to each victim.

        The proposals are sent again until each victim holds its own or already knows of the fork
        (lost packets aside, a cheater wants the agreements); the rest is for the network to find.
        """
        # A NaN timeout never expired: with victims that refuse the block type, fork sent forever.
        check_seconds("timeout", timeout)
        twin = TrustChain(forker.identity, BlockStore(":memory:"))
        twin.receive_many(forker.store.chain(forker.public_key))  # so the twin signs the same number next
        blocks = (
            forker.ledger.propose(first.public_key, block_type, {"fork": 1}),
            twin.propose(second.public_key, block_type, {"fork": 2}),
        )
        twin.store.close()
        victims = list(zip((first, second), blocks, strict=True))
        interval = forker.community.settings.retry_interval
        async with asyncio.timeout(timeout):
            while victims:
                for victim, block in victims:
                    peer = forker.community.peer_for(victim.public_key)
                    if peer is not None:
                        forker.community.send(peer, ProposalMessage(block.encode(), []))
                await asyncio.sleep(interval)  # a simulated attacker polls its victims' stores
                victims = [
                    (v, b)
                    for v, b in victims
                    if v.store.get_by_hash(b.hash) is None and not v.store.is_fraudulent(forker.public_key)
                ]
        return blocks

    async def restart(self, i: int) -> Peer:
        """Stop peer ``i`` and start it again from its directory, at the same address.

        ChainIdentityError if the directory no longer holds the peer's own key (deleted, or another
        peer's copied in): that restart started another identity in its place, silently.
        """
        self._check_peer_number(i)
        old = self.peers[i]
        address, directory, public_key = old.address, old.directory, old.public_key
        if not (directory / KEY_FILE).is_file():  # checked while the peer still runs: it keeps running
            raise ChainIdentityError(f"{KEY_FILE} is gone: restarting peer {i} would start a new identity in its "
                                     "place; restore the directory from a backup (enerdatx peer backup)", path=directory)
        await self._stop_peer(old)
        del old  # and once replaced below, nothing refers to the stopped peer
        restarted = await self._start_peer(directory, address)
        if restarted.public_key != public_key:
            await self._stop_peer(restarted)
            raise ChainIdentityError(f"holds the key of {restarted.public_key.hex()[:16]}…, not peer {i}'s "
                                     f"({public_key.hex()[:16]}…): another peer's directory was put in its place",
                                     path=directory)
        self.peers[i] = restarted
        self.introduce()
        heap.collect_stopped(self)  # its cycles were frozen with it; the new peer is frozen too
        return self.peers[i]

    def _check_peer_number(self, i: object) -> None:
        # A negative number would restart a peer counted from the end: in a lab of 100 peers,
        # restart(-1) is more likely a mistake than a wish for peer 99.
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(self.peers):
            if not self.peers:
                raise ConfigurationError(f"the lab has no running peers: no peer {i!r} to restart")
            raise ConfigurationError(f"i is the number of a running peer, 0 to {len(self.peers) - 1}, not {i!r}")

    async def stop(self) -> None:
        """Stop every peer (their directories stay, unless the lab made a temporary one)."""
        peers, self.peers = self.peers, []
        for batch in range(0, len(peers), START_BATCH):
            await asyncio.gather(*(self._stop_peer(peer) for peer in peers[batch : batch + START_BATCH]))
        heap.release(self)
        if self._temporary:
            shutil.rmtree(self.directory, ignore_errors=True)

    async def _stop_peer(self, peer: Peer) -> None:
        await peer.stop()
        if isinstance(peer.ipv8.endpoint, MemoryEndpoint):
            peer.ipv8.endpoint.forget()

    async def __aenter__(self) -> Lab:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- scripts: the lab's own event loop in a thread ---------------------------------

    def run_sync(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Run ``awaitable`` on the lab's event loop (started on first use) and return its result.

        After ``timeout`` seconds it is cancelled and TimeoutError raised: it ran on unseen (a
        ``start(100)`` given up on still started its peers).
        """
        if not inspect.isawaitable(awaitable):  # a TypeError from inside the loop's thread
            raise ConfigurationError(f"run_sync runs a coroutine, such as lab.start(2), not {awaitable!r}")
        if timeout is not None:
            try:
                check_seconds("timeout", timeout)
            except ConfigurationError:
                if inspect.iscoroutine(awaitable):
                    awaitable.close()  # never awaited otherwise: a RuntimeWarning
                raise
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="enerdatx-lab", daemon=True)
            self._thread.start()

        async def wrapped() -> T:
            return await awaitable

        future = asyncio.run_coroutine_threadsafe(wrapped(), self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            if future.done():  # the coroutine's own TimeoutError (quiet's, say), not the wait's
                raise
            future.cancel()
            raise TimeoutError(f"run_sync gave up after {timeout} s and cancelled the coroutine") from None

    def close_sync(self) -> None:
        """Stop the peers and the lab's event loop."""
        if self._loop is None:
            return
        try:
            self.run_sync(self.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            assert self._thread is not None
            self._thread.join()
            self._loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_sync()


def _check_port(name: str, port: object, low: int = 0) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not low <= port <= 65535:
        raise ConfigurationError(f"{name} is a UDP port from {low} to 65535, not {port!r}")


def _check_addresses(peers: list[Any]) -> None:
    """``(host, port)`` pairs to walk to; a bad one made the child exit with a usage error, seen
    here only as "did not start"."""
    for address in peers:
        if not (isinstance(address, tuple) and len(address) == 2 and isinstance(address[0], str)
                and address[0].strip()):
            raise ConfigurationError(f"peers are (host, port) pairs such as ('127.0.0.1', 8090), not {address!r}")
        _check_port("a peer's port", address[1], low=1)


class PeerProcess:
    """A peer in an OS process of its own (``enerdatx peer run``) on UDP 127.0.0.1.

    Its options are checked here (the child would refuse them with a usage error, seen here only
    as "did not start"); one process at a time: :meth:`start` again while it runs is refused.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        port: int = 0,
        accept: Iterable[str] = (),
        peers: Iterable[tuple[str, int]] = (),
        durable: bool = True,
    ) -> None:
        self.directory = named_path(directory, "a peer directory")
        _check_port("port", port)
        if isinstance(accept, str):  # "edx.note" accepted the types "e", "d", "x", ...
            raise ConfigurationError(f"accept is a list of block types, not the one string {accept!r}")
        self.durable = durable
        self.port = port
        self.accept = list(accept)
        for block_type in self.accept:
            check_block_type(block_type)
        self.peers = list(peers)
        _check_addresses(self.peers)
        self.public_key = b""
        self.process: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}
        """The process's ``ready`` line (its key, address, blocks, what it caught up on)."""

    @property
    def address(self) -> UDPv4Address:
        """Where the process listens (known once started)."""
        return UDPv4Address("127.0.0.1", self.port)

    async def start(self, timeout: float = 30.0) -> None:
        """Spawn the process and wait for it to say it is ready; the same port on every restart.

        PeerProcessError if it exits first or says nothing in ``timeout`` seconds (it is killed then).
        """
        check_seconds("timeout", timeout)
        if self.running:
            # The second child could not bind the first one's port, and the first one's handle was lost.
            assert self.process is not None
            raise PeerProcessError(f"the peer process {self.process.pid} runs already: stop it first")
        args = ["peer", "run", "--dir", str(self.directory), "--port", str(self.port)]
        for block_type in self.accept:
            args += ["--accept", block_type]
        for host, port in self.peers:
            args += ["--peer", f"{host}:{port}"]
        if not self.durable:
            args.append("--no-fsync")
        # The child imports this very enerdatx package, wherever it was imported from.
        package_root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")])}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "enerdatx", *args, stdout=asyncio.subprocess.PIPE, env=env
        )
        try:
            ready = await wait_within(self._next_event(), timeout)
        except BaseException as exc:  # it ran on, unstoppable, after a timeout or a cancellation
            await self.kill()
            if isinstance(exc, TimeoutError):
                raise PeerProcessError(f"peer process did not say it was ready in {timeout} s (killed)") from None
            raise
        if ready.get("event") != "ready":
            status = await self.process.wait()
            raise PeerProcessError(f"peer process did not start (exit status {status}): {ready}")
        self.ready = ready
        self.public_key = bytes.fromhex(ready["public_key"])
        self.port = int(ready["address"].rpartition(":")[2])

    async def _next_event(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = await self.process.stdout.readline()
        return json.loads(line) if line else {"event": "exited"}

    @property
    def running(self) -> bool:
        """True from :meth:`start` until the process has exited."""
        return self.process is not None and self.process.returncode is None

    def _started(self) -> asyncio.subprocess.Process:
        if self.process is None:  # an AssertionError
            raise PeerProcessError("the peer process was never started: start() it first")
        return self.process

    async def stop(self, timeout: float = 30.0, signum: int = signal.SIGTERM) -> int:
        """SIGTERM (or ``signum``), then wait for the clean exit; returns the exit code.

        Once it has exited, the exit code again (a second signal was a ProcessLookupError).
        """
        process = self._started()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it exited just now
                process.send_signal(signum)
        return await wait_within(process.wait(), timeout)

    async def kill(self) -> int:
        """SIGKILL: no chance to clean up (the exit code only, once it has exited)."""
        process = self._started()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        return await process.wait()

