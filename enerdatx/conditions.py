"""Coroutines that wait for a condition on some state, re-checked whenever that state changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Conditions"]


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
            await asyncio.wait_for(entry[1], timeout)
        finally:
            if entry in self._waiting:
                self._waiting.remove(entry)

    def notify(self) -> None:
        """Wake every waiter whose condition holds now."""
        for condition, future in list(self._waiting):
            if not future.done() and condition():
                future.set_result(None)
