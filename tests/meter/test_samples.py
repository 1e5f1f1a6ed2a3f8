"""The sample files in data/ are what data/README.md says, and the generator reproduces them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from enerdatx.meter import clean_readings, read_csv, read_oehu
from enerdatx.meter.samples import main as make_samples

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.mark.slow  # renders and gzips a week of 10-second telegrams
def test_generator_reproduces_the_shipped_files(tmp_path) -> None:
    make_samples(tmp_path)
    shipped = sorted(p.name for p in DATA.iterdir() if p.name != "README.md")
    assert sorted(p.name for p in tmp_path.iterdir()) == shipped
    for name in shipped:
        assert hashlib.sha256((tmp_path / name).read_bytes()).digest() == \
            hashlib.sha256((DATA / name).read_bytes()).digest(), name


@pytest.mark.parametrize("name", ["household-1-family-15min.csv.gz", "household-2-couple-15min.csv.gz",
                                  "household-3-single-15min.csv.gz"])
def test_household_csvs_are_clean_readings(name: str) -> None:
    frame = read_csv(DATA / name)
    _, report = clean_readings(frame)
    assert report.ok and len(frame) > 30 * 96


def test_oehu_and_london_samples() -> None:
    assert len(read_oehu(DATA / "household-4-retired-oehu.json")) == 14 * 24 + 1
    london = read_csv(DATA / "london-smart-meters-sample.csv.gz", meter="MAC900002")
    assert london["import_kwh"].notna().all() and london.index.is_unique
