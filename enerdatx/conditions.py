"""Coroutines that wait for a condition on some state, re-checked whenever that state changes,
and :func:`wait_within`, the bounded wait every one of them is built on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["Conditions", "wait_within"]

T = TypeVar("T")


async def wait_within(awaitable: Awaitable[T], timeout: float | None) -> T:
    """``await awaitable``, or TimeoutError after ``timeout`` seconds (None: no limit).

    ``asyncio.wait_for`` in Python 3.11 loses a cancellation that arrives once what it waits for
    is done (it returns the result instead: CPython gh-86296, fixed in 3.12). Ctrl-C is such a
    cancellation, and `enerdatx demo` ran on to its end after one.
    """
    async with asyncio.timeout(timeout):
        return await awaitable


class Conditions:
    """The waiters of one object: ``wait_for`` a condition, ``notify`` after every change."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    async def wait_for(self, condition: Callable[[], bool], timeout: float) -> None:
        """Return once ``condition()`` holds; TimeoutError after ``timeout`` seconds."""
        if condition():
            return
        entry = (condition, asyncio.get_running_loop().create_future())
        self._waiting.append(entry)
        try:
            await wait_within(entry[1], timeout)
        finally:
            if entry in self._waiting:
                self._waiting.remove(entry)

    def notify(self) -> None:
        """Wake every waiter whose condition holds now."""
        for condition, future in list(self._waiting):
            if not future.done() and condition():
                future.set_result(None)
