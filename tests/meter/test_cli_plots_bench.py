"""The ``enerdatx meter`` command, the plot helpers and the ingest benchmark at a tiny size."""

from __future__ import annotations

import argparse
import json

import pandas as pd
import pytest

from enerdatx.bench import meter as meter_bench
from enerdatx.cli import main
from enerdatx.meter import read_csv, render_telegrams
from enerdatx.meter.plots import consumption_figure, daily_profile_heatmap, tariff_split_figure


@pytest.fixture
def p1_file(tmp_path, day_10s: pd.DataFrame):
    telegrams = list(render_telegrams(day_10s.iloc[:20]))
    telegrams[4] = telegrams[4].replace("*kWh", "*kWx", 1)
    path = tmp_path / "p1.txt"
    path.write_text("".join(telegrams), newline="")
    return path


def test_read_dsmr_as_json_reports_bad_telegrams_on_stderr(p1_file, day_10s, capsys) -> None:
    assert main(["meter", "read", str(p1_file), "--format", "dsmr", "--json"]) == 0
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 19
    assert records[0]["timestamp"] == "2026-06-01T10:00:00Z"
    assert records[0]["import_kwh"] == pytest.approx(day_10s["import_kwh"].iloc[0])
    assert records[0]["gas_timestamp"].endswith("Z") and records[0]["source"] == "dsmr-v5"
    assert "telegram #4: bad CRC" in err and "19 telegrams read, 1 skipped" in err


def test_read_to_csv_file(p1_file, tmp_path) -> None:
    out = tmp_path / "readings.csv"
    assert main(["meter", "read", str(p1_file), "--format", "dsmr", "--out", str(out)]) == 0
    assert len(read_csv(out)) == 19


def test_read_bad_file_is_one_line_error(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert main(["meter", "read", str(bad), "--format", "oehu"]) == 1
    assert "enerdatx: error:" in capsys.readouterr().err


def test_synth_then_read_csv_and_telegrams(tmp_path, capsys) -> None:
    csv_path, p1_path = tmp_path / "h.csv", tmp_path / "h.p1"
    assert main(["meter", "synth", "--days", "1", "--gas", "--out", str(csv_path)]) == 0
    assert main(["meter", "synth", "--days", "1", "--gas", "--telegrams", "v4", "--out", str(p1_path)]) == 0
    capsys.readouterr()
    assert main(["meter", "read", str(csv_path), "--format", "csv"]) == 0
    from_csv = capsys.readouterr().out
    assert from_csv.startswith("timestamp,meter_id,source,import_kwh")
    assert main(["meter", "read", str(p1_path), "--format", "dsmr", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 97


def test_plots(month_15min: pd.DataFrame) -> None:
    fig = consumption_figure(month_15min, "1h")
    assert [t.name for t in fig.data] == ["import kWh", "export kWh (negative)", "gas m3"]
    assert len(fig.data[0].x) == 31 * 24
    heat = daily_profile_heatmap(month_15min)
    assert heat.data[0].z.shape == (32, 24)  # local dates: Jan 1 01:00 to Feb 1 00:59
    split = tariff_split_figure(month_15min)
    assert {t.name for t in split.data} >= {"import tariff 1 (low)", "import tariff 2 (normal)"}


def test_benchmark_at_a_tiny_size(tmp_path) -> None:
    args = argparse.Namespace(telegrams=1200, baseline=100, chunk_size=500, file=tmp_path / "p1.txt",
                              progress=False)
    result = meter_bench.run(args)
    assert result["parsed"] == 1200 and result["skipped"] == 0
    assert result["intervals_15min"] == 13
    assert result["ingest_telegrams_per_s"] > 0 and result["baseline_dsmr_parser_telegrams_per_cpu_s"] > 0
    assert result["peak_rss_mb"] >= result["peak_rss_mb_before_ingest"]


@pytest.mark.parametrize(("where", "message"), [
    ("", "is a directory"),
    ("nowhere/p1.txt", "the directory {d}/nowhere does not exist"),
    ("p1.txt/x", "{d}/p1.txt is not a directory"),
])
def test_benchmark_file_is_checked_before_it_is_written(tmp_path, capsys, where: str, message: str) -> None:
    # The child process that writes the telegrams failed with its traceback.
    (tmp_path / "p1.txt").write_text("")
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "meter", "--file", str(tmp_path / where), "--telegrams", "100", "--baseline", "10"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith("enerdatx bench meter: error: argument --file: ")
    assert message.format(d=tmp_path) in err.splitlines()[-1]


def test_benchmark_refuses_fewer_telegrams_than_one_interval_at_parsing(tmp_path, capsys) -> None:
    assert meter_bench.MIN_TELEGRAMS == 91  # 0 s to 900 s at 10 s
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "meter", "--telegrams", "90", "--file", str(tmp_path / "p1.txt")])
    assert exit_.value.code == 2
    assert "argument --telegrams: expected a whole number from 91 to" in capsys.readouterr().err
    assert not (tmp_path / "p1.txt").exists()  # refused before generating it
    args = argparse.Namespace(telegrams=91, baseline=10, chunk_size=7, file=tmp_path / "p1.txt", progress=False)
    assert meter_bench.run(args)["intervals_15min"] == 1
