"""One EnerDatX peer: an identity, its ledger and the TrustChain community on one IPv8.

A peer lives in a directory (``identity.key``, ``chain.sqlite``, ``chain.head``, ``ipfs/`` for
its content store) and starts again from it; one process at a time holds it (see
:mod:`enerdatx.datadir`). Its market attaches with :meth:`Peer.add_market` and is then
``peer.market``; other services attach with :meth:`Peer.add_service`: they may add their own
IPv8 overlays and ledger policies.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import ipaddress
import logging
from base64 import b64encode
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ipv8.configuration import ConfigBuilder
from ipv8.messaging.interfaces.endpoint import Endpoint
from ipv8.peerdiscovery.discovery import RandomWalk
from ipv8_service import IPv8

from enerdatx.crypto import Identity
from enerdatx.datadir import DirectoryLock, mark_head, open_directory
from enerdatx.errors import ConfigurationError, EncodingError, MarketError, NetworkError
from enerdatx.files import named_path
from enerdatx.ipfs import ContentStore, open_store
from enerdatx.market.service import MarketService
from enerdatx.trustchain import BlockStore, TrustChain
from enerdatx.trustchain.community import TrustChainCommunity
from enerdatx.trustchain.keys import ipv8_private_key, ipv8_public_key_bin
from enerdatx.trustchain.settings import TrustChainSettings

if TYPE_CHECKING:
    from ipv8.messaging.interfaces.udp.endpoint import Address
    from ipv8.overlay import Overlay

__all__ = ["Peer", "Service", "WALK_TARGET"]

LOOPBACK = "127.0.0.1"

Opened = tuple[Identity, BlockStore, DirectoryLock]

# Neighbours a walking peer looks for through IPv8 introductions.
WALK_TARGET = 20


def _open_directory(directory: Path, durable: bool) -> Opened:
    return open_directory(directory, durable=durable)


def check_contact(contact: object) -> None:
    """A contact to add is (Ed25519 public key, (IPv4 address, port)); ConfigurationError otherwise.

    A key that is no Ed25519 key (32 bytes off the curve, or hex text) was taken, and every later
    proposal of the peer, to anyone, failed on it ("not an Ed25519 public key", or a TypeError).
    """
    if not (isinstance(contact, tuple) and len(contact) == 2):
        raise ConfigurationError(f"a contact is (public key, (host, port)), not {contact!r}")
    public_key, address = contact
    try:
        if not isinstance(public_key, bytes):
            raise EncodingError(f"a public key is 32 bytes, not {type(public_key).__name__}")
        ipv8_public_key_bin(public_key)
    except EncodingError as exc:
        raise ConfigurationError(f"bad contact key: {exc}") from None
    # IPv8 packs addresses as four bytes: a host name failed when the address was first sent on.
    if not (isinstance(address, tuple) and len(address) == 2 and _is_ipv4(address[0])
            and not isinstance(address[1], bool) and isinstance(address[1], int) and 0 < address[1] < 65536):
        raise ConfigurationError(f"a contact's address is (IPv4 address, port 1-65535), such as ('127.0.0.1', 8090), "
                                 f"not {address!r}")


def _is_ipv4(host: object) -> bool:
    """A dotted IPv4 address (ipaddress would also take an int)."""
    if not isinstance(host, str):
        return False
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _quiet_ipv8(config: dict[str, Any], endpoint: Endpoint) -> IPv8:
    """IPv8 configures the root logger (logging.basicConfig); a library must leave that to the app."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    ipv8 = IPv8(config, endpoint_override=endpoint)
    root.handlers[:] = handlers
    root.setLevel(level)
    return ipv8


class Service(Protocol):
    """Something that runs on a peer; ``close`` (optional, may be async) is called on stop."""

    def attach(self, peer: Peer) -> None:
        """Register overlays, ledger policies and callbacks on ``peer``."""


class Peer:
    """An identity, its TrustChain ledger and the community that exchanges its blocks."""

    # A subclass may run a variant (enerdatx.cluster.light shares one address book per process).
    community_class: type[TrustChainCommunity] = TrustChainCommunity

    def __init__(
        self,
        directory: str | Path,
        endpoint: Endpoint,
        *,
        settings: dict[str, Any] | None = None,
        walk: bool = False,
        durable: bool = True,
        _opened: Opened | tuple[Identity, BlockStore] | None = None,
    ) -> None:
        self.directory = named_path(directory, "a peer directory")
        if not isinstance(endpoint, Endpoint):
            # IPv8 makes an endpoint of its own for None: UDP on 0.0.0.0:8090, every interface.
            raise ConfigurationError(
                f"a peer needs an IPv8 endpoint (enerdatx.udp.UDPEndpoint on 127.0.0.1, or an in-memory one), "
                f"not {endpoint!r}"
            )
        if settings is not None and not isinstance(settings, Mapping):  # a TypeError from ** deep in IPv8's settings
            raise ConfigurationError(f"settings must be a dict of TrustChainSettings fields, not {type(settings).__name__}")
        opened = _opened or _open_directory(self.directory, durable)
        self.identity, self.store = opened[0], opened[1]
        # No lock: an identity and store given without a directory (light peers, in memory).
        self._lock: DirectoryLock | None = opened[2] if len(opened) > 2 else None
        try:
            self.ledger = TrustChain(self.identity, self.store)
            if self.ledger.head is None and self._lock is not None:  # the first block is marked at once
                self.ledger.subscribe(self._mark_first_block)
            key = b64encode(ipv8_private_key(self.identity).key_to_bin()).decode()
            config = (
                ConfigBuilder()
                .clear_keys()
                .clear_overlays()
                .set_log_level("WARNING")
                .add_key_from_bin("edx", key)
                .set_address(LOOPBACK)  # the endpoint is given, so IPv8 binds nothing of its own; if it did, here
                .finalize()
            )
            self.ipv8 = _quiet_ipv8(config, endpoint)
            community_settings = TrustChainSettings(
                my_peer=self.ipv8.keys["edx"], endpoint=self.ipv8.endpoint, network=self.ipv8.network, ledger=self.ledger
            ).update(**(settings or {}))
            self.community = self.community_class(community_settings)
            self.add_overlay(self.community, walk_target=WALK_TARGET if walk else None)
        except BaseException:
            # The directory stayed locked by a peer nobody holds: making it again, the settings
            # corrected, was "in use by process <this one>" until the interpreter exited.
            if self._lock is not None:
                self.store.close()
                self._lock.release()
            raise
        self.services: list[Service] = []
        self._market: MarketService | None = None
        self.running = False
        self.closed = False

    @classmethod
    async def open(
        cls, directory: str | Path, endpoint: Endpoint, *, durable: bool = True, **options: Any
    ) -> Peer:
        """Like ``Peer(...)``, but the disk work (key file, database) runs in a worker thread."""
        opened = await asyncio.to_thread(_open_directory, named_path(directory, "a peer directory"), durable)
        return cls(directory, endpoint, durable=durable, _opened=opened, **options)

    def _mark_first_block(self, block: Any) -> None:
        if block.public_key == self.public_key and not (self.directory / "chain.head").exists():
            mark_head(self.directory, self.identity, self.store)

    @functools.cached_property
    def content(self) -> ContentStore:
        """The peer's content store: embedded in ``ipfs/`` unless an IPFS daemon is configured."""
        return open_store(self.directory / "ipfs")

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 key that names this peer on TrustChain and on IPv8."""
        return self.identity.public_key

    @property
    def address(self) -> Address:
        """Where this peer listens (a fake address on the in-memory transport)."""
        endpoint = self.ipv8.endpoint
        return getattr(endpoint, "wan_address", None) or endpoint.get_address()

    def add_overlay(self, overlay: Overlay, walk_target: int | None = None) -> None:
        """Run another overlay on this peer's IPv8; with ``walk_target``, walk to find that many peers."""
        if walk_target is None:
            self.ipv8.overlays.append(overlay)
        else:
            self.ipv8.add_strategy(overlay, RandomWalk(overlay), walk_target)

    def add_service(self, service: Service) -> None:
        """Attach a service; it is closed when the peer stops. NetworkError once stopped (a market
        opened its database in a directory whose lock the peer had let go)."""
        self.check_not_stopped()
        if isinstance(service, type):  # MarketService, not MarketService(): a TypeError from attach
            raise ConfigurationError(f"a service is an instance: {service.__name__}(), not the class {service.__name__}")
        if not callable(getattr(service, "attach", None)):  # None: an AttributeError
            raise ConfigurationError(f"a service has an attach(peer) method; {type(service).__name__} has none")
        service.attach(self)
        self.services.append(service)
        if isinstance(service, MarketService) and self._market is None:
            self._market = service

    def add_market(self, market: MarketService | None = None) -> MarketService:
        """Give this peer its market (a default :class:`MarketService` unless one is given); returns it."""
        if self._market is not None:
            raise MarketError(f"{self!r} has a market already")
        market = market or MarketService()
        self.add_service(market)
        return market

    @property
    def market(self) -> MarketService:
        """This peer's market: sell, search, negotiate, buy; MarketError if it has none."""
        if self._market is None:
            raise MarketError(f"{self!r} runs no market: start it with Lab(market=True) or peer.add_market()")
        return self._market

    @property
    def has_market(self) -> bool:
        """True once a market is attached."""
        return self._market is not None

    def add_contacts(self, contacts: Iterable[tuple[bytes, Address]]) -> None:
        """Tell the peer where other peers (by TrustChain key) listen; ConfigurationError for a
        contact that is no (Ed25519 public key, (IPv4 address, port)), before any is added."""
        contacts = list(contacts)
        for contact in contacts:
            check_contact(contact)
        self.learn_contacts(contacts)

    def learn_contacts(self, contacts: Iterable[tuple[bytes, Address]]) -> None:
        """:meth:`add_contacts` without the checks, for contacts that are peers' own (a lab
        introducing its peers to each other: n² contacts, a third of the time spent checking)."""
        for public_key, address in contacts:
            self.community.add_contact(public_key, address, given=True)

    async def start(self) -> None:
        """Open the endpoint and start IPv8's tasks; NetworkError once stopped."""
        self.check_not_stopped()
        await self.ipv8.start()
        self.running = True

    def check_not_stopped(self) -> None:
        """NetworkError if this peer was stopped: it ran on without its database or the lock on its
        directory, so a second process could open the same chain beside it."""
        if self.closed:
            raise NetworkError(f"{self!r} was stopped and does not start again: make a new Peer of its "
                               "directory (Lab.restart(i) in a lab)")

    async def stop(self) -> None:
        """Close services, overlays and endpoint, then the database; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self.running = False
        for service in reversed(self.services):
            close = getattr(service, "close", None)
            if close is not None and inspect.isawaitable(result := close()):
                await result
        await self.ipv8.stop()
        await asyncio.to_thread(self._close_directory)  # a WAL checkpoint: disk work

    def _close_directory(self) -> None:
        try:
            if self._lock is not None:
                mark_head(self.directory, self.identity, self.store)
        finally:
            self.store.close()
            if self._lock is not None:
                self._lock.release()

    def __repr__(self) -> str:
        return f"Peer({self.public_key.hex()[:16]}…, {self.directory})"
