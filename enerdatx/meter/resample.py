"""Consumption from cumulative registers, on any grid, conserving energy.

Between two consecutive readings of one register the energy is their
difference; it is spread evenly over that time span (linear interpolation of
the register), so the amounts of all bins add up exactly to the difference of
the first and last register values covered. A span is *unknown* when the
register went down (reset), the meter changed, or the readings are further apart
than ``max_gap``; a bin that touches an unknown span or lies outside the readings
is NaN, never a guess. A row with every register empty marks a hole: the span
across it is unknown too. quality.py reports those spans.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from enerdatx.errors import MeterDataError
from enerdatx.meter.quality import QualityReport, clean_readings, default_max_gap, parse_max_gap
from enerdatx.meter.schema import FIRST_DAY, LAST_DAY, POWER_COLUMNS, REGISTER_COLUMNS, make_readings

__all__ = ["parse_resolution", "grid", "interval_consumption", "resample_readings", "Binned", "bin_register", "bin_readings",
           "utc_timestamp", "bin_stream"]

AMOUNT_COLUMNS = (*REGISTER_COLUMNS, "gas_m3")


def parse_resolution(resolution: str | pd.Timedelta) -> pd.Timedelta:
    """A positive resolution that divides a day evenly, e.g. "10s", "15min", "1h"."""
    if isinstance(resolution, (str, int, float)) and _is_number(resolution):
        # pandas reads a bare number as nanoseconds: "900" was "must be whole seconds dividing a day".
        raise MeterDataError(f"resolution {resolution!r} has no unit: say 900s, 15min or 1h")
    try:
        step = pd.Timedelta(resolution)
    except (ValueError, TypeError) as exc:
        raise MeterDataError(f"not a resolution: {resolution!r}") from exc
    day, second = pd.Timedelta(days=1), pd.Timedelta(seconds=1)
    # "1.5s" divides a day, but a data set's resolution_seconds would say 1 for it.
    if step < second or step % second != pd.Timedelta(0) or day % step != pd.Timedelta(0):
        raise MeterDataError(f"resolution {resolution!r} must be whole seconds dividing a day")
    return step


def _is_number(value: str | int | float) -> bool:
    """A finite number, as text or not (True, "nan" and "inf" are left to pandas' own refusal)."""
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (ValueError, OverflowError):  # float() of a 400-digit int overflows
        return False


def grid(start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta) -> pd.DatetimeIndex:
    """Bin edges from ``start`` floored to ``end`` ceiled on the UTC ``step`` grid."""
    first = pd.Timestamp(start).floor(step)
    last = pd.Timestamp(end).ceil(step)
    return pd.date_range(first, last, freq=step, name="timestamp")


@dataclass(frozen=True)
class Binned:
    """A register spread over bins: stitched cumulative value at each edge, unknown bins masked."""

    edges: pd.DatetimeIndex
    cumulative: np.ndarray  # len(edges); known energy since the first reading, resets stitched out
    unknown: np.ndarray  # len(edges) - 1, True where the bin's amount is not known

    @property
    def amounts(self) -> np.ndarray:
        """Energy per bin, NaN where unknown."""
        out = np.diff(self.cumulative)
        out[self.unknown] = np.nan
        return out


def bin_register(times: pd.DatetimeIndex, values: np.ndarray, edges: pd.DatetimeIndex,
                 max_gap: pd.Timedelta, breaks: np.ndarray | None = None) -> Binned:
    """Spread one cumulative register over the bins between ``edges`` (see module docstring)."""
    valid = ~np.isnan(values)
    t = _seconds(times[valid], edges)
    v = values[valid]
    n_bins = len(edges) - 1
    if len(v) < 2:
        return Binned(edges, np.zeros(len(edges)), np.ones(n_bins, dtype=bool))
    d = np.diff(v)
    dt = np.diff(t)
    unknown_span = (d < 0) | (dt > max_gap.total_seconds())
    if breaks is not None:
        segment = np.cumsum(breaks)[valid]
        unknown_span |= np.diff(segment) != 0
    known = np.where(unknown_span, 0.0, d)
    cumulative = np.concatenate(([0.0], np.cumsum(known)))
    unknown_time = np.concatenate(([0.0], np.cumsum(np.where(unknown_span, dt, 0.0))))
    e = _seconds(edges, edges)
    c_edges = np.interp(e, t, cumulative)
    u_edges = np.interp(e, t, unknown_time)
    unknown = (np.diff(u_edges) > 0) | (e[:-1] < t[0]) | (e[1:] > t[-1])
    return Binned(edges, c_edges, unknown)


def interval_consumption(
    frame: pd.DataFrame,
    resolution: str | pd.Timedelta,
    *,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    max_gap: str | pd.Timedelta | None = None,
) -> pd.DataFrame:
    """Energy (kWh) and gas (m3) per bin of ``resolution``, indexed by bin start; NaN = unknown."""
    binned, edges, _ = bin_readings(frame, resolution, start=start, end=end, max_gap=max_gap)
    data = {name: b.amounts for name, b in binned.items()}
    return pd.DataFrame(data, index=edges[:-1], columns=list(AMOUNT_COLUMNS))


def bin_readings(
    frame: pd.DataFrame,
    resolution: str | pd.Timedelta,
    *,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    max_gap: str | pd.Timedelta | None = None,
) -> tuple[dict[str, Binned], pd.DatetimeIndex, QualityReport]:
    """Every register and the gas register spread over one grid (for cut_dataset and plots)."""
    step = parse_resolution(resolution)
    clean, report = clean_readings(frame, max_gap=max_gap)
    if clean.empty and (start is None or end is None):
        raise MeterDataError("no readings to resample")
    lo = utc_timestamp(start) if start is not None else clean.index[0]
    hi = utc_timestamp(end) if end is not None else clean.index[-1]
    edges = grid(lo, hi, step)
    gap = _allowed_gap(max_gap, clean.index, step)
    breaks = _breaks(clean)
    binned = {
        name: bin_register(clean.index, clean[name].to_numpy(), edges, gap, breaks)
        for name in REGISTER_COLUMNS
    }
    gas_t, gas_v, gas_breaks = _gas_series(clean)
    gas_gap = _allowed_gap(max_gap, gas_t, step)
    binned["gas_m3"] = bin_register(gas_t, gas_v, edges, gas_gap, gas_breaks)
    return binned, edges, report


def utc_timestamp(value: pd.Timestamp | str) -> pd.Timestamp:
    """A UTC timestamp; naive input is taken as UTC.

    pandas parses a date outside 1677..2262 at a coarser unit, and arithmetic with a
    nanosecond timestamp or index then overflows far from here, so such a date is refused
    at the door (the unit pandas chose is kept: pandas 3 reads strings in microseconds).
    """
    try:
        ts = pd.Timestamp(value)
        ts.as_unit("ns")  # raises OutOfBoundsDatetime outside the nanosecond range
    except (ValueError, TypeError, OverflowError) as exc:  # OutOfBoundsDatetime is a ValueError
        raise MeterDataError(f"not a timestamp from {FIRST_DAY} to {LAST_DAY}: {value!r}") from exc
    if ts is pd.NaT:  # pd.Timestamp(None) and pd.Timestamp("NaT") are "not a time"
        raise MeterDataError(f"not a timestamp: {value!r}")
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def resample_readings(
    frame: pd.DataFrame,
    resolution: str | pd.Timedelta,
    *,
    max_gap: str | pd.Timedelta | None = None,
) -> pd.DataFrame:
    """Canonical readings on a regular grid: registers interpolated, NaN inside unknown spans."""
    step = parse_resolution(resolution)
    clean, _ = clean_readings(frame, max_gap=max_gap)
    if clean.empty:
        raise MeterDataError("no readings to resample")
    points = grid(clean.index[0], clean.index[-1], step)
    points = points[(points >= clean.index[0]) & (points <= clean.index[-1])]
    gap = _allowed_gap(max_gap, clean.index, step)
    breaks = _breaks(clean)
    columns: dict[str, np.ndarray] = {
        name: _register_at(clean.index, clean[name].to_numpy(), points, gap, breaks)
        for name in REGISTER_COLUMNS
    }
    gas_t, gas_v, gas_breaks = _gas_series(clean)
    gas_gap = _allowed_gap(max_gap, gas_t, step)
    columns["gas_m3"] = _register_at(gas_t, gas_v, points, gas_gap, gas_breaks)
    power = clean[list(POWER_COLUMNS)].resample(step, closed="right", label="right").mean()
    for name in POWER_COLUMNS:
        columns[name] = power[name].reindex(points).to_numpy()
    owner = clean[["meter_id", "source"]].reindex(points, method="ffill")
    gas_ts = pd.Series(points, index=points).where(~np.isnan(columns["gas_m3"]))
    return make_readings(points, {**columns, "gas_timestamp": gas_ts},
                         meter_id=owner["meter_id"].tolist(), source=owner["source"].tolist())


def _breaks(clean: pd.DataFrame) -> np.ndarray:
    """Rows that start a new register segment: another meter, or a row with no register at all.

    An all-empty row is how a source says "readings are missing here" (London's Null half
    hours); the span across it is unknown even when it is short.
    """
    ids = clean["meter_id"].to_numpy()
    breaks = clean[list(REGISTER_COLUMNS)].isna().all(axis=1).to_numpy() & clean["gas_m3"].isna().to_numpy()
    breaks[1:] |= ids[1:] != ids[:-1]
    return breaks


def _allowed_gap(max_gap: str | pd.Timedelta | None, index: pd.DatetimeIndex,
                 step: pd.Timedelta) -> pd.Timedelta:
    """A span no longer than one bin crosses at most one edge, so it may always be spread."""
    if max_gap is not None:
        return parse_max_gap(max_gap)
    return max(default_max_gap(index), step)


def _register_at(times: pd.DatetimeIndex, values: np.ndarray, points: pd.DatetimeIndex,
                 max_gap: pd.Timedelta, breaks: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(values)
    out = np.full(len(points), np.nan)
    if valid.sum() < 1:
        return out
    t = _seconds(times[valid], points)
    v = values[valid]
    p = _seconds(points, points)
    out = np.interp(p, t, v)
    segment = np.cumsum(breaks)[valid]
    bad_span = np.concatenate(([False], (np.diff(v) < 0) | (np.diff(t) > max_gap.total_seconds())
                               | (np.diff(segment) != 0)))
    idx = np.searchsorted(t, p, side="left")
    inside = idx < len(t)
    exact = np.zeros(len(p), dtype=bool)
    exact[inside] = t[idx[inside]] == p[inside]
    between = inside & ~exact & (idx > 0)
    unknown = ~inside | (~exact & ~between)
    unknown[between] |= bad_span[idx[between]]
    out[unknown] = np.nan
    return out


def _gas_series(clean: pd.DataFrame) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """The gas register on its own clock: one value per distinct gas timestamp."""
    gas = clean[["gas_timestamp", "gas_m3", "meter_id"]].dropna(subset=["gas_m3", "gas_timestamp"])
    gas = gas.drop_duplicates(subset=["gas_timestamp"], keep="first").sort_values("gas_timestamp")
    times = pd.DatetimeIndex(gas["gas_timestamp"])
    ids = gas["meter_id"].to_numpy()
    breaks = np.zeros(len(gas), dtype=bool)
    breaks[1:] = ids[1:] != ids[:-1]
    return times, gas["gas_m3"].to_numpy(dtype="float64"), breaks


def _seconds(times: pd.DatetimeIndex, origin: pd.DatetimeIndex) -> np.ndarray:
    """Seconds since the first of ``origin`` (small floats keep interpolation exact enough)."""
    if len(origin) == 0:
        return np.zeros(len(times))
    base = origin[0]
    return (times - base).total_seconds().to_numpy(dtype="float64")


def bin_stream(frames: Iterable[pd.DataFrame], resolution: str | pd.Timedelta, *,
               max_gap: str | pd.Timedelta | None = None) -> pd.DataFrame:
    """interval_consumption over a stream of readings frames, holding one frame at a time.

    Each frame is binned up to its last grid edge; the readings from just before that
    edge on are carried into the next frame, so no bin is cut in two.
    """
    step = parse_resolution(resolution)
    parts: list[pd.DataFrame] = []
    carry: pd.DataFrame | None = None
    for frame in frames:
        data = frame if carry is None else pd.concat([carry, frame])
        if len(data) < 2:
            carry = data
            continue
        lo, hi = data.index[0].ceil(step), data.index[-1].floor(step)
        if hi > lo:
            parts.append(interval_consumption(data, step, start=lo, end=hi, max_gap=max_gap))
        before = data.index[data.index <= hi]
        carry = data[data.index >= before[-1]] if len(before) else data
    if not parts:
        raise MeterDataError("too few readings to fill one interval")
    return pd.concat(parts)
