"""Data quality: find and report what would otherwise become wrong consumption.

``clean_readings`` sorts, drops exact duplicates, keeps the first of conflicting
duplicates, and blanks single-reading register glitches; it never invents a
value. Gaps, counter resets (meter replaced) and a change of meter are reported
here and turned into *unknown* consumption by resample.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from enerdatx.errors import MeterDataError
from enerdatx.meter.schema import REGISTER_COLUMNS, validate_readings

__all__ = ["Gap", "RegisterIssue", "QualityReport", "clean_readings", "default_max_gap", "parse_max_gap"]


@dataclass(frozen=True)
class Gap:
    """Readings are missing between ``start`` and ``end`` (longer than the allowed spacing)."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def seconds(self) -> int:
        """Length of the gap in whole seconds."""
        return int((self.end - self.start).total_seconds())


@dataclass(frozen=True)
class RegisterIssue:
    """A register that went down: a one-off glitch (blanked) or a reset (consumption unknown)."""

    timestamp: pd.Timestamp
    column: str
    before: float
    after: float


@dataclass
class QualityReport:
    """What was wrong with a readings frame and what was done about it."""

    n_readings: int = 0
    unsorted: bool = False
    duplicates_dropped: int = 0
    conflicting_duplicates: list[pd.Timestamp] = field(default_factory=list)
    non_monotonic: list[RegisterIssue] = field(default_factory=list)
    counter_resets: list[RegisterIssue] = field(default_factory=list)
    meter_changes: list[pd.Timestamp] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing at all was found."""
        return not (self.unsorted or self.duplicates_dropped or self.conflicting_duplicates
                    or self.non_monotonic or self.counter_resets or self.meter_changes or self.gaps)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (timestamps as ISO strings)."""
        def issue(i: RegisterIssue) -> dict[str, Any]:
            return {"timestamp": i.timestamp.isoformat(), "column": i.column,
                    "before": i.before, "after": i.after}
        return {
            "n_readings": self.n_readings,
            "unsorted": self.unsorted,
            "duplicates_dropped": self.duplicates_dropped,
            "conflicting_duplicates": [t.isoformat() for t in self.conflicting_duplicates],
            "non_monotonic": [issue(i) for i in self.non_monotonic],
            "counter_resets": [issue(i) for i in self.counter_resets],
            "meter_changes": [t.isoformat() for t in self.meter_changes],
            "gaps": [{"start": g.start.isoformat(), "end": g.end.isoformat(), "seconds": g.seconds}
                     for g in self.gaps],
        }


def default_max_gap(index: pd.DatetimeIndex) -> pd.Timedelta:
    """Allowed spacing between readings: 1.5 times the median spacing, at least one minute."""
    if len(index) < 2:
        return pd.Timedelta(minutes=1)
    median = pd.Series(np.diff(index.asi8)).median()
    step = pd.Timedelta(int(median), unit=str(index.unit))
    return max(1.5 * step, pd.Timedelta(minutes=1))


def parse_max_gap(max_gap: object) -> pd.Timedelta:
    """``max_gap`` as a positive Timedelta, or MeterDataError (was pandas' "unit abbreviation w/o a number")."""
    if isinstance(max_gap, (int, float, np.integer, np.floating)):  # pandas takes 5 as 5 ns: every spacing a gap
        raise MeterDataError(f"max_gap is a duration with its unit, such as '30min', not {max_gap!r}")
    try:
        gap = pd.Timedelta(max_gap)  # what is not a duration raises
    except (ValueError, TypeError, OverflowError):
        raise MeterDataError(f"max_gap is a duration such as '30min' or a pandas Timedelta, not {max_gap!r}") from None
    if gap is pd.NaT or gap <= pd.Timedelta(0):
        raise MeterDataError(f"max_gap must be a duration above zero, not {max_gap!r}")
    return gap


def clean_readings(
    frame: pd.DataFrame, *, max_gap: str | pd.Timedelta | None = None
) -> tuple[pd.DataFrame, QualityReport]:
    """Return a sorted, de-duplicated copy of ``frame`` and a report of every problem found."""
    validate_readings(frame)
    report = QualityReport(n_readings=len(frame))
    out = frame
    if not out.index.is_monotonic_increasing:
        report.unsorted = True
        out = out.sort_index(kind="stable")
    out = _drop_duplicates(out, report)
    out = out.copy()
    meter_break = _meter_changes(out, report)
    for column in REGISTER_COLUMNS:
        _blank_glitches(out, column, meter_break, report)
    gap = parse_max_gap(max_gap) if max_gap is not None else default_max_gap(out.index)
    report.gaps = find_gaps(out.index, gap)
    return out, report


def find_gaps(index: pd.DatetimeIndex, max_gap: pd.Timedelta) -> list[Gap]:
    """Every spacing between consecutive timestamps longer than ``max_gap``."""
    if len(index) < 2:
        return []
    spacing = index[1:] - index[:-1]
    return [Gap(index[i], index[i + 1]) for i in np.flatnonzero(spacing > pd.Timedelta(max_gap))]


def _drop_duplicates(frame: pd.DataFrame, report: QualityReport) -> pd.DataFrame:
    dup_time = frame.index.duplicated(keep="first")
    if not dup_time.any():
        return frame
    # NaN != NaN, so compare rows through a NaN-safe keyed frame.
    keyed = frame.reset_index()
    identical = keyed.duplicated(keep="first").to_numpy()
    conflicting = dup_time & ~identical
    report.duplicates_dropped = int(dup_time.sum())
    report.conflicting_duplicates = sorted(set(frame.index[conflicting]))
    return frame[~dup_time]


def _meter_changes(frame: pd.DataFrame, report: QualityReport) -> np.ndarray:
    """Boolean per row: the meter id differs from the previous row's (a meter swap)."""
    ids = frame["meter_id"].to_numpy()
    change = np.zeros(len(ids), dtype=bool)
    if len(ids) > 1:
        change[1:] = ids[1:] != ids[:-1]
    report.meter_changes = list(frame.index[change])
    return change


def _blank_glitches(frame: pd.DataFrame, column: str, meter_break: np.ndarray,
                    report: QualityReport) -> None:
    """A register below its predecessor is a glitch if the next reading recovers, else a reset."""
    values = frame[column].to_numpy()
    valid = np.flatnonzero(~np.isnan(values))
    if len(valid) < 2:
        return
    v = values[valid]
    drops = np.flatnonzero(np.diff(v) < 0) + 1  # positions in `valid` that went down
    blanked: list[int] = []
    for k in drops:
        row = valid[k]
        if meter_break[valid[k - 1] + 1: row + 1].any():
            continue  # a different meter: reported as a meter change, not a register fault
        before, after = float(v[k - 1]), float(v[k])
        issue = RegisterIssue(frame.index[row], column, before, after)
        recovers = k + 1 < len(v) and v[k + 1] >= before
        if recovers:
            report.non_monotonic.append(issue)
            blanked.append(row)
        else:
            report.counter_resets.append(issue)
    if blanked:
        frame.iloc[blanked, frame.columns.get_loc(column)] = np.nan
