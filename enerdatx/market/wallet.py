"""Balances derived from TrustChain chains: an initial grant, plus income, minus payments.

Nobody keeps an account: a peer's balance is read off its own chain as held locally.
Every ``edx.payment`` proposal on the chain is money spent, whether or not it was
countersigned yet (a signed proposal may still be countersigned, so it reserves its
amount; this is what makes a double spend impossible without a fork), unless the payer
*released* it: an ``edx.release`` record later on the payer's chain, signed after the
proposal's deadline, takes the reservation back, and from then on the payment moves
nothing, whether or not an agreement to it turns up (docs/market.md, "Reservations").
Income is an ``edx.payment`` agreement on the chain whose proposal, signed by the payer,
is held too and not released; an agreement without its proposal could be made up, so it
does not count.
A data union's ``edx.share`` (its operator passing on a member's share of a sale) moves
tokens by the same rules (shares have no deadline and cannot be released).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from enerdatx.errors import EncodingError
from enerdatx.market.formats import PAYMENT, RELEASE, SHARE, parse_payment, parse_release, parse_share

# Block types that move tokens, and how to read the amount of each.
_AMOUNT_OF = {PAYMENT: lambda tx: parse_payment(tx).amount, SHARE: lambda tx: parse_share(tx).amount}

__all__ = ["DEFAULT_GRANT", "Balance", "Wallet", "released_payments"]

# Like the old DUM1 dummy wallet: every identity starts with this many tokens.
DEFAULT_GRANT = 1000


@dataclass(frozen=True)
class Balance:
    """A peer's balance as derived from the blocks of its chain held locally."""

    public_key: bytes
    grant: int
    earned: int
    spent: int
    unverified_income: int  # agreements whose payer's proposal we do not hold
    complete: bool  # we hold every block of the chain up to the point asked about
    blocks: int
    released: int = 0  # payments taken back after their deadline (not in ``spent``)

    @property
    def available(self) -> int:
        """What the peer may still pay: grant + earned - spent."""
        return self.grant + self.earned - self.spent


@dataclass
class _Tally:
    """What a run of one chain's blocks adds up to, folded in ascending order (see Wallet)."""

    upto: int = 0  # the highest sequence number folded in
    spent: int = 0
    released: int = 0
    deadlines: dict[bytes, tuple[int, int]] = field(default_factory=dict)  # payment with a deadline -> (deadline, amount)
    released_hashes: set[bytes] = field(default_factory=set)
    incomes: list[tuple[Any, int]] = field(default_factory=list)  # (agreement, amount)

    def copy(self) -> _Tally:
        return _Tally(
            self.upto, self.spent, self.released, dict(self.deadlines), set(self.released_hashes), list(self.incomes)
        )

    def fold(self, block: Any) -> None:
        """Add one block, the next of the chain after those folded in so far."""
        self.upto = block.sequence_number
        amount_of = _AMOUNT_OF.get(block.type)
        if amount_of is not None:
            try:
                amount = amount_of(block.transaction)
            except EncodingError:
                return  # an honest counterparty never countersigned it, so it moved nothing
            if not block.is_proposal:
                self.incomes.append((block, amount))
                return
            self.spent += amount
            if block.type == PAYMENT:
                deadline = parse_payment(block.transaction).deadline
                if deadline is not None:
                    self.deadlines[block.hash] = (deadline, amount)
        elif block.type == RELEASE and block.is_record:
            # The rule of released_payments: a release signed later than the payment and after its deadline.
            try:
                target = parse_release(block)
            except EncodingError:
                return
            payment = self.deadlines.get(target)
            if payment is not None and target not in self.released_hashes and block.timestamp > payment[0]:
                self.released_hashes.add(target)
                self.spent -= payment[1]
                self.released += payment[1]


class Wallet:
    """Derives any peer's balance from a BlockStore; the grant is configurable.

    A chain's blocks are read and parsed once: the wallet keeps, per chain, the sums of the
    run of blocks it holds from sequence number 1 without a gap, and folds in only what came
    since. That is exact because a held block never changes; when the store may have lost
    blocks (a rollback, a removal: ``store.generation`` changes) the wallet starts over.
    """

    def __init__(self, store: Any, *, grant: int = DEFAULT_GRANT) -> None:
        if type(grant) is not int or grant < 0:
            raise ValueError("the grant is a non-negative integer")
        self.store = store
        self.grant = grant
        self._tallies: dict[bytes, _Tally] = {}
        self._proven: dict[bytes, tuple[Any, int | None]] = {}  # agreement hash -> (its proposal, deadline)
        self._generation = store.generation

    def balance(self, public_key: bytes, *, before: int | None = None) -> Balance:
        """The balance of ``public_key`` from its blocks below sequence number ``before`` (all if None)."""
        end = None if before is None else before - 1
        expected = end if end is not None else self.store.latest_sequence_number(public_key)
        tally, count = self._tally(public_key, end)
        earned = unverified = 0
        for agreement, amount in tally.incomes:
            if self._income_is_proven(agreement, amount):
                earned += amount
            else:
                unverified += amount
        return Balance(
            public_key=public_key,
            grant=self.grant,
            earned=earned,
            spent=tally.spent,
            unverified_income=unverified,
            complete=count == expected,
            blocks=count,
            released=tally.released,
        )

    def _tally(self, public_key: bytes, end: int | None) -> tuple[_Tally, int]:
        """The tally of the held blocks of that chain up to ``end`` (all if None), and their count."""
        generation = self.store.generation
        if generation != self._generation:
            self._tallies.clear()
            self._proven.clear()
            self._generation = generation
        if end is not None and end < 1:
            return _Tally(), 0
        kept = self._tallies.setdefault(public_key, _Tally())
        if end is not None and end < kept.upto:  # asked about the past: fold that prefix afresh
            blocks = self.store.chain(public_key, 1, end)
            tally = _Tally()
            for block in blocks:
                tally.fold(block)
            return tally, len(blocks)
        blocks = self.store.chain(public_key, kept.upto + 1, end)
        gapless = 0
        for block in blocks:
            if block.sequence_number != kept.upto + 1:
                break
            kept.fold(block)
            gapless += 1
        if gapless == len(blocks):
            return kept, kept.upto
        tally = kept.copy()  # the blocks past a gap count now but may not be the next ones later
        for block in blocks[gapless:]:
            tally.fold(block)
        return tally, kept.upto + len(blocks) - gapless

    def _income_is_proven(self, agreement: Any, amount: int) -> bool:
        proven = self._proven.get(agreement.hash)
        if proven is None:
            proposal = self.store.linked(agreement)
            if proposal is None or not proposal.is_proposal or proposal.type != agreement.type:
                return False
            if proposal.link_public_key != agreement.public_key:
                return False
            try:
                if _AMOUNT_OF[proposal.type](proposal.transaction) != amount:
                    return False
                deadline = parse_payment(proposal.transaction).deadline if proposal.type == PAYMENT else None
            except EncodingError:
                return False
            proven = self._proven[agreement.hash] = (proposal, deadline)  # a held proposal stays held
        proposal, deadline = proven
        if deadline is not None:  # the payer may have taken it back since: only its releases can say so
            later = self.store.chain(proposal.public_key, proposal.sequence_number + 1, block_type=RELEASE)
            if proposal.hash in released_payments([proposal, *later]):
                return False
        return True


def released_payments(chain: list[Any]) -> set[bytes]:
    """Hashes of the payment proposals in ``chain`` (one peer's blocks, ascending) validly released.

    A release counts when the payer signed it later in its chain than the proposal and after the
    proposal's deadline: before that, the payee may still countersign in good faith.
    """
    proposals: dict[bytes, int] = {}  # hash -> deadline
    released: set[bytes] = set()
    for block in chain:
        if block.type == PAYMENT and block.is_proposal:
            try:
                deadline = parse_payment(block.transaction).deadline
            except EncodingError:
                continue
            if deadline is not None:
                proposals[block.hash] = deadline
        elif block.type == RELEASE and block.is_record:
            try:
                target = parse_release(block)
            except EncodingError:
                continue
            if target in proposals and block.timestamp > proposals[target]:
                released.add(target)
    return released
