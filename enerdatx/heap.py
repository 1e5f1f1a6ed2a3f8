"""Keep Python's cyclic garbage collector off the peers a process hosts (``gc.freeze``).

A process that hosts thousands of peers holds millions of objects that live as long as the
peers do: IPv8 communities, their keys, caches and tasks. Every full collection walks all of
them, and the collector runs one whenever the objects made since the last one reach a quarter
of the old ones. With 10,000 light peers in one process (2.2 million objects), two full
collections took 2.7 s of the 6.8 s of CPU a fraud proof needed to reach every peer
(docs/performance.md, "Round 8").

:func:`freeze` collects what is garbage now, then moves every object left to the permanent
generation, which the collector never walks. Nothing else changes: a frozen object is still
freed as soon as nothing refers to it; only a cycle among frozen objects waits until the last
host calls :func:`release` (``gc.unfreeze``), and :func:`collect_stopped` lets a host that
stopped some of its peers (a restart) hand their cycles to the collector at once.
"""

from __future__ import annotations

import gc
import threading

__all__ = ["collect_stopped", "freeze", "hosts", "release"]

_lock = threading.Lock()
_hosts: set[int] = set()  # id() of every host holding the heap frozen (a host lives while it holds)


def freeze(host: object) -> None:
    """Freeze every live object, for ``host`` (a Lab that has just started peers)."""
    with _lock:
        _hosts.add(id(host))
        gc.collect()  # walks only what is not frozen yet: garbage is never frozen
        gc.freeze()


def release(host: object) -> None:
    """``host`` is done (its peers stopped); the last host to go unfreezes the heap."""
    with _lock:
        if id(host) not in _hosts:
            return
        _hosts.discard(id(host))
        if not _hosts:
            gc.unfreeze()


def collect_stopped(host: object) -> None:
    """:func:`freeze` for ``host``, after collecting the cycles of the peers it stopped (a full
    collection: they were frozen with the rest)."""
    with _lock:
        _hosts.add(id(host))
        gc.unfreeze()
        gc.collect()
        gc.freeze()


def hosts() -> int:
    """How many hosts hold the heap frozen."""
    return len(_hosts)
