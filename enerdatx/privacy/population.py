"""The reference population an attack is reproduced on: synthetic households plus the London sample.

Every household is a row of energy amounts (Wh) per 15-minute slot over whole UTC days,
starting on a Monday, so that weeks line up. ``synthetic_household`` models household
types, PV and appliances, but not what makes two families of the same type differ from
each other; the population adds that on purpose (documented in docs/privacy.md): a
persistent consumption level (log-normal, sigma 0.35) and a persistent daily-routine shift
of up to an hour. Without it the synthetic households are nearly interchangeable and the
measured risk would be far below the published attacks on real homes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from enerdatx.errors import MeterDataError, PrivacyError
from enerdatx.meter import HOUSEHOLD_TYPES, interval_consumption, read_csv, synthetic_household
from enerdatx.meter.csvfiles import london_meter_ids

__all__ = ["SLOT", "SLOTS_PER_DAY", "Population", "reference_population", "london_households", "to_slots",
           "wh_series", "clear_population_cache"]

SLOT = pd.Timedelta(minutes=15)
SLOTS_PER_DAY = 96
LONDON_SAMPLE = Path(__file__).resolve().parents[2] / "data" / "london-smart-meters-sample.csv.gz"
_LEVEL_SIGMA = 0.35
_MAX_SHIFT_SLOTS = 4


@dataclass(frozen=True)
class Population:
    """Households x 15-minute slots of energy (Wh, float; NaN = unknown), starting on a Monday."""

    names: tuple[str, ...]
    household_types: tuple[str, ...]
    start: pd.Timestamp
    wh: np.ndarray  # shape (households, days * 96)

    @property
    def days(self) -> int:
        """Whole days per household."""
        return self.wh.shape[1] // SLOTS_PER_DAY

    def __len__(self) -> int:
        return self.wh.shape[0]

    def week(self, i: int) -> np.ndarray:
        """Week ``i`` (0-based) of every household: (households, 7 * 96)."""
        if isinstance(i, bool) or not isinstance(i, int | np.integer):  # 1.0 and "0" were TypeErrors, True week 1
            raise PrivacyError(f"a week is a whole number, not {i!r}")
        if not 0 <= i < self.days // 7:
            raise PrivacyError(f"the population has {self.days // 7} whole weeks, not week {i}")
        return self.wh[:, i * 7 * SLOTS_PER_DAY : (i + 1) * 7 * SLOTS_PER_DAY]

    def daily(self) -> tuple[np.ndarray, np.ndarray]:
        """All days of all households as rows (days, 96) and the household index of each row."""
        n, days = len(self), self.days
        return self.wh.reshape(n * days, SLOTS_PER_DAY), np.repeat(np.arange(n), days)


def wh_series(frame: object, column: str = "import_wh") -> pd.Series:
    """``frame[column]`` as float Wh on a UTC index in strictly increasing order; PrivacyError else.

    A tz-naive index is refused, as the meter's readings refuse it (docs/readings.md): which
    zone it meant cannot be told, and a guess would shift every day the attack compares.
    """
    if not isinstance(frame, pd.DataFrame):
        raise PrivacyError(f"a profile is made of a DataFrame of readings, not {type(frame).__name__}")
    if column not in frame.columns:
        raise PrivacyError(f"the frame has no column {column!r} (it has {list(map(str, frame.columns))})")
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise PrivacyError(f"the frame's index must be timestamps (a DatetimeIndex), not {type(index).__name__}")
    if len(index) == 0:  # was an IndexError
        raise PrivacyError("the frame has no readings")
    if index.tz is None:  # was a TypeError deep in pandas, subtracting the population's UTC start
        raise PrivacyError("the frame's timestamps have no time zone: readings need a tz-aware (UTC) index")
    if index.hasnans:
        raise PrivacyError("the frame has a reading without a timestamp (NaT)")
    steps = index[1:] - index[:-1]
    # Duplicates were summed silently by resample (a zero first step divided by zero), and an
    # unsorted index too: refuse both rather than guess which reading is meant.
    for wrong, kind in ((steps == pd.Timedelta(0), "a duplicate"), (steps < pd.Timedelta(0), "out of order")):
        if wrong.any():
            at = index[1:][wrong][0].isoformat()
            raise PrivacyError(f"the frame's timestamps must be unique and in increasing order: {kind} at {at}")
    try:
        series = frame[column].astype("float64")
    except (TypeError, ValueError) as error:
        raise PrivacyError(f"column {column} must hold numbers (Wh): {error}") from None
    values = series.to_numpy()
    bad = ~(np.isnan(values) | (np.isfinite(values) & (values >= 0)))
    if bad.any():  # what the sold format refuses: -5 Wh or inf scored as a household like any other
        at = index[np.flatnonzero(bad)[0]]
        raise PrivacyError(f"column {column} holds {float(values[bad][0])!r} at {at.isoformat()}: an amount is a "
                           "finite number of Wh, 0 or more, or NaN for unknown")
    if np.isnan(values).all():  # scored 100 from nothing known
        raise PrivacyError(f"column {column} has no known amount (all NaN)")
    return series.tz_convert("UTC")


def to_slots(frame: pd.DataFrame, column: str = "import_wh") -> tuple[pd.Timestamp, np.ndarray]:
    """A data set's frame (Wh at 15 min or finer) as whole UTC days of 15-minute Wh."""
    series = wh_series(frame, column)
    step = (series.index[1:] - series.index[:-1]).min() if len(series) > 1 else SLOT
    if step > SLOT or SLOT % step:
        raise PrivacyError(f"a profile needs 15-minute data or finer that divides it, not {step}")
    slots = series.resample(SLOT).sum(min_count=1)
    first = slots.index[0].ceil("1D")
    last = (slots.index[-1] + SLOT).floor("1D")
    if last <= first:
        raise PrivacyError("a privacy report needs at least one whole UTC day of readings")
    return first, slots[(slots.index >= first) & (slots.index < last)].to_numpy()


def _heterogeneity(wh: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 16])
    shifted = np.roll(wh, int(rng.integers(-_MAX_SHIFT_SLOTS, _MAX_SHIFT_SLOTS + 1)))
    return shifted * rng.lognormal(0.0, _LEVEL_SIGMA)


def _first_day(start: object) -> pd.Timestamp:
    """``start`` as a UTC timestamp; PrivacyError if it is none (pandas' own words were "Unknown
    datetime string format, unable to parse: x")."""
    from enerdatx.meter.resample import utc_timestamp

    try:
        return utc_timestamp(start)
    except MeterDataError:
        raise PrivacyError(f"start is a date such as '2026-03-02', not {start!r}") from None


def london_households(start: str = "2026-03-02", days: int = 28) -> list[tuple[str, np.ndarray]]:
    """The London sample's households as 15-minute Wh (each half hour split evenly in two)."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 28:  # 0 gave empty households
        raise PrivacyError(f"days is a whole number from 1 to 28 (the London sample's four weeks), not {days!r}")
    out = []
    lo = _first_day(start)
    for meter in london_meter_ids(LONDON_SAMPLE):
        readings = read_csv(LONDON_SAMPLE, meter=meter)
        half_hours = interval_consumption(readings, "30min", start=lo, end=lo + pd.Timedelta(days=days))
        wh = np.repeat(half_hours["import_kwh"].to_numpy() * 1000 / 2, 2)
        if np.isnan(wh).all():  # a household of no readings joined the population as if it used nothing
            raise PrivacyError(f"the London sample has no readings of {meter} from {lo.date()} for {days} days "
                               "(it covers four weeks from 2026-03-02)")
        out.append((meter, wh))
    return out


def reference_population(households: int = 120, days: int = 14, *, seed: int = 0,
                         start: str = "2026-03-02", london: bool = True) -> Population:
    """The reference population: ``households`` in all (London sample first), ``days`` from a Monday."""
    for name, value in (("households", households), ("days", days), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int):  # "120" was a TypeError from households - n
            raise PrivacyError(f"{name} is a whole number, not {value!r}")
    if seed < 0:  # numpy's "expected non-negative integer"
        raise PrivacyError(f"seed is a whole number, 0 or more, not {seed}")
    if not isinstance(london, bool):  # "no" is true: the London sample joined
        raise PrivacyError(f"london is True or False, not {london!r}")
    # Checked before the cache, which failed with "unhashable type" on a start of [1].
    first = _first_day(start if isinstance(start, str | pd.Timestamp) else repr(start))
    if first.day_of_week != 0 or first != first.normalize():  # 13:00 made days that are no UTC days
        raise PrivacyError(f"the population starts at midnight (UTC) on a Monday so that weeks line up, not "
                           f"{first.isoformat()}")
    return _population(households, days, seed, first, london)


@functools.lru_cache(maxsize=8)
def _population(households: int, days: int, seed: int, first: pd.Timestamp, london: bool) -> Population:
    if days < 14 or days % 7:
        raise PrivacyError("the population needs whole weeks, at least two")
    names: list[str] = []
    types: list[str] = []
    rows: list[np.ndarray] = []
    if london:
        if days > 28:
            raise PrivacyError("the London sample covers four weeks of March 2026")
        for meter, wh in london_households(first.strftime("%Y-%m-%d"), days):
            names.append(f"london:{meter}")
            types.append("unknown")
            rows.append(wh)
    kinds = sorted(HOUSEHOLD_TYPES)
    for i in range(households - len(rows)):
        household_seed = seed * 100_003 + i
        kind = kinds[i % len(kinds)]
        readings = synthetic_household(seed=household_seed, start=first, days=days, household_type=kind,
                                       pv=(i // len(kinds)) % 3 == 0, location=f"{1000 + (i * 37) % 9000}")
        # A synthetic meter reads exactly on the 15-minute grid without gaps: the register's
        # differences are the interval amounts (what interval_consumption gives, at half the cost).
        wh = np.diff(readings["import_kwh"].to_numpy()) * 1000
        rows.append(_heterogeneity(wh, household_seed))
        names.append(f"synthetic:{household_seed}:{kind}")
        types.append(kind)
    if len(rows) < 10:
        raise PrivacyError("a reference population needs at least 10 households")
    return Population(tuple(names), tuple(types), first, np.vstack(rows))


def clear_population_cache() -> None:
    """Forget the populations built so far (a benchmark times a season's first report)."""
    _population.cache_clear()  # the cache is the inner function's: the arguments are checked first
