"""The canonical readings schema: one pandas DataFrame shape for every source.

A readings frame holds the cumulative registers of one meter, as the meter
reported them, indexed by a tz-aware UTC ``DatetimeIndex`` named ``timestamp``.
Consumption is never stored: it is derived from the registers (resample.py),
so a gap or a counter reset cannot hide inside a pre-computed number.
docs/readings.md documents every column.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from enerdatx.errors import MeterChoiceError, ReadingsFormatError

__all__ = [
    "REGISTER_COLUMNS",
    "POWER_COLUMNS",
    "COLUMNS",
    "FIRST_DAY",
    "LAST_DAY",
    "make_readings",
    "empty_readings",
    "pseudonymize_meter_id",
    "validate_readings",
    "meter_list",
    "meter_choice",
]

# Cumulative energy registers in kWh, from the household's point of view:
# import = taken from the grid, export = fed back (PV). t1/t2 are the DSMR tariffs
# (t1 low/night, t2 normal/day in the Netherlands).
REGISTER_COLUMNS = (
    "import_kwh",
    "export_kwh",
    "import_t1_kwh",
    "import_t2_kwh",
    "export_t1_kwh",
    "export_t2_kwh",
)
POWER_COLUMNS = ("power_import_w", "power_export_w")
GAS_COLUMNS = ("gas_m3", "gas_timestamp")
FLOAT_COLUMNS = (*REGISTER_COLUMNS, *POWER_COLUMNS, "gas_m3")
COLUMNS = ("meter_id", "source", *REGISTER_COLUMNS, *POWER_COLUMNS, *GAS_COLUMNS)

_PSEUDONYM_DOMAIN = b"enerdatx-meter-id/1:"
# The days a nanosecond timestamp can hold: readings are indexed in nanoseconds or microseconds
# (pandas 3 parses strings to microseconds), and only this range is safe to mix.
FIRST_DAY = pd.Timestamp.min.ceil("D").date()
LAST_DAY = pd.Timestamp.max.floor("D").date()
_FIRST = pd.Timestamp(FIRST_DAY, tz="UTC")
_LAST = pd.Timestamp(LAST_DAY, tz="UTC")


def pseudonymize_meter_id(raw_id: str) -> str:
    """A stable pseudonym for a meter's equipment identifier (never the identifier itself)."""
    digest = hashlib.sha256(_PSEUDONYM_DOMAIN + raw_id.strip().encode("utf-8")).hexdigest()
    return "m-" + digest[:16]


def make_readings(
    timestamps: Any,
    columns: Mapping[str, Sequence[Any] | np.ndarray | pd.Series],
    *,
    meter_id: str | Sequence[str],
    source: str | Sequence[str],
) -> pd.DataFrame:
    """Build a canonical readings frame; absent columns become NaN, totals are filled from tariffs."""
    index = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True), name="timestamp")
    _check_range(index, "timestamps")
    unknown = set(columns) - set(COLUMNS)
    if unknown:
        raise ReadingsFormatError(f"unknown readings columns: {sorted(unknown)}")
    n = len(index)
    data: dict[str, Any] = {
        "meter_id": _string_column(meter_id, n),
        "source": _string_column(source, n),
    }
    for name in FLOAT_COLUMNS:
        values = columns.get(name)
        data[name] = np.full(n, np.nan) if values is None else np.asarray(values, dtype="float64")
    gas_ts = columns.get("gas_timestamp")
    data["gas_timestamp"] = (
        pd.DatetimeIndex(pd.to_datetime(gas_ts, utc=True))
        if gas_ts is not None
        else pd.DatetimeIndex(np.full(n, np.datetime64("NaT", "us")), tz="UTC")
    )
    _check_range(data["gas_timestamp"], "gas timestamps")
    frame = pd.DataFrame(data, index=index, columns=list(COLUMNS))
    for total, parts in (("import_kwh", ("import_t1_kwh", "import_t2_kwh")),
                         ("export_kwh", ("export_t1_kwh", "export_t2_kwh"))):
        # A total register missing from the source is the sum of its tariffs.
        summed = frame[parts[0]] + frame[parts[1]]
        frame[total] = frame[total].fillna(summed)
    # The gas register's own timestamp defaults to the reading's where the source has none.
    has_gas = frame["gas_m3"].notna() & frame["gas_timestamp"].isna()
    frame.loc[has_gas, "gas_timestamp"] = frame.index[has_gas.to_numpy()]
    return frame


def _check_range(times: pd.DatetimeIndex, what: str) -> None:
    # pandas 3 holds such dates in microseconds, but arithmetic with nanosecond timestamps
    # overflows later, far from here (a gas timestamp of 9999 was read, then storing the
    # readings failed with a bare OverflowError).
    known = times.dropna()
    if len(known) and (known.min() < _FIRST or known.max() > _LAST):
        outside = known.min() if known.min() < _FIRST else known.max()
        raise ReadingsFormatError(f"{what} must lie between {_FIRST.date()} and {_LAST.date()}, not "
                                  f"{outside.isoformat()}")


def empty_readings() -> pd.DataFrame:
    """A canonical readings frame with no rows."""
    return make_readings([], {}, meter_id=[], source=[])


def validate_readings(frame: pd.DataFrame) -> None:
    """Raise ReadingsFormatError unless ``frame`` has the canonical shape (docs/readings.md)."""
    if not isinstance(frame, pd.DataFrame):
        raise ReadingsFormatError(f"readings must be a pandas DataFrame, not {type(frame).__name__}")
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None or str(index.tz) != "UTC":
        raise ReadingsFormatError("readings need a tz-aware UTC DatetimeIndex")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ReadingsFormatError(f"readings lack columns {missing}")
    for name in FLOAT_COLUMNS:
        if not pd.api.types.is_float_dtype(frame[name].dtype):
            raise ReadingsFormatError(f"column {name} must be float64, not {frame[name].dtype}")
        # What the readers refuse, a frame made by hand must not bring in either: an infinite
        # register became the smallest int64 in a sold data set, a negative one a negative amount.
        values = frame[name].to_numpy()
        bad = np.flatnonzero(~(np.isnan(values) | (np.isfinite(values) & (values >= 0))))
        if len(bad):
            raise ReadingsFormatError(
                f"column {name} holds {float(values[bad[0]])!r} at {index[bad[0]].isoformat()}: "
                f"a reading is a finite number, 0 or more, or NaN for unknown ({len(bad)} such values)"
            )
    gas_ts = frame["gas_timestamp"].dtype
    if not isinstance(gas_ts, pd.DatetimeTZDtype) or str(gas_ts.tz) != "UTC":
        raise ReadingsFormatError("column gas_timestamp must be tz-aware UTC datetimes")
    if frame["meter_id"].isna().any() or frame["source"].isna().any():
        raise ReadingsFormatError("every reading needs a meter_id and a source")


def meter_list(ids: Sequence[str], limit: int = 10) -> str:
    """``ids`` for a message: "a, b, c", or the first ``limit`` and "... (N in all)"; "none" if empty."""
    if not ids:
        return "none"
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown if len(ids) <= limit else f"{shown}, ... ({len(ids)} in all)"


def meter_choice(error: MeterChoiceError, option: str) -> str:
    """Why ``error`` was raised, in the words of a caller whose way of choosing a meter is
    ``option`` (``--device``, ``?meter=``): the error's own message names the Python keyword."""
    if error.wanted is None:
        return f"holds {len(error.meters)} meters ({meter_list(error.meters)}); choose one with {option}"
    return f"no meter {error.wanted!r} ({option}); the file holds {meter_list(error.meters)}"


def _string_column(value: str | Sequence[str], n: int) -> pd.Series | list[str]:
    if isinstance(value, str):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ReadingsFormatError(f"{len(values)} meter ids/sources for {n} readings")
    return values
