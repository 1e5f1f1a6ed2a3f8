"""OEHU readings (the BlockLab 2019 smart-meter API): JSON files and the HTTP API.

A reading is ``{"deviceId", "metadata": {"lastUpdate": epoch ms}, "electricityReceived":
{"total", "tariff1", "tariff2"}, "electricityDelivered": {...}, "gasReceived"}``;
received = imported from the grid, delivered = exported, all cumulative (kWh, m3).
The public service is offline; ``OEHUClient`` talks to any server of that shape
(``GET /devices``, ``GET /transactions?deviceId=&limit=&offset=``).
"""

from __future__ import annotations

import codecs
import io
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import ijson
import pandas as pd
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from enerdatx.errors import MeterChoiceError, OEHUAPIError, ReadingsFormatError
from enerdatx.meter.schema import empty_readings, make_readings, meter_list, pseudonymize_meter_id

__all__ = ["read_oehu", "oehu_readings", "OEHUClient"]


def read_oehu(source: str | Path | bytes | Sequence[Mapping[str, Any]], *,
              device_id: str | None = None, sort: bool = True) -> pd.DataFrame:
    """Canonical readings from an OEHU JSON file, JSON text or already-decoded list.

    ``sort=False`` keeps the document's order, so that ``clean_readings`` can report it unsorted.

    Files and text are parsed as a stream (ijson), one reading at a time: memory stays near the
    size of the readings kept, not of the document, and no nesting depth can exhaust the stack.
    """
    if isinstance(source, (list, tuple)):
        return oehu_readings(_item_list(source), device_id=device_id, sort=sort)
    if isinstance(source, bytes):
        return _read_stream(io.BytesIO(source), device_id, sort, "")
    if isinstance(source, str) and source.lstrip().startswith(("[", "{")):
        return _read_stream(io.BytesIO(source.encode("utf-8", errors="replace")), device_id, sort, "")
    if not isinstance(source, (str, os.PathLike)):
        raise ReadingsFormatError(_SHAPE)
    path = Path(source)
    try:
        with path.open("rb") as stream:
            if os.fstat(stream.fileno()).st_size == 0 and path.is_file():
                raise ReadingsFormatError(f"{path}: the file is empty, not OEHU data")
            return _read_stream(stream, device_id, sort, f"{path}: ")
    except FileNotFoundError:
        raise ReadingsFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReadingsFormatError(f"{path}: is a directory, not an OEHU file") from None
    except OSError as exc:
        raise ReadingsFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None


# A reading nests three deep ({"electricityReceived": {"total": ...}}); far deeper is no reading.
MAX_DEPTH = 32
_SHAPE = "OEHU data must be a list of readings or {\"transactions\": [...]}"


def _read_stream(stream: IO[bytes], device_id: str | None, sort: bool, where: str) -> pd.DataFrame:
    """``where`` ("FILE: " or "") begins the messages of a document that is not OEHU data; a
    file's malformed reading named no file ("OEHU reading #0 is not an object")."""
    _skip_bom(stream)
    try:
        parsed = [_parse_item(item, i) for i, item in enumerate(_stream_items(stream))]
        return _frame(parsed, device_id, sort)
    except MeterChoiceError:  # the command line names the file and its option (--device)
        raise
    except ReadingsFormatError as exc:
        raise ReadingsFormatError(f"{where}{exc}") from None
    except ijson.JSONError as exc:
        raise ReadingsFormatError(f"{where}OEHU data is not JSON: {_json_error_text(exc)}") from None
    except ValueError as exc:  # an integer beyond Python's int-string conversion limit, say
        raise ReadingsFormatError(f"{where}OEHU data has an unreadable value: {str(exc)[:100]}") from None


def _skip_bom(stream: IO[bytes]) -> None:
    """Read past a UTF-8 byte-order mark (Windows editors write one; RFC 8259 lets a parser
    ignore it, and read_csv does): ijson refused such a file as "lexical error: invalid char"."""
    if hasattr(stream, "peek"):  # a file, or a pipe: nothing is consumed unless it is the mark
        if stream.peek(3)[:3] == codecs.BOM_UTF8:
            stream.read(3)
    elif stream.seekable():
        start = stream.tell()
        if stream.read(3) != codecs.BOM_UTF8:
            stream.seek(start)


def _json_error_text(exc: Exception) -> str:
    """The first line of ijson's message, as text: the C backend (yajl2_c) gives bytes when the
    input near the error is not UTF-8, which str() showed as b'lexical error: ...\\n ... \\xff'."""
    message = exc.args[0] if exc.args else ""
    if isinstance(message, bytes):
        message = message.decode("utf-8", errors="replace")
    lines = str(message).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def _stream_items(stream: IO[bytes]) -> Iterator[Any]:
    """The readings of a top-level list, or of a top-level object's "transactions" list, one by one.

    ijson's ``basic_parse`` events, built into objects here: its ``items`` keeps a dotted prefix
    per event, quadratic in the nesting depth (100,000 brackets take minutes and gigabytes).
    """
    events = ijson.basic_parse(stream, use_float=True)
    event, _ = next(events, (None, None))
    if event == "start_map":
        for event, value in events:
            if event == "map_key" and value == "transactions":
                event, _ = next(events, (None, None))
                break
            if event == "end_map":
                break
            if event == "map_key":
                _skip(events)
        else:
            raise ReadingsFormatError(_SHAPE)
        if event != "start_array":
            raise ReadingsFormatError(_SHAPE)
    elif event != "start_array":
        raise ReadingsFormatError(_SHAPE)
    while True:
        item = _build(events)
        if item is _END:
            for _ in events:  # the rest must still be JSON (trailing garbage raises)
                pass
            return
        yield item


_END = object()


def _build(events: Iterator[tuple[str, Any]]) -> Any:
    """The next value from ``events``, or _END at the end of the enclosing array."""
    stack: list[Any] = []
    keys: list[Any] = []
    for event, value in events:
        if event in ("start_map", "start_array"):
            if len(stack) >= MAX_DEPTH:
                raise ReadingsFormatError(f"OEHU data is nested deeper than {MAX_DEPTH}")
            stack.append({} if event == "start_map" else [])
            keys.append(None)
            continue
        if event == "map_key":
            keys[-1] = value
            continue
        if event in ("end_map", "end_array"):
            if not stack:
                return _END
            value = stack.pop()
            keys.pop()
        if not stack:
            return value
        if isinstance(stack[-1], list):
            stack[-1].append(value)
        else:
            stack[-1][keys[-1]] = value
    raise ReadingsFormatError("OEHU data ends early")


def _skip(events: Iterator[tuple[str, Any]]) -> None:
    depth = 0
    for event, _ in events:
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
        if depth == 0:
            return


def _item_list(document: Any) -> list[Any]:
    if isinstance(document, dict) and isinstance(document.get("transactions"), list):
        return document["transactions"]
    if isinstance(document, list):
        return document
    raise ReadingsFormatError(_SHAPE)


def oehu_readings(items: Sequence[Any], *, device_id: str | None = None, sort: bool = True) -> pd.DataFrame:
    """Canonical readings from decoded OEHU reading objects (one device), in time order unless not ``sort``."""
    return _frame([_parse_item(item, i) for i, item in enumerate(items)], device_id, sort)


_REGISTERS = ("import_kwh", "import_t1_kwh", "import_t2_kwh", "export_kwh", "export_t1_kwh",
              "export_t2_kwh", "gas_m3")


def _frame(parsed: list[tuple[Any, ...]], device_id: str | None, sort: bool) -> pd.DataFrame:
    # A reading is a tuple (device, epoch ms, the seven registers): a third of a dict's memory.
    devices = sorted({p[0] for p in parsed})
    if device_id is not None:
        parsed = [p for p in parsed if p[0] == device_id]
        if not parsed:
            raise MeterChoiceError(f"no readings of device {device_id!r}; the data holds {meter_list(devices)}",
                                   meters=devices, wanted=device_id)
    elif len(devices) > 1:
        raise MeterChoiceError(f"readings of {len(devices)} devices ({meter_list(devices)}); "
                               "choose one with device_id=", meters=devices)
    if not parsed:
        return empty_readings()
    if sort:
        parsed.sort(key=lambda p: p[1])
    stamps = pd.to_datetime([p[1] for p in parsed], unit="ms", utc=True)
    columns = {name: [p[2 + i] for p in parsed] for i, name in enumerate(_REGISTERS)}
    return make_readings(stamps, columns, meter_id=pseudonymize_meter_id(parsed[0][0]), source="oehu")


def _parse_item(item: Any, index: int) -> tuple[Any, ...]:
    if not isinstance(item, dict):
        raise ReadingsFormatError(f"OEHU reading #{index} is not an object")
    try:
        metadata = item.get("metadata")
        if "deviceId" not in item or not isinstance(metadata, dict) or "lastUpdate" not in metadata:
            # The KeyError's own words were a bare name: "OEHU reading #0 is malformed: 'metadata'".
            raise TypeError("a reading has a deviceId and a metadata.lastUpdate")
        device, stamp = item["deviceId"], metadata["lastUpdate"]
        if not isinstance(device, str) or not device:
            raise TypeError("deviceId must be a non-empty string")
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not 0 < stamp < 1e14:
            raise TypeError(f"metadata.lastUpdate must be epoch milliseconds, not {stamp!r}")
        received = item.get("electricityReceived") or {}
        delivered = item.get("electricityDelivered") or {}
        return (
            device,
            int(stamp),
            _number(received.get("total")),
            _number(received.get("tariff1")),
            _number(received.get("tariff2")),
            _number(delivered.get("total")),
            _number(delivered.get("tariff1")),
            _number(delivered.get("tariff2")),
            _number(item.get("gasReceived")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReadingsFormatError(f"OEHU reading #{index} is malformed: {exc}") from None


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        raise TypeError("a register cannot be a boolean")
    number = float(value)  # the Pi sent numbers, sometimes as strings
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"register value {value!r} is not a finite non-negative number")
    return number


class OEHUClient:
    """A ``requests`` client for an OEHU-shaped API, with timeouts, retries and paging."""

    def __init__(self, base_url: str = "http://127.0.0.1:8080", *, timeout: float = 10.0,
                 retries: int = 3, backoff: float = 0.5, page_size: int = 500,
                 session: requests.Session | None = None) -> None:
        if page_size < 1:
            raise ValueError("page_size must be positive")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.page_size = page_size
        self.session = session or requests.Session()
        retry = Retry(total=retries, connect=retries, read=retries, status=retries,
                      backoff_factor=backoff, status_forcelist=(429, 500, 502, 503, 504),
                      allowed_methods=frozenset({"GET"}), raise_on_status=False)
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))

    def __enter__(self) -> OEHUClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def devices(self) -> list[str]:
        """The device ids the server knows."""
        body = self._get("/devices", {})
        devices = body.get("devices") if isinstance(body, dict) else body
        if not isinstance(devices, list) or not all(isinstance(d, (str, dict)) for d in devices):
            raise OEHUAPIError("malformed /devices answer", url=self.base_url + "/devices")
        return [d if isinstance(d, str) else str(d.get("deviceId", "")) for d in devices]

    def transactions(self, device_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Raw reading objects of one device, fetched in pages of ``page_size``."""
        return list(self._pages(device_id, limit))

    def readings(self, device_id: str, limit: int | None = None) -> pd.DataFrame:
        """Canonical readings of one device."""
        try:
            return oehu_readings(self.transactions(device_id, limit), device_id=device_id)
        except ReadingsFormatError as exc:
            raise OEHUAPIError(f"malformed reading: {exc}", url=self.base_url + "/transactions") from exc

    def _pages(self, device_id: str, limit: int | None) -> Iterator[dict[str, Any]]:
        fetched = 0
        previous: list[Any] | None = None
        while limit is None or fetched < limit:
            want = self.page_size if limit is None else min(self.page_size, limit - fetched)
            page = _item_list_or_error(self._get("/transactions", {"deviceId": device_id, "limit": want,
                                                                     "offset": fetched}),
                                       self.base_url + "/transactions")
            if previous is not None and page and page == previous:
                raise OEHUAPIError("the server sent the same page twice (it ignores offset); "
                                   f"ask for at most {self.page_size} readings",
                                   url=self.base_url + "/transactions")
            yield from page
            fetched += len(page)
            if len(page) < want:
                return
            previous = page

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = self.base_url + path
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise OEHUAPIError(f"request failed: {exc.__class__.__name__}: {exc}", url=url) from exc
        if response.status_code != 200:
            raise OEHUAPIError(f"HTTP {response.status_code}: {response.text[:200]!r}", url=url,
                               status=response.status_code)
        try:
            return response.json()
        except ValueError as exc:
            raise OEHUAPIError(f"malformed JSON: {exc}", url=url, status=200) from exc


def _item_list_or_error(body: Any, url: str) -> list[Any]:
    try:
        return _item_list(body)
    except ReadingsFormatError as exc:
        raise OEHUAPIError(str(exc), url=url, status=200) from exc
