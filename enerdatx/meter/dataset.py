"""Cut readings into a data set for sale: the sold bytes and the public descriptor.

The sold bytes are format ``enerdatx-readings/1`` (docs/readings.md): ASCII CSV,
one header comment, one row per interval of a fixed resolution, amounts as
integers (Wh, dm3) taken as differences of the registers rounded at the interval
edges, so they add up exactly to the register difference over any run of known
intervals. An unknown amount (gap, reset) is an empty field, never a guess.
The descriptor says what is sold without a single reading in it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from enerdatx.errors import MeterDataError, ReadingsFormatError
from enerdatx.meter.resample import bin_readings, parse_resolution, utc_timestamp

__all__ = ["FORMAT", "DataSet", "cut_dataset", "load_dataset_bytes", "KINDS", "iso_duration"]

FORMAT = "enerdatx-readings/1"
_ELECTRICITY = ("import_wh", "export_wh", "import_t1_wh", "import_t2_wh", "export_t1_wh", "export_t2_wh")
_GAS = ("gas_dm3",)
KINDS = {"electricity": _ELECTRICITY, "gas": _GAS, "electricity+gas": (*_ELECTRICITY, *_GAS)}
_REGISTER_OF = {"import_wh": "import_kwh", "export_wh": "export_kwh", "import_t1_wh": "import_t1_kwh",
                "import_t2_wh": "import_t2_kwh", "export_t1_wh": "export_t1_kwh",
                "export_t2_wh": "export_t2_kwh", "gas_dm3": "gas_m3"}
MAX_INTERVALS = 5_000_000  # a year at 10 s is 3.2 million
_LOCATION = re.compile(r"^(?:[A-Z0-9]{1,4}|unknown)$")
_LABEL = re.compile(r"^[a-z0-9][a-z0-9_+-]{0,31}$")


@dataclass(frozen=True)
class DataSet:
    """A data set cut for sale: the exact bytes sold and what may be said about them in public."""

    plaintext: bytes
    descriptor: dict[str, Any]

    @property
    def frame(self) -> pd.DataFrame:
        """The sold intervals as a DataFrame (what the buyer gets from load_dataset_bytes)."""
        return load_dataset_bytes(self.plaintext)


def cut_dataset(
    readings: pd.DataFrame,
    *,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    resolution: str = "15min",
    location: str = "unknown",
    household_type: str = "unknown",
    kind: str | None = None,
    max_gap: str | pd.Timedelta | None = None,
) -> DataSet:
    """Cut ``[start, end)`` of ``readings`` at ``resolution`` into sold bytes and a descriptor."""
    if not isinstance(readings, pd.DataFrame):  # a list failed with an AttributeError
        raise MeterDataError(f"cut_dataset cuts readings (a DataFrame), not {type(readings).__name__}")
    step = parse_resolution(resolution)
    location = str(location).upper() if location != "unknown" else location
    if not _LOCATION.match(location):
        raise MeterDataError(f"location {location!r} is not coarse: use at most 4 letters/digits "
                             "(a postcode area such as 2628) or 'unknown'")
    if not _LABEL.match(household_type):
        raise MeterDataError(f"household_type {household_type!r}: lower-case label of up to 32 chars")
    if readings.empty:
        raise MeterDataError("no readings to cut")
    lo = utc_timestamp(start) if start is not None else readings.index.min().ceil(step)
    hi = utc_timestamp(end) if end is not None else readings.index.max().floor(step)
    for name, moment in (("start", lo), ("end", hi)):
        if moment != moment.floor(step):
            raise MeterDataError(f"{name} {moment.isoformat()} is not on the {resolution} grid")
    if hi <= lo:
        raise MeterDataError("the period is empty: end must be after start")
    n_intervals = int((hi - lo) / step)
    if n_intervals > MAX_INTERVALS:
        raise MeterDataError(f"{n_intervals} intervals exceed the format's bound of {MAX_INTERVALS}")
    binned, edges, _ = bin_readings(readings, step, start=lo, end=hi, max_gap=max_gap)
    has_gas = not binned["gas_m3"].unknown.all()
    kind = kind or ("electricity+gas" if has_gas else "electricity")
    if kind not in KINDS:
        raise MeterDataError(f"kind must be one of {sorted(KINDS)}")
    columns = KINDS[kind]
    amounts: dict[str, np.ndarray] = {}
    for column in columns:
        b = binned[_REGISTER_OF[column]]
        edges_milli = np.rint(b.cumulative * 1000).astype(np.int64)  # Wh or dm3 at each edge
        amounts[column] = np.where(b.unknown, -1, np.diff(edges_milli))
    plaintext = _encode(edges[:-1], columns, amounts, kind, step)
    known = np.column_stack([amounts[c] >= 0 for c in columns]).all(axis=1)
    sources = sorted(set(readings.loc[(readings.index >= lo) & (readings.index <= hi), "source"]))
    descriptor = {
        "format": FORMAT,
        "kind": kind,
        "start": _iso(lo),
        "end": _iso(hi),
        "resolution": iso_duration(step),
        "resolution_seconds": int(step.total_seconds()),
        "n_readings": n_intervals,
        "n_complete": int(known.sum()),
        "location": location,
        "household_type": household_type,
        "source": "+".join(sources) or "unknown",
    }
    return DataSet(plaintext, descriptor)


def _encode(starts: pd.DatetimeIndex, columns: tuple[str, ...], amounts: dict[str, np.ndarray],
            kind: str, step: pd.Timedelta) -> bytes:
    out = io.StringIO()
    out.write(f"# {FORMAT} kind={kind} resolution_seconds={int(step.total_seconds())}\n")
    out.write(",".join(("interval_start", *columns)) + "\n")
    stamps = starts.strftime("%Y-%m-%dT%H:%M:%SZ")
    cells = [[str(v) if v >= 0 else "" for v in amounts[c].tolist()] for c in columns]
    for i, stamp in enumerate(stamps):
        out.write(stamp + "," + ",".join(col[i] for col in cells) + "\n")
    return out.getvalue().encode("ascii")


def iso_duration(step: pd.Timedelta) -> str:
    """An ISO 8601 duration for a resolution: PT10S, PT15M, PT1H, P1D."""
    seconds = int(step.total_seconds())
    if seconds % 86400 == 0:
        return f"P{seconds // 86400}D"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "PT" + "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if v)


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def load_dataset_bytes(data: bytes) -> pd.DataFrame:
    """Open sold bytes (any supported version) as a DataFrame of nullable integer amounts."""
    head, _, _ = data[:256].partition(b"\n")
    match = re.fullmatch(rb"# (enerdatx-readings/\d+) kind=(\S+) resolution_seconds=(\d+)", head)
    if match is None:
        raise ReadingsFormatError("not an enerdatx-readings data set (bad first line)")
    version, kind, seconds = (g.decode("ascii") for g in match.groups())
    if version != FORMAT:
        raise ReadingsFormatError(f"unsupported data-set format {version}; this reader knows {FORMAT}")
    if kind not in KINDS:
        raise ReadingsFormatError(f"unknown kind {kind!r}")
    try:
        frame = pd.read_csv(io.BytesIO(data), comment="#", index_col="interval_start",
                            dtype={c: "Int64" for c in KINDS[kind]})
        frame.index = pd.to_datetime(frame.index, format="%Y-%m-%dT%H:%M:%SZ", utc=True)
    except (ValueError, KeyError, pd.errors.ParserError) as exc:
        raise ReadingsFormatError(f"malformed data set: {exc}") from exc
    if tuple(frame.columns) != KINDS[kind]:
        raise ReadingsFormatError(f"columns {list(frame.columns)} do not match kind {kind}")
    step = pd.Timedelta(seconds=int(seconds))
    if len(frame) > 1 and not ((frame.index[1:] - frame.index[:-1]) == step).all():
        raise ReadingsFormatError("intervals are not consecutive at the declared resolution")
    if (frame.fillna(0) < 0).any().any():
        raise ReadingsFormatError("negative amounts")
    frame.index.name = "interval_start"
    return frame
