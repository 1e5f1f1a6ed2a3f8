"""A smart meter's P1 port on a loopback TCP socket, in accelerated time (tests, notebooks, benchmarks).

``MeterSimulator`` serves the telegrams of a readings frame to whoever connects, as a
ser2net bridge would. Time is the frame's, not the wall clock's: ``await sim.send(n)``
sends the next ``n`` telegrams at once (deterministic tests), ``await sim.run(rate)``
sends ``rate`` per second. While nobody is connected it holds its telegrams back, like a
meter whose cable is unplugged that is read again from where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pandas as pd

from enerdatx.conditions import wait_within
from enerdatx.errors import ConfigurationError
from enerdatx.meter.telegrams import render_telegrams

__all__ = ["MeterSimulator"]


class MeterSimulator:
    """Telegrams of ``readings`` on ``tcp://127.0.0.1:PORT``, one reader at a time."""

    def __init__(self, readings: pd.DataFrame, *, variant: str = "v5", host: str = "127.0.0.1", port: int = 0,
                 **ids: str) -> None:
        # asyncio's server takes "" and None for every interface: a meter's readings on the LAN.
        if not isinstance(host, str) or not host.strip():
            raise ConfigurationError(f"host is the address to listen on, such as 127.0.0.1, not {host!r}")
        self.telegrams = list(render_telegrams(readings, variant, **ids))
        self.host = host
        self.port = port
        self.sent = 0
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()

    @property
    def url(self) -> str:
        """Where a reader connects (``enerdatx peer run --meter URL``)."""
        return f"tcp://{self.host}:{self.port}"

    async def start(self) -> MeterSimulator:
        """Listen on loopback (a free port unless one was given)."""
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Disconnect the reader and stop listening."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> MeterSimulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:  # the P1 port has one reader; a new one replaces a dead one
            self._writer.close()
        self._writer = writer
        self._connected.set()
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the reader goes away
        if self._writer is writer:
            self._writer = None
            self._connected.clear()

    async def wait_connected(self, timeout: float = 30.0) -> None:
        """Wait until a reader is connected."""
        await wait_within(self._connected.wait(), timeout)

    async def send(self, n: int = 1, *, timeout: float = 30.0) -> int:
        """Send the next ``n`` telegrams (fewer at the end); waits for a reader. Returns how many were sent."""
        count = 0
        while count < n and self.sent < len(self.telegrams):
            await self.wait_connected(timeout)
            writer = self._writer
            assert writer is not None
            try:
                writer.write(self.telegrams[self.sent].encode("ascii"))
                await writer.drain()
            except ConnectionError:
                continue  # the reader died mid-write: the same telegram goes to the next one
            self.sent += 1
            count += 1
        return count

    async def run(self, rate: float, *, until: int | None = None) -> None:
        """Send ``rate`` telegrams per second until ``until`` telegrams (default: all) are out."""
        end = len(self.telegrams) if until is None else min(until, len(self.telegrams))
        while self.sent < end:
            await self.send(1)
            await asyncio.sleep(1.0 / rate)

    def info(self) -> dict[str, Any]:
        """Where it listens and how far it got."""
        return {"url": self.url, "sent": self.sent, "total": len(self.telegrams),
                "connected": self._writer is not None}
