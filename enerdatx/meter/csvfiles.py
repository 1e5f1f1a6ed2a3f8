"""CSV readings: the London Smart Meters half-hourly files and EnerDatX's generic CSV.

London (UK Power Networks' Low Carbon London trial, as republished): ``LCLid``,
``tstp`` or ``DateTime`` (local London time, start of the half hour) and
``energy(kWh/hh)`` or ``KWH/hh (per half hour)``: energy per half hour, "Null"
when missing. It becomes a register that starts at 0, read at each half hour's
end; a missing half hour leaves a hole that resampling reports as unknown.

Generic (docs/readings.md): a ``timestamp`` column in ISO 8601 with a UTC offset
and any canonical columns; it is what ``write_csv`` writes.
"""

from __future__ import annotations

import csv
import io
import os
import stat
import zoneinfo
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from enerdatx.errors import MeterChoiceError, MeterDataError, ReadingsFormatError
from enerdatx.files import atomic_path
from enerdatx.meter.schema import COLUMNS, make_readings, meter_list, pseudonymize_meter_id, validate_readings

__all__ = ["read_csv", "write_csv", "london_meter_ids", "utc_text"]

_LONDON_TIME = ("tstp", "DateTime")
_LONDON_ENERGY = ("energy(kWh/hh)", "KWH/hh (per half hour)")
_HALF_HOUR = pd.Timedelta(minutes=30)
MAX_LINE_BYTES = 1 << 20  # in a stream (pipe, device): see _LineBound
_TAIL_BYTES = 1 << 16  # read back to find the last row (_ends_inside_a_row)
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")  # pandas decompresses these by suffix


def read_csv(source: str | Path | IO[Any] | bytes, *, format: str = "auto", meter: str | None = None,
             tz: str = "Europe/London", sort: bool = True) -> pd.DataFrame:
    """Canonical readings from a London Smart Meters or generic CSV file (``format`` auto-detected).

    A file of several meters (London ``LCLid``, generic ``meter_id``) needs ``meter``: without
    it, or with one the file does not hold, MeterChoiceError lists the file's meters.

    ``sort=False`` keeps a generic file's row order, so that ``clean_readings`` can report the
    file as unsorted (London files are always put in time order: their registers are summed).
    """
    try:  # checked before the file is read: "Mars/Base" was zoneinfo's error, from deep in pandas
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise MeterDataError(f"tz must name a time zone such as Europe/London, not {tz!r}") from None
    where = _where(source)
    table = _load(source, where)
    if format == "auto":
        format = "london" if "LCLid" in table.columns else "generic"
    if format == "london":
        return _london(table, meter, tz, where)
    if format == "generic":
        return _generic(table, meter, sort, where)
    raise ReadingsFormatError(f"unknown CSV format {format!r}: use 'london', 'generic' or 'auto'")


def _where(source: str | Path | IO[Any] | bytes) -> str:
    """What begins a refusal of ``source``: "PATH: " for a file, nothing for bytes or a stream.
    Many refusals named no file ("generic CSV needs a 'timestamp' column")."""
    return f"{source}: " if isinstance(source, (str, Path)) else ""


def london_meter_ids(source: str | Path | IO[Any] | bytes) -> list[str]:
    """The household ids (LCLid) in a London Smart Meters file."""
    where = _where(source)
    table = _load(source, where)
    if "LCLid" not in table.columns:
        raise ReadingsFormatError(f"{where}not a London Smart Meters file: no LCLid column")
    return sorted(table["LCLid"].astype(str).str.strip().unique())


def utc_text(times: pd.DatetimeIndex | pd.Series) -> np.ndarray:
    """ISO 8601 UTC text of ``times``: whole seconds as meters give them, and a fraction where a
    time has one (strftime's %S dropped it: two readings 0.5 s apart were written as one time
    twice). NaT stays NaN, an empty cell in CSV."""
    times = pd.DatetimeIndex(times).tz_convert("UTC")
    text = np.asarray(times.strftime("%Y-%m-%dT%H:%M:%SZ"), dtype=object)
    fractional = np.asarray(times.notna() & (times != times.floor("s")))
    text[fractional] = [stamp.isoformat().replace("+00:00", "Z") for stamp in times[fractional]]
    return text


def write_csv(readings: pd.DataFrame, target: str | Path | IO[str]) -> None:
    """Write canonical readings as generic CSV (timestamps in ISO 8601 UTC, see :func:`utc_text`)."""
    validate_readings(readings)
    out = readings.copy()
    out.index = pd.Index(utc_text(out.index), name=out.index.name)
    out["gas_timestamp"] = utc_text(out["gas_timestamp"])
    if isinstance(target, (str, Path)):
        # A full disk or a Ctrl-C midway must not leave half a file where the user's was.
        with atomic_path(target, what="write the readings", devices=True) as temporary:
            out.to_csv(temporary, index_label="timestamp", lineterminator="\n")
    else:
        out.to_csv(target, index_label="timestamp", lineterminator="\n")


# Longest first: UTF-32's little-endian mark begins with UTF-16's.
_BYTE_ORDER_MARKS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                     (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))
_HEAD_BYTES = 4096  # looked at for the encoding


def _head(source: str | Path | IO[Any] | bytes) -> bytes:
    """The first bytes of a file, bytes or binary file object, to tell its encoding; b"" for a
    stream (reading would take them from pandas), a compressed file or one that cannot be read
    (pandas names why)."""
    if isinstance(source, bytes):
        return source[:_HEAD_BYTES]
    if isinstance(source, (str, Path)):
        if _is_stream(source) or Path(source).suffix.lower() in _COMPRESSED:
            return b""
        try:
            with open(source, "rb") as handle:
                return handle.read(_HEAD_BYTES)
        except OSError:
            return b""
    if isinstance(source, (io.RawIOBase, io.BufferedIOBase)) and source.seekable():
        where = source.tell()
        head = source.read(_HEAD_BYTES) or b""
        source.seek(where)
        return head
    return b""


def _not_utf8(head: bytes) -> str | None:
    """What the first bytes of a CSV say it is, if it is certainly no UTF-8 text; else None."""
    for mark, encoding in _BYTE_ORDER_MARKS:
        if head.startswith(mark):
            return f"is {encoding} text (it begins with a {encoding} byte-order mark)"
    if b"\x00" in head:  # UTF-16 of ASCII without a mark: pandas read it, and failed further on
        return "holds NUL bytes, which UTF-8 text never does (UTF-16 without a byte-order mark?)"
    return None


def _encoding_error(source: str | Path | IO[Any] | bytes, why: str) -> ReadingsFormatError:
    name = str(source) if isinstance(source, (str, Path)) else "the CSV"
    return ReadingsFormatError(f"{name} {why}: a readings CSV is read as UTF-8; save it as UTF-8")


def _load(source: str | Path | IO[Any] | bytes, where: str) -> pd.DataFrame:
    # Before pandas, which gave "'utf-8' codec can't decode byte 0xff in position 0" for UTF-16
    # and, for UTF-16 without a byte-order mark, "the file was cut short".
    why = _not_utf8(_head(source))
    if why is not None:
        raise _encoding_error(source, why)
    try:
        if isinstance(source, bytes):
            table = pd.read_csv(io.BytesIO(source), dtype=str, keep_default_na=False)
        elif isinstance(source, (str, Path)) and not os.path.lexists(source):  # a symlink loop: its own error
            raise ReadingsFormatError(f"{where}no such file")
        elif isinstance(source, (str, Path)) and _is_stream(source):
            with open(source, "rb") as stream:
                table = pd.read_csv(_LineBound(stream, where), dtype=str, keep_default_na=False)
        else:
            table = pd.read_csv(source, dtype=str, keep_default_na=False)
    except UnicodeDecodeError as exc:  # Latin-1, say, or UTF-16 from a pipe or a compressed file
        bad = exc.object[exc.start:exc.start + 1].hex()
        why = _not_utf8(exc.object[:4]) or f"is not UTF-8 text (byte 0x{bad}: {exc.reason})"
        raise _encoding_error(source, why) from None
    except ReadingsFormatError:  # ours, a ValueError too: it was "unreadable CSV: D/x.csv: no such file"
        raise
    except (ValueError, pd.errors.ParserError) as exc:
        raise ReadingsFormatError(f"{where}unreadable CSV: {exc}") from exc
    except OSError as exc:  # a directory, no permission
        raise ReadingsFormatError(f"{where}cannot read: {exc.strerror or exc}") from None
    if len(table.columns) == 1 and any(mark in str(table.columns[0]) for mark in ";\t"):
        # A spreadsheet's export in a Dutch or German locale: it was "needs a 'timestamp' column".
        mark = ";" if ";" in str(table.columns[0]) else "\t"
        raise ReadingsFormatError(f"{where}unreadable CSV: its fields are separated by {mark!r}; a readings CSV "
                                  "separates them by commas")
    if _ends_inside_a_row(source, len(table.columns)):
        raise ReadingsFormatError(f"{where}unreadable CSV: the last row has fewer fields than the header's "
                                  f"{len(table.columns)} and no line end: the file was cut short")
    if not isinstance(table.index, pd.RangeIndex):
        # pandas reads a first row longer than the header as index columns and shifts every
        # value one column left: the errors then named the wrong columns, and rows by the
        # index's values. (A longer row further down is a ParserError, above.)
        raise ReadingsFormatError(f"{where}unreadable CSV: row 2 has more fields than the header's {len(table.columns)}")
    # Names are read without the spaces around them; two that are then the same would make a
    # column a table of columns (pandas renames only exact duplicates, to "name.1").
    names = [str(name).strip() for name in table.columns]
    twice = sorted(name for name, seen in Counter(names).items() if seen > 1)  # names.count: quadratic
    if twice:
        raise ReadingsFormatError(f"{where}unreadable CSV: the header names {', '.join(map(repr, twice))} twice")
    table.columns = names
    return table


def _ends_inside_a_row(source: str | Path | IO[Any] | bytes, fields: int) -> bool:
    """Whether the input stops inside its last row: no line end, fewer fields than the header.

    pandas reads a short row's missing fields as empty cells: a copy cut short or a writer killed
    mid-row gave a last reading of truncated values ("3749.308" read as 374) and no error.
    """
    if isinstance(source, bytes):
        tail = source[-_TAIL_BYTES:]
    elif isinstance(source, (str, Path)):
        if _is_stream(source) or Path(source).suffix.lower() in _COMPRESSED:  # the decompressor checks its end
            return False
        with open(source, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - _TAIL_BYTES))
            tail = handle.read()
    elif isinstance(source, (io.RawIOBase, io.BufferedIOBase)) and source.seekable():
        source.seek(max(0, source.seek(0, os.SEEK_END) - _TAIL_BYTES))
        tail = source.read() or b""
    else:
        return False
    if not tail or tail.endswith((b"\n", b"\r")):
        return False
    # pandas ends a line at \r too: split as it does, or csv.reader sees a line end inside the field.
    last = tail.replace(b"\r\n", b"\n").replace(b"\r", b"\n").rsplit(b"\n", 1)[-1].decode("utf-8", "replace")
    try:
        return len(next(csv.reader([last]), [])) < fields
    except csv.Error:  # the last line alone is no CSV (a quoted field began above it): pandas read it whole
        return False


def _is_stream(path: str | Path) -> bool:
    """A named pipe or a device (/dev/stdin, /dev/zero): it may never end, unlike a file."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # pandas names the reason
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


class _LineBound:
    """A binary stream that fails once a line runs past MAX_LINE_BYTES.

    pandas buffers a line until its end: /dev/zero, which has none, grew ``meter read`` past
    2 GB. No line of a readings file comes near a mebibyte.
    """

    def __init__(self, raw: IO[bytes], where: str) -> None:
        self._raw = raw
        self._where = where
        self._line = 0  # bytes since the last newline

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        newline = data.rfind(b"\n")
        self._line = self._line + len(data) if newline < 0 else len(data) - newline - 1
        if self._line > MAX_LINE_BYTES:
            raise ReadingsFormatError(f"{self._where}a line runs past {MAX_LINE_BYTES:,} bytes: not a CSV file of readings")
        return data

    def __iter__(self) -> Iterator[bytes]:  # pandas takes only what has both read and __iter__ for a file
        return iter(self._raw)


def _first_unreadable_time(text: pd.Series, exc: Exception, what: str = "timestamp") -> str:
    """Name the first cell pandas cannot read as a time (a ``what``), by its row in the file."""
    try:
        unread = pd.to_datetime(text, format="ISO8601", errors="coerce").isna() & (text != "")
    except (ValueError, TypeError):  # e.g. times with and without an offset mixed
        unread = pd.Series(False, index=text.index)
    if unread.any():
        label = unread[unread].index[0]
        return f"unreadable {what} {text[label]!r} at row {int(label) + 2}"
    return f"unreadable {what}s ({str(exc).splitlines()[0]})"


def _pick(table: pd.DataFrame, names: tuple[str, ...], what: str, where: str) -> str:
    for name in names:
        if name in table.columns:
            return name
    raise ReadingsFormatError(f"{where}London CSV without a {what} column (one of {list(names)})")


def _london(table: pd.DataFrame, meter: str | None, tz: str, where: str) -> pd.DataFrame:
    time_col = _pick(table, _LONDON_TIME, "time", where)
    energy_col = _pick(table, _LONDON_ENERGY, "energy", where)
    ids = table["LCLid"].astype(str).str.strip()
    households = sorted(ids.unique())
    if not households:
        raise ReadingsFormatError(f"{where}a London Smart Meters file without a reading")
    if meter is None and len(households) > 1:
        raise MeterChoiceError(f"{len(households)} households in the file ({meter_list(households)}); "
                               "choose one with meter=", meters=households)
    if meter is not None:
        table = table[ids == meter]
        if table.empty:
            raise MeterChoiceError(f"no household {meter!r} in the file; it holds {meter_list(households)}",
                                   meters=households, wanted=meter)
    household = meter or households[0]
    energy = pd.to_numeric(table[energy_col].str.strip().replace({"Null": "", "null": ""}),
                           errors="coerce")
    raw_text = table[energy_col].str.strip()
    # A half-hour's energy is finite and not negative: inf or -1 would run through every register after it.
    bad = ~raw_text.isin(["Null", "null", ""]) & ~(np.isfinite(energy) & (energy >= 0))
    if bad.any():
        label = bad[bad].index[0]  # the row's place in the file, also when other households' rows were left out
        why = "non-numeric" if pd.isna(energy[label]) else "impossible"
        raise ReadingsFormatError(f"{where}{why} energy {raw_text[label]!r} in London CSV at row {int(label) + 2}")
    text = table[time_col].str.strip()
    offset = text.str.contains(r"T?\d\d:\d\d(?::\d\d(?:\.\d*)?)?(?:Z|[+-]\d\d(?::?\d\d)?)$", regex=True)
    if offset.any():
        label = offset[offset].index[0]
        raise ReadingsFormatError(f"{where}London timestamps are local times without a UTC offset, not "
                                  f"{text[label]!r} (row {int(label) + 2})")
    try:
        # ISO 8601 as both London layouts write it; dateutil's guesses (is 01/03 March or
        # January?) are not readings.
        local = pd.to_datetime(text, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise ReadingsFormatError(f"{where}{_first_unreadable_time(text, exc)} in London CSV "
                                  "(ISO 8601 local time expected, e.g. 2013-01-01 00:30:00)") from None
    if not pd.api.types.is_datetime64_dtype(local) or getattr(local.dt, "tz", None) is not None:
        raise ReadingsFormatError(f"{where}London timestamps are local times without a UTC offset")
    # Localise in file order: the repeated autumn hour is only told apart by its position.
    try:
        starts = local.dt.tz_localize(tz, ambiguous="infer", nonexistent="NaT")
    except Exception:  # noqa: BLE001 - pytz/zoneinfo raise several types when the repeated hour is incomplete
        starts = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    keep = starts.notna().to_numpy()
    starts = pd.DatetimeIndex(starts[keep]).tz_convert("UTC")
    amounts = energy[keep].to_numpy(dtype="float64")
    order = np.argsort(starts.asi8, kind="stable")
    starts, amounts = starts[order], amounts[order]
    if (amounts < 0).any():
        raise ReadingsFormatError(f"{where}negative half-hourly energy")
    if len(starts) == 0:
        raise ReadingsFormatError(f"{where}no half-hourly readings")
    # Readings at the start (register 0) and at the end of every half hour on the grid; the
    # end of a missing half hour is an all-empty row, which resampling treats as a hole.
    grid = pd.date_range(starts.min(), starts.max(), freq=_HALF_HOUR)
    per_slot = pd.Series(amounts, index=starts).groupby(level=0).first().reindex(grid)
    known = per_slot.notna().to_numpy()
    register = np.cumsum(np.where(known, per_slot.to_numpy(), 0.0))
    times = (grid + _HALF_HOUR).insert(0, grid[0])
    values = np.concatenate(([0.0], np.where(known, register, np.nan)))
    frame = _readings(where, times, {"import_kwh": values},
                      meter_id=pseudonymize_meter_id("london:" + household), source="csv-london")
    return frame


def _readings(where: str, times: Any, columns: dict[str, Any], **labels: Any) -> pd.DataFrame:
    """:func:`make_readings`, its refusal naming the file ("timestamps must lie between ...")."""
    try:
        return make_readings(times, columns, **labels)
    except ReadingsFormatError as exc:
        raise ReadingsFormatError(f"{where}{exc}") from None


# How a generic CSV's times end: Z or an offset (ISO 8601). A local time alone is ambiguous.
_UTC_OFFSET = r"(?:Z|[+-]\d\d:?\d\d)$"


def _generic(table: pd.DataFrame, meter: str | None, sort: bool, where: str) -> pd.DataFrame:
    if "timestamp" not in table.columns:
        raise ReadingsFormatError(f"{where}generic CSV needs a 'timestamp' column (ISO 8601 with offset)")
    unknown = set(table.columns) - set(COLUMNS) - {"timestamp"}
    if unknown:
        raise ReadingsFormatError(f"{where}unknown columns {sorted(unknown)} (see docs/readings.md)")
    table = _one_meter(table, meter)
    text = table["timestamp"].str.strip()
    naive = ~text.str.contains(_UTC_OFFSET, regex=True)
    if naive.any():
        raise ReadingsFormatError(f"{where}timestamp {text[naive].iloc[0]!r} has no UTC offset")
    try:
        times = pd.to_datetime(text, utc=True, format="ISO8601")
        columns: dict[str, Any] = {}
        for name in COLUMNS:
            if name in ("meter_id", "source") or name not in table.columns:
                continue
            if name == "gas_timestamp":
                cells = table[name].str.strip()
                try:
                    columns[name] = pd.to_datetime(cells.replace("", None), utc=True, format="ISO8601")
                except ValueError as exc:  # pandas' own words advise passing format= to to_datetime
                    raise ReadingsFormatError(f"{where}{_first_unreadable_time(cells, exc, name)}") from None
                # A gas time without an offset was taken for UTC, though a reading's own is refused.
                naive = (cells != "") & ~cells.str.contains(_UTC_OFFSET, regex=True)
                if naive.any():
                    raise ReadingsFormatError(f"{where}gas_timestamp {cells[naive].iloc[0]!r} has no UTC offset")
            else:
                columns[name] = _numbers(table[name], name, where)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ReadingsFormatError):
            raise
        raise ReadingsFormatError(f"{where}bad value in generic CSV: {exc}") from exc
    meter_id = table["meter_id"].tolist() if "meter_id" in table.columns else pseudonymize_meter_id("csv")
    source = table["source"].tolist() if "source" in table.columns else "csv"
    frame = _readings(where, times, columns, meter_id=meter_id, source=source)
    return frame.sort_index(kind="stable") if sort else frame


def _one_meter(table: pd.DataFrame, meter: str | None) -> pd.DataFrame:
    """The rows of ``meter``; a file of several meters needs one named (their rows would be mixed)."""
    if "meter_id" not in table.columns:
        if meter is not None and meter != pseudonymize_meter_id("csv"):
            raise MeterChoiceError(f"no meter {meter!r} in the file: it has no meter_id column (one meter)",
                                   meters=[pseudonymize_meter_id("csv")], wanted=meter)
        return table
    meters = sorted(table["meter_id"].unique())
    if meter is None:
        if len(meters) > 1:
            raise MeterChoiceError(f"{len(meters)} meters in the file ({meter_list(meters)}); "
                                   "choose one with meter=", meters=meters)
        return table
    if meter not in meters:
        raise MeterChoiceError(f"no meter {meter!r} in the file; it holds {meter_list(meters)}",
                               meters=meters, wanted=meter)
    return table[table["meter_id"] == meter]


def _numbers(cells: pd.Series, name: str, where: str) -> pd.Series:
    """A float column of a generic CSV; an empty cell is unknown (NaN).

    Registers, power and gas all count from 0 up (import and export are separate columns), so
    a negative value is refused as well as inf, 1e400 (inf to float) and nan: JSON has no
    Infinity or NaN, and an infinite register would make every consumption from it infinite.
    """
    text = cells.str.strip()
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    given = text != ""
    bad = given & ~(np.isfinite(numbers) & (numbers >= 0))
    if bad.any():
        label = bad[bad].index[0]
        cell = text[label]
        unparsed = pd.isna(numbers[label]) and cell.lower() != "nan"
        why = "is not a number" if unparsed else "is not a finite non-negative number"
        # pandas numbers the data rows from 0 after the header: row 2 of the file is the first.
        raise ReadingsFormatError(f"{where}bad value in generic CSV at row {int(label) + 2}, column {name}: "
                                  f"{cell!r} {why}")
    return numbers.where(given)
