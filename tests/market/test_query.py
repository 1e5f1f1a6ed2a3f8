"""Aggregate queries: the answers are right, and a buyer pays for the answer only, settled as a trade."""

from __future__ import annotations

import numpy as np
import pytest

from enerdatx.errors import EncodingError, MarketError
from enerdatx.lab import Lab
from enerdatx.market.formats import validate_descriptor
from enerdatx.market.query import AggregateQuery, answer_descriptor, answer_query, load_answer
from enerdatx.market.query_service import QueryService
from enerdatx.meter import interval_consumption, synthetic_household

READINGS = synthetic_household(seed=5, start="2026-01-01", days=62)
WH = interval_consumption(READINGS, "15min", start="2026-01-01", end="2026-03-01")["import_kwh"] * 1000


def test_mean_daily_profile_is_the_mean_per_slot():
    frame = load_answer(answer_query(READINGS, AggregateQuery("mean_daily_profile", "2026-01-01", "2026-03-01")))
    assert len(frame) == 96 and frame.index[0] == "00:00" and frame.index[-1] == "23:45"
    slot_18 = WH[(WH.index.hour == 18) & (WH.index.minute == 0)].mean()
    assert frame.loc["18:00", "import_wh"] == round(slot_18)


def test_peak_hour_and_monthly_totals():
    peak = load_answer(answer_query(READINGS, AggregateQuery("peak_hour", "2026-01-01", "2026-03-01")))
    hourly = WH.groupby(WH.index.hour).mean()
    assert peak.index.tolist() == [f"{int(hourly.idxmax()):02d}"]
    months = load_answer(answer_query(READINGS, AggregateQuery("monthly_total", "2026-01-01", "2026-03-01")))
    assert months.index.tolist() == ["2026-01", "2026-02"]
    assert months["import_wh"].sum() == pytest.approx(WH.sum(), abs=2)
    assert months["n_complete"].tolist() == [31 * 96, 28 * 96]


def test_queries_are_canonical_and_checked():
    query = AggregateQuery("peak_hour", "2026-01-01", "2026-02-01T00:00:00+00:00")
    assert AggregateQuery.decode(query.encode()) == AggregateQuery("peak_hour", "2026-01-01T00:00:00Z",
                                                                   "2026-02-01T00:00:00Z")
    assert query.query_id == AggregateQuery("peak_hour", "2026-01-01", "2026-02-01").query_id
    assert validate_descriptor(answer_descriptor(query))["question"] == "peak_hour"
    with pytest.raises(MarketError):
        AggregateQuery("raw_readings", "2026-01-01", "2026-02-01")
    with pytest.raises(MarketError):
        AggregateQuery("peak_hour", "2026-01-01T12:00", "2026-02-01")
    with pytest.raises(EncodingError):
        AggregateQuery.decode(b"\xa0")
    # pandas would parse these at a coarser unit and overflow later, in the period's arithmetic
    for start, end in (("0499-01-01", "0499-02-01"), ("2262-04-01", "9999-01-01"), (None, "2026-02-01")):
        with pytest.raises(MarketError, match="bad query period"):
            AggregateQuery("peak_hour", start, end)
    with pytest.raises(MarketError, match="no readings"):
        answer_query(READINGS, AggregateQuery("peak_hour", "2027-01-01", "2027-02-01"))


def _services(peer):
    return [QueryService(READINGS if peer.directory.name.endswith("000") else None,
                                 prices={"monthly_total": 7, "peak_hour": 3}, location="2628")]


async def test_a_buyer_pays_for_the_answer_only(tmp_path):
    async with Lab(tmp_path, "memory", market=True, services=_services, progress=False) as lab:
        seller, buyer = await lab.start(2)
        query = AggregateQuery("monthly_total", "2026-01-01", "2026-03-01")
        answer = await buyer.services[1].ask(seller.public_key, query, max_price=10)
        assert answer.trade.amount == 7
        assert answer.frame["import_wh"].tolist() == load_answer(answer_query(READINGS, query))["import_wh"].tolist()
        assert buyer.market.balance().available == 993
        assert seller.market.balance(seller.public_key).available == 1007
        # The answer is all that was listed: no listing carries the readings themselves.
        assert [listing.descriptor["format"] for listing in seller.market.search()] == ["enerdatx-answer/1"]
        with pytest.raises(MarketError, match="too_expensive"):
            await buyer.services[1].ask(seller.public_key, AggregateQuery("peak_hour", "2026-01-01", "2026-02-01"),
                                        max_price=2)
        with pytest.raises(MarketError, match="question_not_offered"):
            await buyer.services[1].ask(seller.public_key, AggregateQuery("mean_daily_profile", "2026-01-01",
                                                                          "2026-02-01"), max_price=100)
        assert np.isfinite(answer.frame["n_complete"].astype(float)).all()
