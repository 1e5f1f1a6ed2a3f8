"""A data union over IPv8: members join by message, contribute masked vectors, a leaver drops out."""

from __future__ import annotations

import numpy as np
import pytest

from enerdatx.errors import UnionError
from enerdatx.lab import Lab
from enerdatx.meter import interval_consumption, synthetic_household
from enerdatx.union import UnionTerms
from enerdatx.union.service import UnionService

START, END = "2026-03-02", "2026-03-03"


def _readings(directory_name: str):
    return synthetic_household(seed=int(directory_name[-3:]), start=START, days=1)


def _services(peer):
    return [UnionService(_readings(peer.directory.name), timeout=5.0)]


def _wh(readings):
    wh = interval_consumption(readings, "15min", start=START, end=END)["import_kwh"].to_numpy() * 1000
    return np.clip(np.round(wh), 0, 2000).astype(np.int64)


async def _members_joined(operator, union, count):
    await operator.services[1].wait_for(lambda _service: len(union.members) >= count, 5.0)


async def _founded(operator, homes, name, **options):
    """A union of ``operator``'s that every one of ``homes`` has joined: its terms and the union."""
    terms = UnionTerms.create(operator.identity, name, threshold=2, **options)
    union = operator.services[1].found(terms)
    for home in homes:
        home.services[1].join(terms)
    await _members_joined(operator, union, len(homes))
    return terms, union


async def test_a_union_round_over_the_network_and_a_leaver(tmp_path):
    async with Lab(tmp_path, "memory", market=True, services=_services, progress=False) as lab:
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

        listing = operator.market.sell(second.dataset, 25)
        await buyer.market.book.wait_for_listing(listing.listing_id)
        await buyer.market.buy(listing.listing_id)
        [sale] = union.sales(listing.block_hash)
        pairs = await union.pay_out(operator.community.propose, sale, second)
        assert sum(p.transaction["amount"] for p, _ in pairs) == 25 and len(pairs) == 5
        assert leaver.market.balance().available == 1000


async def test_a_round_without_enough_members_is_refused(tmp_path):
    async with Lab(tmp_path, "memory", market=True, services=_services, progress=False) as lab:
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

    async with Lab(tmp_path, "memory", market=True, services=_services, progress=False) as lab:
        [home] = await lab.start(1)
        far = UnionTerms.create(Identity.from_seed(bytes([77]) * 32), "far away", threshold=2)
        block = home.services[1].join(far)
        assert home.store.get_by_hash(block.hash) is not None
        assert home.services[1].announce(far.terms_hash) is False
        assert home.services[1].memberships[far.terms_hash].is_member


async def test_a_stopped_peer_refuses_its_unions_like_its_market(tmp_path):
    from enerdatx.errors import StorageError

    async with Lab(tmp_path, "memory", market=True, services=_services, progress=False) as lab:
        operator, *homes = await lab.start(3)
        service = operator.services[1]
        terms, union = await _founded(operator, homes, "closing")
        home = homes[0].services[1]
        await homes[0].stop()
        await operator.stop()
        # Before: found() operated a union on the stopped peer, run_round() said "0 members",
        # join() kept a membership whose record the closed store refused.
        for call in (lambda: service.found(terms), lambda: home.join(terms), lambda: home.leave(terms.terms_hash),
                     lambda: home.announce(terms.terms_hash)):
            with pytest.raises(StorageError, match="cannot use the union service: it is closed"):
                call()
        with pytest.raises(StorageError, match="it is closed"):
            await service.run_round(terms.terms_hash, START, END)


async def test_a_round_running_when_its_peer_stops_ends_at_once(tmp_path):
    import asyncio

    from enerdatx.errors import StorageError

    async with Lab(tmp_path, "memory", market=True, services=_services, progress=False) as lab:
        operator, *homes = await lab.start(3)
        service = operator.services[1]
        terms, union = await _founded(operator, homes, "stopping")
        await homes[0].stop()  # a member that stopped: the round waits for it
        running = asyncio.ensure_future(service.run_round(terms.terms_hash, START, END))
        await asyncio.sleep(0.2)
        started = asyncio.get_running_loop().time()
        await operator.stop()
        with pytest.raises(StorageError, match="it is closed"):
            await running
        assert asyncio.get_running_loop().time() - started < 2.0  # not the whole 5 s timeout


async def test_the_service_api_refuses_wrong_arguments_with_union_errors(tmp_path):
    import dataclasses

    from enerdatx.errors import ConfigurationError

    for bad in ({"timeout": float("nan")}, {"timeout": True}, {"timeout": -1}, {"timeout": 0},
                {"readings": "readings.csv"}):
        with pytest.raises(ConfigurationError):
            UnionService(**bad)
    async with Lab(tmp_path, "memory", market=True, services=_services, progress=False) as lab:
        operator, home = await lab.start(2)
        service, member = operator.services[1], home.services[1]
        terms = UnionTerms.create(operator.identity, "typed", threshold=2)
        for bad in (None, terms.terms_hash, "typed"):
            with pytest.raises(UnionError, match="signed UnionTerms"):
                service.found(bad)
            with pytest.raises(UnionError, match="signed UnionTerms"):
                member.join(bad)
        with pytest.raises(UnionError, match="not signed"):
            member.join(dataclasses.replace(terms, signature=bytes(64)))
        assert not member.memberships
        for bad in (bytes(32), "x", [], None):
            with pytest.raises(UnionError, match="no union with terms hash"):
                await service.run_round(bad, START, END)
            with pytest.raises(UnionError, match="no union with terms hash"):
                member.leave(bad)
            with pytest.raises(UnionError, match="no union with terms hash"):
                member.announce(bad)
        union = service.found(terms)
        with pytest.raises(UnionError, match="operates union 'typed' already"):
            service.found(terms)  # a new DataUnion forgot every member
        assert service.operated[terms.terms_hash] is union


async def test_joining_or_leaving_twice_records_nothing_more(tmp_path):
    async with Lab(tmp_path, "memory", market=True, services=_services, progress=False) as lab:
        operator, home = await lab.start(2)
        terms = UnionTerms.create(operator.identity, "twice", threshold=2)
        member = home.services[1]
        member.join(terms)
        height = len(home.store.chain(home.public_key))
        with pytest.raises(UnionError, match="member of union 'twice' already"):
            member.join(terms)
        member.leave(terms.terms_hash)
        with pytest.raises(UnionError, match="has left union 'twice' already"):
            member.leave(terms.terms_hash)
        assert len(home.store.chain(home.public_key)) == height + 1
        member.join(terms)  # joining again after leaving is a new membership
        assert member.memberships[terms.terms_hash].is_member


def test_a_contribution_claiming_more_readings_than_intervals_is_dropped():
    from enerdatx.union.secagg import Round
    from enerdatx.union.service import ContributionMessage

    service = UnionService()
    future = type("F", (), {"done": lambda self: False, "set_result": lambda self, _: None})()
    roster = (bytes([1]) * 32, bytes([2]) * 32)
    round_ = Round(bytes(32), roster, 2 * 96)
    contributions: dict = {}
    service._rounds[round_.round_id] = (round_, contributions, future)
    masked = bytes(8 * round_.length)
    service.receive_contribution(roster[0], ContributionMessage(round_.round_id, 2**32 - 1, masked))
    service.receive_contribution(roster[0], ContributionMessage(round_.round_id, 97, masked))
    assert not contributions
    service.receive_contribution(roster[0], ContributionMessage(round_.round_id, 96, masked))
    assert contributions[roster[0]].readings == 96


async def test_the_same_round_twice_at_once_is_refused(tmp_path):
    import asyncio

    async with Lab(tmp_path, "memory", market=True, services=_services, progress=False) as lab:
        operator, *homes = await lab.start(3)
        service = operator.services[1]
        terms, union = await _founded(operator, homes, "at once", aggregate="sum")
        # Before: the second replaced the first's collection, which waited out its timeout.
        first, second = await asyncio.gather(service.run_round(terms.terms_hash, START, END),
                                             service.run_round(terms.terms_hash, START, END), return_exceptions=True)
        assert isinstance(second, UnionError) and "running already" in str(second)
        assert len(first.round.roster) == 2
        assert len((await service.run_round(terms.terms_hash, START, END)).round.roster) == 2  # once done, again


async def test_a_replayed_round_announcement_is_not_masked_again_nor_answered_without_bound(tmp_path, monkeypatch):
    import time

    from enerdatx.union import union as union_module
    from enerdatx.union.service import RoundMessage

    async with Lab(tmp_path, "memory", market=True, services=_services, progress=False) as lab:
        operator, *homes = await lab.start(3)
        terms, union = await _founded(operator, homes, "replayed")
        round_ = union.open_round(START, END)
        message = RoundMessage(terms.terms_hash, round_.round_id, "2026-03-02T00:00:00+00:00",
                               "2026-03-03T00:00:00+00:00", b"".join(round_.roster))
        masked = []
        original = union_module.mask_values
        monkeypatch.setattr(union_module, "mask_values", lambda *a: masked.append(1) or original(*a))
        member = homes[0].services[1]
        before, started = member.community.bytes_sent, time.monotonic()
        # Before: each copy of the signed announcement (anyone who saw it may replay it) was
        # masked again and answered with a contribution, up to a thousand times a second.
        for _ in range(200):
            member.receive_round(operator.public_key, message)
        assert len(masked) == 1
        sent = member.community.bytes_sent - before
        budget = member.community.contribution_answers
        refilled = budget.rate * (time.monotonic() - started)
        assert sent <= budget.burst + refilled + 2 * (8 * round_.length + 1000)
        assert member.community.drops["contribution_budget"] > 0


async def test_wait_for_refuses_a_bad_timeout_or_predicate_and_a_closed_service(tmp_path):
    from enerdatx.errors import StorageError

    async with Lab(tmp_path, "memory", market=True, services=_services, progress=False) as lab:
        [operator] = await lab.start(1)
        service = operator.services[1]
        # Before: a NaN timeout never timed out, a predicate of 5 was a TypeError.
        for timeout in (float("nan"), -1, True, "5"):
            with pytest.raises(UnionError, match="timeout is a finite number of seconds"):
                await service.wait_for(lambda _service: False, timeout)
        with pytest.raises(UnionError, match="predicate is a function"):
            await service.wait_for(5, 1.0)
        await service.wait_for(lambda _service: True, 0)
        await operator.stop()
        with pytest.raises(StorageError, match="it is closed"):
            await service.wait_for(lambda _service: True, 1.0)
