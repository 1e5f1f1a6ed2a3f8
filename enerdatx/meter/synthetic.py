"""Synthetic households: seeded, reproducible readings for research demos and tests.

The household's power is built minute by minute (or finer) from a standby base,
a fridge cycling, an occupancy profile in local (Dutch) time with morning and
evening peaks that differ on weekends and grow in winter (lighting), and random
appliance runs (kettle, cooking, washing machine, dishwasher, dryer). Optional
rooftop PV follows the sun at 52 degrees north with a daily cloud factor; the
meter imports ``load - pv`` and exports the rest. Optional gas heating follows a
seasonal outdoor temperature against a thermostat, plus hot water in the morning.
Registers are what a DSMR 5 meter would show: tariff 1 (low) at night and on
weekends, tariff 2 (normal) on weekday days, in whole Wh and dm3.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from enerdatx.errors import MeterDataError
from enerdatx.meter.resample import parse_resolution, utc_timestamp
from enerdatx.meter.schema import FIRST_DAY, LAST_DAY, make_readings, pseudonymize_meter_id
from enerdatx.text import is_utf8

__all__ = ["HOUSEHOLD_TYPES", "MAX_DAYS", "check_location", "synthetic_household"]

MAX_DAYS = 3660  # ten years of readings


@dataclass(frozen=True)
class _Profile:
    base_w: float  # standby
    peak_w: float  # occupancy peaks
    events_per_day: float  # large appliance runs
    kettles_per_day: float
    weekday_day_w: float  # daytime presence on weekdays
    heat_m3_per_degree_hour: float
    pv_kwp: float


HOUSEHOLD_TYPES: dict[str, _Profile] = {
    "single": _Profile(70, 350, 0.6, 2, 30, 0.010, 2.5),
    "couple": _Profile(90, 550, 1.0, 3, 80, 0.014, 3.5),
    "family": _Profile(110, 650, 1.8, 5, 150, 0.018, 4.5),
    "retired": _Profile(90, 500, 1.0, 4, 350, 0.016, 3.0),
}
# (name, power W, minutes, preferred local hour)
_APPLIANCES = (("washing", 2000, 90, 10), ("dishwasher", 1800, 70, 20), ("dryer", 2500, 80, 14),
               ("oven", 2200, 45, 18), ("vacuum", 1200, 25, 11))
_LATITUDE = np.deg2rad(52.0)
_LOCAL = "Europe/Amsterdam"
# The model runs at one-minute steps (or the resolution, if finer), a few float arrays per step:
# ten years at one minute fit in a laptop's memory, a year at one second would not.
MAX_FINE_STEPS = 10_000_000


# What pandas reads as the time of the call ("today" too, to the microsecond).
_CLOCK_WORDS = ("now", "today")


def synthetic_household(
    seed: int = 0,
    start: str | pd.Timestamp = "2026-01-01",
    days: int = 31,
    resolution: str = "15min",
    *,
    pv: bool = False,
    gas: bool = False,
    location: str = "0000",
    household_type: str = "family",
) -> pd.DataFrame:
    """Canonical readings of one made-up household; the same arguments give the same frame."""
    # The arguments seed the data as text: seed="1" was seed=1, gas=0 other data than gas=False,
    # pv="no" a household with solar panels, and start=5 five nanoseconds past 1970.
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise MeterDataError(f"seed must be a whole number, not {seed!r}")
    for name, flag in (("pv", pv), ("gas", gas)):
        if not isinstance(flag, bool):
            raise MeterDataError(f"{name} must be True or False, not {flag!r}")
    if isinstance(start, (bool, int, float)):
        raise MeterDataError(f"start must be a date such as 2026-01-01 (text or a Timestamp), not {start!r}")
    if not isinstance(household_type, str) or household_type not in HOUSEHOLD_TYPES:  # a list: unhashable
        raise MeterDataError(f"household_type must be one of {sorted(HOUSEHOLD_TYPES)}, not {household_type!r}")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:  # True: a TypeError
        raise MeterDataError(f"days must be a whole number between 1 and {MAX_DAYS}, not {days!r}")
    check_location(location)
    step = parse_resolution(resolution)
    profile = HOUSEHOLD_TYPES[household_type]
    # Every argument that changes the data feeds the generator, so households differ.
    key = f"{seed}|{household_type}|{location}|{pv}|{gas}".encode()
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
    if isinstance(start, str) and start.strip().lower() in _CLOCK_WORDS:
        raise MeterDataError(f"start {start!r} is the clock's time, not a date: the same arguments would give "
                             "other readings at every call; give a date such as 2026-01-01")
    try:
        first = utc_timestamp(start)
    except MeterDataError:
        raise MeterDataError(f"start {start!r} is not a date from {FIRST_DAY} to {LAST_DAY}") from None
    if first + pd.Timedelta(days=days + 1) > pd.Timestamp.max.tz_localize("UTC"):
        raise MeterDataError(f"start {start!r} plus {days} days is past the last date pandas can hold "
                             f"({pd.Timestamp.max.date()})")
    fine = min(step, pd.Timedelta(minutes=1))
    per_step = int(step / fine)
    n_fine = int(pd.Timedelta(days=days) / fine)
    if n_fine > MAX_FINE_STEPS:
        raise MeterDataError(f"{days} days at {resolution} are {n_fine:,} simulated steps; at most "
                             f"{MAX_FINE_STEPS:,} (fewer days or a coarser resolution)")
    times = first + pd.to_timedelta(np.arange(n_fine) * fine.total_seconds(), unit="s")
    local = times.tz_convert(_LOCAL)
    hour = local.hour.to_numpy() + local.minute.to_numpy() / 60 + local.second.to_numpy() / 3600
    weekend = local.day_of_week.to_numpy() >= 5
    doy = local.day_of_year.to_numpy()
    day_no = ((times - first.normalize()) // pd.Timedelta(days=1)).to_numpy()
    winter = 0.5 * (1 + np.cos(2 * np.pi * (doy - 15) / 365.25))  # 1 mid January, 0 mid July

    load = _base_load(profile, hour, weekend, winter, fine, rng, n_fine)
    load += _appliances(profile, hour, day_no, fine, rng, n_fine)
    generation = _pv(profile, hour, doy, day_no, rng) if pv else np.zeros(n_fine)
    net = load - generation
    imp_w, exp_w = np.clip(net, 0, None), np.clip(-net, 0, None)
    low_tariff = weekend | (hour < 7) | (hour >= 23)
    hours = fine.total_seconds() / 3600

    def register(power_w: np.ndarray, mask: np.ndarray, offset: float) -> np.ndarray:
        return _cumulative(power_w * mask * hours / 1000, per_step, offset)

    start_kwh = rng.uniform(2000, 20000)
    columns = {
        "import_t1_kwh": register(imp_w, low_tariff, start_kwh * 0.45),
        "import_t2_kwh": register(imp_w, ~low_tariff, start_kwh * 0.55),
        "export_t1_kwh": register(exp_w, low_tariff, rng.uniform(0, 3000) if pv else 0.0),
        "export_t2_kwh": register(exp_w, ~low_tariff, rng.uniform(0, 3000) if pv else 0.0),
        "power_import_w": _step_mean(imp_w, per_step),
        "power_export_w": _step_mean(exp_w, per_step),
    }
    stamps = first + pd.to_timedelta(np.arange(1, n_fine // per_step + 1) * step.total_seconds(), unit="s")
    stamps = stamps.insert(0, first)
    columns["power_import_w"] = np.concatenate(([columns["power_import_w"][0]], columns["power_import_w"]))
    columns["power_export_w"] = np.concatenate(([columns["power_export_w"][0]], columns["power_export_w"]))
    if gas:
        m3 = _gas_use(profile, hour, doy, day_no, fine, rng)
        gas_every = max(step, pd.Timedelta(minutes=5))  # DSMR 5 meters update gas every 5 minutes
        gas_stamps = stamps.floor(gas_every)
        gas_at = _cumulative(m3, per_step, rng.uniform(500, 8000), decimals=3)
        # The gas value shown at a reading is the one captured at its own (earlier) timestamp.
        position = np.searchsorted(stamps.asi8, gas_stamps.asi8, side="left")
        columns["gas_m3"] = gas_at[position]
        columns["gas_timestamp"] = gas_stamps
    meter = pseudonymize_meter_id(f"synthetic:{seed}:{household_type}:{location}")
    return make_readings(stamps, columns, meter_id=meter, source="synthetic")


def check_location(location: object) -> None:
    """Refuse a ``location`` no household can be told apart by: MeterDataError naming it."""
    if not isinstance(location, str) or not is_utf8(location):  # a lone surrogate: bytes from a non-UTF-8 argv
        raise MeterDataError(f"location must be text that UTF-8 can encode, not {location!r}")
    # The location seeds the data and names the meter: "" made a household of no place, and
    # "2628 " one other than "2628" that looks the same.
    if not location.strip():
        raise MeterDataError(f"location must not be blank, not {location!r}")
    if location != location.strip():
        raise MeterDataError(f"location must neither begin nor end with white space, not {location!r}")


def _base_load(p: _Profile, hour: np.ndarray, weekend: np.ndarray, winter: np.ndarray,
               fine: pd.Timedelta, rng: np.random.Generator, n: int) -> np.ndarray:
    def bump(center: np.ndarray | float, width: float) -> np.ndarray:
        return np.exp(-0.5 * ((hour - center) / width) ** 2)

    morning = np.where(weekend, bump(9.0, 1.3), bump(7.2, 0.8))
    evening = bump(19.5, 2.0) * (1 + 0.5 * winter) + bump(22.0, 0.8) * 0.4
    daytime = np.where(weekend, 2.5 * p.weekday_day_w + 150, p.weekday_day_w) * bump(13.5, 3.0)
    lighting = 120 * winter * ((hour > 16.5) & (hour < 23)) + 60 * winter * ((hour > 6) & (hour < 8.5))
    fridge_phase = rng.uniform(0, 60)
    minutes = np.arange(n) * fine.total_seconds() / 60
    fridge = 90.0 * (((minutes + fridge_phase) % 55) < 18)
    noise = rng.normal(0, 0.08, n) * p.peak_w * (morning + evening)
    day_factor = np.repeat(rng.lognormal(0, 0.15, n // max(1, int(86400 / fine.total_seconds())) + 2),
                           int(86400 / fine.total_seconds()))[:n]
    return np.clip(p.base_w + fridge + lighting
                   + day_factor * (p.peak_w * (0.7 * morning + evening) + daytime) + noise, 30, None)


def _appliances(p: _Profile, hour: np.ndarray, day_no: np.ndarray, fine: pd.Timedelta,
                rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.zeros(n)
    steps_per_hour = 3600 / fine.total_seconds()
    day_starts = np.searchsorted(day_no, np.arange(day_no[-1] + 1))
    for first_step in day_starts:
        local_midnight = first_step - hour[first_step] * steps_per_hour
        chosen = rng.choice(len(_APPLIANCES), rng.poisson(p.events_per_day))
        runs: list[tuple[int, int, float]] = [_APPLIANCES[i][1:] for i in chosen]
        runs += [(2000, 3, 7 + 13 * rng.random()) for _ in range(rng.poisson(p.kettles_per_day))]
        for watts, minutes, preferred in runs:
            at = int(local_midnight + (preferred + rng.normal(0, 1.5)) * steps_per_hour)
            length = max(1, int(minutes * 60 / fine.total_seconds()))
            lo, hi = max(at, 0), min(at + length, n)
            if lo < hi:
                # A heating element runs at full power, then the motor phase at a third.
                shape = np.where(np.arange(hi - lo) < 0.4 * length, 1.0, 0.3)
                out[lo:hi] += watts * shape * rng.uniform(0.85, 1.1)
    return out


def _pv(p: _Profile, hour: np.ndarray, doy: np.ndarray, day_no: np.ndarray,
        rng: np.random.Generator) -> np.ndarray:
    declination = np.deg2rad(23.44) * np.sin(2 * np.pi * (doy - 81) / 365.25)
    # Solar time: Dutch clock hour minus the DST shift and the ~20 min longitude offset.
    hour_angle = np.deg2rad(15 * (hour - 13.3))
    sin_elevation = (np.sin(_LATITUDE) * np.sin(declination)
                     + np.cos(_LATITUDE) * np.cos(declination) * np.cos(hour_angle))
    clouds = rng.beta(2.2, 1.4, day_no[-1] + 1)[day_no]
    flicker = np.clip(1 - 0.25 * rng.random(len(hour)) * (clouds < 0.7), 0, 1)
    return p.pv_kwp * 1000 * 0.8 * np.clip(sin_elevation, 0, None) ** 1.2 * clouds * flicker


def _gas_use(p: _Profile, hour: np.ndarray, doy: np.ndarray, day_no: np.ndarray,
             fine: pd.Timedelta, rng: np.random.Generator) -> np.ndarray:
    """Gas in m3 per fine step: heating below the thermostat plus morning hot water."""
    daily = rng.normal(0, 2.0, day_no[-1] + 1)[day_no]
    outdoor = 10.5 - 7.5 * np.cos(2 * np.pi * (doy - 20) / 365.25) + 3 * np.sin(np.pi * (hour - 9) / 12) + daily
    thermostat = np.where((hour >= 6.5) & (hour < 22.5), 20.0, 16.0)
    hours = fine.total_seconds() / 3600
    heating = p.heat_m3_per_degree_hour * np.clip(thermostat - outdoor - 2, 0, None) * hours
    shower = 1.2 * np.exp(-0.5 * ((hour - 7.3) / 0.35) ** 2) * hours  # m3/h equivalent
    cooking = 0.15 * np.exp(-0.5 * ((hour - 18.2) / 0.4) ** 2) * hours
    return heating + shower + cooking


def _cumulative(amount: np.ndarray, per_step: int, offset: float, decimals: int = 3) -> np.ndarray:
    """Register values at every step boundary (n_steps + 1), in whole Wh / dm3 as meters show."""
    per = amount[: len(amount) // per_step * per_step].reshape(-1, per_step).sum(axis=1)
    return np.round(offset + np.concatenate(([0.0], np.cumsum(per))), decimals)


def _step_mean(power: np.ndarray, per_step: int) -> np.ndarray:
    return np.round(power[: len(power) // per_step * per_step].reshape(-1, per_step).mean(axis=1))
