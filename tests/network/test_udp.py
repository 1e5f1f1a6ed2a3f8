"""The UDP endpoint every EnerDatX peer listens on: a buffer of one datagram, and no datagram cut."""

from __future__ import annotations

import asyncio
import socket

from ipv8.messaging.interfaces.endpoint import EndpointListener

from enerdatx.lab import LossyUDPEndpoint
from enerdatx.udp import MAX_DATAGRAM_BYTES, UDPEndpoint


async def _received(endpoint: UDPEndpoint, datagrams: list[bytes]) -> list[bytes]:
    got: list[bytes] = []
    arrived = asyncio.get_running_loop().create_future()

    class Listener(EndpointListener):
        def on_packet(self, packet: tuple) -> None:
            got.append(packet[1])
            if len(got) == len(datagrams) and not arrived.done():
                arrived.set_result(None)

    endpoint.add_listener(Listener(endpoint))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for datagram in datagrams:
            sender.sendto(datagram, endpoint.get_address())
            await asyncio.sleep(0)  # the transport reads one datagram per turn of the loop
        await asyncio.wait_for(arrived, 5)
    return got


async def test_the_receive_buffer_is_one_datagram_and_the_longest_datagram_arrives_whole() -> None:
    for endpoint in (UDPEndpoint(0, "127.0.0.1"), LossyUDPEndpoint(0, "127.0.0.1")):
        await endpoint.open()
        try:
            # asyncio's default is 256 KiB, allocated for every datagram read.
            assert endpoint._transport.max_size == MAX_DATAGRAM_BYTES  # type: ignore[union-attr]
            longest = bytes(range(256)) * (65507 // 256) + b"\x07" * (65507 % 256)  # IPv4's largest payload
            datagrams = [b"\x01", longest, b"x" * 1500]
            assert await _received(endpoint, datagrams) == datagrams
        finally:
            endpoint.close()


async def test_an_endpoint_made_without_an_address_listens_on_loopback_only() -> None:
    # IPv8's UDPEndpoint() binds 0.0.0.0, every interface.
    for endpoint in (UDPEndpoint(), LossyUDPEndpoint()):
        await endpoint.open()
        try:
            assert endpoint.get_address()[0] == "127.0.0.1"
        finally:
            endpoint.close()
