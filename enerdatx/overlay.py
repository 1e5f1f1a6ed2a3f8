"""What every EnerDatX IPv8 overlay shares: typed settings, per-sender limits, retries, payloads.

Both the TrustChain community and the market community derive from :class:`Overlay` and
their settings from :class:`OverlaySettings`; neither knows the other. The limits are
checked before a packet is decoded, so a flooder costs a dictionary look-up per packet.
Requests awaiting answers (a proposal, a crawl, a fetch) are :class:`Pending` entries in
pyipv8's ``RequestCache``, which times out and, on unload, cancels what is left.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import nacl.bindings
import nacl.exceptions
from ipv8.community import Community, CommunitySettings
from ipv8.lazy_community import PacketDecodingError
from ipv8.messaging.interfaces.lan_addresses.interfaces import get_providers
from ipv8.messaging.payload_dataclass import convert_to_payload
from ipv8.messaging.serialization import PackError
from ipv8.requestcache import NumberCache, RandomNumberCache, RequestCache

from enerdatx.conditions import wait_within
from enerdatx.errors import ConfigurationError, NetworkError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ipv8.messaging.interfaces.udp.endpoint import Address
    from ipv8.messaging.payload_headers import BinMemberAuthenticationPayload
    from ipv8.messaging.serialization import Payload
    from ipv8.peer import Peer as IPv8Peer

__all__ = ["AnswerBudget", "Overlay", "OverlaySettings", "Pending", "SenderLimits", "TokenBucket", "compile_payloads"]

logger = logging.getLogger(__name__)

S = TypeVar("S", bound="OverlaySettings")
P = TypeVar("P", bound="Pending")

# pyipv8's curve25519 ("LibNaCL") key bytes: a 10-byte prefix, the 32-byte X25519 key, then the
# 32-byte Ed25519 key (public) or seed (private). Its packet signatures are Ed25519 signatures.
_LIBNACL_PUBLIC_PREFIX = b"LibNaCLPK:"
_LIBNACL_PRIVATE_PREFIX = b"LibNaCLSK:"
_LIBNACL_KEY_LENGTH = 74
_ED25519_SIGNATURE_LENGTH = 64

# How old pyipv8's LAN address providers' last discovery may be before it is run again (the
# `min_interval` their discover_addresses applies on its own).
_LAN_DISCOVERY_INTERVAL = 10.0
_next_lan_discovery = 0.0  # time.monotonic() when an overlay of this process runs it next


class OverlaySettings(CommunitySettings):
    """Network knobs every overlay has; subclasses add their own fields (all class attributes)."""

    retry_interval: float = 0.25
    """Seconds before a request is sent again; doubles on every retry."""

    max_retry_interval: float = 1.0
    """The longest pause between two retries."""

    max_packet_size: int = 65_507
    """Bigger packets are dropped unread (65,507: the most a UDP datagram over IPv4 carries)."""

    rate_per_second: float = 1000.0
    rate_burst: int = 1000
    """Token bucket per sender address: packets beyond it are dropped unread."""

    def update(self: S, **overrides: Any) -> S:
        """Set several fields at once, refusing names that are not settings and values that are not
        of the field's kind (a count, a number of seconds); returns ``self``.

        A field whose default is None (a ledger, a handler) is wired by the peer itself: given as a
        setting, it replaced the peer's own and failed later, in a task, with an AttributeError.
        """
        owner = type(self).__name__
        for name, value in overrides.items():
            if name.startswith("_") or not hasattr(type(self), name) or callable(getattr(type(self), name)):
                raise ConfigurationError(f"unknown {owner} field {name!r}")
            if getattr(type(self), name) is None:
                raise ConfigurationError(f"{owner} {name} is wired by the peer itself, not a setting")
            self.check(name, value)
            setattr(self, name, value)
        return self

    def check(self, name: str, value: Any) -> None:
        """Refuse ``value`` for field ``name`` unless it is of the field's kind; subclasses add bounds."""
        _check_setting(type(self).__name__, name, getattr(type(self), name), value)


def _check_setting(owner: str, name: str, default: Any, value: Any) -> None:
    """``value`` is of the kind of the field's ``default``: a bool, a count (an int, 0 or more) or a
    number (finite, 0 or more; more than 0 for an interval or timeout). retry_interval 0 or -1
    retried in a busy loop (the interval doubles from there), "x" and NaN failed in a task."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = type(value) is int and value >= 0
    elif isinstance(default, float):
        ok = (not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
              and (value > 0 if name.endswith(("_interval", "_timeout")) else value >= 0))
    else:
        return
    if not ok:
        kind = ("true or false" if isinstance(default, bool) else "a whole number, 0 or more"
                if isinstance(default, int) else "a finite number of seconds above 0"
                if name.endswith(("_interval", "_timeout")) else "a finite number, 0 or more")
        raise ConfigurationError(f"{owner} {name} must be {kind}, not {value!r}")


class TokenBucket:
    """Allow ``rate`` events a second on average and ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        """Spend one token; False (and nothing spent) when the bucket is empty."""
        now = time.monotonic()  # refill() inlined: this runs for every packet received
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def refill(self) -> float:
        """Add the tokens earned since the last call (up to ``burst``); the tokens now."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.tokens


class SenderLimits:
    """Admits a packet unless it is too big or its sender is beyond its token bucket (one per address)."""

    def __init__(self, max_packet_size: int, rate: float, burst: int, max_senders: int = 10_000) -> None:
        self.max_packet_size = max_packet_size
        self.rate, self.burst, self.max_senders = rate, burst, max_senders
        self._buckets: dict[object, TokenBucket] = {}

    def admit(self, address: object, data: bytes) -> bool:
        """True when the packet may be decoded; False (a token spent or not) when it is to be dropped."""
        if len(data) > self.max_packet_size:
            return False
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) > self.max_senders:  # forget idle senders rather than grow without bound
                self._buckets.clear()
            bucket = self._buckets[address] = TokenBucket(self.rate, self.burst)
        return bucket.take()


class AnswerBudget:
    """Bytes answered to each address: a token bucket of ``rate`` bytes a second, ``burst`` at once.

    A UDP request's source address can be forged, so a small request must not buy a big answer
    for someone else's address (reflection). A request is answered while its address's bucket
    is not empty, and the answer's bytes are then spent even beyond what is left: an answer
    bigger than the burst still goes, and that address waits until the debt is paid back.
    """

    def __init__(self, rate: float, burst: int, max_addresses: int = 10_000) -> None:
        self.rate, self.burst, self.max_addresses = rate, burst, max_addresses
        self._buckets: dict[object, TokenBucket] = {}

    def allows(self, address: object) -> bool:
        """True when a request from ``address`` may be answered now."""
        bucket = self._buckets.get(address)
        return bucket is None or bucket.refill() > 0

    def spend(self, address: object, size: int) -> None:
        """Charge ``size`` bytes sent to ``address``."""
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= self.max_addresses:  # forget them rather than grow without bound
                self._buckets.clear()
            bucket = self._buckets[address] = TokenBucket(self.rate, self.burst)
        bucket.refill()
        bucket.tokens -= size


def _new_without_recompiling(cls: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(cls)


def compile_payloads(messages: Iterable[type]) -> None:
    """Compile each DataClassPayload's packing code once, not on every instantiation.

    pyipv8 3.2's ``DataClassPayload.__new__`` recompiles the class's packing code each time a
    message is made (measured: most of the cost of building a message); compiling it up front
    and then creating instances with plain ``object.__new__`` keeps the same wire format.
    """
    for message in messages:
        convert_to_payload(message, msg_id=message.msg_id)  # type: ignore[attr-defined]
        message.__new__ = _new_without_recompiling  # type: ignore[assignment, method-assign]


class Pending(NumberCache):
    """A request awaiting answers; ``done`` resolves when they are in. Subclasses name their ``PREFIX``.

    Numbered by the caller (a proposal's sequence number) or, with ``number=None``, by a free
    random 16-bit number (a crawl, a fetch). The overlay's retry loop gives up first, at its
    own deadline; the cache's timeout (``timeout`` seconds) only clears what a cancelled caller
    left behind.
    """

    PREFIX: ClassVar[str]

    def __init__(self, overlay: Overlay, timeout: float, number: int | None = None) -> None:
        cache = overlay.request_cache
        if number is None:
            number = RandomNumberCache.find_unclaimed_identifier(cache, self.PREFIX)
        super().__init__(cache, self.PREFIX, number)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.register_future(self.done, on_timeout=TimeoutError(f"{self.PREFIX} {number} timed out"))
        self._timeout = timeout

    @property
    def timeout_delay(self) -> float:
        """Seconds until the cache drops this request."""
        return self._timeout

    def on_timeout(self) -> None:
        """Nothing beyond failing ``done``: the waiting coroutine reports the timeout."""


# A packet is a 22-byte community prefix, a message id, then the message.
_MESSAGE_ID_OFFSET = 22


class Overlay(Community):
    """An IPv8 community with per-sender limits, counted sends, a drop counter and a retry loop."""

    settings: OverlaySettings

    def __init__(self, settings: OverlaySettings) -> None:
        super().__init__(settings)
        self.settings = settings
        self.bytes_sent = 0
        self.packets_sent = 0
        self.packets_received = 0
        """Packets that arrived, refused ones included (see Lab.quiet)."""
        self.packets_dropped = 0
        """Packets refused unread: too big, or their sender over its rate (``drops["limit"]``)."""
        self.drops: collections.Counter[str] = collections.Counter()
        """Dropped packets by reason: "limit", or what a handler refused after decoding ("replay", ...)."""
        self._limits = SenderLimits(settings.max_packet_size, settings.rate_per_second, settings.rate_burst)
        self._drop_waiters: list[tuple[str, int, asyncio.Future[None]]] = []
        self.request_cache = RequestCache()
        key_bin = self.my_peer.key.key_to_bin()
        self._ed25519_secret: bytes | None = None
        if len(key_bin) == _LIBNACL_KEY_LENGTH and key_bin.startswith(_LIBNACL_PRIVATE_PREFIX):
            # libsodium's 64-byte secret key (seed + public key), for crypto_sign
            self._ed25519_secret = nacl.bindings.crypto_sign_seed_keypair(key_bin[-32:])[1]

    async def unload(self) -> None:
        """Cancel every pending request, then stop the community."""
        await self.request_cache.shutdown()
        await super().unload()

    # --- packet signatures and LAN addresses ------------------------------------------

    # pyipv8 3.2 signs and verifies curve25519 keys' packets through its OpenSSL binding, which
    # took 75 µs to sign and 160 µs to verify a 300-byte packet here; libsodium computes the same
    # Ed25519 signature (deterministic: byte for byte the same packet) in 30 µs and checks one
    # in 68 µs. libsodium's check is stricter: it refuses small-order keys, with which anyone can
    # sign (pyipv8's binding accepted such a forgery; tests/network/test_payload.py has it).
    # Other key types keep pyipv8's code.

    def _ez_pack(self, prefix: bytes, msg_num: int, payloads: Sequence[Payload], sig: bool = True) -> bytes:
        if not sig or self._ed25519_secret is None:
            return super()._ez_pack(prefix, msg_num, payloads, sig)
        packet = prefix + bytes([msg_num]) + self.serializer.pack_serializable_list(payloads)
        return packet + nacl.bindings.crypto_sign(packet, self._ed25519_secret)[:_ED25519_SIGNATURE_LENGTH]

    def _verify_signature(self, auth: BinMemberAuthenticationPayload, data: bytes) -> tuple[bool, bytes]:
        key_bin = auth.public_key_bin
        if len(key_bin) != _LIBNACL_KEY_LENGTH or not key_bin.startswith(_LIBNACL_PUBLIC_PREFIX):
            return super()._verify_signature(auth, data)
        signed, signature = data[:-_ED25519_SIGNATURE_LENGTH], data[-_ED25519_SIGNATURE_LENGTH:]
        remainder = data[2 + len(key_bin) : -_ED25519_SIGNATURE_LENGTH]
        try:
            nacl.bindings.crypto_sign_open(signature + signed, key_bin[-32:])
        except (nacl.exceptions.CryptoError, ValueError):  # a bad signature, a malformed key or packet
            return False, remainder
        return True, remainder

    async def discover_lan_addresses(self) -> None:
        """pyipv8's periodic LAN address discovery, run by one overlay of the process per interval.

        The addresses are the machine's, and pyipv8's providers (process-wide) keep the last
        answer for every overlay. pyipv8 hands each provider to a worker thread every 10 s for
        every overlay, and all but the first hop return at once. With 200 overlays in one process
        those hops were 2 % of a market run's samples, each waking a thread that competes for
        the GIL. The interval is claimed before the hop, so overlays whose timers fire in the
        same turn of the loop do not all go.
        """
        global _next_lan_discovery  # noqa: PLW0603 - one schedule per process, like the providers
        now = time.monotonic()
        if now < _next_lan_discovery:
            return
        _next_lan_discovery = now + _LAN_DISCOVERY_INTERVAL
        loop = asyncio.get_running_loop()
        for provider in get_providers():
            await loop.run_in_executor(None, provider.discover_addresses, _LAN_DISCOVERY_INTERVAL)

    # --- pending requests --------------------------------------------------------------

    def open_request(self, request: P) -> P:
        """Register a pending request (a Pending made for this overlay); NetworkError once unloading."""
        if self.request_cache.add(request) is None:
            raise NetworkError(f"{type(self).__name__} is shutting down")
        return request

    def close_request(self, request: Pending) -> None:
        """Forget a pending request (answered, failed or given up on)."""
        if self.request_cache.get(request.prefix, request.number) is request:
            self.request_cache.pop(request.prefix, request.number)

    def find_request(self, kind: type[P], number: int) -> P | None:
        """The pending request of type ``kind`` (its prefix) under ``number``, if any."""
        found = self.request_cache.get(kind.PREFIX, number)
        return found if isinstance(found, kind) else None

    def pending(self, kind: type[P]) -> list[P]:
        """Every pending request of type ``kind``."""
        # pyipv8 3.2's RequestCache has no public way to list its entries.
        return [cache for cache in self.request_cache._identifiers.values() if isinstance(cache, kind)]

    def on_packet(self, packet: tuple[Address, bytes], warn_unknown: bool = True) -> None:
        """Drop oversized packets and senders beyond their rate before decoding anything."""
        address, data = packet
        self.packets_received += 1
        if not self._limits.admit(address, data):
            self.count_drop("limit")
            return
        if len(data) <= _MESSAGE_ID_OFFSET:  # our prefix and no message id: pyipv8 raised IndexError
            self.count_drop("malformed")
            return
        super().on_packet(packet, warn_unknown)

    def add_message_handler(self, msg_num: Any, callback: Any) -> None:
        """As pyipv8's, but a packet that does not unpack, or whose signature is bad, is dropped
        as "malformed": pyipv8 logged a traceback for each such packet from the wire."""

        def guarded(source_address: Address, data: bytes) -> Any:
            try:
                return callback(source_address, data)
            except (PackError, PacketDecodingError):  # raised by the lazy_wrapper while unpacking
                self.count_drop("malformed")
                return None

        # What pyipv8's lazy_wrapper wraps stays reachable (the fuzz harness calls it directly).
        functools.update_wrapper(guarded, callback)
        guarded.__wrapped__ = getattr(callback, "__wrapped__", callback)  # type: ignore[attr-defined]
        super().add_message_handler(msg_num, guarded)

    def count_drop(self, reason: str) -> None:
        """Count one packet dropped on purpose, and wake whoever awaits that count."""
        self.drops[reason] += 1
        if reason == "limit":
            self.packets_dropped += 1
        for wanted, count, future in self._drop_waiters:
            if self.drops[wanted] >= count and not future.done():
                future.set_result(None)

    async def wait_for_drops(self, count: int, reason: str = "limit", timeout: float = 10.0) -> None:
        """Wait until ``count`` packets were dropped for ``reason``; TimeoutError after ``timeout`` s.

        Tests of hostile peers await this instead of sleeping and then asserting that nothing happened.
        """
        if self.drops[reason] >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (reason, count, future)
        self._drop_waiters.append(entry)
        try:
            await wait_within(future, timeout)
        finally:
            self._drop_waiters.remove(entry)

    def send_packet(self, peer: IPv8Peer, payload: Payload, *, sign: bool = True) -> int:
        """Send one message (signed unless ``sign`` is False), counting its bytes; a failure is a lost datagram.

        Returns the bytes sent (0 for a lost one): what an answer budget is charged.
        """
        return self._send_bytes(peer, self.ezr_pack(payload.msg_id, payload, sig=sign))  # type: ignore[attr-defined]

    def send_unsigned_to_all(self, peers: Iterable[IPv8Peer], payload: Payload) -> None:
        """Send one unsigned message to each of ``peers``, packed once.

        An unsigned packet is the community's prefix, the message id and the payload: it names
        neither sender nor recipient, so every recipient gets the same bytes. Gossip sends
        each block to 8 peers: packing each copy took 90-100 µs of CPU per published block
        among 100 peers, packing once 63-70 µs.
        """
        packet = b""
        for peer in peers:
            packet = packet or self.ezr_pack(payload.msg_id, payload, sig=False)  # type: ignore[attr-defined]
            self._send_bytes(peer, packet)

    def _send_bytes(self, peer: IPv8Peer, packet: bytes) -> int:
        try:
            self.endpoint.send(peer.address, packet)
        except Exception:  # noqa: BLE001 - like a lost datagram: retries and timeouts cover it
            logger.debug("could not send to %s", peer.address, exc_info=True)
            return 0
        self.bytes_sent += len(packet)
        self.packets_sent += 1
        return len(packet)

    async def until(self, future: asyncio.Future[Any], resend: Callable[[], object], timeout: float) -> None:
        """Call ``resend()`` with growing pauses until ``future`` is done; TimeoutError after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        interval = self.settings.retry_interval
        while not future.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            resend()
            with contextlib.suppress(TimeoutError):
                await wait_within(asyncio.shield(future), min(interval, remaining))
            interval = min(interval * 2, self.settings.max_retry_interval)
