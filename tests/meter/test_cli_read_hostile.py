"""``enerdatx meter read`` on hostile files: what it writes matches what it reports, and bad input is refused."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from enerdatx.cli import main
from enerdatx.meter import read_csv, render_telegrams


def _quality(err: str) -> dict:
    line = next(line for line in err.splitlines() if line.startswith("quality: "))
    return json.loads(line.removeprefix("quality: "))


def test_read_writes_the_cleaned_readings_it_reports(tmp_path, day_10s: pd.DataFrame, capsys) -> None:
    telegrams = list(render_telegrams(day_10s.iloc[:10]))
    shuffled = [telegrams[i] for i in (0, 1, 2, 2, 4, 3, 5, 6, 7, 8, 9, 9)]  # two copies, one swap
    path = tmp_path / "p1.txt"
    path.write_text("".join(shuffled), newline="")
    out = tmp_path / "out.csv"
    assert main(["meter", "read", str(path), "--format", "dsmr", "--out", str(out)]) == 0
    report = _quality(capsys.readouterr().err)
    assert report["n_readings"] == 12 and report["duplicates_dropped"] == 2 and report["unsorted"] is True
    written = read_csv(out)
    assert len(written) == 12 - report["duplicates_dropped"] == 10
    assert written.index.is_unique and written.index.is_monotonic_increasing
    assert list(written.index) == list(day_10s.index[:10])


def test_a_csv_or_oehu_file_out_of_time_order_is_reported_unsorted(tmp_path, capsys) -> None:
    # The readers sorted before clean_readings saw the rows, so the report always said "unsorted": false.
    csv_path = tmp_path / "unsorted.csv"
    csv_path.write_text("timestamp,import_kwh\n2026-01-01T00:15:00Z,1.2\n2026-01-01T00:00:00Z,1.0\n"
                        "2026-01-01T00:30:00Z,1.3\n")
    oehu_path = tmp_path / "unsorted.json"
    oehu_path.write_text(json.dumps([
        {"deviceId": "pi", "metadata": {"lastUpdate": 1_767_225_600_000 + 900_000 * i},
         "electricityReceived": {"total": 1 + i / 10}} for i in (1, 0, 2)]))
    for path, fmt in ((csv_path, "csv"), (oehu_path, "oehu")):
        out = tmp_path / f"{fmt}.csv"
        assert main(["meter", "read", str(path), "--format", fmt, "--out", str(out)]) == 0
        assert _quality(capsys.readouterr().err)["unsorted"] is True, fmt
        assert read_csv(out).index.is_monotonic_increasing


def _two_meter_files(directory) -> dict[str, object]:
    generic = directory / "two.csv"
    generic.write_text("timestamp,meter_id,import_kwh\n2026-01-01T00:00:00Z,a,1.0\n2026-01-01T00:00:00Z,b,5.0\n")
    london = directory / "london.csv"
    london.write_text("LCLid,tstp,energy(kWh/hh)\nMAC1,2012-10-12 00:30:00,0.25\nMAC2,2012-10-12 00:30:00,0.5\n")
    oehu = directory / "oehu.json"
    oehu.write_text(json.dumps([{"deviceId": d, "metadata": {"lastUpdate": 1_767_225_600_000},
                                 "electricityReceived": {"total": 1.0}} for d in ("pi-1", "pi-2")]))
    return {"csv": (generic, "a, b"), "london": (london, "MAC1, MAC2"), "oehu": (oehu, "pi-1, pi-2")}


@pytest.mark.parametrize("kind", ["csv", "london", "oehu"])
def test_several_meters_in_a_file_ask_for_device_and_list_them(kind: str, tmp_path, capsys) -> None:
    path, listed = _two_meter_files(tmp_path)[kind]
    fmt = "oehu" if kind == "oehu" else "csv"
    assert main(["meter", "read", str(path), "--format", fmt]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"enerdatx: error: {path}: holds 2 meters ({listed}); choose one with --device"
    assert main(["meter", "read", str(path), "--format", fmt, "--device", "nope"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"enerdatx: error: {path}: no meter 'nope' (--device); the file holds {listed}"


def test_stdout_rounds_to_the_meter_resolution_and_json_and_out_stay_exact(tmp_path, capsys) -> None:
    # import_kwh is summed from the tariffs: 0.1 + 0.2 printed as 0.30000000000000004.
    path = tmp_path / "tariffs.csv"
    path.write_text("timestamp,import_t1_kwh,import_t2_kwh,power_import_w\n"
                    "2026-01-01T00:00:00Z,0.1,0.2,1001.0000000000001\n2026-01-01T00:15:00Z,0.1,0.25,5\n")
    assert main(["meter", "read", str(path), "--format", "csv"]) == 0
    shown = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str)
    assert shown["import_kwh"].tolist() == ["0.3", "0.35"] and shown["power_import_w"].tolist() == ["1001.0", "5.0"]
    assert main(["meter", "read", str(path), "--format", "csv", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["import_kwh"] for r in records] == [0.1 + 0.2, 0.1 + 0.25]
    out = tmp_path / "out.csv"
    assert main(["meter", "read", str(path), "--format", "csv", "--out", str(out)]) == 0
    assert read_csv(out)["import_kwh"].tolist() == [0.1 + 0.2, 0.1 + 0.25]


def test_a_device_for_dsmr_telegrams_is_refused_not_ignored(tmp_path, day_10s: pd.DataFrame, capsys) -> None:
    path = tmp_path / "p1.txt"
    path.write_text("".join(render_telegrams(day_10s.iloc[:3])), newline="")
    assert main(["meter", "read", str(path), "--format", "dsmr", "--device", "pi-2"]) == 1
    captured = capsys.readouterr()
    assert "--device chooses a meter in an OEHU or CSV file" in captured.err and captured.out == ""
    assert main(["meter", "read", str(path), "--format", "dsmr"]) == 0


@pytest.mark.parametrize("format_", ["dsmr", "csv", "oehu"])
def test_a_symlink_loop_is_named_as_such_not_as_a_missing_file(tmp_path, capsys, format_: str) -> None:
    # exists() is false for a loop: DSMR and CSV said "no such file" of a file that is there.
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert main(["meter", "read", str(tmp_path / "a"), "--format", format_]) == 1
    err = capsys.readouterr().err
    assert "Too many levels of symbolic links" in err and "no such file" not in err


def test_stdout_keeps_huge_register_values_it_cannot_round(tmp_path, capsys) -> None:
    # Rounding to 0.001 kWh multiplied by 1000 first: 1e308 kWh came out as inf (the data was right).
    path = tmp_path / "huge.csv"
    path.write_text("timestamp,meter_id,import_kwh,power_import_w\n"
                    "2026-05-01T00:00:00Z,m1,1e308,1.7976931348623157e308\n"
                    "2026-05-01T00:15:00Z,m1,12.34567,250.6\n")
    assert main(["meter", "read", str(path), "--format", "csv"]) == 0
    shown = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(shown["import_kwh"]) == [1e308, 12.346]
    assert list(shown["power_import_w"]) == [1.7976931348623157e308, 251.0]


@pytest.mark.parametrize(("words", "option"), [
    (["read", "", "--format", "csv"], "file"),
    (["read", " ", "--format", "dsmr"], "file"),
    (["read", "{d}/s.csv", "--format", "csv", "--out", ""], "--out"),
    (["synth", "--days", "1", "--out", ""], "--out"),
])
def test_an_empty_path_is_a_usage_error(tmp_path, capsys, words: list[str], option: str) -> None:
    # The OS takes "" for the current directory: "unreadable CSV: : no such file", ".: is a directory"
    # and ".: cannot write the readings: is a directory".
    (tmp_path / "s.csv").write_text("timestamp,import_kwh\n2026-01-01T00:00:00Z,1\n")
    with pytest.raises(SystemExit) as exit_:
        main(["meter", *[word.replace("{d}", str(tmp_path)) for word in words]])
    assert exit_.value.code == 2
    assert f"argument {option}: expected a file path, got '" in capsys.readouterr().err.splitlines()[-1]


@pytest.mark.parametrize(("source", "message"), [
    # Refused only once the command ran (exit 1); "²" passed str.isdigit and int() failed on it.
    ("tcp://:", "expected tcp://HOST:PORT with a port from 1 to 65535, got 'tcp://:'"),
    ("tcp://127.0.0.1:99999", "expected tcp://HOST:PORT with a port from 1 to 65535, got 'tcp://127.0.0.1:99999'"),
    ("tcp://meter:²", "expected tcp://HOST:PORT with a port from 1 to 65535, got 'tcp://meter:²'"),
    ("serial:", "expected serial:PORT, e.g. serial:/dev/ttyUSB0, got 'serial:'"),
    ("serial: ", "expected serial:PORT, e.g. serial:/dev/ttyUSB0, got 'serial: '"),
])
def test_a_meter_address_that_names_no_meter_is_a_usage_error(capsys, source: str, message: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["meter", "read", source, "--format", "dsmr"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"enerdatx meter read: error: argument file: {message}"


def test_json_keeps_a_fraction_of_a_second(tmp_path, capsys) -> None:
    # Both readings were printed at 00:00:00Z.
    path = tmp_path / "fractions.csv"
    path.write_text("timestamp,import_kwh\n2026-01-01T00:00:00.25Z,1\n2026-01-01T00:00:00.75Z,2\n")
    assert main(["meter", "read", str(path), "--format", "csv", "--json"]) == 0
    stamps = [json.loads(line)["timestamp"] for line in capsys.readouterr().out.splitlines()]
    assert stamps == ["2026-01-01T00:00:00.250000Z", "2026-01-01T00:00:00.750000Z"]


@pytest.mark.parametrize("format_", ["csv", "oehu"])
def test_progress_for_a_format_without_a_bar_is_refused(tmp_path, capsys, format_: str) -> None:
    # It was ignored without a word, where --start and --device for the wrong format are refused.
    path = tmp_path / "s.csv"
    path.write_text("timestamp,import_kwh\n2026-01-01T00:00:00Z,1\n")
    assert main(["meter", "read", str(path), "--format", format_, "--progress"]) == 1
    assert capsys.readouterr().err == "enerdatx: error: --progress shows a bar for DSMR telegrams only\n"
