"""CSV: London Smart Meters half-hourly files and the generic canonical CSV."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from enerdatx.errors import MeterChoiceError, ReadingsFormatError, StorageError
from enerdatx.meter import interval_consumption, london_meter_ids, read_csv, write_csv

KAGGLE = (
    "LCLid,tstp,energy(kWh/hh)\n"
    "MAC000002,2012-10-12 00:30:00.0000000,0.25\n"
    "MAC000002,2012-10-12 01:00:00.0000000,0.5\n"
    "MAC000002,2012-10-12 01:30:00.0000000,Null\n"
    "MAC000002,2012-10-12 02:00:00.0000000,0.125\n"
    "MAC000002,2012-10-12 02:30:00.0000000,0.125\n"
)
ORIGINAL = (
    "LCLid,stdorToU,DateTime,KWH/hh (per half hour) \n"
    "MAC000003,Std,2013-10-27 00:30:00.0000000, 0.100 \n"
    "MAC000003,Std,2013-10-27 01:00:00.0000000, 0.200 \n"
    "MAC000003,Std,2013-10-27 01:30:00.0000000, 0.300 \n"
    "MAC000003,Std,2013-10-27 01:00:00.0000000, 0.400 \n"
    "MAC000003,Std,2013-10-27 01:30:00.0000000, 0.500 \n"
    "MAC000003,Std,2013-10-27 02:00:00.0000000, 0.600 \n"
    "MAC000004,Std,2013-10-27 00:30:00.0000000, 9.000 \n"
)


def test_london_kaggle_layout_becomes_a_register() -> None:
    frame = read_csv(KAGGLE.encode())
    assert frame.index[0] == pd.Timestamp("2012-10-11T23:30:00Z")  # BST: 00:30 local
    assert set(frame["source"]) == {"csv-london"}
    amounts = interval_consumption(frame, "30min")["import_kwh"]
    # The Null half hour is unknown, and so is the one after it (their split is unknowable).
    assert amounts.tolist() == pytest.approx([0.25, 0.5, np.nan, np.nan, 0.125], nan_ok=True)


def test_london_original_layout_through_the_repeated_autumn_hour() -> None:
    assert london_meter_ids(ORIGINAL.encode()) == ["MAC000003", "MAC000004"]
    with pytest.raises(ReadingsFormatError, match="2 households"):
        read_csv(ORIGINAL.encode())
    frame = read_csv(ORIGINAL.encode(), meter="MAC000003")
    assert frame.index.is_unique and frame.index.is_monotonic_increasing
    amounts = interval_consumption(frame, "30min")["import_kwh"]
    assert amounts.tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert amounts.index[3] - amounts.index[1] == pd.Timedelta(hours=1)  # 01:00 BST, then 01:00 GMT


def test_generic_csv_round_trip(tmp_path, month_15min: pd.DataFrame) -> None:
    path = tmp_path / "readings.csv.gz"
    write_csv(month_15min, path)
    back = read_csv(path)
    pd.testing.assert_frame_equal(back, month_15min, check_freq=False, check_index_type=False,
                                  check_dtype=False)
    assert back.index.tz is not None


MALFORMED = [
    ("timestamp,import_kwh\n2026-01-01 00:00:00,1.0\n", "no UTC offset"),
    ("time,import_kwh\n2026-01-01T00:00:00Z,1.0\n", "needs a 'timestamp' column"),
    ("timestamp,kwh\n2026-01-01T00:00:00Z,1.0\n", "unknown columns"),
    # A spreadsheet's export in a Dutch locale: it was "generic CSV needs a 'timestamp' column".
    ("timestamp;import_kwh\n2026-01-01T00:00:00Z;1,0\n", "^unreadable CSV: its fields are separated by ';'; a readings "
                                                          "CSV separates them by commas$"),
    ("timestamp\timport_kwh\n2026-01-01T00:00:00Z\t1.0\n", "its fields are separated by '\\\\t'"),
    ("timestamp,import_kwh\n2026-01-01T00:00:00Z,lots\n", "bad value"),
    ("LCLid,when,energy(kWh/hh)\nA,2012-01-01 00:00,1\n", "no a time column|without a time column"),
    ("LCLid,tstp,energy(kWh/hh)\nA,2012-01-01 00:00,abc\n", "non-numeric energy"),
    # pandas took the longer first row's extra field for an index and shifted every value.
    ("timestamp,import_kwh\n2026-01-01T00:00:00Z,1.0,2\n", "row 2 has more fields than the header's 2"),
    ("LCLid,tstp,energy(kWh/hh)\nA,2012-01-01 00:00,0.1,x\n", "row 2 has more fields than the header's 3"),
    # dateutil guessed such a date (March or January?) and warned; an offset is not London time.
    ("LCLid,tstp,energy(kWh/hh)\nA,2012-01-01 00:00,1\nA,01/03/2012 00:00,1\n",
     "unreadable timestamp '01/03/2012 00:00' at row 3"),
    ("LCLid,tstp,energy(kWh/hh)\nA,2012-01-01 00:00,1\nA,2012-01-01 00:30+01:00,1\n",
     r"without a UTC offset, not '2012-01-01 00:30\+01:00' \(row 3\)"),
    # Names are stripped: "LCLid" twice made table["LCLid"] a frame, and .str an AttributeError.
    ("timestamp,import_kwh, import_kwh\n2026-01-01T00:00:00Z,1,2\n", "header names 'import_kwh' twice"),
    ("LCLid,tstp,\x1eLCLid,energy(kWh/hh)\nA,2012-01-01 00:00,B,1\n", "header names 'LCLid' twice"),
    # pandas 3 reads these in microseconds; mixed with nanosecond timestamps they overflowed later.
    ("timestamp,import_kwh\n0499-01-01T00:00:00Z,1.0\n", "must lie between 1677-09-22 and 2262-04-11"),
    ("timestamp,import_kwh\n9999-01-01T00:00:00Z,1.0\n", "must lie between 1677-09-22 and 2262-04-11"),
    # Only the reading's own time was checked: a gas time of 9999 was read, and storing the
    # readings (ReadingStore.add) then failed with a bare OverflowError.
    ("timestamp,gas_m3,gas_timestamp\n2026-01-01T00:00:00Z,1,9999-01-01T00:00:00Z\n",
     "gas timestamps must lie between 1677-09-22 and 2262-04-11, not 9999-01-01"),
    # pandas' words were "Time data garbage is not ISO8601 format. You might want to try: - passing `format`...".
    ("timestamp,gas_m3,gas_timestamp\n2026-01-01T00:00:00Z,1,\n2026-01-01T00:15:00Z,1,garbage\n",
     "^unreadable gas_timestamp 'garbage' at row 3$"),
    # Taken for UTC: a Dutch meter's local 01:00 became 01:00Z, an hour off.
    ("timestamp,gas_m3,gas_timestamp\n2026-01-01T00:00:00Z,1,2026-01-01T01:00:00\n",
     "^gas_timestamp '2026-01-01T01:00:00' has no UTC offset$"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_malformed_csv_is_a_format_error(text: str, message: str) -> None:
    with pytest.raises(ReadingsFormatError, match=message):
        read_csv(io.BytesIO(text.encode()))


@pytest.mark.parametrize("text", [text for text, _ in MALFORMED] + ["", "LCLid,tstp,energy(kWh/hh)\n"])
def test_a_malformed_csv_file_is_named_in_its_refusal(tmp_path, text: str) -> None:
    # Most refusals named no file: "generic CSV needs a 'timestamp' column", "unreadable CSV:
    # No columns to parse from file", "unknown columns ['kwh']".
    path = tmp_path / "readings.csv"
    path.write_text(text)
    with pytest.raises(ReadingsFormatError) as refused:
        read_csv(path)
    assert str(refused.value).startswith(f"{path}: ")


def test_a_missing_csv_file_is_named_once(tmp_path) -> None:
    path = tmp_path / "missing.csv"  # it was "unreadable CSV: PATH: no such file"
    with pytest.raises(ReadingsFormatError, match=f"^{re.escape(str(path))}: no such file$"):
        read_csv(path)


@pytest.mark.parametrize("kind", ["path", "bytes", "file"])
def test_a_file_cut_short_inside_its_last_row_is_refused(tmp_path: Path, month_15min: pd.DataFrame, kind: str) -> None:
    # pandas filled the cut row's missing fields with empty cells: its last value was read cut
    # short (export_kwh 3749.308 as 374), with exit 0.
    write_csv(month_15min.iloc[:10], tmp_path / "whole.csv")
    whole = (tmp_path / "whole.csv").read_bytes()
    last = whole[whole.rindex(b"\n", 0, len(whole) - 1) + 1 :]
    for data, ok in ((whole[: len(whole) - len(last) + 60], False), (whole[: len(whole) - len(last) + 25], False),
                     (whole[:-1], True), (whole, True)):
        (tmp_path / "cut.csv").write_bytes(data)
        source = {"path": tmp_path / "cut.csv", "bytes": data, "file": io.BytesIO(data)}[kind]
        if ok:
            assert len(read_csv(source)) == 10
        else:
            with pytest.raises(ReadingsFormatError, match="fewer fields than the header's 13 and no line end"):
                read_csv(source)


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "1e400", "nan", "NaN", "-3", "-0.001"])
@pytest.mark.parametrize("column", ["import_kwh", "gas_m3", "power_import_w"])
def test_generic_csv_refuses_values_no_register_can_hold(tmp_path, value: str, column: str) -> None:
    # They were read as inf/-inf/negative readings, and --json then printed Infinity (not JSON).
    path = tmp_path / "bad.csv"
    path.write_text(f"timestamp,{column}\n2026-01-01T00:00:00Z,1.0\n2026-01-01T00:15:00Z,{value}\n")
    message = f"{path}: bad value in generic CSV at row 3, column {column}: '{value}' is not a finite non-negative"
    with pytest.raises(ReadingsFormatError, match=re.escape(message)):
        read_csv(path)


def test_generic_csv_names_the_file_row_of_a_bad_value_of_one_meter() -> None:
    text = "timestamp,meter_id,import_kwh\n2026-01-01T00:00:00Z,a,1\n2026-01-01T00:00:00Z,b,lots\n"
    with pytest.raises(ReadingsFormatError, match="row 3, column import_kwh: 'lots' is not a number"):
        read_csv(text.encode(), meter="b")  # its first row, but the file's third
    assert read_csv(text.encode(), meter="a")["import_kwh"].tolist() == [1.0]


TWO_METERS = ("timestamp,meter_id,import_kwh\n2026-01-01T00:00:00Z,a,1.0\n2026-01-01T00:00:00Z,b,5.0\n"
              "2026-01-01T00:15:00Z,a,1.1\n2026-01-01T00:15:00Z,b,5.2\n")


def test_a_generic_csv_of_several_meters_needs_a_choice() -> None:
    # Their rows were mixed into one frame (and their readings at one time "conflicting duplicates").
    with pytest.raises(MeterChoiceError, match=r"2 meters in the file \(a, b\); choose one with meter=") as caught:
        read_csv(TWO_METERS.encode())
    assert caught.value.meters == ["a", "b"] and caught.value.wanted is None
    assert read_csv(TWO_METERS.encode(), meter="b")["import_kwh"].tolist() == [5.0, 5.2]
    with pytest.raises(MeterChoiceError, match="no meter 'nope' in the file; it holds a, b") as caught:
        read_csv(TWO_METERS.encode(), meter="nope")
    assert caught.value.meters == ["a", "b"] and caught.value.wanted == "nope"


def test_an_unknown_london_household_names_those_in_the_file() -> None:
    with pytest.raises(MeterChoiceError, match="no household 'MAC9' in the file; it holds MAC000003, MAC000004"):
        read_csv(ORIGINAL.encode(), meter="MAC9")


def test_generic_csv_offsets_are_converted_to_utc() -> None:
    text = "timestamp,import_kwh,meter_id\n2026-07-01T02:00:00+02:00,1.5,m-x\n2026-07-01T00:15:00Z,1.6,m-x\n"
    frame = read_csv(io.BytesIO(text.encode()))
    assert list(frame.index) == [pd.Timestamp("2026-07-01T00:00:00Z"), pd.Timestamp("2026-07-01T00:15:00Z")]
    assert set(frame["meter_id"]) == {"m-x"} and set(frame["source"]) == {"csv"}


def test_a_write_that_fails_midway_keeps_the_file_it_would_replace(tmp_path, month_15min: pd.DataFrame,
                                                                   monkeypatch) -> None:
    path = tmp_path / "m.csv"
    write_csv(month_15min.iloc[:4], path)
    before = path.read_bytes()

    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    with pytest.raises(StorageError, match="cannot write the readings: the disk is full"):
        write_csv(month_15min, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.csv"]  # no temporary file left behind


@pytest.mark.parametrize(("energy", "why"), [("abc", "non-numeric"), ("inf", "impossible"), ("-0.5", "impossible")])
def test_a_bad_london_energy_is_named_by_its_row_in_the_file(tmp_path, energy: str, why: str) -> None:
    path = tmp_path / "london.csv"
    path.write_text("LCLid,tstp,energy(kWh/hh)\nMAC1,2012-10-12 00:30:00,0.25\nMAC2,2012-10-12 00:30:00,0.5\n"
                    f"MAC2,2012-10-12 01:00:00,{energy}\n")
    # Row 4 of the file, though it is MAC2's second row.
    with pytest.raises(ReadingsFormatError, match=f"^{re.escape(str(path))}: {why} energy '{re.escape(energy)}'"
                                                  " in London CSV at row 4$"):
        read_csv(path, meter="MAC2")
    assert read_csv(path, meter="MAC1")["import_kwh"].notna().all()


def test_readings_go_straight_to_a_device_or_a_pipe(month_15min: pd.DataFrame) -> None:
    # A device is written to, never replaced: /dev/stdout or a FIFO work as outputs, and
    # /dev/full says what a full disk says.
    write_csv(month_15min.iloc[:4], "/dev/null")
    with pytest.raises(StorageError, match="^/dev/full: cannot write the readings: the disk is full$"):
        write_csv(month_15min.iloc[:4], "/dev/full")


def test_an_open_file_behind_a_link_is_written_to_and_a_link_is_written_through(
    tmp_path: Path, month_15min: pd.DataFrame
) -> None:
    # /dev/stdout with stdout redirected to a file is a link to /proc/self/fd/1, itself a link to
    # the file: it was replaced, so the file got nothing (and, as root, /dev/stdout became a file).
    with open(tmp_path / "redirected.csv", "w+b") as redirected:
        (tmp_path / "stdout").symlink_to(f"/proc/self/fd/{redirected.fileno()}")
        write_csv(month_15min.iloc[:4], tmp_path / "stdout")
        assert (tmp_path / "stdout").is_symlink()
        redirected.seek(0)
        assert redirected.read().startswith(b"timestamp,")
    # A link to a file: the file it names is replaced, and the link stays (it became a file).
    (tmp_path / "data.csv").write_text("old")
    (tmp_path / "current.csv").symlink_to("data.csv")
    write_csv(month_15min.iloc[:4], tmp_path / "current.csv")
    assert (tmp_path / "current.csv").is_symlink() and len(read_csv(tmp_path / "data.csv")) == 4


def test_a_stream_with_no_line_end_is_refused_not_buffered(tmp_path: Path) -> None:
    # pandas buffers a line until its end: `meter read /dev/zero --format csv` grew past 2 GB.
    fifo = tmp_path / "zeros.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as out:
            for _ in range(4):
                out.write(bytes(1 << 20))  # four MiB and no newline

    writer = threading.Thread(target=write, daemon=True)  # a failed read must not leave it blocking the run
    writer.start()
    with pytest.raises(ReadingsFormatError, match="a line runs past 1,048,576 bytes: not a CSV file of readings"):
        read_csv(fifo)
    writer.join(10)


def test_readings_are_read_from_a_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "readings.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "w") as out:
            out.write("timestamp,import_kwh\n2026-01-01T00:00:00Z,1\n2026-01-01T00:15:00Z,1.5\n")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    assert list(read_csv(fifo)["import_kwh"]) == [1.0, 1.5]
    writer.join(10)


GENERIC = "timestamp,meter_id,import_kwh\n2026-01-01T00:00:00Z,m1,1.5\n2026-01-01T00:15:00Z,m1,1.75\n"


@pytest.mark.parametrize(("encoding", "why"), [
    ("utf-16", "is UTF-16 text (it begins with a UTF-16 byte-order mark)"),
    ("utf-16-be", "holds NUL bytes, which UTF-8 text never does (UTF-16 without a byte-order mark?)"),
    ("utf-32", "is UTF-32 text (it begins with a UTF-32 byte-order mark)"),
    ("latin-1", "is not UTF-8 text (byte 0xe9: "),
])
def test_a_csv_not_in_utf8_is_refused_by_name(tmp_path: Path, encoding: str, why: str) -> None:
    # Before: "unreadable CSV: 'utf-8' codec can't decode byte 0xff in position 0: invalid start
    # byte", naming no file and no encoding; UTF-16 without a mark was "the file was cut short".
    text = GENERIC.replace("m1", "café") if encoding == "latin-1" else GENERIC
    path = tmp_path / "readings.csv"
    path.write_bytes(text.encode(encoding))
    for source, name in ((path, str(path)), (str(path), str(path)), (path.read_bytes(), "the CSV"),
                         (io.BytesIO(path.read_bytes()), "the CSV")):
        with pytest.raises(ReadingsFormatError) as error:
            read_csv(source)
        assert str(error.value).startswith(f"{name} {why}"), error.value
        assert str(error.value).endswith(": a readings CSV is read as UTF-8; save it as UTF-8")
    assert len(read_csv(GENERIC.encode("utf-8-sig"))) == 2  # UTF-8's own mark is UTF-8


def test_a_utf16_csv_from_a_pipe_or_compressed_is_refused_by_name(tmp_path: Path) -> None:
    import gzip

    packed = tmp_path / "readings.csv.gz"
    packed.write_bytes(gzip.compress(GENERIC.encode("utf-16")))
    with pytest.raises(ReadingsFormatError, match=f"^{re.escape(str(packed))} is UTF-16 text"):
        read_csv(packed)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(GENERIC.encode("utf-16")))
    writer.start()
    try:
        with pytest.raises(ReadingsFormatError, match=f"^{re.escape(str(fifo))} is UTF-16 text"):
            read_csv(fifo)
    finally:
        writer.join(5)


def test_a_fraction_of_a_second_is_written_and_read_back(tmp_path) -> None:
    # strftime's %S dropped it: readings 0.5 s apart were written as one time twice, read back
    # as conflicting duplicates.
    source = tmp_path / "fractions.csv"
    source.write_text("timestamp,import_kwh,gas_m3,gas_timestamp\n2026-01-01T00:00:00.25Z,1,5,2026-01-01T00:00:00.25Z\n"
                      "2026-01-01T00:00:00.75Z,2,,\n2026-01-01T00:15:00Z,3,6,2026-01-01T00:15:00Z\n")
    readings = read_csv(source)
    written = tmp_path / "written.csv"
    write_csv(readings, written)
    lines = written.read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [
        "2026-01-01T00:00:00.250000Z", "2026-01-01T00:00:00.750000Z", "2026-01-01T00:15:00Z"]
    assert lines[1].endswith(",2026-01-01T00:00:00.250000Z") and lines[2].endswith(",")
    pd.testing.assert_frame_equal(read_csv(written), readings, check_index_type=False)
