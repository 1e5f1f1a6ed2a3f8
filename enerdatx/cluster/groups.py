"""Call every :class:`~enerdatx.cluster.group.PeerGroup` of an experiment at once and gather the answers.

The scenarios see only :class:`Groups`: in one process it has one group on a :class:`~enerdatx.lab.Lab`'s
event loop; on Dask, one actor per worker. That is what lets one scenario run unchanged on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from enerdatx.cluster.group import Contact, PeerGroup
from enerdatx.errors import ConfigurationError

__all__ = ["Groups", "groups_of"]


class _Result(Protocol):
    def result(self, timeout: float | None = None) -> Any: ...


class Groups:
    """Every group of one experiment; ``map`` calls one method on all of them concurrently."""

    def __init__(self, handles: Sequence[Any], call: Callable[[Any, str, tuple[Any, ...]], _Result]) -> None:
        self.handles = list(handles)
        self._call = call
        self.sizes = [0] * len(self.handles)
        self.owner: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.handles)

    def map(self, method: str, args: Iterable[tuple[Any, ...]] | None = None) -> list[Any]:
        """Call ``method`` on each group (with its own argument tuple) at once; their results, in order."""
        if not isinstance(method, str) or method.startswith("_") or not callable(getattr(PeerGroup, method, None)):
            raise ConfigurationError(f"a PeerGroup has no method {method!r}")
        per_group = list(args) if args is not None else [()] * len(self.handles)
        if len(per_group) != len(self.handles):
            raise ConfigurationError(f"give one argument tuple per group ({len(self.handles)}), not {len(per_group)}")
        futures = [self._call(handle, method, a) for handle, a in zip(self.handles, per_group, strict=True)]
        return [future.result() for future in futures]

    def each(self, method: str, *args: Any) -> list[Any]:
        """Call ``method`` with the same arguments on every group."""
        return self.map(method, [args] * len(self.handles))

    def on(self, group: int, method: str, *args: Any) -> Any:
        """Call ``method`` on one group and wait for its result."""
        return self.submit(group, method, *args).result()

    def submit(self, group: int, method: str, *args: Any) -> _Result:
        """Call ``method`` on one group; its future (``.result()`` waits)."""
        return self._call(self.handles[group], method, args)

    def start(self, n: int, services: Any = None) -> list[Contact]:
        """Start ``n`` more peers spread evenly over the groups and introduce all to all; every contact."""
        first = sum(self.sizes)
        shares = [n // len(self) + (1 if g < n % len(self) else 0) for g in range(len(self))]
        starts, offset = [], first
        for share in shares:
            starts.append(offset)
            offset += share
        started = self.map("start", [(s, k, services) for s, k in zip(starts, shares, strict=True)])
        self.sizes = [size + share for size, share in zip(self.sizes, shares, strict=True)]
        for group, contacts in enumerate(started):
            self.owner.update((contact[0], group) for contact in contacts)
        contacts = [contact for group in started for contact in group]
        self.each("add_contacts", contacts)
        return contacts

    def group_of(self, index: int) -> int:
        """The group that holds peer ``index``."""
        return self.owner[index]


def _local_call(loop_owner: Any) -> Callable[[Any, str, tuple[Any, ...]], _Result]:
    def call(group: PeerGroup, method: str, args: tuple[Any, ...]) -> _Result:
        async def run() -> Any:
            result = getattr(group, method)(*args)
            return await result if asyncio.iscoroutine(result) else result

        loop = getattr(loop_owner, "_cluster_loop", None)
        if loop is None:
            loop_owner.run_sync(asyncio.sleep(0))  # starts the lab's loop on first use
            loop = loop_owner._loop
        return asyncio.run_coroutine_threadsafe(run(), loop)

    return call


def groups_of(lab: Any, *, light: bool = False, loop: asyncio.AbstractEventLoop | None = None) -> Groups:
    """The groups of ``lab``: its Dask actors, or one in-process group on a single-process Lab.

    A single-process lab is driven on its own event loop (``with Lab(...) as lab``, as
    :meth:`Lab.run_sync` does), or on ``loop`` where its peers already live (``async with Lab()``:
    the scenario then runs in a thread, see :mod:`enerdatx.attacks`); ``light`` says whether the
    peers it starts from now on are light (a DaskLab's workers are told once, by
    ``Lab(workers=N, light=True)``).
    """
    groups = getattr(lab, "groups", None)
    if isinstance(groups, Groups):
        return groups
    if loop is not None:
        lab._cluster_loop = loop
    existing = getattr(lab, "_cluster_groups", None)
    if existing is not None:
        existing.handles[0].light = light  # peers started from now on
        return existing
    group = PeerGroup(lab=lab, light=light, seed=None)
    made = Groups([group], _local_call(lab))
    lab._cluster_groups = made
    return made
