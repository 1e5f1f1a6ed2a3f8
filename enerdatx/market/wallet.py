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

from dataclasses import dataclass
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


class Wallet:
    """Derives any peer's balance from a BlockStore; the grant is configurable."""

    def __init__(self, store: Any, *, grant: int = DEFAULT_GRANT) -> None:
        if type(grant) is not int or grant < 0:
            raise ValueError("the grant is a non-negative integer")
        self.store = store
        self.grant = grant

    def balance(self, public_key: bytes, *, before: int | None = None) -> Balance:
        """The balance of ``public_key`` from its blocks below sequence number ``before`` (all if None)."""
        end = None if before is None else before - 1
        blocks = self.store.chain(public_key, 1, end) if end is None or end >= 1 else []
        expected = end if end is not None else self.store.latest_sequence_number(public_key)
        earned = spent = unverified = released = 0
        releases = released_payments(blocks)
        for block in blocks:
            amount_of = _AMOUNT_OF.get(block.type)
            if amount_of is None:
                continue
            try:
                amount = amount_of(block.transaction)
            except EncodingError:
                continue  # an honest counterparty never countersigned it, so it moved nothing
            if block.is_proposal:
                if block.hash in releases:
                    released += amount
                else:
                    spent += amount
            elif self._income_is_proven(block, amount):
                earned += amount
            else:
                unverified += amount
        return Balance(
            public_key=public_key,
            grant=self.grant,
            earned=earned,
            spent=spent,
            unverified_income=unverified,
            complete=len(blocks) == expected,
            blocks=len(blocks),
            released=released,
        )

    def _income_is_proven(self, agreement: Any, amount: int) -> bool:
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
        if deadline is not None:  # the payer may have taken it back since
            later = self.store.chain(proposal.public_key, proposal.sequence_number + 1)
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
