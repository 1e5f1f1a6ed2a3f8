"""``enerdatx meter read`` on hostile files: what it writes matches what it reports, and bad input is refused."""

from __future__ import annotations

import json

import pandas as pd

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

