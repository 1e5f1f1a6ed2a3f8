"""``enerdatx meter``: read meter data into canonical readings, or make synthetic ones."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from enerdatx.errors import ReadingsFormatError
from enerdatx.meter import (
    DSMRStats,
    clean_readings,
    read_csv,
    read_dsmr,
    read_oehu,
    render_telegrams,
    synthetic_household,
    write_csv,
)
from enerdatx.meter.telegrams import VARIANTS


def register(subparsers: Any) -> None:
    """Add ``meter read`` and ``meter synth``."""
    meter = subparsers.add_parser("meter", help="read meter data (DSMR P1, OEHU, CSV) or make synthetic data")
    inner = meter.add_subparsers(dest="meter_command", metavar="ACTION", required=True)

    read = inner.add_parser("read", help="print or write the canonical readings of a file")
    read.add_argument("file", help="a file; for dsmr also tcp://HOST:PORT or serial:PORT")
    read.add_argument("--format", required=True, choices=("dsmr", "oehu", "csv"))
    out = read.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per reading")
    out.add_argument("--out", type=Path, help="write generic CSV here")
    read.add_argument("--device", help="OEHU device id / London LCLid when the file holds several")
    read.add_argument("--progress", action="store_true", help="show a progress bar (dsmr)")
    read.set_defaults(func=_read)

    synth = inner.add_parser("synth", help="write a synthetic household as CSV or P1 telegrams")
    synth.add_argument("--seed", type=int, default=1)
    synth.add_argument("--start", default="2026-01-01")
    synth.add_argument("--days", type=int, default=31)
    synth.add_argument("--resolution", default="15min")
    synth.add_argument("--household-type", default="family")
    synth.add_argument("--location", default="0000")
    synth.add_argument("--pv", action="store_true")
    synth.add_argument("--gas", action="store_true")
    synth.add_argument("--telegrams", choices=VARIANTS, help="write P1 telegrams of this variant instead of CSV")
    synth.add_argument("--out", type=Path, required=True)
    synth.set_defaults(func=_synth)


def _read(args: argparse.Namespace) -> int:
    stats = DSMRStats()
    if args.format == "dsmr":
        readings = read_dsmr(args.file, errors="skip", stats=stats, progress=args.progress or None)
        for error in stats.errors:
            print(f"skipped {error}", file=sys.stderr)
        if stats.skipped > len(stats.errors):
            print(f"... and {stats.skipped - len(stats.errors)} more", file=sys.stderr)
        print(f"{stats.parsed} telegrams read, {stats.skipped} skipped", file=sys.stderr)
    elif args.format == "oehu":
        readings = read_oehu(args.file, device_id=args.device)
    else:
        readings = read_csv(args.file, meter=args.device)
    if readings.empty:
        raise ReadingsFormatError(f"{args.file}: no readings in it")
    _, report = clean_readings(readings)
    if not report.ok:
        print("quality: " + json.dumps(report.to_dict()), file=sys.stderr)
    if args.out:
        write_csv(readings, args.out)
        return 0
    try:
        if args.json:
            _print_json(readings)
        else:
            write_csv(readings, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (say `head`) has seen enough; silence the flush at exit as Python's docs advise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _print_json(readings: pd.DataFrame) -> None:
    out = sys.stdout
    names = list(readings.columns)
    for stamp, row in zip(readings.index, readings.itertuples(index=False), strict=True):
        record: dict[str, Any] = {"timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ")}
        for name, value in zip(names, row, strict=True):
            record[name] = _json_value(value)
        out.write(json.dumps(record) + "\n")


def _json_value(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _synth(args: argparse.Namespace) -> int:
    frame = synthetic_household(seed=args.seed, start=args.start, days=args.days, resolution=args.resolution,
                                pv=args.pv, gas=args.gas, location=args.location,
                                household_type=args.household_type)
    if args.telegrams:
        with open(args.out, "w", encoding="ascii", newline="") as out:
            out.writelines(render_telegrams(frame, args.telegrams))
    else:
        write_csv(frame, args.out)
    print(f"{len(frame)} readings -> {args.out}", file=sys.stderr)
    return 0
