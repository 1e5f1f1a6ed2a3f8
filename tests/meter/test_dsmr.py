"""DSMR P1: every variant round-trips, every bad telegram is named, streams skip and count."""

from __future__ import annotations

import os
import socket
import threading
import tty

import numpy as np
import pandas as pd
import pytest
from dsmr_parser import telegram_specifications
from dsmr_parser.exceptions import InvalidChecksumError
from dsmr_parser.parsers import TelegramParser

from enerdatx.errors import MeterDataError, TelegramError
from enerdatx.meter import (
    DSMRStats,
    detect_variant,
    parse_telegram,
    read_dsmr,
    read_dsmr_stream,
    synthetic_household,
)
from enerdatx.meter.dsmr import parse_tcp_source
from enerdatx.meter.telegrams import VARIANTS, crc16_arc, render_telegram, render_telegrams

from .conftest import recrc

READING = {
    "timestamp": pd.Timestamp("2026-01-15T12:00:10Z"),
    "import_t1_kwh": 1234.567, "import_t2_kwh": 2345.678, "export_t1_kwh": 12.5, "export_t2_kwh": 33.25,
    "power_import_w": 1234.0, "power_export_w": 0.0,
    "gas_m3": 456.789, "gas_timestamp": pd.Timestamp("2026-01-15T12:00:00Z"),
}
WITH_TARIFFS = {"v2.2", "v3", "v4", "v5", "fluvius", "smarty", "iskra_ie", "eon_hungary"}
WITH_GAS = {"v2.2", "v3", "v4", "v5", "fluvius", "smarty"}
WITH_TIME = set(VARIANTS) - {"v2.2", "v3", "q3d"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_is_detected_and_read_back(variant: str) -> None:
    telegram = render_telegram(READING, variant)
    assert detect_variant(telegram) == variant
    fields = parse_telegram(telegram)
    assert fields["import_kwh"] == pytest.approx(3580.245)
    assert fields["export_kwh"] == pytest.approx(45.75)
    assert fields["power_import_w"] == pytest.approx(1234.0)
    if variant in WITH_TARIFFS:
        assert fields["import_t1_kwh"] == pytest.approx(1234.567)
        assert fields["export_t2_kwh"] == pytest.approx(33.25)
    if variant in WITH_TIME:
        assert fields["timestamp"] == READING["timestamp"]
    else:
        assert fields["timestamp"] is None
    if variant in WITH_GAS:
        assert fields["gas_m3"] == pytest.approx(456.789)
        assert pd.Timestamp(fields["gas_timestamp"]) == READING["gas_timestamp"]
    else:
        assert fields["gas_m3"] is None


@pytest.mark.parametrize("variant", ["v4", "v5", "fluvius", "smarty", "sweden", "eon_hungary"])
def test_our_crc_is_the_one_dsmr_parser_checks(variant: str) -> None:
    telegram = render_telegram(READING, variant)
    body = telegram[: telegram.rindex("!") + 1]
    assert crc16_arc(body.encode("ascii")) == TelegramParser.crc16(body)
    spec = {"v4": "V4", "v5": "V5", "fluvius": "BELGIUM_FLUVIUS", "smarty": "LUXEMBOURG_SMARTY",
            "sweden": "SWEDEN", "eon_hungary": "EON_HUNGARY"}[variant]
    TelegramParser(getattr(telegram_specifications, spec)).validate_checksum(telegram)
    with pytest.raises(InvalidChecksumError):
        TelegramParser.validate_checksum(telegram.replace("0-0:1.0.0(26", "0-0:1.0.0(25"))


def test_gas_per_version_sits_where_the_version_puts_it() -> None:
    assert "0-1:24.3.0(" in render_telegram(READING, "v2.2")  # DSMR 2.2/3: 24.3.0 + value line
    assert "0-1:24.2.1(" in render_telegram(READING, "v4")  # DSMR 4: hourly gas reading
    assert "0-1:24.2.3(" in render_telegram(READING, "fluvius")  # Belgium: not temperature corrected
    v5 = render_telegram(READING, "v5")
    # A water meter (M-Bus device type 7) on channel 2 must not be taken for gas.
    water = v5.replace("0-1:24.1.0(003)", "0-2:24.1.0(007)\r\n0-2:24.2.1(260115130000W)(00099.000*m3)"
                       "\r\n0-1:24.1.0(003)")
    assert parse_telegram(recrc(water))["gas_m3"] == pytest.approx(456.789)


def test_bad_crc_names_the_telegram(day_10s: pd.DataFrame) -> None:
    telegrams = list(render_telegrams(day_10s.iloc[:5]))
    telegrams[3] = telegrams[3].replace("1-0:1.7.0(", "1-0:1.7.0(1", 1)
    with pytest.raises(TelegramError, match=r"telegram #3: bad CRC") as info:
        read_dsmr("".join(telegrams))
    assert info.value.index == 3


def test_a_register_given_twice_is_a_telegram_error(day_10s: pd.DataFrame) -> None:
    # dsmr-parser kept the second: 1-0:1.8.1 of 1.000 after the meter's own was read as the register.
    telegrams = list(render_telegrams(day_10s.iloc[:3]))
    line = next(line for line in telegrams[1].splitlines() if line.startswith("1-0:1.8.1("))
    telegrams[1] = recrc(telegrams[1].replace(line, f"{line}\r\n1-0:1.8.1(000001.000*kWh)", 1))
    with pytest.raises(TelegramError, match=r"^telegram #1: 1-0:1.8.1 appears twice"):
        read_dsmr("".join(telegrams))
    assert len(read_dsmr("".join(telegrams), errors="skip")) == 2


def test_truncated_telegrams_are_named(day_10s: pd.DataFrame) -> None:
    telegrams = list(render_telegrams(day_10s.iloc[:4]))
    cut = telegrams[1][: len(telegrams[1]) // 2]
    with pytest.raises(TelegramError, match=r"#1: truncated") as info:
        read_dsmr(telegrams[0] + cut + telegrams[2])
    assert info.value.index == 1
    with pytest.raises(TelegramError, match=r"#2: truncated: the input ends"):
        read_dsmr(telegrams[0] + telegrams[1] + cut)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("*kWh)", "*m3)", "ELECTRICITY_USED_TARIFF_1 in 'm3'"),
    ("*kW)", "*V)", "CURRENT_ELECTRICITY_USAGE in 'V'"),
    ("*m3)", "*kWh)", "gas reading in 'kWh'"),
])
def test_a_unit_the_obis_code_does_not_allow_is_an_error(old: str, new: str, message: str) -> None:
    telegram = recrc(render_telegram(READING, "v5").replace(old, new, 1))
    with pytest.raises(TelegramError, match=message):
        parse_telegram(telegram, 7)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("(001234.567*kWh)", "(inf*kWh)", "ELECTRICITY_USED_TARIFF_1 Infinity is not a finite non-negative"),
    ("(001234.567*kWh)", "(1e400*kWh)", "ELECTRICITY_USED_TARIFF_1 1E[+]400 is not"),
    ("(001234.567*kWh)", "(-01234.567*kWh)", "ELECTRICITY_USED_TARIFF_1 -1234.567 is not"),
    ("(001234.567*kWh)", "(nan*kWh)", "ELECTRICITY_USED_TARIFF_1 NaN is not"),
    ("(01.234*kW)", "(-1.234*kW)", "CURRENT_ELECTRICITY_USAGE -1.234 is not"),
    ("(00456.789*m3)", "(-0456.789*m3)", "gas reading -456.789 is not"),
])
def test_an_impossible_value_is_an_error_as_in_csv_and_oehu(old: str, new: str, message: str) -> None:
    # Read as numbers: an infinite register made every consumption after it infinite, and
    # `meter read --json` printed Infinity, which no JSON reader takes.
    telegram = render_telegram(READING, "v5")
    assert old in telegram
    with pytest.raises(TelegramError, match=message):
        parse_telegram(recrc(telegram.replace(old, new, 1)), 7)


def test_unreadable_timestamp_and_missing_registers() -> None:
    telegram = render_telegram(READING, "v5")
    stamp = telegram[telegram.index("0-0:1.0.0("):].split("\r\n", 1)[0]
    with pytest.raises(TelegramError, match="unreadable timestamp"):
        parse_telegram(recrc(telegram.replace(stamp, "0-0:1.0.0(261399250000W)")))
    old = render_telegram(READING, "v3")  # no CRC to notice lost lines: the registers must be there
    stripped = "".join(line for line in old.splitlines(keepends=True) if ":1.8." not in line and ":2.8." not in line)
    with pytest.raises(TelegramError, match="no energy register"):
        parse_telegram(stripped)


def test_checksummed_version_without_crc_is_rejected() -> None:
    telegram = render_telegram(READING, "v5")
    bare = telegram[: telegram.rindex("!") + 1] + "\r\n"
    with pytest.raises(TelegramError, match="without its CRC"):
        parse_telegram(bare)


def test_a_stream_skips_and_counts_bad_telegrams(day_10s: pd.DataFrame) -> None:
    telegrams = list(render_telegrams(day_10s.iloc[:30]))
    telegrams[5] = telegrams[5].replace("*kWh", "*kWx", 1)  # bad CRC
    telegrams[9] = telegrams[9][:100]  # truncated
    telegrams[20] = recrc(telegrams[20].replace("*kW)", "*A)", 1))  # wrong unit
    stats = DSMRStats()
    frames = list(read_dsmr_stream("garbage from mid-telegram\r\n" + "".join(telegrams), chunk_size=8,
                                   stats=stats))
    assert [len(f) for f in frames] == [8, 8, 8, 3]
    assert (stats.telegrams, stats.parsed, stats.skipped) == (30, 27, 3)
    assert [e.index for e in stats.errors] == [5, 9, 20]
    readings = pd.concat(frames)
    assert readings.index.is_monotonic_increasing
    assert day_10s.index[5] not in readings.index


def test_readings_match_the_household_exactly(day_10s: pd.DataFrame) -> None:
    readings = read_dsmr("".join(render_telegrams(day_10s)))
    assert readings.index.equals(day_10s.index)
    for column in ("import_kwh", "import_t1_kwh", "export_t2_kwh", "gas_m3", "power_import_w"):
        np.testing.assert_allclose(readings[column], day_10s[column], atol=1e-9)
    assert (readings["gas_timestamp"] == day_10s["gas_timestamp"]).all()
    assert set(readings["source"]) == {"dsmr-v5"}
    assert readings["meter_id"].iloc[0].startswith("m-")
    assert "4530303434" not in readings["meter_id"].iloc[0]  # the equipment id stays out


def test_dst_flag_resolves_the_repeated_autumn_hour() -> None:
    # 2026-10-25: 02:00-03:00 local happens twice, first in summer time (S), then winter (W).
    utc = pd.date_range("2026-10-24T23:50:00Z", "2026-10-25T01:10:00Z", freq="10min")
    frame = pd.DataFrame({"import_t1_kwh": np.linspace(100, 101, len(utc)), "import_t2_kwh": 0.0}, index=utc)
    text = "".join(render_telegram({"timestamp": t, **row}, "v5") for t, row in frame.iterrows())
    assert "(261025021000S)" in text and "(261025021000W)" in text
    stats = DSMRStats()
    readings = read_dsmr(text, stats=stats)
    assert readings.index.equals(utc.rename("timestamp"))
    assert readings.index.is_unique
    assert stats.dst_changes == [(pd.Timestamp("2026-10-25T01:00:00Z"), "W")]


def test_irish_meters_print_dublin_time() -> None:
    summer = dict(READING, timestamp=pd.Timestamp("2026-07-01T12:00:00Z"))
    telegram = render_telegram(summer, "iskra_ie")
    assert "(260701130000S)" in telegram  # IST = UTC+1
    assert parse_telegram(telegram)["timestamp"] == summer["timestamp"]


def test_encrypted_telegrams_are_refused_clearly() -> None:
    with pytest.raises(MeterDataError, match="encrypted DLMS"):
        read_dsmr(bytes.fromhex("db08534147670000000182010e") + b"\x00" * 32)


def test_telegrams_without_a_clock_need_one() -> None:
    text = render_telegram(READING, "v3") * 3
    with pytest.raises(TelegramError, match="carry no timestamp"):
        read_dsmr(text)
    start = pd.Timestamp("2026-01-01T00:00:00Z")
    readings = read_dsmr(text, clock=lambda i: start + pd.Timedelta(seconds=10 * i))
    assert list(readings.index) == [start + pd.Timedelta(seconds=s) for s in (0, 10, 20)]


def test_files_gzip_and_missing_files(tmp_path, day_10s: pd.DataFrame) -> None:
    import gzip

    path = tmp_path / "p1.txt.gz"
    with gzip.open(path, "wt", newline="") as out:
        out.writelines(render_telegrams(day_10s.iloc[:50]))
    assert len(read_dsmr(path)) == 50
    with pytest.raises(MeterDataError, match="no such file"):
        read_dsmr(tmp_path / "absent.txt")
    with pytest.raises(MeterDataError, match="is a directory"):
        read_dsmr(tmp_path)


def test_telegrams_from_a_named_pipe(tmp_path, day_10s: pd.DataFrame) -> None:
    """Not only regular files: ``cat /dev/ttyUSB0 > fifo`` on the Pi, or /dev/stdin."""
    fifo = tmp_path / "p1.fifo"
    os.mkfifo(fifo)
    text = "".join(render_telegrams(day_10s.iloc[:30]))

    def write() -> None:
        with open(fifo, "w", newline="") as out:
            out.write(text)

    writer = threading.Thread(target=write, daemon=True)  # a failed read must not leave it blocking the run
    writer.start()
    try:
        assert len(read_dsmr(fifo)) == 30
    finally:
        writer.join(timeout=10)


def test_tcp_socket_like_ser2net(day_10s: pd.DataFrame) -> None:
    payload = "".join(render_telegrams(day_10s.iloc[:40])).encode("ascii")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            for i in range(0, len(payload), 777):  # arbitrary splits, as a serial bridge sends
                conn.sendall(payload[i:i + 777])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        readings = read_dsmr(f"tcp://127.0.0.1:{port}", timeout=5)
    finally:
        thread.join(5)
        server.close()
    assert readings.index.equals(day_10s.index[:40])


def test_tcp_connection_refused_is_a_meter_error() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.close()
    # Was "cannot connect to ...: [Errno 111] Connection refused".
    with pytest.raises(MeterDataError, match=f"^cannot connect to tcp://127.0.0.1:{port}: Connection refused$"):
        read_dsmr(f"tcp://127.0.0.1:{port}", timeout=2)


def test_a_meter_resetting_the_connection_is_a_meter_error() -> None:
    # Was a bare ConnectionResetError from recv.
    import struct

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def reset() -> None:
        conn, _ = server.accept()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
        conn.sendall(b"/ISk5")
        conn.close()

    thread = threading.Thread(target=reset, daemon=True)
    thread.start()
    try:
        # On a busy machine the reset can come before connect() has returned: a refusal to connect.
        url = f"tcp://127.0.0.1:{port}"
        with pytest.raises(MeterDataError, match=f"^({url}: the connection broke|cannot connect to {url}): Connection reset"):
            read_dsmr(f"tcp://127.0.0.1:{port}", timeout=2)
    finally:
        thread.join(5)
        server.close()


def test_serial_port_through_a_pty_pair() -> None:
    # A meter talks whether or not anyone listens, and pyserial flushes its input when it
    # opens the port, so the reader joins mid-stream: it must resynchronise on the next "/".
    household = synthetic_household(seed=5, start="2026-02-01", days=1, resolution="10s")
    payload = [t.encode("ascii") for t in render_telegrams(household)]
    master, slave = os.openpty()
    tty.setraw(slave)  # what the P1 cable gives: bytes, no line discipline
    os.set_blocking(master, False)
    stop = threading.Event()

    def meter() -> None:
        for telegram in payload:
            while telegram and not stop.is_set():
                try:
                    telegram = telegram[os.write(master, telegram):]
                except BlockingIOError:
                    stop.wait(0.005)  # the port's buffer is full: the reader is behind

    writer = threading.Thread(target=meter, daemon=True)
    writer.start()
    stats = DSMRStats()
    try:
        stream = read_dsmr_stream(f"serial:{os.ttyname(slave)}", chunk_size=20, timeout=5, stats=stats)
        first = next(stream)
        stream.close()
    finally:
        stop.set()
        writer.join(5)
        os.close(master)
        os.close(slave)
    positions = household.index.get_indexer(first.index)
    assert len(first) == 20 and positions[0] >= 0
    assert (np.diff(positions) == 1).all()
    np.testing.assert_allclose(first["import_kwh"], household["import_kwh"].iloc[positions])


@pytest.mark.parametrize("url", ["tcp://meter:²", "tcp://meter:٥٠٠١", "tcp://meter:"])
def test_a_tcp_port_is_ascii_digits(url: str) -> None:
    # "²" passed str.isdigit and int() failed: "invalid literal for int() with base 10".
    with pytest.raises(MeterDataError, match="^expected tcp://HOST:PORT with a port from 1 to 65535"):
        parse_tcp_source(url)


@pytest.mark.parametrize("frame", [None, [READING]])
def test_rendering_what_is_no_readings_frame_is_refused(frame) -> None:
    # None was an AttributeError ("'NoneType' object has no attribute 'index'").
    with pytest.raises(MeterDataError, match="^render_telegrams renders readings \\(a DataFrame\\), not "):
        next(render_telegrams(frame))
