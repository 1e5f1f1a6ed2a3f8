"""Data quality and resampling: energy is conserved, and bad data becomes unknown, never wrong."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enerdatx.errors import MeterDataError, ReadingsFormatError
from enerdatx.meter import (
    clean_readings,
    cut_dataset,
    interval_consumption,
    make_readings,
    read_dsmr,
    render_telegrams,
    resample_readings,
    validate_readings,
)
from enerdatx.meter.resample import bin_stream, parse_resolution

T0 = pd.Timestamp("2026-03-01T00:00:00Z")


def readings(minutes: list[float], kwh: list[float], meter: str | list[str] = "m-1") -> pd.DataFrame:
    times = [T0 + pd.Timedelta(minutes=m) for m in minutes]
    return make_readings(times, {"import_t1_kwh": kwh, "import_t2_kwh": [0.0] * len(kwh)},
                         meter_id=meter, source="test")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 600), st.floats(0, 5)), min_size=3, max_size=60),
       st.sampled_from(["1min", "5min", "15min", "1h"]))
def test_resampling_conserves_energy(steps: list[tuple[int, float]], resolution: str) -> None:
    seconds = np.cumsum([0] + [s for s, _ in steps])
    kwh = 100 + np.cumsum([0.0] + [e for _, e in steps])
    frame = make_readings(T0 + pd.to_timedelta(seconds, unit="s"),
                          {"import_kwh": kwh}, meter_id="m", source="t")
    step = pd.Timedelta(resolution)
    lo, hi = frame.index[0].floor(step), frame.index[-1].ceil(step)
    # A huge max_gap: every span is known, so the bins must add up to the register difference.
    amounts = interval_consumption(frame, resolution, start=lo, end=hi, max_gap="1D")["import_kwh"]
    inside = amounts[(amounts.index >= frame.index[0]) & (amounts.index + step <= frame.index[-1])]
    assert inside.notna().all()
    first_edge = inside.index[0] if len(inside) else None
    if first_edge is not None:
        expected = np.interp([(first_edge - T0).total_seconds(), (inside.index[-1] + step - T0).total_seconds()],
                             seconds, kwh)
        assert inside.sum() == pytest.approx(expected[1] - expected[0], abs=1e-9)
    assert amounts.sum() <= kwh[-1] - kwh[0] + 1e-9


def test_month_of_15min_readings_resampled_to_hours_and_days(month_15min: pd.DataFrame) -> None:
    total = month_15min["import_kwh"].iloc[-1] - month_15min["import_kwh"].iloc[0]
    for resolution in ("15min", "1h", "1D"):
        amounts = interval_consumption(month_15min, resolution)
        assert amounts["import_kwh"].notna().all()
        assert amounts["import_kwh"].sum() == pytest.approx(total, abs=1e-6)
        # tariffs add up to the total in every interval
        np.testing.assert_allclose(amounts["import_t1_kwh"] + amounts["import_t2_kwh"], amounts["import_kwh"],
                                   atol=1e-9)
    gas = interval_consumption(month_15min, "1D")["gas_m3"]
    assert gas.sum() == pytest.approx(month_15min["gas_m3"].iloc[-1] - month_15min["gas_m3"].iloc[0], abs=1e-6)


def test_resample_readings_keeps_registers_on_the_grid(month_15min: pd.DataFrame) -> None:
    hourly = resample_readings(month_15min, "1h")
    validate_readings(hourly)
    assert (hourly.index.minute == 0).all()
    np.testing.assert_allclose(hourly["import_kwh"], month_15min["import_kwh"].reindex(hourly.index))


def test_duplicates_are_dropped_and_conflicts_reported() -> None:
    frame = readings([0, 15, 15, 30, 30, 45], [1.0, 2.0, 2.0, 3.0, 3.5, 4.0])
    clean, report = clean_readings(frame)
    assert list(clean["import_kwh"]) == [1.0, 2.0, 3.0, 4.0]
    assert report.duplicates_dropped == 2
    assert report.conflicting_duplicates == [T0 + pd.Timedelta(minutes=30)]
    assert not report.ok


def test_unsorted_input_is_sorted_and_reported() -> None:
    frame = readings([0, 30, 15, 45], [1.0, 3.0, 2.0, 4.0])
    clean, report = clean_readings(frame)
    assert report.unsorted and clean.index.is_monotonic_increasing


def test_a_one_off_glitch_is_blanked_and_bridged() -> None:
    frame = readings([0, 15, 30, 45, 60], [10.0, 11.0, 0.5, 13.0, 14.0])
    clean, report = clean_readings(frame)
    assert np.isnan(clean["import_t1_kwh"].iloc[2])
    assert [(i.column, i.before, i.after) for i in report.non_monotonic][:1] == [("import_kwh", 11.0, 0.5)]
    amounts = interval_consumption(frame, "15min", max_gap="1h")["import_kwh"]
    assert amounts.sum() == pytest.approx(4.0)  # 10 -> 14, nothing invented, nothing lost
    assert not report.counter_resets


def test_a_counter_reset_makes_that_interval_unknown_not_negative() -> None:
    frame = readings([0, 15, 30, 45, 60], [500.0, 501.0, 0.2, 1.2, 2.2])
    _, report = clean_readings(frame)
    assert [(i.before, i.after) for i in report.counter_resets if i.column == "import_kwh"] == [(501.0, 0.2)]
    amounts = interval_consumption(frame, "15min")["import_kwh"]
    assert list(amounts.iloc[:4]) == pytest.approx([1.0, np.nan, 1.0, 1.0], nan_ok=True)
    assert (amounts.dropna() >= 0).all()


def test_a_new_meter_with_a_higher_register_is_not_consumption() -> None:
    frame = readings([0, 15, 30, 45], [100.0, 101.0, 9000.0, 9001.0], meter=["m-a", "m-a", "m-b", "m-b"])
    _, report = clean_readings(frame)
    assert report.meter_changes == [T0 + pd.Timedelta(minutes=30)]
    amounts = interval_consumption(frame, "15min")["import_kwh"]
    assert list(amounts.iloc[:3]) == pytest.approx([1.0, np.nan, 1.0], nan_ok=True)


def test_gaps_are_reported_and_unknown() -> None:
    minutes = [0, 15, 30, 45, 180, 195, 210]
    frame = readings(minutes, [float(i) for i in range(len(minutes))])
    _, report = clean_readings(frame)
    assert [(g.start, g.seconds) for g in report.gaps] == [(T0 + pd.Timedelta(minutes=45), 8100)]
    amounts = interval_consumption(frame, "15min")["import_kwh"]
    assert amounts.loc[T0 + pd.Timedelta(minutes=60): T0 + pd.Timedelta(minutes=165)].isna().all()
    assert amounts.loc[: T0 + pd.Timedelta(minutes=30)].notna().all()
    assert report.to_dict()["gaps"][0]["seconds"] == 8100


def test_a_lost_telegram_does_not_spoil_a_15min_interval(day_10s: pd.DataFrame) -> None:
    lossy = day_10s.drop(day_10s.index[[30, 31, 200]])
    full = interval_consumption(day_10s, "15min")["import_kwh"]
    part = interval_consumption(lossy, "15min")["import_kwh"]
    assert part.notna().sum() == full.notna().sum()
    assert part.sum() == pytest.approx(full.sum(), abs=1e-9)


def test_dst_days_of_10s_telegrams_resample_completely() -> None:
    # Through the autumn change: the local hour 02:00-03:00 repeats, UTC must not.
    times = pd.date_range("2026-10-24T23:00:00Z", "2026-10-25T02:00:00Z", freq="10s")
    kwh = 1000 + np.arange(len(times)) * 0.001
    frame = make_readings(times, {"import_t1_kwh": kwh, "import_t2_kwh": 0 * kwh, "power_import_w": 360 + 0 * kwh},
                          meter_id="m", source="synthetic")
    back = read_dsmr("".join(render_telegrams(frame)))
    assert back.index.is_unique and len(back) == len(times)
    amounts = interval_consumption(back, "15min")["import_kwh"]
    assert len(amounts) == 12 and amounts.notna().all()
    assert amounts.to_numpy() == pytest.approx(np.full(12, 0.09))


def test_streaming_bins_equal_whole_frame_bins(day_10s: pd.DataFrame) -> None:
    chunks = [day_10s.iloc[i:i + 97] for i in range(0, len(day_10s), 97)]
    streamed = bin_stream(chunks, "15min")
    whole = interval_consumption(day_10s, "15min")
    pd.testing.assert_frame_equal(streamed, whole.loc[streamed.index], check_freq=False)


def test_schema_violations_are_typed_errors(month_15min: pd.DataFrame) -> None:
    with pytest.raises(ReadingsFormatError, match="UTC"):
        validate_readings(month_15min.tz_convert("Europe/Amsterdam"))
    with pytest.raises(ReadingsFormatError, match="lack columns"):
        validate_readings(month_15min.drop(columns=["gas_m3"]))
    with pytest.raises(ReadingsFormatError, match="unknown readings columns"):
        make_readings([T0], {"kwh": [1.0]}, meter_id="m", source="s")
    with pytest.raises(MeterDataError, match="resolution"):
        interval_consumption(month_15min, "7min")


@pytest.mark.parametrize("value", [np.inf, -np.inf, -0.5])
def test_a_frame_made_by_hand_holds_no_value_a_reader_refuses(month_15min: pd.DataFrame, value: float) -> None:
    # An infinite register passed, and became the smallest int64 in a data set cut for sale.
    frame = month_15min.copy()
    frame.iloc[3, frame.columns.get_loc("gas_m3")] = value
    with pytest.raises(ReadingsFormatError, match=re.escape(
            f"column gas_m3 holds {value!r} at {frame.index[3].isoformat()}: "
            "a reading is a finite number, 0 or more, or NaN for unknown (1 such values)")):
        validate_readings(frame)
    with pytest.raises(ReadingsFormatError, match="column gas_m3 holds"):
        cut_dataset(frame)


@pytest.mark.parametrize(("max_gap", "message"), [
    ("x", "max_gap is a duration such as '30min' or a pandas Timedelta, not 'x'"),  # pandas' ValueError
    ([1], r"max_gap is a duration such as '30min' or a pandas Timedelta, not \[1\]"),
    (5, "max_gap is a duration with its unit, such as '30min', not 5"),  # five nanoseconds to pandas
    (np.int64(5), "max_gap is a duration with its unit, such as '30min', not "),
    ("0min", "max_gap must be a duration above zero, not '0min'"),
    ("-1h", "max_gap must be a duration above zero, not '-1h'"),
    ("NaT", "max_gap must be a duration above zero, not 'NaT'"),
])
def test_a_max_gap_that_is_no_duration_above_zero_is_refused(month_15min: pd.DataFrame, max_gap: object,
                                                             message: str) -> None:
    for use in (clean_readings, cut_dataset, lambda frame, **kw: interval_consumption(frame, "1h", **kw)):
        with pytest.raises(MeterDataError, match=message):
            use(month_15min, max_gap=max_gap)


@pytest.mark.parametrize("resolution", ["900", " 60 ", "1e3", 900, 1.5])
def test_a_resolution_without_a_unit_says_so(resolution: str | float) -> None:
    # pandas reads a bare number as nanoseconds: "900" was "must be whole seconds dividing a day".
    with pytest.raises(MeterDataError, match=f"^resolution {re.escape(repr(resolution))} has no unit: say 900s"):
        parse_resolution(resolution)
