"""The privacy report of one data set, its signed summary in the descriptor, and the seller's policy.

The report measures, on a reference population of the same season: the top-k accuracy of
the reproduced linkage attack at the data set's resolution, the uniqueness of the
household's own daily profiles, what the descriptor reveals, and the same figures after
coarsening. Its score (0..100, an integer) is ``round(100 * max(top-1 linkage accuracy,
uniqueness))``: the larger of "how often the attack links a week of a household like this
one" and "how often a day of this household is nearer to another of its own days than to
anyone else's". For a data union's aggregate of k households (``union_members`` in the
descriptor) the attack is the one on aggregates of k, and the score is its accuracy alone.
docs/privacy.md states the method and its limits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from enerdatx.errors import MeterDataError, PrivacyError, PrivacyRiskError
from enerdatx.meter.resample import utc_timestamp
from enerdatx.privacy.attack import LinkageResult, aggregate_linkage, coarsen, distances, linkage_attack, ranks
from enerdatx.privacy.population import SLOT, SLOTS_PER_DAY, Population, reference_population, to_slots, wh_series

__all__ = ["METHOD", "RESOLUTIONS", "CoarseningRow", "PrivacyReport", "PrivacyPolicy", "privacy_report",
           "descriptor_reveals", "anonymity_set", "with_privacy_summary", "SUMMARY_KEYS"]

METHOD = "edx-privacy/1"
SUMMARY_KEYS = ("privacy_score", "privacy_method")
RESOLUTIONS = {"PT15M": 1, "PT1H": 4, "PT4H": 16, "P1D": 96}  # in 15-minute slots
# Households in the Netherlands (CBS, 2024: 8.2 million) and how many postcode areas each
# number of leading digits names; an estimate of the crowd a descriptor leaves one in.
NL_HOUSEHOLDS = 8_200_000
POSTCODE_AREAS = {0: 1, 1: 9, 2: 90, 3: 800, 4: 4_070}
LONDON_WEEKS = (pd.Timestamp("2026-03-02", tz="UTC"), pd.Timestamp("2026-03-16", tz="UTC"))


@dataclass(frozen=True)
class CoarseningRow:
    """The figures at one coarser resolution."""

    resolution: str
    linkage_top1: float
    linkage_top5: float
    uniqueness: float
    score: int


@dataclass(frozen=True)
class PrivacyReport:
    """What the attack achieves on data like this, and what the descriptor gives away."""

    method: str
    resolution: str
    population: int
    days: int
    linkage: LinkageResult  # top-1 on the reference population at this resolution
    linkage_top5: LinkageResult
    uniqueness: float
    uniqueness_chance: float
    household_rank: int | None  # rank of this household's 2nd week among the population (0 = found)
    reveals: dict[str, Any]
    coarsening: list[CoarseningRow] = field(default_factory=list)
    locations: list[dict[str, Any]] = field(default_factory=list)
    aggregated: int = 1  # households per value (a data union's union_members), 1 for one household

    @property
    def score(self) -> int:
        """The risk score 0..100 (integer) signed into the listing."""
        return _score(self.linkage.accuracy, self.uniqueness, self.aggregated)

    def summary(self) -> dict[str, Any]:
        """The descriptor entries that carry this report: integer score and method version."""
        return {"privacy_score": self.score, "privacy_method": self.method}

    def table(self) -> pd.DataFrame:
        """Before / after coarsening, one row per resolution."""
        return pd.DataFrame([row.__dict__ for row in self.coarsening]).set_index("resolution")


def _score(linkage: float, uniqueness: float, aggregated: int = 1) -> int:
    # An aggregate's days being unlike any one household's says nothing about a person: for
    # aggregates only the attack on aggregates counts.
    return int(round(100 * (linkage if aggregated > 1 else max(linkage, uniqueness))))


def anonymity_set(location_digits: int, household_type: str | None) -> int:
    """Estimated number of Dutch households sharing a descriptor's location prefix and type."""
    crowd = NL_HOUSEHOLDS // POSTCODE_AREAS[min(location_digits, 4)]
    return crowd // 4 if household_type not in (None, "unknown") else crowd


def descriptor_reveals(descriptor: dict[str, Any]) -> dict[str, Any]:
    """What a public descriptor gives away: location digits, household type, period, resolution."""
    if not isinstance(descriptor, Mapping):  # an AttributeError from .get
        raise PrivacyError(f"a descriptor is a mapping (a DataSet's .descriptor), not {type(descriptor).__name__}")
    location = str(descriptor.get("location", "unknown"))
    leading = re.match(r"^[0-9]*", location)  # always matches, perhaps the empty string
    digits = 0 if location == "unknown" or leading is None else len(leading.group(0))
    household_type = descriptor.get("household_type", "unknown")
    start, end = descriptor.get("start"), descriptor.get("end")
    for moment in (start, end):
        if isinstance(moment, bool | int | float):  # 5 was read as 5 ns after 1970
            raise PrivacyError(f"the descriptor's start and end are times such as '2026-03-02T00:00:00Z', not {moment!r}")
    try:  # pandas' own "Unknown datetime string format" otherwise
        days = (utc_timestamp(end) - utc_timestamp(start)) / pd.Timedelta(days=1) if start and end else None
    except MeterDataError as exc:
        raise PrivacyError(f"the descriptor's start and end are times: {exc}") from None
    if days is not None and days <= 0:  # a period of -1.0 days was revealed as such
        raise PrivacyError(f"the descriptor's end ({end}) must be after its start ({start})")
    return {
        "location_digits": digits,
        "household_type": household_type,
        "period_days": None if days is None else float(days),
        "resolution": descriptor.get("resolution"),
        "anonymity_set": anonymity_set(digits, household_type),
    }


def _uniqueness(own_days: np.ndarray, population: Population, slots: int) -> tuple[float, float]:
    own = coarsen(own_days, slots)
    others, _ = population.daily()
    others = coarsen(others, slots)
    if len(own) < 2:
        return 0.0, 0.0
    d_own = distances(own, own)
    np.fill_diagonal(d_own, np.inf)
    d_other = distances(own, others)
    unique = d_own.min(axis=1) < d_other.min(axis=1)
    return float(unique.mean()), (len(own) - 1) / (len(own) - 1 + len(others))


def _season_population(first_day: pd.Timestamp, days: int) -> Population:
    start = first_day.normalize() - pd.Timedelta(days=first_day.day_of_week)  # the Monday on or before
    if start < first_day and days >= (first_day - start).days + 7 + 14:
        start += pd.Timedelta(days=7)  # two whole weeks of the household's own line up with it
    london = LONDON_WEEKS[0] <= start <= LONDON_WEEKS[1]
    return reference_population(start=start.strftime("%Y-%m-%d"), london=london)


def privacy_report(dataset: Any, *, population: Population | None = None) -> PrivacyReport:
    """Measure a data set (a meter DataSet: ``.frame`` and ``.descriptor``) before it is listed."""
    if not (hasattr(dataset, "frame") and isinstance(getattr(dataset, "descriptor", None), dict)):
        raise PrivacyError(f"a privacy report measures a meter DataSet (.frame, .descriptor), not {type(dataset).__name__}")
    if population is not None and not isinstance(population, Population):
        raise PrivacyError(f"population must be a Population, not {type(population).__name__}")
    descriptor = dict(dataset.descriptor)
    seconds = descriptor.get("resolution_seconds")
    if type(seconds) is not int or seconds <= 0:
        raise PrivacyError("the descriptor has no resolution_seconds")
    slots = max(1, seconds // int(SLOT.total_seconds()))
    if seconds > int(SLOT.total_seconds()) and (seconds % int(SLOT.total_seconds()) or SLOTS_PER_DAY % slots):
        raise PrivacyError(f"resolution of {seconds} s does not divide a day into 15-minute slots")
    series = wh_series(dataset.frame)
    step = pd.Timedelta(seconds=seconds)
    off = np.flatnonzero((series.index[1:] - series.index[:-1]) != step)
    if len(off):  # 15-minute data said to be hourly was counted as four times the days it covers
        raise PrivacyError(f"the descriptor's resolution_seconds ({seconds}) disagrees with the frame: a step of "
                           f"{series.index[off[0] + 1] - series.index[off[0]]} at {series.index[off[0]].isoformat()} "
                           "(a data set's intervals are consecutive at its resolution)")
    if seconds > int(SLOT.total_seconds()):  # spread coarse amounts evenly, so days line up with the grid
        series = series.div(slots).reindex(
            pd.date_range(series.index[0], periods=len(series) * slots, freq=SLOT), method="ffill")
    first, wh = to_slots(series.to_frame("import_wh"))
    population = population if population is not None else _season_population(first, len(wh) // SLOTS_PER_DAY)
    # The household's days in the population's window, so both sides have as many days each
    # and the same season: a year of data would otherwise find its own summer days nearest.
    days_in = int((population.start - first) / pd.Timedelta(days=1))
    all_days = wh.reshape(-1, SLOTS_PER_DAY)
    lo = max(days_in, 0)
    own_days = all_days[lo : max(lo, days_in + population.days)]
    offset: int | None = days_in
    if len(own_days) == 0:
        own_days = all_days[: population.days]
        offset = None  # not the household's days in the population's window
    test, train = population.week(1), population.week(0)
    members = descriptor.get("union_members")
    aggregated = min(members, len(population) // 2) if type(members) is int and members >= 2 else 1

    def attack(k: int, factor: int) -> LinkageResult:
        if aggregated > 1:
            return aggregate_linkage(train, test, aggregated, k=k, slots=factor)
        return linkage_attack(train, test, k, factor)

    rows = []
    for name, factor in RESOLUTIONS.items():
        if factor < slots:
            continue
        top1, top5 = attack(1, factor), attack(5, factor)
        unique, _ = _uniqueness(own_days, population, factor)
        rows.append(CoarseningRow(name, top1.accuracy, top5.accuracy, unique,
                                  _score(top1.accuracy, unique, aggregated)))
    linkage, top5 = attack(1, slots), attack(5, slots)
    uniqueness, chance = _uniqueness(own_days, population, slots)
    rank = None
    if aggregated == 1 and offset is not None and offset >= 0 and len(own_days) >= 14:  # this household
        weeks = own_days[:14].reshape(2, -1)  # its second week, among everyone's, against first weeks
        known, released = np.vstack([weeks[0], train]), np.vstack([weeks[1], test])
        rank = int(ranks(coarsen(released, slots), coarsen(known, slots), np.arange(len(known)))[0])
    reveals = descriptor_reveals(descriptor)
    locations = [{"location_digits": digits, "anonymity_set": anonymity_set(digits, reveals["household_type"])}
                 for digits in range(reveals["location_digits"], -1, -1)]
    return PrivacyReport(METHOD, descriptor.get("resolution", ""), len(population), len(all_days), linkage, top5,
                         uniqueness, chance, rank, reveals, rows, locations, aggregated)


def with_privacy_summary(dataset: Any, report: PrivacyReport) -> Any:
    """The same data set with the report's summary added to its descriptor (signed when listed)."""
    if not isinstance(report, PrivacyReport):  # AttributeErrors otherwise
        raise PrivacyError(f"a privacy summary comes from a PrivacyReport, not {type(report).__name__}")
    if not (hasattr(dataset, "plaintext") and isinstance(getattr(dataset, "descriptor", None), dict)):
        raise PrivacyError(f"a privacy summary goes into a DataSet (.plaintext, .descriptor), not {type(dataset).__name__}")
    return type(dataset)(dataset.plaintext, {**dataset.descriptor, **report.summary()})


@dataclass(frozen=True)
class PrivacyPolicy:
    """A seller's rule for listing: a maximum score and a maximum number of location digits."""

    max_score: int = 100
    max_location_digits: int = 4

    def __post_init__(self) -> None:
        # max_score "x" failed at the first check with a TypeError; -1 refused every data set.
        if isinstance(self.max_score, bool) or not isinstance(self.max_score, int) or not 0 <= self.max_score <= 100:
            raise PrivacyError(f"max_score is a whole number from 0 to 100, not {self.max_score!r}")
        digits = self.max_location_digits
        if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
            raise PrivacyError(f"max_location_digits is a whole number, 0 or more, not {digits!r}")

    def check(self, report: PrivacyReport) -> None:
        """Raise PrivacyRiskError when the report breaks this policy; return quietly otherwise."""
        if not isinstance(report, PrivacyReport):  # an AttributeError from .score
            raise PrivacyError(f"a policy checks a PrivacyReport, not {type(report).__name__}")
        if report.score > self.max_score:
            raise PrivacyRiskError(f"privacy score {report.score} is above the policy's {self.max_score}: "
                                   "coarsen the data set or sell it through a data union", report=report)
        if report.reveals["location_digits"] > self.max_location_digits:
            raise PrivacyRiskError(f"the descriptor names {report.reveals['location_digits']} location digits, "
                                   f"the policy allows {self.max_location_digits}", report=report)

    def prepare(self, dataset: Any, *, population: Population | None = None) -> Any:
        """Measure, check and return the data set with its privacy summary, ready to sell."""
        report = privacy_report(dataset, population=population)
        self.check(report)
        return with_privacy_summary(dataset, report)

    def sell(self, market: Any, dataset: Any, price: int, **options: Any) -> Any:
        """Measure and check, then list through ``market`` (anything with ``sell(dataset, price)``).

        Nothing is listed, encrypted or stored when the policy refuses (PrivacyRiskError).
        """
        return market.sell(self.prepare(dataset), price, **options)
