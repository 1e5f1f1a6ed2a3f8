"""Regenerate the sample meter data in data/ (see data/README.md): ``python -m enerdatx.meter.samples data``."""

from __future__ import annotations

import gzip
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from enerdatx.meter import render_telegrams, synthetic_household, write_csv

HOUSEHOLDS = (  # name, seed, type, location, start, days, pv, gas
    ("household-1-family", 1, "family", "2628", "2026-01-01", 92, True, True),
    ("household-2-couple", 2, "couple", "3511", "2026-01-01", 92, False, True),
    ("household-3-single", 3, "single", "1012", "2026-05-01", 62, True, False),
)


def main(out: Path) -> None:
    """Write every sample file into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for name, seed, kind, location, start, days, pv, gas in HOUSEHOLDS:
        frame = synthetic_household(seed=seed, start=start, days=days, resolution="15min", pv=pv, gas=gas,
                                    location=location, household_type=kind)
        with _gzip_text(out / f"{name}-15min.csv.gz") as text:
            write_csv(frame, text)
    # A week of the family's P1 port: DSMR 5 telegrams every 10 seconds.
    fine = synthetic_household(seed=1, start="2026-01-12", days=7, resolution="10s", pv=True, gas=True,
                               location="2628", household_type="family")
    with _gzip_text(out / "household-1-family-10s-p1-v5.txt.gz") as p1:
        p1.writelines(render_telegrams(fine, "v5"))
    # A retired household as the OEHU API served it: a reading per hour for two weeks.
    hourly = synthetic_household(seed=4, start="2026-02-01", days=14, resolution="1h", gas=True,
                                 location="2611", household_type="retired")
    readings = [{
        "deviceId": "oehu-pi-0004",
        "metadata": {"lastUpdate": int(ts.timestamp()) * 1000},
        "electricityReceived": {"total": round(r.import_kwh, 3), "tariff1": r.import_t1_kwh,
                                "tariff2": r.import_t2_kwh},
        "electricityDelivered": {"total": round(r.export_kwh, 3), "tariff1": r.export_t1_kwh,
                                 "tariff2": r.export_t2_kwh},
        "gasReceived": r.gas_m3,
    } for ts, r in zip(hourly.index, hourly.itertuples(index=False), strict=True)]
    (out / "household-4-retired-oehu.json").write_text(json.dumps({"transactions": readings}, indent=1) + "\n")
    # Two households in the London Smart Meters layout: energy per half hour, local London time.
    rows = []
    for lclid, seed in (("MAC900001", 5), ("MAC900002", 6)):
        frame = synthetic_household(seed=seed, start="2026-03-01", days=31, resolution="30min",
                                    household_type="couple")
        energy = frame["import_kwh"].diff().iloc[1:]
        starts = (frame.index[:-1]).tz_convert("Europe/London").tz_localize(None)
        rows += [(lclid, f"{t:%Y-%m-%d %H:%M:%S}.0000000", f"{e:.3f}") for t, e in zip(starts, energy, strict=True)]
    london = pd.DataFrame(rows, columns=["LCLid", "tstp", "energy(kWh/hh)"])
    with _gzip_text(out / "london-smart-meters-sample.csv.gz") as text:
        london.to_csv(text, index=False, lineterminator="\n")


@contextmanager
def _gzip_text(path: Path) -> Iterator[io.TextIOWrapper]:
    """A gzip text file without a timestamp in its header, so regenerating gives the same bytes."""
    with gzip.GzipFile(path, "wb", mtime=0) as raw, io.TextIOWrapper(raw, encoding="ascii", newline="") as text:
        yield text


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("data"))
