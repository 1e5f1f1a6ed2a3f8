"""The privacy report of a data set, its summary in the signed descriptor, and the seller's policy."""

from __future__ import annotations

import pytest

from enerdatx.errors import EncodingError, PrivacyError, PrivacyRiskError
from enerdatx.market.formats import validate_descriptor
from enerdatx.meter import cut_dataset, synthetic_household
from enerdatx.privacy import METHOD, PrivacyPolicy, descriptor_reveals, privacy_report, reference_population


@pytest.fixture(scope="module")
def dataset():
    readings = synthetic_household(seed=3, start="2026-03-02", days=14)
    return cut_dataset(readings, resolution="15min", location="2628", household_type="family")


@pytest.fixture(scope="module")
def report(dataset):
    return privacy_report(dataset, population=reference_population())


def test_report_measures_linkage_uniqueness_and_the_descriptor(report):
    assert report.method == METHOD == "edx-privacy/1"
    assert report.population == 120 and report.days == 14
    assert report.linkage.p_value < 0.001  # the attack works on households like this one
    assert 0 <= report.uniqueness <= 1 and report.uniqueness_chance < 0.01
    assert report.household_rank is not None and report.household_rank >= 0
    assert report.reveals == {"location_digits": 4, "household_type": "family", "period_days": 14.0,
                              "resolution": "PT15M", "anonymity_set": 8_200_000 // 4_070 // 4}
    assert report.score == round(100 * max(report.linkage.accuracy, report.uniqueness))


def test_coarsening_is_measured_and_daily_totals_are_safer(report):
    table = report.table()
    assert list(table.index) == ["PT15M", "PT1H", "PT4H", "P1D"]
    assert table.loc["PT15M", "score"] == report.score
    assert table.loc["P1D", "linkage_top1"] < table.loc["PT15M", "linkage_top1"]
    assert [row["location_digits"] for row in report.locations] == [4, 3, 2, 1, 0]
    assert [row["anonymity_set"] for row in report.locations] == sorted(r["anonymity_set"] for r in report.locations)


def test_a_coarse_data_set_is_measured_at_its_own_resolution():
    readings = synthetic_household(seed=3, start="2026-03-02", days=14)
    hourly = privacy_report(cut_dataset(readings, resolution="1h"), population=reference_population())
    assert hourly.resolution == "PT1H" and hourly.linkage.resolution_slots == 4
    assert list(hourly.table().index) == ["PT1H", "PT4H", "P1D"]
    assert hourly.reveals["location_digits"] == 0 and hourly.reveals["household_type"] == "unknown"


def test_the_summary_goes_into_the_signed_descriptor(dataset, report):
    prepared = PrivacyPolicy(max_score=100).prepare(dataset, population=reference_population())
    assert prepared.plaintext == dataset.plaintext
    assert prepared.descriptor["privacy_score"] == report.score
    assert prepared.descriptor["privacy_method"] == "edx-privacy/1"
    assert validate_descriptor(prepared.descriptor) == prepared.descriptor


@pytest.mark.parametrize("summary", [
    {"privacy_score": 101, "privacy_method": "edx-privacy/1"},
    {"privacy_score": 40},
    {"privacy_score": "40", "privacy_method": "edx-privacy/1"},
    {"privacy_score": 40, "privacy_method": "privacy-1"},
])
def test_malformed_summaries_are_refused(summary):
    with pytest.raises(EncodingError):
        validate_descriptor({"kind": "electricity", **summary})


def test_the_policy_refuses_above_its_threshold(dataset, report):
    with pytest.raises(PrivacyRiskError) as caught:
        PrivacyPolicy(max_score=report.score - 1).check(report)
    assert caught.value.report is report
    with pytest.raises(PrivacyRiskError, match="location digits"):
        PrivacyPolicy(max_location_digits=2).check(report)
    PrivacyPolicy(max_score=report.score, max_location_digits=4).check(report)


def test_reveals_of_a_bare_descriptor():
    assert descriptor_reveals({})["anonymity_set"] == 8_200_000


@pytest.mark.parametrize("dataset", [None, "readings.csv", {"descriptor": {}}])
def test_a_report_measures_a_data_set_only(dataset):
    with pytest.raises(PrivacyError, match="a privacy report measures a meter DataSet"):  # AttributeError
        privacy_report(dataset)


@pytest.mark.parametrize(("options", "message"), [
    ({"max_score": "30"}, "max_score is a whole number from 0 to 100"),  # a TypeError at the first check
    ({"max_score": -1}, "max_score is a whole number from 0 to 100"),
    ({"max_score": 101}, "max_score is a whole number from 0 to 100"),
    ({"max_location_digits": -1}, "max_location_digits is a whole number, 0 or more"),
    ({"max_location_digits": 2.5}, "max_location_digits is a whole number, 0 or more"),
])
def test_a_policy_refuses_bounds_no_score_can_meet(options, message):
    with pytest.raises(PrivacyError, match=message):
        PrivacyPolicy(**options)


def test_data_too_short_or_too_coarse_is_refused():
    readings = synthetic_household(seed=1, days=1)
    with pytest.raises(PrivacyError):
        privacy_report(cut_dataset(readings, resolution="15min", start="2026-01-01T03:00", end="2026-01-01T09:00"))
    with pytest.raises(PrivacyError):
        privacy_report(cut_dataset(synthetic_household(seed=1, days=4), resolution="20min"))


def test_a_union_aggregate_is_scored_by_the_attack_on_aggregates():
    from enerdatx.crypto import Identity
    from enerdatx.trustchain import BlockStore, TrustChain
    from enerdatx.union import DataUnion, UnionMember, UnionTerms

    def ledger(seed):
        return TrustChain(Identity.from_seed(bytes([seed]) * 32), BlockStore(":memory:"))

    operator = ledger(100)
    terms = UnionTerms.create(operator.identity, "delft-zuid", threshold=5)
    union = DataUnion(terms, operator)
    members = [UnionMember(ledger(i + 1), terms, synthetic_household(seed=i, start="2026-03-02", days=14))
               for i in range(5)]
    for member in members:
        union.receive(member.join())
    round_ = union.open_round("2026-03-02", "2026-03-16")
    result = union.aggregate(round_, "2026-03-02", "2026-03-16",
                             [m.contribute(round_, "2026-03-02", "2026-03-16") for m in members])
    single = privacy_report(cut_dataset(members[0].readings, resolution="15min"), population=reference_population())
    pooled = privacy_report(result.dataset, population=reference_population())
    assert pooled.aggregated == 5 and pooled.household_rank is None
    assert pooled.linkage.chance == pytest.approx(5 / 120)
    assert pooled.linkage.accuracy < pooled.linkage.chance_bound(0.001)
    assert pooled.score == round(100 * pooled.linkage.accuracy) < single.score
    # The union's aggregate passes a policy its members' own data sets fail, and carries both summaries.
    with pytest.raises(PrivacyRiskError):
        PrivacyPolicy(max_score=10).check(single)
    prepared = PrivacyPolicy(max_score=10).prepare(result.dataset, population=reference_population())
    assert validate_descriptor(prepared.descriptor) == prepared.descriptor
    assert prepared.descriptor["union_members"] == 5 and prepared.descriptor["privacy_score"] == pooled.score


async def test_a_policy_lists_through_the_market_or_lists_nothing(tmp_path, dataset, report):
    from enerdatx.lab import Lab

    async with Lab(tmp_path, "memory", market=True, progress=False) as lab:
        [seller] = await lab.start(1)
        market = seller.market
        with pytest.raises(PrivacyRiskError):
            PrivacyPolicy(max_score=report.score - 1).sell(market, dataset, 10)
        assert market.search() == [] and seller.store.count() == 0
        listing = PrivacyPolicy(max_score=report.score).sell(market, dataset, 10)
        assert listing.descriptor["privacy_score"] == report.score
        assert listing.descriptor["privacy_method"] == "edx-privacy/1"
        assert seller.store.get_by_hash(listing.block_hash).transaction["descriptor"]["privacy_score"] == report.score


def test_descriptor_reveals_refuses_what_is_no_descriptor():
    # An AttributeError from .get, and pandas' own words for a start that is no time.
    with pytest.raises(PrivacyError, match="a descriptor is a mapping .*, not int"):
        descriptor_reveals(5)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="the descriptor's start and end are times"):
        descriptor_reveals({"start": "soon", "end": "2026-01-02T00:00:00Z"})
    assert descriptor_reveals({"start": "2026-01-01T00:00:00Z", "end": "2026-01-08T00:00:00Z"})["period_days"] == 7.0


def _frame(index, values=None):
    import numpy as np
    import pandas as pd

    values = np.arange(len(index), dtype="float64") if values is None else values
    return pd.DataFrame({"import_wh": values}, index=index)


def _days(days=14, tz="UTC"):
    import pandas as pd

    return pd.date_range("2026-03-02", periods=96 * days, freq="15min", tz=tz)


class _DataSet:
    """What privacy_report reads of a data set: a frame and a descriptor, made by hand."""

    def __init__(self, frame, seconds=900):
        self.frame, self.descriptor = frame, {"resolution_seconds": seconds, "resolution": "PT15M"}


@pytest.mark.parametrize(("frame", "message"), [
    (_frame(_days()[:0]), "the frame has no readings"),  # an IndexError
    # Every timestamp twice: a step of 0 (ZeroDivisionError); unsorted with duplicates was summed silently.
    (_frame(_days().repeat(2)), "unique and in increasing order: a duplicate at 2026-03-02T00:00:00"),
    (_frame(_days()[::-1].append(_days()[5:6])), "unique and in increasing order: out of order at"),
    (_frame(_days()[[0, 2, 1, 3]]), "out of order at 2026-03-02T00:15:00"),
    (_frame(_days(tz=None)), "no time zone: readings need a tz-aware"),  # a TypeError deep in pandas
    (_frame(range(5)), "index must be timestamps"),  # '>' not supported between 'int' and 'Timedelta'
    (_frame(_days()).rename(columns={"import_wh": "wh"}), "no column 'import_wh'"),  # a KeyError
    (_frame(_days(), ["x"] * 96 * 14), "column import_wh must hold numbers"),
    (_frame(_days(), [float("nan")] * 96 * 14), "no known amount"),  # scored 100 from nothing
    (_frame(_days(), [-5.0] * 96 * 14), "holds -5.0 at 2026-03-02T00:00:00"),  # scored like any household
    (_frame(_days(), [float("inf")] * 96 * 14), "holds inf at"),
    ([1, 2, 3], "a DataFrame of readings, not list"),  # a TypeError
])
def test_a_frame_that_is_no_profile_is_refused(frame, message):
    from enerdatx.privacy.population import to_slots

    with pytest.raises(PrivacyError, match=message):
        to_slots(frame)
    with pytest.raises(PrivacyError, match=message):
        privacy_report(_DataSet(frame), population=reference_population())


def test_a_frame_in_another_time_zone_is_read_in_utc():
    from enerdatx.privacy.population import to_slots

    utc = _frame(_days())
    first, wh = to_slots(utc.tz_convert("Europe/Amsterdam"))
    assert first == utc.index[0] and wh.tolist() == to_slots(utc)[1].tolist()


@pytest.mark.parametrize(("frame", "seconds"), [
    (_frame(_days()), 3600),  # 15-minute data said to be hourly: 56 days of a 14-day frame
    (_frame(_days()), 450),
    (_frame(_days()).iloc[::4], 900),  # hourly data said to be 15-minute
    (_frame(_days()).drop(_days()[10:20]), 900),  # intervals missing: a data set's are consecutive
])
def test_a_descriptor_whose_resolution_is_not_the_frames_is_refused(frame, seconds):
    with pytest.raises(PrivacyError, match=rf"resolution_seconds \({seconds}\) disagrees with the frame: a step of"):
        privacy_report(_DataSet(frame, seconds), population=reference_population())


def test_an_empty_frame_at_a_coarse_resolution_is_refused():
    with pytest.raises(PrivacyError, match="the frame has no readings"):  # an IndexError spreading hours
        privacy_report(_DataSet(_frame(_days()[:0]), 3600), population=reference_population())


@pytest.mark.parametrize(("descriptor", "message"), [
    ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end .* must be after its start"),  # -1.0 days
    ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "must be after its start"),
    ({"start": 5, "end": 6}, "start and end are times such as .*, not 5"),  # 1e-14 days: 5 ns after 1970
])
def test_a_descriptor_of_no_period_reveals_nothing(descriptor, message):
    with pytest.raises(PrivacyError, match=message):
        descriptor_reveals(descriptor)


def test_a_policy_and_a_summary_refuse_what_is_no_report_or_data_set(dataset, report):
    from enerdatx.privacy import with_privacy_summary

    with pytest.raises(PrivacyError, match="a policy checks a PrivacyReport, not NoneType"):  # AttributeError
        PrivacyPolicy().check(None)
    with pytest.raises(PrivacyError, match="comes from a PrivacyReport, not dict"):
        with_privacy_summary(dataset, {"privacy_score": 0})
    with pytest.raises(PrivacyError, match="goes into a DataSet .*, not NoneType"):
        with_privacy_summary(None, report)
