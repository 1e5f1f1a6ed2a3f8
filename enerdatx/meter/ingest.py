"""Continuous ingest: P1 telegrams or OEHU readings into the peer's readings database.

``ReadingStore`` keeps every reading a live peer has received in ``readings.sqlite``
(WAL), one transaction per batch together with the source's resume position, so a
``kill -9`` loses nothing that was committed and a restart picks up where it stopped:
a file is resumed at its next telegram, a live stream (TCP, serial) simply continues,
and a reading seen twice is stored once (the key is meter and time).
``follow_dsmr`` reads a source until told to stop, reconnecting when it drops;
``poll_oehu`` feeds OEHU readings to the same store.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from enerdatx.errors import MeterDataError
from enerdatx.files import closed_database
from enerdatx.meter.dsmr import DSMRStats, read_dsmr_stream
from enerdatx.meter.quality import QualityReport, clean_readings
from enerdatx.meter.schema import (
    FLOAT_COLUMNS,
    empty_readings,
    make_readings,
    validate_readings,
)

__all__ = ["ReadingStore", "follow_dsmr", "ingest_dsmr", "is_live_source", "poll_oehu"]

logger = logging.getLogger(__name__)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS readings (
    ts_us INTEGER NOT NULL,
    meter_id TEXT NOT NULL,
    source TEXT NOT NULL,
    {", ".join(f"{name} REAL" for name in FLOAT_COLUMNS)},
    gas_ts_us INTEGER,
    PRIMARY KEY (ts_us, meter_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS positions (
    source TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
"""
_INSERT = (f"INSERT OR IGNORE INTO readings (ts_us, meter_id, source, {', '.join(FLOAT_COLUMNS)}, gas_ts_us) "
           f"VALUES ({', '.join('?' * (len(FLOAT_COLUMNS) + 4))})")
_SELECT = f"SELECT ts_us, meter_id, source, {', '.join(FLOAT_COLUMNS)}, gas_ts_us FROM readings"


def is_live_source(source: Any) -> bool:
    """True for a stream that has no position to resume at (``tcp://``, ``serial:``, a named
    pipe or a character device such as /dev/stdin): what it gave once it never gives again, so
    nothing is skipped when it is opened anew."""
    if isinstance(source, str) and source.startswith(("tcp://", "serial:")):
        return True
    if not isinstance(source, (str, os.PathLike)):
        return False
    try:
        mode = os.stat(source).st_mode
    except (OSError, ValueError):  # absent (reading it says so), or a name with a NUL in it
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def _us(stamps: pd.DatetimeIndex | pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(stamps).as_unit("us").asi8


class ReadingStore:
    """The readings a peer ingested, in SQLite (WAL); safe to share between one writer and readers."""

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL survives a killed process; FULL also survives a power cut.
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'OFF'}")
        self._db.executescript(_SCHEMA)
        self._listeners: list[Callable[[int], object]] = []

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
            self._db = closed_database("readings store", self.path)

    def on_batch(self, callback: Callable[[int], object]) -> None:
        """Call ``callback(rows stored)`` after every committed batch (from the writer's thread)."""
        self._listeners.append(callback)

    def add(self, frame: pd.DataFrame, *, source: str, position: int | None = None) -> int:
        """Store a readings frame and the source's new position in one transaction; rows newly stored."""
        validate_readings(frame)
        gas_us = [None if pd.isna(t) else t.value // 1000 for t in frame["gas_timestamp"]]
        floats = [frame[name].to_numpy(dtype="float64") for name in FLOAT_COLUMNS]
        rows = [
            (int(ts), meter, src, *(None if np.isnan(col[i]) else float(col[i]) for col in floats), gas_us[i])
            for i, (ts, meter, src) in enumerate(zip(_us(frame.index), frame["meter_id"], frame["source"],
                                                     strict=True))
        ]
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(_INSERT, rows)
                stored = self._db.total_changes - before
                if position is not None:
                    self._db.execute("INSERT INTO positions (source, position) VALUES (?, ?) "
                                     "ON CONFLICT(source) DO UPDATE SET position = excluded.position",
                                     (source, position))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        for callback in self._listeners:
            callback(stored)
        return stored

    def position(self, source: str) -> int:
        """Where reading ``source`` stopped last time (telegrams consumed), 0 if never read."""
        with self._lock:
            row = self._db.execute("SELECT position FROM positions WHERE source = ?", (source,)).fetchone()
        return 0 if row is None else int(row[0])

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM readings").fetchone()[0])

    def latest(self) -> pd.Timestamp | None:
        """The time of the newest reading, or None if there is none."""
        with self._lock:
            row = self._db.execute("SELECT max(ts_us) FROM readings").fetchone()
        return None if row[0] is None else pd.Timestamp(row[0], unit="us", tz="UTC")

    def readings(self, start: Any = None, end: Any = None, *, last: int | None = None) -> pd.DataFrame:
        """Canonical readings with ``start <= time < end`` (either open), or the ``last`` N, oldest first."""
        where, args = [], []
        if start is not None:
            where.append("ts_us >= ?")
            args.append(int(_us(pd.DatetimeIndex([pd.Timestamp(start)]).tz_convert("UTC"))[0]))
        if end is not None:
            where.append("ts_us < ?")
            args.append(int(_us(pd.DatetimeIndex([pd.Timestamp(end)]).tz_convert("UTC"))[0]))
        query = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
        if last is not None:
            query = f"SELECT * FROM ({query} ORDER BY ts_us DESC LIMIT {int(last)})"
        with self._lock:
            rows = self._db.execute(query + " ORDER BY ts_us, meter_id", args).fetchall()
        if not rows:
            return empty_readings()
        columns = list(zip(*rows, strict=True))
        data: dict[str, Any] = {name: [np.nan if v is None else v for v in columns[3 + i]]
                                for i, name in enumerate(FLOAT_COLUMNS)}
        data["gas_timestamp"] = pd.to_datetime([pd.NaT if v is None else v for v in columns[-1]], unit="us",
                                               utc=True)
        return make_readings(pd.to_datetime(list(columns[0]), unit="us", utc=True), data,
                             meter_id=list(columns[1]), source=list(columns[2]))

    def quality(self, last: int = 8640) -> QualityReport:
        """The rolling quality report over the newest ``last`` readings (a day at 10 s by default)."""
        return clean_readings(self.readings(last=last))[1]


def ingest_dsmr(
    source: Any,
    store: ReadingStore,
    *,
    batch: int | None = None,
    clock: Callable[[int], datetime] | None = None,
    stop: threading.Event | None = None,
    timeout: float = 30.0,
    stats: DSMRStats | None = None,
) -> DSMRStats:
    """Read ``source`` to its end (or until ``stop``) into ``store``, resuming a file where it stopped.

    A live source commits what each read from it delivered (a telegram, at a meter's pace)
    before it reads again: what was received is kept even if the process is killed the
    next instant. A file commits every ``batch`` (1000) telegrams.
    """
    live = is_live_source(source)
    key = str(source)
    batch = batch or 1000
    stats = stats if stats is not None else DSMRStats()
    skip = 0 if live else store.position(key)
    # stats counts on across calls (follow_dsmr); a file's position counts from its start.
    before = stats.telegrams
    for frame in read_dsmr_stream(source, chunk_size=batch, errors="skip", stats=stats, clock=clock,
                                  timeout=timeout, skip=skip, flush=live):
        # Only complete telegrams are behind the position: one cut off at the end of a file
        # that is still being written is read again, whole, next time.
        store.add(frame, source=key, position=None if live else stats.telegrams - before)
        if stop is not None and stop.is_set():
            break
    return stats


def follow_dsmr(source: Any, store: ReadingStore, stop: threading.Event, *, retry: float = 1.0,
                timeout: float = 30.0, clock: Callable[[int], datetime] | None = None,
                max_retry: float = 60.0) -> DSMRStats:
    """Ingest a source until ``stop`` is set: a stream is reconnected after every drop or silence,
    a file is read again every ``retry`` seconds from where it stopped (as it grows).

    Failures in a row double the wait, up to ``max_retry`` seconds, so that a meter that is
    unplugged for a day is not knocked on every second; a read that works resets it.
    """
    stats = DSMRStats()
    wait = retry
    while not stop.is_set():
        try:
            ingest_dsmr(source, store, stop=stop, timeout=timeout, stats=stats, clock=clock)
            wait = retry
        except MeterDataError as exc:
            logger.warning("meter %s: %s; retrying in %s s", source, exc, wait)
            stop.wait(wait)
            wait = min(wait * 2, max(retry, max_retry))
            continue
        stop.wait(retry)
    return stats


def poll_oehu(client: Any, device_id: str, store: ReadingStore, stop: threading.Event, *,
              interval: float = 10.0, limit: int | None = 100) -> int:
    """Poll an OEHU API for ``device_id`` every ``interval`` s into ``store``; readings newly stored."""
    stored = 0
    key = f"oehu:{device_id}"
    while not stop.is_set():
        try:
            frame = client.readings(device_id, limit=limit)
            stored += store.add(frame, source=key)
        except MeterDataError as exc:
            logger.warning("OEHU %s: %s; retrying in %s s", device_id, exc, interval)
        stop.wait(interval)
    return stored
