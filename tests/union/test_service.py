"""A data union over IPv8: members join by message, contribute masked vectors, a leaver drops out."""

from __future__ import annotations

import numpy as np
import pytest

from enerdatx.errors import UnionError
from enerdatx.lab import Lab
from enerdatx.market.service import MarketService
from enerdatx.meter import interval_consumption, synthetic_household
from enerdatx.union import UnionTerms
from enerdatx.union.service import UnionService

START, END = "2026-03-02", "2026-03-03"


def _readings(directory_name: str):
    return synthetic_household(seed=int(directory_name[-3:]), start=START, days=1)


def _services(peer):
    return [MarketService(), UnionService(_readings(peer.directory.name), timeout=5.0)]


def _wh(readings):
    wh = interval_consumption(readings, "15min", start=START, end=END)["import_kwh"].to_numpy() * 1000
    return np.clip(np.round(wh), 0, 2000).astype(np.int64)


async def _members_joined(operator, union, count):
    await operator.services[1].wait_for(lambda _service: len(union.members) >= count, 5.0)


async def test_a_union_round_over_the_network_and_a_leaver(tmp_path):
    async with Lab(tmp_path, "memory", services=_services, progress=False) as lab:
        operator, buyer, *homes = await lab.start(8)
        terms = UnionTerms.create(operator.identity, "delft-zuid", threshold=5, aggregate="sum")
        union = operator.services[1].found(terms, location="26")
        for home in homes:
            home.services[1].join(terms)
        await _members_joined(operator, union, 6)
        received = []
        service = operator.services[1]
        original = service.receive_contribution
        service.receive_contribution = lambda sender, payload: (received.append((sender, payload)),
                                                                 original(sender, payload))
        result = await service.run_round(terms.terms_hash, START, END)
        expected = np.sum([_wh(home.services[1].readings) for home in homes], axis=0)
        assert np.array_equal(result.total_wh, expected) and len(result.round.roster) == 6
        # What travelled is masked: no member's vector shows its readings (or anything below 2^40).
        assert len(received) == 6
        for sender, payload in received:
            masked = np.frombuffer(payload.masked, dtype="<u8")
            own = _wh(next(h for h in homes if h.public_key == sender).services[1].readings)
            assert not np.array_equal(masked[: len(own)], own) and (masked > 2**40).mean() > 0.99

        leaver = homes[0]
        leaver.services[1].leave(terms.terms_hash)
        await operator.services[1].wait_for(lambda _service: leaver.public_key not in union.members, 5.0)
        second = await operator.services[1].run_round(terms.terms_hash, START, END)
        assert leaver.public_key not in second.round.roster
        assert np.array_equal(second.total_wh, expected - _wh(leaver.services[1].readings))

        listing = operator.services[0].sell(second.dataset, 25)
        await buyer.services[0].market.book.wait_for_listing(listing.listing_id)
        await buyer.services[0].buy(listing.listing_id)
        [sale] = union.sales(listing.block_hash)
        pairs = await union.pay_out(operator.community.propose, sale, second)
        assert sum(p.transaction["amount"] for p, _ in pairs) == 25 and len(pairs) == 5
        assert leaver.services[0].market.balance().available == 1000


async def test_a_round_without_enough_members_is_refused(tmp_path):
    async with Lab(tmp_path, "memory", services=_services, progress=False) as lab:
        operator, *homes = await lab.start(4)
        terms = UnionTerms.create(operator.identity, "small", threshold=5)
        operator.services[1].found(terms)
        for home in homes:
            home.services[1].join(terms)
        await _members_joined(operator, operator.services[1].operated[terms.terms_hash], 3)
        with pytest.raises(UnionError, match="at least 5"):
            await operator.services[1].run_round(terms.terms_hash, START, END)


async def test_joining_an_unreachable_operator_is_recorded_and_announced_later(tmp_path):
    from enerdatx.crypto import Identity

    async with Lab(tmp_path, "memory", services=_services, progress=False) as lab:
        [home] = await lab.start(1)
        far = UnionTerms.create(Identity.from_seed(bytes([77]) * 32), "far away", threshold=2)
        block = home.services[1].join(far)
        assert home.store.get_by_hash(block.hash) is not None
        assert home.services[1].announce(far.terms_hash) is False
        assert home.services[1].memberships[far.terms_hash].is_member
