"""Fuzz targets that hand bytes to a running peer: network messages and REST request bodies.

One peer (TrustChain community, market community, REST server) runs on an event loop of
its own, on pyipv8's in-memory transport. A message target takes one byte to choose the
message type and the rest as its payload, decodes it as IPv8 would (a payload IPv8 cannot
unpack is dropped by IPv8 before any EnerDatX code sees it) and calls the community's own
handler as if a peer had sent it; the handler must neither raise nor store an invalid block.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import threading
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from ipv8.messaging.serialization import default_serializer
from ipv8.peer import Peer as IPv8Peer

from enerdatx.crypto import Identity
from enerdatx.lab import MemoryEndpoint, _free_memory_address
from enerdatx.market.payload import MESSAGES as MARKET_MESSAGES
from enerdatx.market.query_service import MESSAGES as QUERY_MESSAGES
from enerdatx.market.query_service import QueryService
from enerdatx.market.rest import RestServer
from enerdatx.market.service import MarketService
from enerdatx.meter import synthetic_household
from enerdatx.peer import Peer
from enerdatx.trustchain import BlockStore, TrustChain
from enerdatx.trustchain.keys import ipv8_public_key_bin
from enerdatx.trustchain.payload import MESSAGES as TRUSTCHAIN_MESSAGES
from enerdatx.union import UnionTerms
from enerdatx.union.service import MESSAGES as UNION_MESSAGES
from enerdatx.union.service import UnionService
from fuzz.targets import refuse_cleanly, target

# The fuzzing sender: a fixed key at an address nobody listens on (answers are lost).
SENDER = Identity.from_seed(bytes([0xF0]) * 32)
SENDER_ADDRESS = ("10.255.255.254", 7759)
HANDLER_SECONDS = 5.0  # an input that keeps a handler busy longer is a crasher (unbounded time)


class _Harness:
    """One peer with its market and REST API, on a private event loop driven by the thread that made it.

    IPv8 holds a threading lock across a tick of its loop and SQLite connections check their
    thread, so only that thread may use or stop the peer.
    """

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.directory = tempfile.TemporaryDirectory(prefix="enerdatx-fuzz-peer-")
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._start())

    async def _start(self) -> None:
        endpoint = MemoryEndpoint(_free_memory_address(random.Random(0)))
        # Short timeouts: a crawl of the unreachable fuzzing sender must not stall every input.
        settings = {"crawl_timeout": 0.05, "retry_interval": 0.01}
        self.peer = Peer(self.directory.name, endpoint, settings=settings, durable=False)
        await self.peer.start()
        self.service = self.peer.add_market(MarketService(settings={"fetch_timeout": 0.05}))
        readings = synthetic_household(seed=1, start="2026-03-02", days=2, location="2628")
        self.queries = QueryService(readings, prices={"peak_hour": 1, "monthly_total": 2, "mean_daily_profile": 3})
        self.peer.add_service(self.queries)
        self.unions = UnionService(readings, timeout=0.05)
        self.peer.add_service(self.unions)
        # The harness peer operates one union (terms vector 0) and is a member of one the fuzzing
        # sender operates, so membership records and round announcements reach real state.
        self.unions.found(UnionTerms.create(self.peer.identity, "fuzz-operated", threshold=2))
        self.unions.join(UnionTerms.create(SENDER, "fuzz-member", threshold=2))  # its operator is unreachable
        self.sender = IPv8Peer(ipv8_public_key_bin(SENDER.public_key), SENDER_ADDRESS)
        self.rest = RestServer(self.service)
        self.rest.readings["fuzz"] = synthetic_household(seed=1, days=2, location="2628")
        self.client = TestClient(TestServer(self.rest.app))
        await self.client.start_server()

    def close(self) -> None:
        """Stop the REST client and the peer (on the thread that made the harness)."""
        if self.loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # at exit, the default executor may be gone already
            self.loop.run_until_complete(self.client.close())
            self.loop.run_until_complete(self.peer.stop())
        self.loop.close()
        self.directory.cleanup()

    def run(self, awaitable: Any) -> Any:
        """Run a coroutine on the harness loop, bounded in time."""
        return self.loop.run_until_complete(asyncio.wait_for(awaitable, HANDLER_SECONDS))

    def deliver(self, community: Any, messages: tuple[Any, ...], data: bytes) -> None:
        """Decode ``data`` as the message chosen by its first byte and call its handler."""
        if not data:
            return
        message = messages[data[0] % len(messages)]
        try:
            payload: Any
            payload, _ = default_serializer.unpack_serializable(message, data[1:])
        except Exception:  # noqa: BLE001 - IPv8 drops what it cannot unpack, before our code
            return
        bound = community.decode_map[message.msg_id]
        handler = bound.__wrapped__  # the function under IPv8's lazy_wrapper
        signed = handler.__name__ not in _UNSIGNED_HANDLERS
        before = self.peer.store.count()
        result = handler(community, self.sender if signed else SENDER_ADDRESS, payload)
        if asyncio.iscoroutine(result):
            self.run(result)
        self.run(asyncio.sleep(0))  # let scheduled sends and tasks run
        if self.peer.store.count() != before:
            _assert_store_valid(self.peer)


_UNSIGNED_HANDLERS = {"on_agreement", "on_crawl_response", "on_block_broadcast", "on_fraud_proof"}
_harness: _Harness | None = None


def harness() -> _Harness:
    """The shared running peer (started on first use, stopped by :func:`close_harness` or at exit)."""
    global _harness
    if _harness is None:
        _harness = _Harness()
        if threading.current_thread() is threading.main_thread():
            # Stopping the peer needs its loop's executor (IPv8's tasks, the store's WAL checkpoint).
            # An atexit callback runs after concurrent.futures shut its executors down; the threading
            # module's exit hooks (the one concurrent.futures uses itself) run before, on this thread.
            threading._register_atexit(close_harness)  # type: ignore[attr-defined]
    elif _harness.thread != threading.get_ident():
        raise RuntimeError("the fuzz harness belongs to the thread that started it: use it, and close_harness(), there")
    return _harness


def close_harness() -> None:
    """Stop the shared peer now, if it was started; on the thread that started it (a harness started
    elsewhere than the main thread is stopped only by this)."""
    global _harness
    if _harness is not None:
        if _harness.thread != threading.get_ident():
            raise RuntimeError("the fuzz harness is stopped by the thread that started it")
        running = _harness
        _harness = None
        running.close()


def _assert_store_valid(peer: Any) -> None:
    """Every block the peer holds is validly signed and consistent with the rest (no invalid object)."""
    check = TrustChain(Identity.from_seed(bytes(32)), BlockStore(":memory:", fsync=False))
    blocks = sorted(peer.store.blocks(), key=lambda b: (b.public_key, b.sequence_number))
    for block in blocks:
        assert block.verify_signature(), block
    for result in check.receive_many(blocks):
        assert not result.is_invalid or result.reasons == ("fork",), result


@target("trustchain_message")
@refuse_cleanly
def fuzz_trustchain_message(data: bytes) -> None:
    """Every TrustChain community message, through its handler."""
    h = harness()
    h.deliver(h.peer.community, TRUSTCHAIN_MESSAGES, data)


@target("market_message")
@refuse_cleanly
def fuzz_market_message(data: bytes) -> None:
    """Every market community message, through its handler."""
    h = harness()
    h.deliver(h.service.community, MARKET_MESSAGES, data)


@target("query_message")
@refuse_cleanly
def fuzz_query_message(data: bytes) -> None:
    """Every aggregate-query message, through its handler."""
    h = harness()
    h.deliver(h.queries.community, QUERY_MESSAGES, data)


@target("union_message")
@refuse_cleanly
def fuzz_union_message(data: bytes) -> None:
    """Every data-union message, through its handler."""
    h = harness()
    h.deliver(h.unions.community, UNION_MESSAGES, data)


REST_ROUTES = (
    ("PUT", "/market/asks"),
    ("PUT", "/market/bids"),
    ("POST", "/data/buy"),
    ("POST", "/data/readings"),
    ("GET", "/market/asks"),
)


@target("rest_body")
@refuse_cleanly
def fuzz_rest_body(data: bytes) -> None:
    """A request body (or query string) never makes the REST API fail with a 5xx or a non-JSON error."""
    if not data:
        return
    h = harness()
    method, path = REST_ROUTES[data[0] % len(REST_ROUTES)]
    body = data[1:]
    headers = {"Authorization": f"Bearer {h.rest.token}"}

    async def call() -> tuple[int, str, bytes]:
        if method == "GET":
            query = body.decode("latin-1")
            response = await h.client.request(method, path, params=_query_pairs(query), headers=headers)
        else:
            response = await h.client.request(method, path, data=body, headers=headers)
        return response.status, response.content_type, await response.read()

    try:
        status, content_type, answer = h.run(call())
    finally:  # uploads stay in the server's memory; keep only the harness's own
        for key in [k for k in h.rest.readings if k != "fuzz"]:
            del h.rest.readings[key]
    assert status < 500 or status in (502, 504), (status, answer[:500])
    if status >= 400:
        assert content_type == "application/json", (status, content_type, answer[:200])


def _query_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in text.split("&")[:16]:
        name, _, value = part.partition("=")
        pairs.append((name, value))
    return pairs
