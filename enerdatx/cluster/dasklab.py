"""A Lab whose peers live on Dask workers: one :class:`PeerGroup` actor per worker, real UDP between them.

>>> from enerdatx.lab import Lab
>>> lab = Lab(workers=2)            # doctest: +SKIP
>>> lab.start(20)                   # doctest: +SKIP
>>> lab.chains()                    # doctest: +SKIP

``Lab(workers=N)`` starts a ``LocalCluster`` of N worker processes itself, scheduler, workers,
nannies and dashboard bound to 127.0.0.1; ``Lab(cluster=Client("tcp://host:8786"))`` uses the
workers of a cluster someone else started (docs/network.md). Each worker's peers listen on UDP at
that worker's host address; ``packet_loss`` drops that share of the datagrams each peer receives
(seeded per worker), since no sender there sees the whole network.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd

from enerdatx.bench.limits import FULL_PEER_BYTES, LIGHT_PEER_BYTES, MAX_LOCAL_WORKERS
from enerdatx.cluster.group import PeerGroup
from enerdatx.cluster.groups import Groups
from enerdatx.errors import ConfigurationError, PeerProcessError
from enerdatx.files import named_path
from enerdatx.lab import check_block_type, check_lab_options, check_peer_count
from enerdatx.peer import Peer, Service

__all__ = ["DaskLab"]

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


# Dask starts a LocalCluster's workers by spawning fresh interpreters, and each re-imports the
# script that asked for them: a script whose Lab(workers=N) is not behind this guard starts a
# cluster from every worker it starts, and Dask answers only "Nanny failed to start".
MAIN_GUARD = (
    'in a script, make the Lab(workers=N) under `if __name__ == "__main__":` '
    "(Dask starts each worker as a new Python that imports the script again)"
)


def _importing_a_script_in_a_worker() -> bool:
    """Whether this is a process spawned by multiprocessing, still importing its parent's script.

    The flag multiprocessing itself checks before it refuses to start a process then.
    """
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


# How long the scheduler may take to mark a worker lost after its connection broke: Dask
# reports the broken connection of a call in flight before the scheduler has noticed.
WORKER_LOSS_SETTLES_S = 5.0
_DASK_LOSS_WORDS = ("Unable to contact Actor's worker", "Worker holding Actor was lost")


class _GroupFuture:
    """A call to one group's actor; ``result`` tells a lost worker apart from an error of the call."""

    def __init__(self, future: Any, on_error: Callable[[BaseException], None]) -> None:
        self._future = future
        self._on_error = on_error

    def result(self, timeout: float | None = None) -> Any:
        try:
            return self._future.result(timeout)
        except (OSError, RuntimeError) as exc:  # Dask: "Unable to contact Actor's worker"; or the group's own
            self._on_error(exc)
            raise


class DaskLab:
    """N groups of peers on Dask workers, driven from here; results come back as pandas DataFrames."""

    def __init__(
        self,
        directory: str | Path | None = None,
        transport: str = "udp",
        *,
        workers: int | None = None,
        cluster: Any = None,
        settings: dict[str, Any] | None = None,
        services: Callable[[Peer], Iterable[Service]] | None = None,
        seed: int | None = None,
        progress: bool | None = None,
        durable: bool = True,
        light: bool = False,
        packet_loss: float = 0.0,
    ) -> None:
        from distributed import Client

        if transport != "udp":
            raise ConfigurationError("peers on Dask workers talk over UDP: transport must be 'udp'")
        settings = check_lab_options(packet_loss, settings, seed, durable=durable, progress=progress, services=services)
        if not isinstance(light, bool):
            raise ConfigurationError(f"light must be True or False, not {light!r}")
        if (workers is None) == (cluster is None):
            raise ConfigurationError("give either workers=N (a local cluster) or cluster=<distributed.Client>")
        if cluster is not None and not isinstance(cluster, Client):
            raise ConfigurationError(f"cluster must be a distributed.Client, not {type(cluster).__name__}")
        if cluster is None and (
            isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_LOCAL_WORKERS
        ):
            raise ConfigurationError(f"workers must be a whole number from 1 to {MAX_LOCAL_WORKERS}, not {workers!r}")
        # The directory names one on each worker's host, so only its name can be checked here.
        root = None if directory is None else named_path(directory, "a directory for the lab's peers (None: a temporary one)")
        self._own_cluster: Any = None  # a LocalCluster when this lab started one
        try:
            self._connect(cluster, workers, root, settings, seed, durable, light, packet_loss)
        except BaseException:
            self._stop_cluster()
            raise
        self.services = services
        self.progress = progress
        self.light = light

    def _connect(
        self, cluster: Any, workers: int | None, root: Path | None, settings: dict[str, Any], seed: int | None,
        durable: bool, light: bool, packet_loss: float,
    ) -> None:
        """Start (or join) the cluster and put one group of peers on each of its workers."""
        from distributed import Client, LocalCluster

        if cluster is None:
            if _importing_a_script_in_a_worker():
                raise ConfigurationError(f"a Dask worker was asked to start a cluster of its own: {MAIN_GUARD}")
            try:
                self._own_cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, host=LOOPBACK,
                    dashboard_address=f"{LOOPBACK}:0", worker_dashboard_address=f"{LOOPBACK}:0",
                    silence_logs=logging.ERROR,
                )
            except RuntimeError as exc:  # what Dask raises when a worker process dies starting
                raise PeerProcessError(f"the local Dask cluster did not start ({exc}); {MAIN_GUARD}") from exc
            self.client = Client(self._own_cluster)
        else:
            self.client = cluster
        # A closed client's scheduler_info() is {} (a KeyError below), or its IOLoop is closed.
        try:
            info = self.client.scheduler_info() if self.client.status == "running" else {}
        except (RuntimeError, OSError):
            info = {}
        if "workers" not in info:
            raise ConfigurationError(
                f"the Dask client is {self.client.status} and reaches no scheduler: give a running distributed.Client"
            )
        addresses = sorted(info["workers"])
        if not addresses:
            raise ConfigurationError("the Dask cluster has no workers")
        self.workers = addresses
        futures = [
            self.client.submit(
                PeerGroup, None if root is None else str(root / f"worker-{i}"), "udp",
                urlparse(address).hostname or LOOPBACK, settings=settings, seed=None if seed is None else seed + i,
                durable=durable, light=light, packet_loss=packet_loss, actor=True, workers=[address],
                allow_other_workers=False, pure=False,
            )
            for i, address in enumerate(addresses)
        ]
        actors = [future.result() for future in futures]
        self._group_of_actor = {id(actor): group for group, actor in enumerate(actors)}
        self._groups: Groups | None = Groups(actors, self._call)
        self._group_futures = futures  # the actors live as long as these futures

    def _call(self, actor: Any, method: str, args: tuple[Any, ...]) -> _GroupFuture:
        """Call ``method`` on a group's actor; a PeerProcessError if the worker holding it is gone."""
        group = self._group_of_actor[id(actor)]
        try:
            future = getattr(actor, method)(*args)
        except RuntimeError as exc:  # Dask's Actor, once its worker is lost: "Worker holding Actor was lost"
            self._raise_if_lost(group, exc)
            raise
        return _GroupFuture(future, lambda exc: self._raise_if_lost(group, exc))

    def _raise_if_lost(self, group: int, exc: BaseException) -> None:
        """Raise a PeerProcessError naming the worker if it was lost; return if it lives (the error is the call's)."""
        address = self.workers[group]
        # Only Dask's own words about a broken connection are worth waiting on for the scheduler.
        deadline = time.monotonic() + (WORKER_LOSS_SETTLES_S if str(exc).startswith(_DASK_LOSS_WORDS) else 0.0)
        while True:
            try:
                lost = self._group_futures[group].status in ("error", "lost", "cancelled") or (
                    address not in self.client.scheduler_info()["workers"]
                )
            except (OSError, RuntimeError):  # the scheduler out of reach, or the client closed ("IOLoop is closed")
                lost = True
            if lost:
                peers = 0 if self._groups is None else self._groups.sizes[group]
                held = f", and with it {peers} of this lab's peers" if peers else ""
                raise PeerProcessError(
                    f"the Dask worker {address} was lost (its process ended or cannot be reached){held}: "
                    "close this lab and make a new one"
                ) from exc
            if time.monotonic() >= deadline:
                return
            time.sleep(0.1)

    @property
    def groups(self) -> Groups:
        """The groups of peers, one per worker; a closed lab has none (its workers may be gone)."""
        if self._groups is None:
            raise ConfigurationError("this lab is closed: its peers are stopped; make a new Lab")
        return self._groups

    @property
    def dashboard_link(self) -> str:
        """The Dask dashboard (on 127.0.0.1 for a cluster the lab started)."""
        return self.client.dashboard_link

    # --- peers -------------------------------------------------------------------------

    def start(self, n: int = 1) -> pd.DataFrame:
        """Start ``n`` more peers over the workers, all knowing all; one row per peer started."""
        # A cluster of this lab's own runs here; the memory of someone else's workers is theirs to know.
        # Open files are each worker's: its own Lab checks them before its peers start.
        check_peer_count(n, (LIGHT_PEER_BYTES if self.light else FULL_PEER_BYTES) if self._own_cluster else None,
                         files_each=None)
        contacts = self.groups.start(n, self.services)
        return pd.DataFrame(
            [(i, self.workers[self.groups.group_of(i)], key, host, port) for i, key, host, port in contacts],
            columns=["peer", "worker", "public_key", "host", "port"],
        )

    def accept(self, block_type: str) -> None:
        """Every peer, now and later, countersigns any proposal of ``block_type``."""
        check_block_type(block_type)
        self.groups.each("accept", block_type)

    def chains(self) -> pd.DataFrame:
        """Every block of every peer's own chain."""
        return self._frame("chains")

    def balances(self) -> pd.DataFrame:
        """Every market peer's balance of its own chain."""
        return self._frame("balances")

    def fraud_proofs(self) -> pd.DataFrame:
        """Every fraud proof every peer holds (peer, forker, sequence number)."""
        return self._frame("fraud_proofs")

    def traffic(self) -> pd.DataFrame:
        """Bytes and packets each peer's TrustChain community has sent."""
        return self._frame("traffic")

    def _frame(self, method: str) -> pd.DataFrame:
        rows = [row for group in self.groups.each(method) for row in group]
        return pd.DataFrame(rows).sort_values("peer", kind="stable").reset_index(drop=True) if rows else pd.DataFrame()

    # --- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the peers, then the cluster if the lab started it; safe to call twice."""
        if self._groups is None:
            return
        groups = self._groups
        try:
            # Every group is asked to stop, even when one worker is lost: the others' peers
            # would otherwise stay bound to their ports on a cluster that is not ours.
            calls: list[tuple[int, Any]] = []
            lost: list[str] = []
            for group in range(len(groups)):
                try:
                    calls.append((group, groups.submit(group, "stop")))
                except PeerProcessError:
                    lost.append(self.workers[group])
            for group, call in calls:
                try:
                    call.result()
                except PeerProcessError:
                    lost.append(self.workers[group])
            if lost:
                logger.warning("closed the lab; its peers on lost workers were gone already: %s", ", ".join(lost))
        finally:
            self._groups = None
            self._group_futures = []
            self._stop_cluster()

    def _stop_cluster(self) -> None:
        """Close the client and the cluster, if this lab started them (a cluster given is the caller's)."""
        if self._own_cluster is not None:
            if getattr(self, "client", None) is not None:
                self.client.close()
            self._own_cluster.close()
            self._own_cluster = None

    def __enter__(self) -> DaskLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        peers = sum(self._groups.sizes) if self._groups is not None else 0
        return f"DaskLab({len(self.workers)} workers, {peers} peers, dashboard {self.dashboard_link})"

    def _repr_html_(self) -> str:
        peers = sum(self._groups.sizes) if self._groups is not None else 0
        link = self.dashboard_link
        return (f"<b>DaskLab</b>: {len(self.workers)} workers, {peers} peers; "
                f'dashboard <a href="{link}" target="_blank">{link}</a>')
