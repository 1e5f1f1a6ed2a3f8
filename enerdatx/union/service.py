"""Data unions on the network: membership records, round announcements and masked contributions over IPv8.

Members send their join and leave records to the operator; the operator announces a round
(its id, period and roster) to the roster; each member checks that the announcement comes
from its union's operator and fits the terms, masks its readings and sends them back. Only
masked vectors ever leave a member. One contribution travels in one packet, which bounds a
round to ``MAX_VALUES`` values (3,500 intervals: over a month at 15 minutes).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

import numpy as np
import pandas as pd
from ipv8.lazy_community import lazy_wrapper
from ipv8.messaging.payload_dataclass import DataClassPayload, type_from_format

from enerdatx.conditions import Conditions, wait_within
from enerdatx.errors import (
    ConfigurationError,
    EncodingError,
    EnerDatXError,
    PeerUnreachableError,
    StorageError,
    TransactionRejectedError,
    UnionError,
)
from enerdatx.market.formats import SHARE, parse_share
from enerdatx.market.service import check_seconds
from enerdatx.meter.resample import utc_timestamp
from enerdatx.overlay import AnswerBudget, Overlay, OverlaySettings
from enerdatx.trustchain import HalfBlock
from enerdatx.trustchain.keys import trustchain_key
from enerdatx.union.secagg import MaskedContribution, Round
from enerdatx.union.union import JOIN, LEAVE, Contribution, DataUnion, UnionAggregate, UnionMember, UnionTerms

if TYPE_CHECKING:
    from ipv8.peer import Peer as IPv8Peer

    from enerdatx.peer import Peer

__all__ = ["UnionService", "UnionCommunity", "MAX_VALUES", "MESSAGES"]

logger = logging.getLogger(__name__)
# As in enerdatx.market.payload: ``msg_id`` a class variable, wire types ints to the type checker.
if TYPE_CHECKING:
    uint32: TypeAlias = int
else:
    uint32 = type_from_format("I")
MAX_VALUES = 7_000  # 56 KB of masked values: one UDP packet with room for IPv8's header and signature
MAX_ANSWERED = 16  # the rounds a member remembers its contribution to (see receive_round)


@dataclass
class MembershipMessage(DataClassPayload):
    """A member's ``edx.union.join`` or ``edx.union.leave`` record, for the operator."""

    msg_id: ClassVar[int] = 1
    block: bytes


@dataclass
class RoundMessage(DataClassPayload):
    """The operator opens a round: terms, period and roster (32-byte keys, concatenated)."""

    msg_id: ClassVar[int] = 2
    terms: bytes
    round_id: bytes
    start: str
    end: str
    roster: bytes


@dataclass
class ContributionMessage(DataClassPayload):
    """A member's masked vector for a round (little-endian uint64s) and its readings count."""

    msg_id: ClassVar[int] = 3
    round_id: bytes
    readings: uint32
    masked: bytes


MESSAGES = (MembershipMessage, RoundMessage, ContributionMessage)


class UnionSettings(OverlaySettings):
    """What the union community is given at birth."""

    service: UnionService | None = None

    contribution_answer_rate: float = 65_536.0
    contribution_answer_burst: int = 262_144
    """Bytes of contributions a member sends one operator, per second and at once. A round
    announcement is signed but not fresh: replayed by anyone who saw it, each copy made the member
    mask its readings again (half a second for a roster of 2,000) and send the operator 56 KB,
    up to a thousand times a second. Beyond it an announcement is dropped ("contribution_budget")
    before anything is masked; an operator asks again after its round timed out."""


class UnionCommunity(Overlay):
    """Moves membership records, round announcements and masked contributions."""

    community_id = bytes.fromhex("65647820756e696f6e2076312e30d2a95b3e7f14")
    settings_class = UnionSettings

    def __init__(self, settings: UnionSettings) -> None:
        if settings.service is None:
            raise TypeError("UnionCommunity needs settings.service")
        super().__init__(settings)
        self.service: UnionService = settings.service
        self.contribution_answers = AnswerBudget(settings.contribution_answer_rate, settings.contribution_answer_burst)
        self.add_message_handler(MembershipMessage, self.on_membership)
        self.add_message_handler(RoundMessage, self.on_round)
        self.add_message_handler(ContributionMessage, self.on_contribution)

    def send_to(self, public_key: bytes, payload: Any) -> int:
        """Sign and send one message to the peer with TrustChain key ``public_key``; the bytes sent."""
        peer = self.service.peer.community.peer_for(public_key)
        if peer is None:
            raise PeerUnreachableError(f"no address known for peer {public_key.hex()[:16]}")
        return self.send_packet(peer, payload)  # ez_send's, counting the bytes

    @lazy_wrapper(MembershipMessage)
    def on_membership(self, peer: IPv8Peer, payload: MembershipMessage) -> None:
        """A member's record: the operator of its union takes it."""
        sender = trustchain_key(peer)
        try:
            block = HalfBlock.decode(payload.block)
        except EncodingError:
            return
        if sender == block.public_key:
            self.service.receive_membership(block)

    @lazy_wrapper(RoundMessage)
    def on_round(self, peer: IPv8Peer, payload: RoundMessage) -> None:
        """An operator opens a round: contribute if it is our union's operator and the round fits."""
        self.service.receive_round(trustchain_key(peer), payload)

    @lazy_wrapper(ContributionMessage)
    def on_contribution(self, peer: IPv8Peer, payload: ContributionMessage) -> None:
        """A member's masked vector for one of our rounds."""
        self.service.receive_contribution(trustchain_key(peer), payload)


class UnionService:
    """A peer's unions: those it operates and those it is a member of."""

    def __init__(self, readings: pd.DataFrame | None = None, *, timeout: float = 10.0) -> None:
        # Refused when made: a NaN timeout never gave a round up, a str of readings failed at the first round.
        if readings is not None and not isinstance(readings, pd.DataFrame):
            raise ConfigurationError(f"readings are a DataFrame of meter readings or None, not {type(readings).__name__}")
        check_seconds("timeout", timeout, ConfigurationError)
        self.readings = readings
        self.timeout = timeout
        self.operated: dict[bytes, DataUnion] = {}
        self.memberships: dict[bytes, UnionMember] = {}
        self._rounds: dict[bytes, tuple[Round, dict[bytes, Contribution], asyncio.Future[None]]] = {}
        # The last rounds we contributed to: an announcement again (or a replay) is answered alike, not masked again.
        self._answered: OrderedDict[tuple[bytes, bytes], ContributionMessage] = OrderedDict()
        self._conditions = Conditions()
        self._closed = False
        self.peer: Peer
        self.community: UnionCommunity

    def attach(self, peer: Peer) -> None:
        """Start the union community on the peer's IPv8."""
        self.peer = peer
        self.community = UnionCommunity(UnionSettings(my_peer=peer.community.my_peer, endpoint=peer.ipv8.endpoint,
                                                      network=peer.ipv8.network, service=self))
        peer.add_overlay(self.community)
        peer.ledger.register_policy(SHARE, self._share_policy)

    async def close(self) -> None:
        """Stop the community; a round still waiting for contributions ends with StorageError."""
        self._closed = True
        for _round, _contributions, future in list(self._rounds.values()):
            if not future.done():
                future.set_exception(self._closed_error())
        if self.community in self.peer.ipv8.overlays:
            self.peer.ipv8.overlays.remove(self.community)
            await self.community.unload()

    def check_open(self) -> None:
        """StorageError once closed (its peer stopped), as the market says, before anything is
        recorded or sent: found() operated a union on a stopped peer, run_round() said "0 members",
        join() kept a membership whose record the closed store then refused."""
        if self._closed:
            raise self._closed_error()

    def _closed_error(self) -> StorageError:
        return StorageError("cannot use the union service: it is closed (was its peer stopped?)",
                            path=self.peer.directory)

    # --- the operator ------------------------------------------------------------------

    def found(self, terms: UnionTerms, *, location: str = "unknown") -> DataUnion:
        """Operate a union under ``terms`` (signed by this peer)."""
        self.check_open()
        _check_terms(terms)
        if terms.terms_hash in self.operated:  # a new DataUnion forgot every member and round
            raise UnionError(f"this peer operates union {terms.name!r} already: see operated[terms_hash]")
        union = DataUnion(terms, self.peer.ledger, location=location)
        self.operated[terms.terms_hash] = union
        return union

    def receive_membership(self, block: HalfBlock) -> None:
        """A join or leave record for one of our unions."""
        terms = block.transaction.get("terms") if isinstance(block.transaction, dict) else None
        union = self.operated.get(terms) if isinstance(terms, bytes) else None
        if union is not None and block.type in (JOIN, LEAVE) and block.is_record:
            try:
                union.receive(block)
            except UnionError:
                logger.debug("refused a membership record", exc_info=True)
            self._conditions.notify()

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Wait until ``predicate(service)`` holds, re-checked whenever a membership record arrives."""
        self.check_open()
        # A NaN timeout never timed out, a negative one gave up at once; 5 for the predicate a TypeError.
        if not callable(predicate):
            raise UnionError(f"wait_for's predicate is a function of the service, not {predicate!r}")
        check_seconds("timeout", timeout, UnionError, zero=True)
        await self._conditions.wait_for(lambda: predicate(self), timeout)

    async def run_round(self, terms_hash: bytes, start: Any, end: Any) -> UnionAggregate:
        """Open a round over today's members, collect every masked contribution, aggregate."""
        self.check_open()
        union = _lookup(self.operated, terms_hash, "operates")
        round_ = union.open_round(start, end)
        if round_.length > MAX_VALUES:
            raise UnionError(f"a round carries at most {MAX_VALUES // 2} intervals in this version")
        if round_.round_id in self._rounds:  # the same period and roster: one collection, not two
            raise UnionError("this round (the same period and roster) is running already: await it")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        contributions: dict[bytes, Contribution] = {}
        self._rounds[round_.round_id] = (round_, contributions, future)
        lo, hi = (pd.Timestamp(t, tz="UTC") if pd.Timestamp(t).tz is None else pd.Timestamp(t) for t in (start, end))
        message = RoundMessage(terms_hash, round_.round_id, lo.isoformat(), hi.isoformat(), b"".join(round_.roster))
        try:
            for member in round_.roster:
                self.community.send_to(member, message)
            await wait_within(asyncio.shield(future), self.timeout)
        except TimeoutError:
            missing = len(round_.roster) - len(contributions)
            raise UnionError(f"{missing} of {len(round_.roster)} members did not contribute in {self.timeout} s; "
                             "open a new round without them") from None
        finally:
            self._rounds.pop(round_.round_id, None)
        return union.aggregate(round_, start, end, list(contributions.values()))

    def receive_contribution(self, sender: bytes | None, payload: ContributionMessage) -> None:
        """A masked vector: kept when its sender is in the round's roster and it has the right length."""
        open_round = self._rounds.get(payload.round_id)
        if open_round is None or sender is None:
            return
        round_, contributions, future = open_round
        # A count beyond the round's intervals is no member's: dropped, as a vector of the wrong length.
        if sender not in round_.roster or len(payload.masked) != 8 * round_.length or payload.readings > round_.length // 2:
            return
        masked = np.frombuffer(payload.masked, dtype="<u8").astype(np.uint64)
        contributions[sender] = Contribution(MaskedContribution(round_.round_id, sender, masked), payload.readings)
        if len(contributions) == len(round_.roster) and not future.done():
            future.set_result(None)

    # --- the member --------------------------------------------------------------------

    def join(self, terms: UnionTerms) -> HalfBlock:
        """Join a union with our readings: record it on our chain and tell the operator."""
        self.check_open()
        _check_terms(terms)
        if self.readings is None:
            raise UnionError("this peer has no readings to pool")
        UnionTerms.decode(terms.encode())  # unsigned or tampered terms: no union's operator admits them
        known = self.memberships.get(terms.terms_hash)
        if known is not None and known.is_member:  # a second join record on our chain, for nothing
            raise UnionError(f"this peer is a member of union {terms.name!r} already: announce() sends its record again")
        member = UnionMember(self.peer.ledger, terms, self.readings)
        self.peer.ledger.register_policy(SHARE, self._share_policy)  # one policy for all our unions
        self.memberships[terms.terms_hash] = member
        block = member.join()
        self.announce(terms.terms_hash)
        return block

    def leave(self, terms_hash: bytes) -> HalfBlock:
        """Leave a union: record it and tell the operator; we contribute to no later round."""
        self.check_open()
        member = _lookup(self.memberships, terms_hash, "is a member of")
        if not member.is_member:  # a second leave record, for nothing
            raise UnionError(f"this peer has left union {member.terms.name!r} already")
        block = member.leave()
        self.announce(terms_hash)
        return block

    def announce(self, terms_hash: bytes) -> bool:
        """Send our latest join or leave record to the operator; False if it is unreachable now.

        The record is on our chain either way, so announcing again later is always safe.
        """
        self.check_open()
        member = _lookup(self.memberships, terms_hash, "is a member of")
        records = [b for b in self.peer.ledger.store.chain(self.peer.public_key)
                   if b.type in (JOIN, LEAVE) and b.transaction.get("terms") == terms_hash]
        try:
            self.community.send_to(member.terms.operator, MembershipMessage(records[-1].encode()))
        except PeerUnreachableError:
            logger.info("the operator of union %s is unreachable; announce again later", terms_hash.hex()[:16])
            return False
        return True

    def receive_round(self, sender: bytes | None, payload: RoundMessage) -> None:
        """Contribute to a round our union's operator opened (the member re-derives the round id)."""
        member = self.memberships.get(payload.terms)
        if member is None or sender != member.terms.operator or len(payload.roster) % 32:
            return
        roster = tuple(payload.roster[i : i + 32] for i in range(0, len(payload.roster), 32))
        try:
            lo, hi = utc_timestamp(payload.start), utc_timestamp(payload.end)
            intervals = (hi - lo) // pd.Timedelta(seconds=member.terms.resolution_seconds)
            if not 0 < intervals <= MAX_VALUES // 2:  # checked before anything is built for the period
                raise UnionError(f"a round has 1..{MAX_VALUES // 2} intervals")
            if len(roster) < member.terms.threshold:
                raise UnionError("a roster below the union's threshold")
            round_ = Round(payload.round_id, roster, 2 * intervals)
            member.check_round(round_, lo, hi)
            if not self.community.contribution_answers.allows(sender):  # before anything is masked
                self.community.count_drop("contribution_budget")
                return
            answered = self._answered.get((payload.terms, payload.round_id))
            if answered is not None:  # the same round again (or a replay): the same answer
                self._send_contribution(sender, answered)
                return
            contribution = member.contribute(round_, lo, hi)
        except (EnerDatXError, ValueError, TypeError, OverflowError) as exc:  # pandas' date errors vary
            logger.info("refused to contribute to round %s: %s", payload.round_id.hex()[:16], exc)
            return
        message = ContributionMessage(payload.round_id, contribution.readings,
                                      contribution.masked.masked.astype("<u8").tobytes())
        self._answered[(payload.terms, payload.round_id)] = message
        while len(self._answered) > MAX_ANSWERED:
            self._answered.popitem(last=False)
        self._send_contribution(sender, message)

    def _send_contribution(self, operator: bytes, message: ContributionMessage) -> None:
        try:
            sent = self.community.send_to(operator, message)
        except PeerUnreachableError:
            logger.info("the operator of round %s is unreachable", message.round_id.hex()[:16])
            sent = 0
        self.community.contribution_answers.spend(operator, sent)

    def _share_policy(self, ledger: Any, proposal: Any) -> None:
        try:
            share = parse_share(proposal.transaction)
        except EncodingError as exc:
            raise TransactionRejectedError(f"malformed_share: {exc}") from exc
        member = self.memberships.get(share.terms)
        if member is None:
            raise TransactionRejectedError("unknown_union")
        return member.share_policy(ledger, proposal)


def _check_terms(terms: object) -> None:
    if not isinstance(terms, UnionTerms):  # None or the terms' hash: an AttributeError
        raise UnionError(f"a union is named by its signed UnionTerms, not {type(terms).__name__}")


def _lookup(unions: dict[bytes, Any], terms_hash: object, what: str) -> Any:
    """The union named by ``terms_hash``; UnionError, not a KeyError (or TypeError for a list)."""
    union = unions.get(terms_hash) if isinstance(terms_hash, bytes) else None
    if union is None:
        shown = terms_hash.hex()[:16] if isinstance(terms_hash, bytes) else repr(terms_hash)[:40]
        raise UnionError(f"this peer {what} no union with terms hash {shown}")
    return union
