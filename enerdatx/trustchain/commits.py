"""Group commit: the blocks a peer signs in one turn of the event loop share one commit (one fsync).

The community signs with ``group_commit=True`` and, before it sends a block, awaits
:meth:`GroupCommit.durable` for the store batch the block is in: nobody sees a block that
a crash could still take back.

Blocks of others (gossip) may wait longer: :meth:`GroupCommit.later` commits them within a
delay, so one commit writes the gossip of many turns. They need no fsync and a crash loses
only blocks that their signers, witnesses and crawls still hold. A block we sign commits the
open batch, gossip included, before it is sent, so nothing we sign rests on a block we could
lose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from enerdatx.errors import LedgerError

if TYPE_CHECKING:
    from enerdatx.trustchain.ledger import TrustChain

__all__ = ["GroupCommit"]

logger = logging.getLogger(__name__)


class GroupCommit:
    """Commits a ledger's open store batch once per turn of the event loop."""

    def __init__(self, ledger: TrustChain) -> None:
        self.ledger = ledger
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._committed: asyncio.Future[None] | None = None

    def soon(self) -> None:
        """Commit the store's open batch at the next turn of the event loop (once per turn)."""
        if not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside the event loop (a test harness): commit now
                self._now()
                return
            self._scheduled = True
            loop.call_soon(self._now)

    def later(self, delay: float) -> None:
        """Commit the store's open batch within ``delay`` seconds (at the next turn if ``delay`` <= 0)."""
        if self._scheduled or self._timer is not None:
            return  # a commit is on its way already
        if delay <= 0:
            self.soon()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._now()
            return
        self._timer = loop.call_later(delay, self._now)

    def flush(self) -> None:
        """Commit now whatever waits (the community is going away)."""
        self._now()

    def _now(self) -> None:
        self._scheduled = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        committed, self._committed = self._committed, None
        try:
            self.ledger.commit()
        except Exception as exc:  # noqa: BLE001 - the waiting senders fail with it
            logger.exception("commit failed")
            if committed is not None:
                committed.set_exception(exc)
        else:
            if committed is not None:
                committed.set_result(None)

    async def durable(self, batch: int | None) -> None:
        """Wait until store batch ``batch`` (blocks signed with group_commit) is on disk.

        Raises LedgerError when the commit failed: those blocks are lost and must not be sent.
        """
        store = self.ledger.store
        if batch is not None and store.batch == batch:
            if self._committed is None:
                self._committed = asyncio.get_running_loop().create_future()
            committed = self._committed
            self.soon()
            with contextlib.suppress(Exception):  # judged below, by the batch's fate
                await asyncio.shield(committed)
        if batch is not None and not store.batch_committed(batch):
            raise LedgerError("our block could not be stored, so it was not sent")
