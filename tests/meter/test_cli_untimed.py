"""``enerdatx meter read`` on every DSMR variant, with --start/--interval for the untimed ones."""

from __future__ import annotations

import pandas as pd
import pytest

from enerdatx.cli import main
from enerdatx.meter import read_csv
from enerdatx.meter.telegrams import VARIANTS

UNTIMED = {"v2.2", "v3", "q3d"}


@pytest.fixture(scope="module")
def telegram_files(tmp_path_factory) -> dict[str, object]:
    directory = tmp_path_factory.mktemp("variants")
    files = {}
    for variant in VARIANTS:
        path = directory / f"{variant}.txt"
        assert main(["meter", "synth", "--days", "1", "--telegrams", variant, "--out", str(path)]) == 0
        files[variant] = path
    return files


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_reads_from_a_file(variant, telegram_files, tmp_path, capsys) -> None:
    out = tmp_path / "out.csv"
    args = ["meter", "read", str(telegram_files[variant]), "--format", "dsmr", "--out", str(out)]
    if variant in UNTIMED:
        args += ["--start", "2026-01-01T00:00:00Z", "--interval", "900"]
    assert main(args) == 0
    readings = read_csv(out)
    assert len(readings) == 97
    assert (readings["source"] == f"dsmr-{variant}").all()
    if variant in UNTIMED:  # timed by their place in the file
        assert readings.index[0] == pd.Timestamp("2026-01-01T00:00:00Z")
        assert (readings.index[1:] - readings.index[:-1] == pd.Timedelta(minutes=15)).all()


@pytest.mark.parametrize("variant", sorted(UNTIMED))
def test_untimed_telegrams_without_a_start_are_refused(variant, telegram_files, capsys) -> None:
    assert main(["meter", "read", str(telegram_files[variant]), "--format", "dsmr"]) == 1
    err = capsys.readouterr().err
    assert "carry no timestamp" in err and "--start" in err and "--interval" in err


def test_start_is_read_in_its_own_zone(telegram_files, tmp_path) -> None:
    out = tmp_path / "out.csv"
    assert main(["meter", "read", str(telegram_files["v3"]), "--format", "dsmr", "--out", str(out),
                 "--start", "2026-01-01T01:00:00+01:00", "--interval", "10"]) == 0
    readings = read_csv(out)
    assert readings.index[0] == pd.Timestamp("2026-01-01T00:00:00Z")
    assert readings.index[1] == pd.Timestamp("2026-01-01T00:00:10Z")


def test_start_without_interval_is_refused_with_exit_1(telegram_files, capsys) -> None:
    assert main(["meter", "read", str(telegram_files["v3"]), "--format", "dsmr", "--start", "2026-01-01"]) == 1
    assert "go together" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0", "-5", "nan", "soon"])
def test_interval_must_be_positive(bad, telegram_files) -> None:
    with pytest.raises(SystemExit):
        main(["meter", "read", str(telegram_files["v3"]), "--format", "dsmr", "--start", "2026-01-01",
              "--interval", bad])


def test_nothing_read_exits_non_zero(tmp_path, capsys) -> None:
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("no telegram here\n")
    assert main(["meter", "read", str(garbage), "--format", "dsmr"]) == 1
    assert "no readings could be read" in capsys.readouterr().err


@pytest.mark.parametrize("interval", ["1e-12", "0.5", "86401", "1e300", "0", "-1", "nan", "inf", "-inf", "ten"])
def test_an_interval_out_of_range_is_a_usage_error(interval, telegram_files, capsys) -> None:
    # 1e-12 timed every telegram alike (all duplicates), 1e300 overflowed pandas' Timedelta.
    with pytest.raises(SystemExit) as exit_:
        main(["meter", "read", str(telegram_files["v3"]), "--format", "dsmr", "--start", "2026-01-01",
              f"--interval={interval}"])
    assert exit_.value.code == 2
    assert f"argument --interval: expected seconds between telegrams from 1 to 86400 (a day), got '{interval}'" \
        in capsys.readouterr().err


@pytest.mark.parametrize("interval", ["1", "86400"])
def test_the_interval_bounds_are_accepted(interval, telegram_files, tmp_path) -> None:
    out = tmp_path / "out.csv"
    assert main(["meter", "read", str(telegram_files["v3"]), "--format", "dsmr", "--out", str(out),
                 "--start", "2026-01-01T00:00:00Z", "--interval", interval]) == 0
    readings = read_csv(out)
    assert readings.index[1] - readings.index[0] == pd.Timedelta(seconds=float(interval))


@pytest.mark.parametrize("start", ["9999-12-31", "1600-01-01", "NaT", "ten"])
def test_a_start_no_reading_can_have_is_a_usage_error(start, telegram_files, capsys) -> None:
    # 9999-12-31 ended as "year 10000 is out of range" once the clock passed the year's end.
    with pytest.raises(SystemExit) as exit_:
        main(["meter", "read", str(telegram_files["v3"]), "--format", "dsmr", "--start", start, "--interval", "10"])
    assert exit_.value.code == 2
    assert f"argument --start: expected an ISO-8601 time from 1677-09-22 to 2262-04-11, got '{start}'" \
        in capsys.readouterr().err


def test_start_and_interval_for_timed_telegrams_say_they_timed_none(telegram_files, capsys) -> None:
    # Ignored without a word: a user who meant to shift the times got the meter's own.
    path = telegram_files["v5"]
    assert main(["meter", "read", str(path), "--format", "dsmr", "--start", "2030-01-01", "--interval", "10"]) == 0
    out, err = capsys.readouterr()
    assert f"note: {path}: every telegram carries its own timestamp; --start and --interval time only telegrams " \
           "without one, and timed none" in err.splitlines()
    assert "2030-" not in out
    assert main(["meter", "read", str(telegram_files["v3"]), "--format", "dsmr", "--start", "2030-01-01",
                 "--interval", "10"]) == 0
    assert "note:" not in capsys.readouterr().err
