"""Synthetic households: reproducible, and shaped like a household over days and seasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from enerdatx.errors import MeterDataError
from enerdatx.meter import clean_readings, interval_consumption, synthetic_household, validate_readings


def test_same_seed_same_frame_other_seed_other_frame() -> None:
    args = dict(start="2026-01-01", days=7, resolution="15min", pv=True, gas=True)
    first, again = synthetic_household(seed=1, **args), synthetic_household(seed=1, **args)
    pd.testing.assert_frame_equal(first, again)
    other = synthetic_household(seed=2, **args)
    assert not np.allclose(first["import_kwh"], other["import_kwh"])
    assert first["meter_id"].iloc[0] != other["meter_id"].iloc[0]


def test_shape_of_the_frame_and_its_quality() -> None:
    frame = synthetic_household(seed=4, start="2026-03-01", days=2, resolution="10s", gas=True)
    validate_readings(frame)
    assert len(frame) == 2 * 8640 + 1
    assert (frame.index[1:] - frame.index[:-1] == pd.Timedelta(seconds=10)).all()
    _, report = clean_readings(frame)
    assert report.ok  # monotonic registers, no gaps, no duplicates
    # DSMR 5 updates gas every 5 minutes, with its own timestamp
    assert set(frame["gas_timestamp"].dt.minute % 5) == {0} and (frame["gas_timestamp"] <= frame.index).all()


def test_daily_and_weekly_rhythm() -> None:
    frame = synthetic_household(seed=9, start="2026-02-02", days=28, resolution="15min", household_type="couple")
    hourly = interval_consumption(frame, "1h")["import_kwh"].tz_convert("Europe/Amsterdam")
    by_hour = hourly.groupby(hourly.index.hour).mean()
    assert by_hour[19] > 2 * by_hour[3]  # evening peak over night standby
    weekday = hourly[hourly.index.day_of_week < 5]
    weekend = hourly[hourly.index.day_of_week >= 5]
    assert weekend.groupby(weekend.index.hour).mean()[13] > weekday.groupby(weekday.index.hour).mean()[13]


def test_seasons_pv_and_gas() -> None:
    winter = synthetic_household(seed=3, start="2026-01-01", days=21, pv=True, gas=True)
    summer = synthetic_household(seed=3, start="2026-06-15", days=21, pv=True, gas=True)

    def total(frame: pd.DataFrame, column: str) -> float:
        return float(frame[column].iloc[-1] - frame[column].iloc[0])

    assert total(winter, "gas_m3") > 3 * total(summer, "gas_m3") > 0
    assert total(summer, "export_kwh") > 5 * max(total(winter, "export_kwh"), 1.0)
    export = interval_consumption(summer, "1h")["export_kwh"].tz_convert("Europe/Amsterdam")
    night = export[(export.index.hour < 4) | (export.index.hour >= 23)]
    assert night.sum() == 0 and export.sum() > 0
    no_pv = synthetic_household(seed=3, start="2026-06-15", days=21)
    assert total(no_pv, "export_kwh") == 0 and np.isnan(no_pv["gas_m3"]).all()


def test_tariffs_follow_the_dutch_clock() -> None:
    frame = synthetic_household(seed=5, start="2026-03-02", days=7)
    amounts = interval_consumption(frame, "15min").tz_convert("Europe/Amsterdam")
    weekday_day = amounts[(amounts.index.day_of_week < 5) & (amounts.index.hour >= 8) & (amounts.index.hour < 22)]
    assert weekday_day["import_t1_kwh"].sum() == 0 and weekday_day["import_t2_kwh"].sum() > 0
    weekend = amounts[amounts.index.day_of_week >= 5]
    assert weekend["import_t2_kwh"].sum() == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"household_type": "castle"}, "household_type"),
    ({"days": 0}, "days"),
    ({"resolution": "7min"}, "resolution"),
    ({"start": "0499-01-01"}, "not a date from 1677-09-22 to 2262-04-11"),
    ({"start": "NaT"}, "not a date"),
    ({"start": "now"}, "start 'now' is the clock's time, not a date"),  # other readings at every call
    ({"start": "today"}, "start 'today' is the clock's time, not a date"),
    ({"start": "2262-04-10", "days": 5}, "past the last date"),
    ({"household_type": []}, "household_type must be one of"),  # was a TypeError: unhashable
    # Taken as text: seed="1" was seed=1, gas=0 other data than gas=False, pv="no" solar panels,
    # start=5 five nanoseconds past 1970.
    ({"seed": "1"}, "seed must be a whole number, not '1'"),
    ({"seed": 1.5}, "seed must be a whole number"),
    ({"seed": True}, "seed must be a whole number"),
    ({"pv": "no"}, "pv must be True or False, not 'no'"),
    ({"gas": 0}, "gas must be True or False, not 0"),
    ({"start": 5}, "start must be a date such as 2026-01-01"),
    ({"location": "\udcff"}, "location must be text"),  # was a UnicodeEncodeError
    ({"location": 5}, "location must be text"),
    ({"location": ""}, "location must not be blank, not ''"),  # was a household of no place
    ({"location": " \t"}, "location must not be blank"),
    ({"location": "2628 "}, "location must neither begin nor end with white space, not '2628 '"),
])
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(MeterDataError, match=message):
        synthetic_household(**kwargs)
