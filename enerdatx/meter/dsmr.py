"""DSMR P1 telegrams into canonical readings, through dsmr-parser.

Sources: a string or bytes of concatenated telegrams, a file (``.gz`` too), a
file object, any iterable of received chunks, ``tcp://host:port`` (a ser2net
style bridge) and ``serial:<port or pyserial URL>`` (the P1 port itself). The
variant (DSMR 2.2/3/4/5, Fluvius, Smarty, Sweden, EasyMeter Q3D, Iskra IE,
E.ON Hungary) is detected from each telegram. The CRC is checked here with a
C implementation (dsmr-parser's own pure-Python one is the bottleneck at 10-second
rates), then dsmr-parser parses only the lines the schema uses.

A bad telegram raises ``TelegramError`` naming its position in the input;
``errors="skip"`` (what a stream wants) skips it and counts it in ``DSMRStats``.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from dsmr_parser import telegram_specifications as specs
from dsmr_parser.exceptions import ParseError
from dsmr_parser.parsers import TelegramParser
from tqdm.auto import tqdm

from enerdatx.errors import MeterDataError, TelegramError
from enerdatx.meter.schema import empty_readings, make_readings, pseudonymize_meter_id
from enerdatx.meter.telegrams import crc16_arc

__all__ = ["DSMRStats", "TelegramFramer", "check_address_source", "detect_variant", "parse_telegram", "read_dsmr",
           "read_dsmr_stream", "iter_source"]

# dsmr-parser logs every line it cannot parse; we raise instead, so keep its log quiet.
logging.getLogger("dsmr_parser").addHandler(logging.NullHandler())

_SPECS: dict[str, dict[str, Any]] = {
    "v2.2": specs.V2_2, "v3": specs.V3, "v4": specs.V4, "v5": specs.V5,
    "fluvius": specs.BELGIUM_FLUVIUS, "smarty": specs.LUXEMBOURG_SMARTY, "sweden": specs.SWEDEN,
    "q3d": specs.Q3D, "iskra_ie": specs.ISKRA_IE, "eon_hungary": specs.EON_HUNGARY,
}
# Only these lines reach the canonical schema; parsing the others would only cost time.
_USED = {
    "P1_MESSAGE_TIMESTAMP", "EQUIPMENT_IDENTIFIER", "BELGIUM_EQUIPMENT_IDENTIFIER",
    "LUXEMBOURG_EQUIPMENT_IDENTIFIER", "EQUIPMENT_SERIAL_NUMBER", "Q3D_EQUIPMENT_SERIALNUMBER",
    "Q3D_EQUIPMENT_IDENTIFIER", "ELECTRICITY_USED_TARIFF_1", "ELECTRICITY_USED_TARIFF_2",
    "ELECTRICITY_DELIVERED_TARIFF_1", "ELECTRICITY_DELIVERED_TARIFF_2", "ELECTRICITY_IMPORTED_TOTAL",
    "ELECTRICITY_EXPORTED_TOTAL", "CURRENT_ELECTRICITY_USAGE", "CURRENT_ELECTRICITY_DELIVERY",
    "GAS_METER_READING", "HOURLY_GAS_METER_READING", "MBUS_DEVICE_TYPE", "MBUS_METER_READING",
}
_ID_FIELDS = ("EQUIPMENT_IDENTIFIER", "BELGIUM_EQUIPMENT_IDENTIFIER", "LUXEMBOURG_EQUIPMENT_IDENTIFIER",
              "EQUIPMENT_SERIAL_NUMBER", "Q3D_EQUIPMENT_SERIALNUMBER", "Q3D_EQUIPMENT_IDENTIFIER")
_REGISTERS = (("import_kwh", "ELECTRICITY_IMPORTED_TOTAL"), ("export_kwh", "ELECTRICITY_EXPORTED_TOTAL"),
              ("import_t1_kwh", "ELECTRICITY_USED_TARIFF_1"), ("import_t2_kwh", "ELECTRICITY_USED_TARIFF_2"),
              ("export_t1_kwh", "ELECTRICITY_DELIVERED_TARIFF_1"),
              ("export_t2_kwh", "ELECTRICITY_DELIVERED_TARIFF_2"))
_POWER = (("power_import_w", "CURRENT_ELECTRICITY_USAGE"), ("power_export_w", "CURRENT_ELECTRICITY_DELIVERY"))
_ENERGY_SCALE = {"kWh": 1.0, "Wh": 0.001}
_POWER_SCALE = {"kW": 1000.0, "W": 1.0}
_ROW_FIELDS = ("import_kwh", "export_kwh", "import_t1_kwh", "import_t2_kwh", "export_t1_kwh",
               "export_t2_kwh", "power_import_w", "power_export_w", "gas_m3")
_AMSTERDAM = ZoneInfo("Europe/Amsterdam")
_DUBLIN = ZoneInfo("Europe/Dublin")
_PARSERS = {name: TelegramParser({**spec, "objects": [o for o in spec["objects"] if o["value_name"] in _USED]},
                                 apply_checksum_validation=False)
            for name, spec in _SPECS.items()}
NO_TIMESTAMP = "carry no timestamp"  # in the TelegramError of an untimed telegram read without a clock
MAX_TELEGRAM = 16 * 1024  # a P1 telegram is < 2 KiB; anything this long without an end is garbage


@dataclass
class DSMRStats:
    """Counts from one read: telegrams seen, parsed and skipped, and why."""

    telegrams: int = 0
    parsed: int = 0
    skipped: int = 0
    errors: list[TelegramError] = field(default_factory=list)  # the first ``max_errors``
    variants: dict[str, int] = field(default_factory=dict)
    dst_changes: list[tuple[pd.Timestamp, str]] = field(default_factory=list)
    max_errors: int = 100
    _last_flag: str = ""

    def _skip(self, error: TelegramError) -> None:
        self.skipped += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(error)


class TelegramFramer:
    """Cut a character stream into telegrams (``/`` ... ``!CRC``), flagging truncated ones."""

    def __init__(self) -> None:
        self._buffer = ""
        self._index = 0

    def feed(self, text: str) -> Iterator[tuple[int, str, str | None]]:
        """Yield ``(index, telegram, problem)`` for every telegram completed by ``text``."""
        buf = self._buffer + text
        pos = 0
        while True:
            start = buf.find("/", pos)
            if start < 0:
                pos = len(buf)  # bytes before a first "/" are a partial telegram we joined late
                break
            bang = buf.find("!", start)
            limit = bang if bang >= 0 else len(buf)
            restart = buf.find("/", start + 1, limit)
            if restart >= 0:  # a new telegram began before this one ended
                yield self._next(buf[start:restart], "truncated: a new telegram starts before its end '!'")
                pos = restart
                continue
            if bang < 0:
                if len(buf) - start > MAX_TELEGRAM:
                    yield self._next(buf[start:start + 80], "no end '!' within 16 KiB")
                    pos = start + 1
                    continue
                pos = start
                break
            newline = buf.find("\n", bang)
            if newline < 0:
                pos = start
                break
            yield self._next(buf[start:newline + 1], None)
            pos = newline + 1
        self._buffer = buf[pos:]

    def close(self) -> Iterator[tuple[int, str, str | None]]:
        """At the end of input: a telegram still open is truncated."""
        rest, self._buffer = self._buffer, ""
        if rest.strip():
            yield self._next(rest, "truncated: the input ends inside a telegram")

    def _next(self, telegram: str, problem: str | None) -> tuple[int, str, str | None]:
        index = self._index
        self._index += 1
        return index, telegram, problem


def detect_variant(telegram: str) -> str:
    """Which DSMR variant printed ``telegram`` (see module docstring for the names)."""
    if "0-0:96.1.4(" in telegram:
        return "fluvius"
    if "1-0:14.7.0(" in telegram or "1-0:1.8.3(" in telegram:
        return "eon_hungary"
    if "0-0:42.0.0(" in telegram:
        return "smarty"
    has_time = "0-0:1.0.0(" in telegram
    version = telegram.find("1-3:0.2.8(")
    if version >= 0:
        if "1-0:1.8.0(" in telegram and "1-0:1.8.1(" not in telegram:
            return "sweden"
        return "v4" if telegram[version + 10] == "4" else "v5"
    if has_time:
        return "iskra_ie"
    if ":1.8.0*" in telegram or "1-0:1.8.0(" in telegram or ":96.1.255" in telegram:
        return "q3d"
    return "v2.2" if "0-0:17.0.0(" in telegram and "kW)" in telegram.split("0-0:17.0.0(", 1)[1][:16] else "v3"


def parse_telegram(telegram: str, index: int = 0, *, variant: str | None = None) -> dict[str, Any]:
    """Check and parse one telegram into a dict of canonical fields (``timestamp`` may be None)."""
    bang = telegram.rfind("!")
    if bang < 0 or not telegram.startswith("/"):
        raise TelegramError("truncated: no start '/' or end '!'", index=index)
    if len(telegram) > 1 and telegram[1] in "\r\n":
        raise TelegramError("no identification line after '/'", index=index)
    name = variant or detect_variant(telegram)
    spec = _SPECS.get(name)
    if spec is None:
        raise MeterDataError(f"unknown DSMR variant {name!r}")
    crc_text = telegram[bang + 1:].strip()
    if crc_text:
        try:
            expected = int(crc_text, 16)
        except ValueError:
            raise TelegramError(f"CRC {crc_text!r} is not hexadecimal", index=index) from None
        actual = crc16_arc(telegram[:bang + 1].encode("latin-1"))
        if actual != expected:
            raise TelegramError(f"bad CRC: telegram says {expected:04X}, content gives {actual:04X}",
                                index=index)
    elif spec["checksum_support"]:
        raise TelegramError(f"DSMR {name} telegram without its CRC", index=index)
    _refuse_repeated_registers(telegram, index)
    try:
        parsed = _PARSERS[name].parse(telegram, throw_ex=True)
    except (ParseError, ValueError, ArithmeticError) as exc:
        raise TelegramError(f"unparseable line: {exc}", index=index) from None
    return _fields(parsed, telegram, name, index)


def _refuse_repeated_registers(telegram: str, index: int) -> None:
    """A meter prints each of its electricity lines (1-0:...) once; dsmr-parser kept the last of
    two, so a telegram giving 1-0:1.8.1 twice was read with whichever came second."""
    seen: set[str] = set()
    for line in telegram.splitlines():
        if line.startswith("1-0:"):
            code = line.split("(", 1)[0]
            if code in seen:
                raise TelegramError(f"{code} appears twice: which value the meter meant is unknown", index=index)
            seen.add(code)


def _fields(parsed: Any, telegram: str, name: str, index: int) -> dict[str, Any]:
    out: dict[str, Any] = {"variant": name}
    for column, attr in _REGISTERS:
        out[column] = _scaled(parsed, attr, _ENERGY_SCALE, index)
    for column, attr in _POWER:
        out[column] = _scaled(parsed, attr, _POWER_SCALE, index)
    if all(out[c] is None for c, _ in _REGISTERS):
        raise TelegramError("no energy register in the telegram (truncated?)", index=index)
    for total, t1, t2 in (("import_kwh", "import_t1_kwh", "import_t2_kwh"),
                          ("export_kwh", "export_t1_kwh", "export_t2_kwh")):
        if out[total] is None and out[t1] is not None and out[t2] is not None:
            out[total] = out[t1] + out[t2]
    stamp = getattr(parsed, "P1_MESSAGE_TIMESTAMP", None)
    if stamp is not None and stamp.value is None:
        raise TelegramError("unreadable timestamp 0-0:1.0.0", index=index)
    out["timestamp"] = _local_fix(stamp.value, name) if stamp is not None else None
    out["flag"] = _dst_flag(telegram)
    out["raw_id"] = next((str(getattr(parsed, a).value) for a in _ID_FIELDS
                          if getattr(parsed, a, None) is not None and getattr(parsed, a).value), None)
    if out["raw_id"] is None:
        out["raw_id"] = telegram[1:telegram.find("\n")].strip()  # the identification line
    out["gas_m3"], out["gas_timestamp"] = _gas(parsed, name, index)
    return out


def _scaled(parsed: Any, attr: str, scales: dict[str, float], index: int) -> float | None:
    obj = getattr(parsed, attr, None)
    if obj is None or obj.value is None:
        return None
    scale = scales.get(obj.unit)
    if scale is None:
        raise TelegramError(f"{attr} in {obj.unit!r}, expected one of {sorted(scales)}", index=index)
    return _meter_value(obj.value, attr, index) * scale


def _meter_value(value: Any, what: str, index: int) -> float:
    """A register, power or gas value: finite and not negative, as CSV and OEHU readings are.

    dsmr-parser reads ``inf``, ``1e400`` and ``-1`` as numbers: an infinite register made every
    consumption after it infinite, and ``meter read --json`` printed ``Infinity``, which is no JSON.
    """
    number = float(value)
    if not (math.isfinite(number) and number >= 0):
        raise TelegramError(f"{what} {value} is not a finite non-negative number", index=index)
    return number


def _gas(parsed: Any, name: str, index: int) -> tuple[float | None, datetime | None]:
    """Gas sits in 24.3.0 (DSMR 2.2/3), 24.2.1 (4) or under the M-Bus gas device (5 and variants)."""
    reading = getattr(parsed, "GAS_METER_READING", None) or getattr(parsed, "HOURLY_GAS_METER_READING", None)
    if reading is None:
        for device in getattr(parsed, "MBUS_DEVICES", ()):
            kind = getattr(device, "MBUS_DEVICE_TYPE", None)
            candidate = getattr(device, "MBUS_METER_READING", None)
            # Device type 3 is gas (EN 13757-3); water (7) also counts in m3.
            if candidate is not None and (kind is None or str(kind.value).lstrip("0") == "3"):
                reading = candidate
                break
    if reading is None or reading.value is None:
        return None, None
    if reading.unit != "m3":
        raise TelegramError(f"gas reading in {reading.unit!r}, expected 'm3'", index=index)
    return _meter_value(reading.value, "gas reading", index), _local_fix(reading.datetime, name)


def _local_fix(value: datetime | None, name: str) -> datetime | None:
    """dsmr-parser reads every clock as Amsterdam time; Irish meters print Dublin time."""
    if value is None or name != "iskra_ie":
        return value
    local = value.astimezone(_AMSTERDAM)
    naive = local.replace(tzinfo=None)
    return naive.replace(tzinfo=_DUBLIN, fold=local.fold).astimezone(UTC)


def _dst_flag(telegram: str) -> str:
    at = telegram.find("0-0:1.0.0(")
    if at < 0:
        return ""
    flag = telegram[at + 22:at + 23]
    return flag if flag in ("S", "W") else ""


def iter_source(source: Any, *, timeout: float = 30.0, baudrate: int | None = None) -> Iterator[str]:
    """Text chunks from any supported source (see module docstring)."""
    if isinstance(source, bytes):
        yield source.decode("latin-1")
    elif isinstance(source, str) and source.startswith("tcp://"):
        yield from _tcp_chunks(source, timeout)
    elif isinstance(source, str) and source.startswith("serial:"):
        yield from _serial_chunks(source[len("serial:"):], timeout, baudrate)
    elif isinstance(source, str) and "\n" in source:  # telegram text; a path has no newline
        yield source
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        # Not only regular files: a named pipe or /dev/stdin carries telegrams too.
        # lexists: a symlink loop exists (and fails to open as one), though exists() says it does not.
        if path.is_dir() or not os.path.lexists(path):
            raise MeterDataError(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}")
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rb") as handle:
                yield from _file_chunks(handle)
        except (OSError, EOFError) as exc:  # unreadable, or a .gz file that is not gzip or cut short
            raise MeterDataError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from exc
    elif hasattr(source, "read"):
        yield from _file_chunks(source)
    elif isinstance(source, Iterable):
        for chunk in source:
            yield chunk.decode("latin-1") if isinstance(chunk, (bytes, bytearray)) else chunk
    else:
        raise MeterDataError(f"cannot read DSMR telegrams from {type(source).__name__}")


def _file_chunks(handle: Any, size: int = 1 << 16) -> Iterator[str]:
    while chunk := handle.read(size):
        yield chunk.decode("latin-1") if isinstance(chunk, (bytes, bytearray)) else chunk


def parse_tcp_source(url: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` -> (host, port); MeterDataError for anything else."""
    host, _, port = url[len("tcp://"):].rpartition(":") if url.startswith("tcp://") else ("", "", "")
    host = host.strip("[]")
    # isdigit alone took "²" (int() failed: "invalid literal for int()") and Arabic-Indic digits.
    if not host or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise MeterDataError(f"expected tcp://HOST:PORT with a port from 1 to 65535, got {url!r}")
    return host, int(port)


def check_address_source(text: str) -> bool:
    """Whether a source names a meter by address (``tcp://HOST:PORT``, ``serial:PORT``) rather
    than a file; MeterDataError for a malformed address ("tcp://:", "serial:"), which was refused
    only once the command ran."""
    if text.startswith("tcp://"):
        parse_tcp_source(text)
        return True
    if text.startswith("serial:"):
        if not text[len("serial:"):].strip():  # pyserial's "could not open port : ... No such file: ''"
            raise MeterDataError(f"expected serial:PORT, e.g. serial:/dev/ttyUSB0, got {text!r}")
        return True
    return False


def _tcp_chunks(url: str, timeout: float) -> Iterator[str]:
    address = parse_tcp_source(url)
    try:
        conn = socket.create_connection(address, timeout=timeout)
    except OSError as exc:  # the OS's reason, without "[Errno 111]", as for files
        raise MeterDataError(f"cannot connect to {url}: {exc.strerror or exc}") from exc
    except UnicodeError:  # the idna codec's: a lone surrogate, an empty or 64-character label
        raise MeterDataError(f"cannot connect to {url!r}: {address[0]!r} is not a host name") from None
    with conn:
        while True:
            try:
                data = conn.recv(1 << 14)
            except TimeoutError:
                raise MeterDataError(f"{url}: no data for {timeout} s") from None
            except OSError as exc:  # a reset: it was a bare ConnectionResetError, not a meter's error
                raise MeterDataError(f"{url}: the connection broke: {exc.strerror or exc}") from None
            if not data:
                return
            yield data.decode("latin-1")


def _serial_chunks(port: str, timeout: float, baudrate: int | None) -> Iterator[str]:
    import serial  # pyserial; imported here so file-only users need no serial stack

    # DSMR 4/5: 115200 8N1. DSMR 2.2/3 meters need baudrate=9600 (7E1 is decoded by
    # masking the parity bit below, so one setting reads both).
    try:
        conn = serial.serial_for_url(port, baudrate=baudrate or 115200, timeout=timeout)
    except (serial.SerialException, ValueError) as exc:
        raise MeterDataError(f"cannot open serial port {port}: {exc}") from exc
    with conn:
        while True:
            data = conn.read(max(1, conn.in_waiting or 1))
            if not data:
                return  # read timeout: the meter went quiet
            yield bytes(b & 0x7F for b in data).decode("ascii")


def read_dsmr_stream(
    source: Any,
    *,
    chunk_size: int = 10_000,
    errors: str = "skip",
    stats: DSMRStats | None = None,
    variant: str | None = None,
    meter_id: str | None = None,
    clock: Callable[[int], datetime] | None = None,
    progress: bool | tqdm | None = None,
    timeout: float = 30.0,
    baudrate: int | None = None,
    skip: int = 0,
    flush: bool = False,
) -> Iterator[pd.DataFrame]:
    """Canonical readings in frames of up to ``chunk_size`` rows, in bounded memory.

    ``clock(index)`` times telegrams that carry no timestamp (DSMR 2.2/3, Q3D);
    live sources default to the time of arrival. The first ``skip`` telegrams are
    framed but not parsed (a reader resuming a file where it stopped). With ``flush``, the
    rows completed by each received chunk are yielded before the next read (a live reader
    then stores everything it received before it waits again).
    """
    if errors not in ("skip", "raise"):
        raise ValueError("errors must be 'skip' or 'raise'")
    stats = stats if stats is not None else DSMRStats()
    live = isinstance(source, str) and source.startswith(("tcp://", "serial:"))
    if clock is None and live:
        clock = _arrival_clock
    bar = progress if isinstance(progress, tqdm) else tqdm(
        unit=" telegrams", disable=True if progress is None else not progress, mininterval=0.5)
    framer = TelegramFramer()
    rows: list[tuple[Any, ...]] = []
    pseudonyms: dict[str, str] = {}
    try:
        for n, chunk in enumerate(iter_source(source, timeout=timeout, baudrate=baudrate)):
            if n == 0 and chunk.startswith("\xdb"):
                # 0xDB opens a DLMS general-global-cipher frame (Sagemcom T210-D-r, Luxembourg MSN).
                raise MeterDataError("encrypted DLMS telegrams are not supported; decrypt them first")
            for item in framer.feed(chunk):
                if item[0] < skip:
                    stats.telegrams += 1
                    continue
                row = _row(item, stats, errors, variant, clock, pseudonyms, meter_id)
                bar.update(1)
                if row is not None:
                    rows.append(row)
                    if len(rows) >= chunk_size:
                        yield _frame(rows)
                        rows = []
            if flush and rows:
                yield _frame(rows)
                rows = []
        # The rows of complete telegrams go out before the input's cut-off end is counted, so
        # a reader that stops here resumes at that last, partial telegram (a file still growing).
        if rows:
            yield _frame(rows)
        for item in framer.close():
            if item[0] < skip:
                stats.telegrams += 1
                continue
            _row(item, stats, errors, variant, clock, pseudonyms, meter_id)
    finally:
        if not isinstance(progress, tqdm):
            bar.close()


def read_dsmr(source: Any, *, errors: str = "raise", stats: DSMRStats | None = None,
              **options: Any) -> pd.DataFrame:
    """All telegrams of ``source`` as one canonical readings frame; the first bad one raises."""
    frames = list(read_dsmr_stream(source, errors=errors, stats=stats, **options))
    if not frames:
        return empty_readings()
    return pd.concat(frames) if len(frames) > 1 else frames[0]


def _arrival_clock(_index: int) -> datetime:
    return datetime.now(UTC)


def _row(item: tuple[int, str, str | None], stats: DSMRStats, errors: str, variant: str | None,
         clock: Callable[[int], datetime] | None, pseudonyms: dict[str, str],
         meter_id: str | None) -> tuple[Any, ...] | None:
    index, telegram, problem = item
    stats.telegrams += 1
    try:
        if problem is not None:
            raise TelegramError(problem, index=index)
        fields = parse_telegram(telegram, index, variant=variant)
        if fields["timestamp"] is None:
            if clock is None:
                raise TelegramError(f"DSMR {fields['variant']} telegrams {NO_TIMESTAMP}; pass clock=",
                                    index=index)
            fields["timestamp"] = clock(index)
    except TelegramError as exc:
        if errors == "raise":
            raise
        stats._skip(exc)
        return None
    stats.parsed += 1
    name = fields["variant"]
    stats.variants[name] = stats.variants.get(name, 0) + 1
    flag = fields["flag"]
    if flag and flag != stats._last_flag:
        if stats._last_flag:
            stats.dst_changes.append((pd.Timestamp(fields["timestamp"]), flag))
        stats._last_flag = flag
    raw = fields["raw_id"]
    pseudonym = meter_id or pseudonyms.get(raw) or pseudonyms.setdefault(raw, pseudonymize_meter_id(raw))
    return (fields["timestamp"], *(fields[c] for c in _ROW_FIELDS), fields["gas_timestamp"],
            pseudonym, "dsmr-" + name)


def _frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    columns = list(zip(*rows, strict=True))
    data = {name: [float("nan") if v is None else v for v in columns[i + 1]]
            for i, name in enumerate(_ROW_FIELDS)}
    gas_ts = [pd.NaT if v is None else v for v in columns[len(_ROW_FIELDS) + 1]]
    return make_readings(list(columns[0]), {**data, "gas_timestamp": gas_ts},
                         meter_id=list(columns[-2]), source=list(columns[-1]))
