"""Security defaults: private key files, the REST API's token and address, and no traffic off the machine."""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import stat
from pathlib import Path

import aiohttp
import pytest

from enerdatx.cli import build_parser
from enerdatx.cli import peer as peer_cli
from enerdatx.crypto import Identity
from enerdatx.errors import KeyFileError
from enerdatx.lab import Lab
from enerdatx.market.rest import RestServer


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_peer_key_files_are_private(tmp_path: Path) -> None:
    async with Lab(tmp_path, "memory", durable=False, progress=False) as lab:
        await lab.start(2)
    keys = sorted(tmp_path.glob("peer-*/identity.key"))
    assert len(keys) == 2 and all(mode(k) == 0o600 for k in keys)
    peer_cli._show_id(argparse.Namespace(dir=tmp_path / "cli"))
    assert mode(tmp_path / "cli" / "identity.key") == 0o600


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    Identity.generate().save(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError):
        Identity.load(path)


async def test_rest_api_needs_its_token_and_binds_loopback(tmp_path: Path) -> None:
    async with Lab(tmp_path, "memory", durable=False, progress=False,
                   market=True) as lab:
        (peer,) = await lab.start(1)
        server = RestServer(peer.market)
        url = await server.start()
        try:
            assert server.host == "127.0.0.1"
            assert {address[0] for address in server.addresses} == {"127.0.0.1"}
            async with aiohttp.ClientSession() as session:
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": server.token}):
                    async with session.get(f"{url}/wallets", headers=headers) as response:
                        assert response.status == 401
                        assert (await response.json())["error"]["code"] == "unauthorized"
                async with session.put(f"{url}/market/bids", json={"max_price": 5}) as response:
                    assert response.status == 401
                    assert peer.market.requests == {}  # refused before anything happened
                good = {"Authorization": f"Bearer {server.token}"}
                async with session.get(f"{url}/wallets", headers=good) as response:
                    assert response.status == 200
        finally:
            await server.stop()
    with pytest.raises(ValueError):
        RestServer(peer.market, host="0.0.0.0")


def test_peer_run_binds_loopback_by_default() -> None:
    args = build_parser(["peer", "run", "--dir", "x"]).parse_args(["peer", "run", "--dir", "x"])
    assert args.host == "127.0.0.1"


class SocketWatch:
    """Records the address of every connect, sendto and bind of every Python socket."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, int, object]] = []
        self.sent_connected: list[object] = []
        for name in ("connect", "connect_ex", "bind", "sendto"):
            original = getattr(socket.socket, name)

            def record(sock: socket.socket, *args: object, _name: str = name, _original: object = original) -> object:
                address = args[-1] if _name == "sendto" else args[0]
                self.calls.append((_name, sock.type, address))
                return _original(sock, *args)  # type: ignore[operator]

            monkeypatch.setattr(socket.socket, name, record)
        original_send = socket.socket.send

        def send(sock: socket.socket, *args: object) -> object:
            try:
                self.sent_connected.append(sock.getpeername())
            except OSError:
                pass
            return original_send(sock, *args)

        monkeypatch.setattr(socket.socket, "send", send)

    def off_machine(self) -> list[tuple[str, int, object]]:
        """Calls whose address is neither loopback nor a Unix socket."""
        return [call for call in self.calls if not _local(call[2])]


def _local(address: object) -> bool:
    if not isinstance(address, tuple):
        return True  # a Unix socket path
    host = str(address[0])
    if host in ("localhost", ""):
        return host == "localhost"
    return ipaddress.ip_address(host.split("%")[0]).is_loopback


# IPv8 finds its LAN address by connecting a UDP socket to TEST-NET-1 (RFC 5737, never routed)
# and reading the socket's own address; a UDP connect sends no packet.
ROUTE_LOOKUPS = {("192.0.2.0", 80), ("::ffff:0:192.0.2.0", 80)}


async def test_a_demo_and_a_udp_trade_contact_nothing_off_the_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from enerdatx.cli.demo import run_demo

    watch = SocketWatch(monkeypatch)
    summary = await run_demo(tmp_path / "demo", households=2, buyers=1, seed=3, progress=False)
    assert summary["checks"]["all_passed"]
    async with Lab(tmp_path / "udp", "udp", durable=False, progress=False) as lab:
        lab.accept("edx.note")
        alice, bob = await lab.start(2)
        await alice.community.propose(bob.public_key, "edx.note", {"text": "hi"})
        bob_address = bob.address
    assert any(call[0] == "sendto" and call[2][:2] == tuple(bob_address[:2]) for call in watch.calls)
    binds = [call for call in watch.calls if call[0] == "bind"]
    assert binds and all(_local(call[2]) for call in binds), binds
    unexpected = [c for c in watch.off_machine() if not (c[0] in ("connect", "connect_ex")
                                                          and c[1] == socket.SOCK_DGRAM and c[2] in ROUTE_LOOKUPS)]
    assert unexpected == []
    assert all(_local(peer) for peer in watch.sent_connected)


def test_the_watch_sees_an_off_machine_datagram(monkeypatch: pytest.MonkeyPatch) -> None:
    watch = SocketWatch(monkeypatch)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"x", ("192.0.2.1", 9))  # TEST-NET-1: never routed, but recorded
        sock.sendto(b"x", ("127.0.0.1", 9))
    assert watch.off_machine() == [("sendto", socket.SOCK_DGRAM, ("192.0.2.1", 9))]
