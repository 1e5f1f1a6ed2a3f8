"""A data union of 5 households sells its aggregate, splits the revenue on-chain, and forgets leavers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from enerdatx.crypto import Identity
from enerdatx.errors import EncodingError, SecureAggregationError, TransactionRejectedError, UnionError
from enerdatx.lab import Lab
from enerdatx.market.formats import SHARE, parse_share, share_transaction, validate_descriptor
from enerdatx.meter import interval_consumption, synthetic_household
from enerdatx.trustchain import BlockStore, TrustChain
from enerdatx.union import DataUnion, UnionMember, UnionTerms, laplace_scale, split_revenue
from enerdatx.union.union import TERMS_DOMAIN

START, END = "2026-03-02", "2026-03-03"


def _readings(i: int):
    return synthetic_household(seed=i, start=START, days=1, household_type=("single", "family")[i % 2])


def _own_wh(readings) -> np.ndarray:
    wh = interval_consumption(readings, "15min", start=START, end=END)["import_kwh"].to_numpy() * 1000
    return np.clip(np.round(wh), 0, 2000).astype(np.int64)


def _ledger(seed: int) -> TrustChain:
    return TrustChain(Identity.from_seed(bytes([seed]) * 32), BlockStore(":memory:"))


def _union(n: int, **terms):
    operator = _ledger(100)
    signed = UnionTerms.create(operator.identity, "delft-zuid", **terms)
    union = DataUnion(signed, operator, location="26")
    members = [UnionMember(_ledger(i + 1), signed, _readings(i)) for i in range(n)]
    for member in members:
        assert union.receive(member.join())
    return union, members


def _run(union, members):
    round_ = union.open_round(START, END)
    return union.aggregate(round_, START, END, [m.contribute(round_, START, END) for m in members])


def test_the_aggregate_is_the_sum_or_mean_of_the_members():
    union, members = _union(5, aggregate="sum")
    result = _run(union, members)
    expected = np.sum([_own_wh(m.readings) for m in members], axis=0)
    assert np.array_equal(result.total_wh, expected)
    assert np.array_equal(result.released_wh, expected)
    assert result.dataset.frame["import_wh"].astype(int).tolist() == expected.tolist()
    descriptor = result.dataset.descriptor
    assert descriptor["union_members"] == 5 and descriptor["aggregate"] == "sum"
    assert descriptor["union_terms"] == union.terms.terms_hash.hex() and "dp_epsilon" not in descriptor
    assert validate_descriptor(descriptor) == descriptor
    mean_union, mean_members = _union(5, aggregate="mean")
    assert np.array_equal(_run(mean_union, mean_members).released_wh, np.round(expected / 5))


def test_fewer_members_than_the_threshold_make_no_round():
    union, _members = _union(4, threshold=5)
    with pytest.raises(UnionError, match="at least 5"):
        union.open_round(START, END)


def test_a_leaver_is_absent_from_the_next_aggregate():
    union, members = _union(6, aggregate="sum")
    first = _run(union, members)
    leaver = members[2]
    assert union.receive(leaver.leave())
    assert leaver.public_key not in union.members
    stayers = [m for m in members if m is not leaver]
    second = _run(union, stayers)
    assert leaver.public_key not in second.round.roster
    assert np.array_equal(second.total_wh, first.total_wh - _own_wh(leaver.readings))
    with pytest.raises(UnionError, match="left"):
        leaver.contribute(second.round, START, END)
    # A contribution masked for the old roster does not fit the new round.
    stale = [m.contribute(first.round, START, END) for m in stayers]
    with pytest.raises(SecureAggregationError, match="another round"):
        union.aggregate(second.round, START, END, stale)


def test_laplace_noise_is_calibrated_and_printed():
    union, members = _union(5, aggregate="sum", epsilon="0.5", cap_wh=1000)
    assert laplace_scale(union.terms) == 2000.0
    result = union.aggregate(union.open_round(START, END), START, END,
                             [m.contribute(union.open_round(START, END), START, END) for m in members],
                             rng=np.random.default_rng(0))
    assert result.dataset.descriptor["dp_epsilon"] == "0.5"
    noise = result.released_wh - result.total_wh
    assert np.abs(noise).mean() > 500  # Laplace(b = 2000) has mean |x| = 2000, clipped at 0 below


def test_terms_are_signed_and_tamper_evident():
    operator = Identity.from_seed(bytes([7]) * 32)
    terms = UnionTerms.create(operator, "delft-zuid", threshold=5, split="readings", epsilon="1.0")
    assert UnionTerms.decode(terms.encode()) == terms
    forged = dataclasses.replace(terms, threshold=2)
    with pytest.raises(UnionError, match="not signed"):
        UnionTerms.decode(forged.encode())
    with pytest.raises(UnionError):
        UnionTerms.create(operator, "x", threshold=1)
    with pytest.raises(UnionError):
        UnionTerms.create(operator, "x", epsilon="-1.0")
    # Found by the union_terms fuzzer: float() reads bytes too, and "." in bytes raised TypeError.
    for epsilon in (b"1.5", "1e3", " 1.0", "1_0.0", "0.0", "nan", 1.5):
        with pytest.raises(UnionError, match="epsilon"):
            UnionTerms.create(operator, "x", epsilon=epsilon)  # type: ignore[arg-type]
    with pytest.raises(UnionError):
        DataUnion(terms, _ledger(1))
    for name in ("  ", " delft", "delft\n"):  # accepted: a name that shows as nothing, or as another's
        with pytest.raises(UnionError, match="not blank and neither begins nor ends with white space"):
            UnionTerms.create(operator, name)
    with pytest.raises(UnionError, match="an Identity, not NoneType"):
        UnionTerms.create(None, "delft-zuid")  # type: ignore[arg-type]  # an AttributeError
    # A threshold above the most members a round carries (2,047) could never be met.
    assert UnionTerms.create(operator, "x", threshold=2047).threshold == 2047
    for threshold in (2048, 10**9):
        with pytest.raises(UnionError, match="threshold is an integer from 2 to 2,047"):
            UnionTerms.create(operator, "x", threshold=threshold)
    # Terms from the wire name seconds, not a resolution's text: 0, -900 or 7 (no divisor of a day).
    for seconds in (0, -900, 7, 2 * 86_400):
        unsigned = dataclasses.replace(terms, resolution_seconds=seconds, signature=b"")
        signed = dataclasses.replace(unsigned, signature=operator.sign(TERMS_DOMAIN + unsigned.body()))
        with pytest.raises(UnionError, match="resolution_seconds is whole seconds dividing a day"):
            UnionTerms.decode(signed.encode())


@pytest.mark.parametrize(("amount", "weights", "expected"), [
    (50, {b"a": 1, b"b": 1, b"c": 1}, {b"a": 17, b"b": 17, b"c": 16}),
    (10, {b"a": 96, b"b": 48, b"c": 0}, {b"a": 7, b"b": 3, b"c": 0}),
    (7, {b"a": 0, b"b": 0}, {b"a": 4, b"b": 3}),
])
def test_split_adds_up_exactly(amount, weights, expected):
    assert split_revenue(amount, weights) == expected and sum(expected.values()) == amount


def test_a_union_of_five_sells_and_the_split_lands_on_all_five_chains(tmp_path):
    async def scenario(lab):
        operator, buyer, *homes = await lab.start(7)
        terms = UnionTerms.create(operator.identity, "delft-zuid", threshold=5, split="readings")
        union = DataUnion(terms, operator.ledger, location="26")
        members = [UnionMember(home.ledger, terms, _readings(i)) for i, home in enumerate(homes)]
        for member in members:
            union.receive(member.join())
        result = _run(union, members)
        listing = operator.market.sell(result.dataset, 53)
        await buyer.market.book.wait_for_listing(listing.listing_id)
        trade = await buyer.market.buy(listing.listing_id)
        assert trade.dataframe()["import_wh"].astype(int).tolist() == result.released_wh.tolist()
        [sale] = union.sales(listing.block_hash)
        pairs = await union.pay_out(operator.community.propose, sale, result)
        assert await union.pay_out(operator.community.propose, sale, result) == []  # paid once only
        return homes, operator, pairs, union.shares(53, result)

    with Lab(tmp_path, "memory", market=True, progress=False) as lab:
        homes, operator, pairs, shares = lab.run_sync(scenario(lab))
        assert len(pairs) == 5 and sum(shares.values()) == 53
        for home in homes:
            [agreement] = [b for b in home.store.chain(home.public_key) if b.type == SHARE]
            assert parse_share(agreement.transaction).amount == shares[home.public_key]
            assert home.market.balance().available == 1000 + shares[home.public_key]
        assert operator.market.balance().available == 1000 + 53 - 53


def test_a_member_refuses_shares_of_other_unions():
    _, members = _union(5)
    other = UnionTerms.create(Identity.from_seed(bytes([55]) * 32), "elsewhere")
    stranger = _ledger(55)
    proposal = stranger.propose(members[0].public_key, SHARE, share_transaction(other.terms_hash, bytes(32), 5))
    with pytest.raises(TransactionRejectedError, match="unknown_union"):
        members[0].ledger.countersign(proposal)
    with pytest.raises(EncodingError):
        share_transaction(other.terms_hash, bytes(32), 0)


def test_a_member_misstating_its_readings_count_takes_no_bigger_share():
    union, members = _union(5, split="readings")
    round_ = union.open_round(START, END)
    honest = [m.contribute(round_, START, END) for m in members]
    # Before: a count of 2^32 - 1 beside a masked vector took the whole "readings" split.
    for lie in (2**32 - 1, 97, -1, True, 3.0):
        forged = [dataclasses.replace(honest[0], readings=lie), *honest[1:]]
        with pytest.raises(SecureAggregationError, match="readings count"):
            union.aggregate(round_, START, END, forged)
    misstated = [dataclasses.replace(honest[0], readings=honest[0].readings - 1), *honest[1:]]
    with pytest.raises(SecureAggregationError, match="misstated its count"):
        union.aggregate(round_, START, END, misstated)
    for bad in ([c.masked for c in honest], None, "contributions"):
        with pytest.raises(SecureAggregationError, match="list of Contribution"):
            union.aggregate(round_, START, END, bad)
    assert not union.rounds
    assert sum(union.aggregate(round_, START, END, honest).readings.values()) > 0


def test_a_roster_too_big_for_its_round_message_is_refused():
    from enerdatx.union.union import MAX_THRESHOLD

    union, _members = _union(2)
    union.members.update(bytes([i % 256, i // 256]) * 16 for i in range(MAX_THRESHOLD + 1))
    with pytest.raises(UnionError, match="carries at most 2,047"):
        union.open_round(START, END)


def test_a_noised_round_is_released_once():
    union, members = _union(5, epsilon="1.0")
    round_ = union.open_round(START, END)
    contributions = [m.contribute(round_, START, END) for m in members]
    first = union.aggregate(round_, START, END, contributions, rng=np.random.default_rng(1))
    # Before: the same round again drew new noise; a buyer of both releases averaged it away.
    with pytest.raises(UnionError, match="released already"):
        union.open_round(START, END)
    with pytest.raises(UnionError, match="released already"):
        union.aggregate(round_, START, END, contributions, rng=np.random.default_rng(2))
    assert union.rounds == [first]
    plain, plain_members = _union(5)  # without noise the same release again is harmless
    assert np.array_equal(_run(plain, plain_members).released_wh, _run(plain, plain_members).released_wh)


def test_a_pay_out_is_of_one_of_our_sales_and_runs_once_at_a_time(tmp_path):
    import asyncio

    async def scenario(lab):
        operator, buyer, *homes = await lab.start(4)
        terms = UnionTerms.create(operator.identity, "paid once", threshold=2)
        union = DataUnion(terms, operator.ledger, location="26")
        members = [UnionMember(home.ledger, terms, _readings(i)) for i, home in enumerate(homes)]
        for member in members:
            union.receive(member.join())
        result = _run(union, members)
        other, other_members = _union(2, threshold=2)
        with pytest.raises(UnionError, match="one of this union's rounds"):
            union.shares(10, _run(other, other_members))  # another union's roster
        listing = operator.market.sell(result.dataset, 30)
        await buyer.market.book.wait_for_listing(listing.listing_id)
        await buyer.market.buy(listing.listing_id)
        [sale] = union.sales(listing.block_hash)
        propose = operator.community.propose
        # Before: a block that is no sale of ours (a join record, the buyer's payment) was split as revenue.
        bought = next(b for b in buyer.store.chain(buyer.public_key) if b.type == "edx.payment")
        for bad in (None, members[0].ledger.store.chain(homes[0].public_key)[0], bought):
            with pytest.raises(UnionError, match="one of our payment agreements"):
                await union.pay_out(propose, bad, result)
        # Before: two at once each saw nothing countersigned and paid every member twice.
        first, second = await asyncio.gather(union.pay_out(propose, sale, result), union.pay_out(propose, sale, result),
                                             return_exceptions=True)
        assert isinstance(second, UnionError) and "being paid out already" in str(second)
        return homes, first

    with Lab(tmp_path, "memory", market=True, progress=False) as lab:
        homes, pairs = lab.run_sync(scenario(lab))
        assert sum(p.transaction["amount"] for p, _ in pairs) == 30
        for home in homes:
            assert len([b for b in home.store.chain(home.public_key) if b.type == SHARE]) == 1


def test_the_python_api_refuses_wrong_types_with_union_errors():
    union, members = _union(3, threshold=2)
    # Before: AttributeErrors, and a ValueError from numpy for a round aggregated over another period.
    for bad in (None, "edx.union.join", b""):
        with pytest.raises(UnionError, match="not a join or leave record"):
            union.receive(bad)
    with pytest.raises(UnionError, match="signed UnionTerms"):
        UnionMember(_ledger(50), None, _readings(1))
    with pytest.raises(UnionError, match="DataFrame of meter readings"):
        UnionMember(_ledger(51), union.terms, None)
    with pytest.raises(UnionError, match="signed UnionTerms"):
        DataUnion(union.terms.terms_hash, union.ledger)
    with pytest.raises(UnionError, match="run by the operator"):
        DataUnion(union.terms, None)
    round_ = union.open_round(START, END)
    contributions = [m.contribute(round_, START, END) for m in members]
    with pytest.raises(SecureAggregationError, match="a round is a Round"):
        members[0].contribute(None, START, END)
    with pytest.raises(SecureAggregationError, match="a round is a Round"):
        union.aggregate(round_.round_id, START, END, contributions)
    with pytest.raises(SecureAggregationError, match="does not match these terms, this period"):
        union.aggregate(round_, START, "2026-03-04", contributions)
    assert not union.rounds
