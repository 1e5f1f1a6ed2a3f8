"""The Wallet's kept tallies give exactly the balance a fresh read of the chains gives.

The reference below is the wallet's rule written out plainly (every call reads the chain
whole, and the payer's whole chain for each income); the Wallet under test keeps per-chain
sums and folds in only what came since. Random chains arrive in random order, with gaps,
releases before and after deadlines, malformed payments, removals and rolled-back writes,
and after every change both must agree on every question.
"""

from __future__ import annotations

import random

import pytest

from enerdatx.crypto import Identity
from enerdatx.errors import EncodingError
from enerdatx.market.formats import (
    PAYMENT,
    RELEASE,
    SHARE,
    parse_payment,
    parse_share,
    payment_transaction,
    release_transaction,
    share_transaction,
)
from enerdatx.market.wallet import Balance, Wallet, released_payments
from enerdatx.trustchain import GENESIS_HASH, NO_COUNTERPARTY
from enerdatx.trustchain.store import BlockStore
from tests.support.blocks import sign

_AMOUNT_OF = {PAYMENT: lambda tx: parse_payment(tx).amount, SHARE: lambda tx: parse_share(tx).amount}
LISTING = bytes(range(32))
T0 = 1_700_000_000_000


def reference_balance(store: BlockStore, grant: int, public_key: bytes, before: int | None) -> Balance:
    """The balance read afresh from every held block, by the rules of docs/market.md."""
    end = None if before is None else before - 1
    blocks = store.chain(public_key, 1, end) if end is None or end >= 1 else []
    expected = end if end is not None else store.latest_sequence_number(public_key)
    earned = spent = unverified = released = 0
    releases = released_payments(blocks)
    for block in blocks:
        amount_of = _AMOUNT_OF.get(block.type)
        if amount_of is None:
            continue
        try:
            amount = amount_of(block.transaction)
        except EncodingError:
            continue
        if block.is_proposal:
            if block.hash in releases:
                released += amount
            else:
                spent += amount
        elif income_is_proven(store, block, amount):
            earned += amount
        else:
            unverified += amount
    return Balance(public_key, grant, earned, spent, unverified, len(blocks) == expected, len(blocks), released)


def income_is_proven(store: BlockStore, agreement, amount: int) -> bool:
    proposal = store.linked(agreement)
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
    if deadline is not None:
        later = store.chain(proposal.public_key, proposal.sequence_number + 1)
        if proposal.hash in released_payments([proposal, *later]):
            return False
    return True


class Chains:
    """Signed chains of a few peers that pay each other, release payments and share revenue."""

    def __init__(self, rng: random.Random, peers: int = 3) -> None:
        self.rng = rng
        self.identities = [Identity.generate() for _ in range(peers)]
        self.blocks: dict[bytes, list] = {identity.public_key: [] for identity in self.identities}

    def _append(self, identity: Identity, block_type: str, transaction: dict, link=(NO_COUNTERPARTY, 0), at=None):
        chain = self.blocks[identity.public_key]
        block = sign(
            identity,
            sequence_number=len(chain) + 1,
            previous_hash=chain[-1].hash if chain else GENESIS_HASH,
            link_public_key=link[0],
            link_sequence_number=link[1],
            block_type=block_type,
            transaction=transaction,
            timestamp=T0 + 1000 * len(chain) if at is None else at,
        )
        chain.append(block)
        return block

    def step(self) -> None:
        """One random block (and, for a countersigned payment or share, its agreement)."""
        rng = self.rng
        payer, payee = rng.sample(self.identities, 2)
        payer_chain = self.blocks[payer.public_key]
        kind = rng.choice(["pay", "pay", "pay_deadline", "release", "share", "other", "malformed", "forged_income"])
        now = T0 + 1000 * len(payer_chain)
        if kind in ("pay", "pay_deadline", "share"):
            amount = rng.randint(1, 50)
            if kind == "share":
                transaction = share_transaction(bytes(32), bytes([1]) * 32, amount)
            else:
                deadline = now + rng.choice([-5000, 500, 3000]) if kind == "pay_deadline" else None
                transaction = payment_transaction(LISTING, amount, deadline=deadline)
            block_type = SHARE if kind == "share" else PAYMENT
            proposal = self._append(payer, block_type, transaction, link=(payee.public_key, 0))
            if rng.random() < 0.8:  # countersigned: the payee's chain holds the agreement
                self._append(payee, block_type, transaction, link=(payer.public_key, proposal.sequence_number))
        elif kind == "release":
            payments = [b for b in payer_chain if b.type == PAYMENT and b.is_proposal]
            target = rng.choice(payments).hash if payments and rng.random() < 0.9 else bytes([7]) * 32
            at = now + rng.choice([-10_000, 0, 10_000])
            self._append(payer, RELEASE, release_transaction(target), at=at)
        elif kind == "other":
            self._append(payer, "edx.listing.test", {"n": len(payer_chain)})
        elif kind == "malformed":  # signed, but no honest peer would countersign it
            self._append(payer, PAYMENT, {"v": 1, "listing": LISTING, "amount": -3}, link=(payee.public_key, 0))
        else:  # an agreement claiming income from a proposal that does not say so
            self._append(payee, PAYMENT, payment_transaction(LISTING, 99), link=(payer.public_key, 1))

    def all_blocks(self) -> list:
        return [block for chain in self.blocks.values() for block in chain]


def agree(store: BlockStore, wallet: Wallet, chains: Chains, rng: random.Random) -> None:
    for identity in chains.identities:
        key = identity.public_key
        latest = store.latest_sequence_number(key)
        for before in {None, 1, 2, latest, latest + 1, rng.randint(1, latest + 2)}:
            assert wallet.balance(key, before=before) == reference_balance(store, wallet.grant, key, before)


@pytest.mark.parametrize("seed", range(12))
def test_kept_tallies_equal_a_fresh_read_as_blocks_arrive_in_any_order(seed):
    rng = random.Random(seed)
    chains = Chains(rng)
    for _ in range(60):
        chains.step()
    arriving = chains.all_blocks()
    rng.shuffle(arriving)
    store = BlockStore()
    wallet = Wallet(store, grant=100)
    held: list = []
    for block in arriving:
        store.insert_validated([block])
        held.append(block)
        if rng.random() < 0.05:  # blocks shown invalid after they were stored
            gone = rng.sample(held, 2)
            store.remove_blocks(gone)
            held = [b for b in held if b not in gone]
        if rng.random() < 0.05:  # a write that fails after it reached SQLite
            with pytest.raises(RuntimeError), store.transaction(durable=False):
                store.insert_validated(rng.sample(arriving, 3))
                raise RuntimeError("disk trouble")
        agree(store, wallet, chains, rng)


def test_a_release_on_the_payers_chain_later_takes_back_counted_income():
    chains = Chains(random.Random(0), peers=2)
    payer, payee = chains.identities
    proposal = chains._append(payer, PAYMENT, payment_transaction(LISTING, 30, deadline=T0 + 500), link=(payee.public_key, 0))
    agreement = chains._append(payee, PAYMENT, proposal.transaction, link=(payer.public_key, 1))
    store = BlockStore()
    wallet = Wallet(store, grant=0)
    store.insert_validated([proposal, agreement])
    assert wallet.balance(payee.public_key).earned == 30
    store.insert_validated([chains._append(payer, RELEASE, release_transaction(proposal.hash), at=T0 + 9000)])
    after = wallet.balance(payee.public_key)
    assert (after.earned, after.unverified_income) == (0, 30)
    assert wallet.balance(payer.public_key).released == 30


def test_a_gap_counts_what_lies_past_it_and_the_gap_filled_later_counts_too():
    chains = Chains(random.Random(0), peers=2)
    payer, payee = chains.identities
    payments = [
        chains._append(payer, PAYMENT, payment_transaction(LISTING, amount), link=(payee.public_key, 0))
        for amount in (1, 2, 4, 8)
    ]
    store = BlockStore()
    wallet = Wallet(store, grant=0)
    store.insert_validated([payments[0], payments[2], payments[3]])
    first = wallet.balance(payer.public_key)
    assert (first.spent, first.blocks, first.complete) == (13, 3, False)
    store.insert_validated([payments[1]])
    second = wallet.balance(payer.public_key)
    assert (second.spent, second.blocks, second.complete) == (15, 4, True)
    assert wallet.balance(payer.public_key, before=3).spent == 3
