"""Continuous ingest into the readings database: resume, de-duplication, live TCP, quality."""

from __future__ import annotations

import os
import socket
import threading

import pandas as pd
import pytest

from enerdatx.meter import render_telegrams, synthetic_household
from enerdatx.meter.ingest import ReadingStore, follow_dsmr, ingest_dsmr


@pytest.fixture(scope="module")
def day() -> pd.DataFrame:
    return synthetic_household(seed=3, start="2026-03-01", days=1, resolution="15min", gas=True)


@pytest.fixture
def p1_file(tmp_path, day):
    path = tmp_path / "p1.txt"
    path.write_text("".join(render_telegrams(day, "v5")), encoding="ascii")
    return path


def test_a_file_is_stored_whole_and_reads_back_as_parsed(tmp_path, p1_file, day) -> None:
    store = ReadingStore(tmp_path / "readings.sqlite")
    stats = ingest_dsmr(p1_file, store)
    assert stats.parsed == len(day) == len(store)
    back = store.readings()
    assert list(back.index) == list(day.index)
    assert back["import_kwh"].to_numpy() == pytest.approx(day["import_kwh"].to_numpy(), abs=1e-3)
    assert back["gas_m3"].notna().all()
    assert store.position(str(p1_file)) == len(day)


def test_a_restart_resumes_a_file_at_its_next_telegram(tmp_path, p1_file, day) -> None:
    telegrams = list(render_telegrams(day, "v5"))
    p1_file.write_text("".join(telegrams[:40]), encoding="ascii")
    store = ReadingStore(tmp_path / "readings.sqlite")
    assert ingest_dsmr(p1_file, store).parsed == 40
    store.close()
    p1_file.write_text("".join(telegrams), encoding="ascii")  # the meter wrote more
    store = ReadingStore(tmp_path / "readings.sqlite")
    stats = ingest_dsmr(p1_file, store)
    assert stats.parsed == len(day) - 40  # the first 40 were not parsed again
    assert len(store) == len(day)


def test_a_named_pipe_is_a_stream_not_a_file_to_resume(tmp_path, day) -> None:
    # Resuming a pipe at the telegram a file would resume at dropped that many new telegrams.
    telegrams = list(render_telegrams(day, "v5"))
    fifo = tmp_path / "p1.fifo"
    os.mkfifo(fifo)
    store = ReadingStore(tmp_path / "readings.sqlite")
    for part in (telegrams[:40], telegrams[40:60]):
        writer = threading.Thread(target=fifo.write_text, args=("".join(part),), kwargs={"encoding": "ascii"},
                                  daemon=True)  # a failed read must not leave it blocking the run
        writer.start()
        try:
            assert ingest_dsmr(str(fifo), store).parsed == len(part)
        finally:
            writer.join(timeout=10)
    assert len(store) == 60 and store.position(str(fifo)) == 0


def test_a_reading_seen_twice_is_stored_once(tmp_path, day) -> None:
    store = ReadingStore(tmp_path / "readings.sqlite")
    assert store.add(day.iloc[:10], source="a") == 10
    assert store.add(day.iloc[5:20], source="b") == 10
    assert len(store) == 20


def test_range_and_latest(tmp_path, day) -> None:
    store = ReadingStore(tmp_path / "readings.sqlite")
    assert store.latest() is None and len(store.readings()) == 0
    store.add(day, source="x")
    assert store.latest() == day.index[-1]
    hour = store.readings("2026-03-01T01:00:00Z", "2026-03-01T02:00:00Z")
    assert len(hour) == 4 and hour.index[0] == pd.Timestamp("2026-03-01T01:00:00Z")
    assert list(store.readings(last=3).index) == list(day.index[-3:])


def test_rolling_quality_reports_a_gap(tmp_path, day) -> None:
    store = ReadingStore(tmp_path / "readings.sqlite")
    store.add(day.drop(day.index[30:40]), source="x")
    report = store.quality()
    assert len(report.gaps) == 1 and report.gaps[0].seconds == 11 * 900


def test_a_live_tcp_source_commits_each_telegram_before_reading_on(tmp_path, day) -> None:
    telegrams = list(render_telegrams(day.iloc[:20], "v5"))
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    store = ReadingStore(tmp_path / "readings.sqlite")
    counts: list[int] = []
    committed = threading.Event()
    store.on_batch(lambda n: (counts.append(n), committed.set()))
    stop = threading.Event()
    reader = threading.Thread(target=follow_dsmr, args=(f"tcp://127.0.0.1:{port}", store, stop),
                              kwargs={"retry": 0.05, "timeout": 5.0})
    reader.start()
    try:
        conn, _ = server.accept()
        with conn:
            for telegram in telegrams[:10]:  # at a meter's pace: each is stored before the next comes
                committed.clear()
                conn.sendall(telegram.encode("ascii"))
                assert committed.wait(5)
            conn.sendall("".join(telegrams[10:]).encode("ascii"))  # a burst: stored together
        # The second connection: the bridge came back; the reader reconnected by itself.
        conn, _ = server.accept()
        stop.set()
        conn.close()
    finally:
        stop.set()
        reader.join(10)
        server.close()
    assert len(store) == 20
    assert counts[:10] == [1] * 10 and sum(counts[10:]) == 10


def test_oehu_polling_feeds_the_same_store(tmp_path) -> None:
    from pathlib import Path

    from enerdatx.errors import OEHUAPIError
    from enerdatx.meter import read_oehu
    from enerdatx.meter.ingest import poll_oehu

    sample = read_oehu(Path(__file__).parents[2] / "data" / "household-4-retired-oehu.json")
    device = sample["meter_id"].iloc[0]
    stop = threading.Event()

    class Client:  # the OEHU API answers with a growing list, once with an error
        calls = 0

        def readings(self, device_id: str, limit: int | None = None) -> pd.DataFrame:
            assert device_id == device
            Client.calls += 1
            if Client.calls == 2:
                raise OEHUAPIError("503 from the API")
            if Client.calls == 4:
                stop.set()
            return sample.iloc[: 10 * Client.calls]

    store = ReadingStore(tmp_path / "readings.sqlite")
    stored = poll_oehu(Client(), device, store, stop, interval=0)
    assert Client.calls == 4
    assert stored == len(store) == 40
    assert list(store.readings().index) == list(sample.index[:40])


def test_a_growing_file_is_followed_and_a_cut_off_telegram_is_read_whole_later(tmp_path, p1_file, day) -> None:
    text = "".join(render_telegrams(day, "v5"))
    cut = text.index("/", len(text) // 2) + 40  # inside a telegram: the writer is mid-line
    p1_file.write_text(text[:cut], encoding="ascii")
    store = ReadingStore(tmp_path / "readings.sqlite")
    first = ingest_dsmr(p1_file, store)
    assert first.skipped == 1 and "truncated" in str(first.errors[0])
    half = len(store)
    with open(p1_file, "a", encoding="ascii") as out:
        out.write(text[cut:])
    second = ingest_dsmr(p1_file, store)
    assert second.skipped == 0 and second.parsed == len(day) - half
    assert len(store) == len(day)


def test_follow_reads_a_file_again_as_it_grows(tmp_path, p1_file, day) -> None:
    telegrams = list(render_telegrams(day, "v5"))
    p1_file.write_text("".join(telegrams[:30]), encoding="ascii")
    store = ReadingStore(tmp_path / "readings.sqlite")
    grown = threading.Event()
    stop = threading.Event()

    def on_batch(_n: int) -> None:
        if len(store) == 30 and not grown.is_set():
            with open(p1_file, "a", encoding="ascii") as out:
                out.write("".join(telegrams[30:]))
            grown.set()
        elif len(store) == len(day):
            stop.set()

    store.on_batch(on_batch)
    reader = threading.Thread(target=follow_dsmr, args=(p1_file, store, stop), kwargs={"retry": 0.01})
    reader.start()
    reader.join(20)
    stop.set()
    assert not reader.is_alive() and len(store) == len(day)


class _CountingStop:
    """A stop event that records each wait and is set after ``waits`` of them."""

    def __init__(self, waits: int) -> None:
        self.waits: list[float] = []
        self.limit = waits

    def is_set(self) -> bool:
        return len(self.waits) >= self.limit

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self.is_set()


def test_a_source_that_keeps_failing_is_retried_less_and_less_often(tmp_path) -> None:
    with socket.socket() as closed:  # a loopback port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    stop = _CountingStop(6)
    store = ReadingStore(tmp_path / "r.sqlite")
    try:
        follow_dsmr(f"tcp://127.0.0.1:{port}", store, stop, retry=1.0, max_retry=8.0)  # type: ignore[arg-type]
    finally:
        store.close()
    assert stop.waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_closed_reading_store_says_it_is_closed(tmp_path) -> None:
    # It was sqlite3.ProgrammingError "Cannot operate on a closed database.", naming no store.
    from enerdatx.errors import StorageError

    store = ReadingStore(tmp_path / "readings.sqlite", fsync=False)
    store.close()
    for call in (store.latest, store.readings):
        with pytest.raises(StorageError, match="readings.sqlite: cannot use the readings store: it is closed"):
            call()
    store.close()  # closing again changes nothing
