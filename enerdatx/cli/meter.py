"""``enerdatx meter``: read meter data into canonical readings, or make synthetic ones."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from enerdatx.bench.limits import count
from enerdatx.errors import MeterChoiceError, MeterDataError
from enerdatx.files import atomic_output, parse_file
from enerdatx.meter import (
    HOUSEHOLD_TYPES,
    DSMRStats,
    clean_readings,
    read_csv,
    read_dsmr,
    read_oehu,
    render_telegrams,
    synthetic_household,
    write_csv,
)
from enerdatx.meter.csvfiles import utc_text
from enerdatx.meter.dsmr import NO_TIMESTAMP, check_address_source
from enerdatx.meter.resample import utc_timestamp
from enerdatx.meter.schema import FIRST_DAY, LAST_DAY, POWER_COLUMNS, REGISTER_COLUMNS, meter_choice
from enerdatx.meter.synthetic import MAX_DAYS, check_location
from enerdatx.meter.telegrams import VARIANTS, WITHOUT_GAS


def configure(meter: argparse.ArgumentParser, argv: Sequence[str] | None) -> None:
    """Build ``meter read`` and ``meter synth``."""
    inner = meter.add_subparsers(dest="meter_command", metavar="ACTION", required=True)

    read = inner.add_parser("read", help="print or write the canonical readings of a file")
    read.add_argument("file", type=_source, help="a file; for dsmr also tcp://HOST:PORT or serial:PORT")
    read.add_argument("--format", required=True, choices=("dsmr", "oehu", "csv"))
    out = read.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per reading")
    out.add_argument("--out", type=parse_file, help="write generic CSV here (exact values; stdout rounds them to "
                                              "the meter's resolution)")
    read.add_argument("--device", help="the meter to read when the file holds several: OEHU deviceId, "
                                       "London LCLid, generic CSV meter_id")
    read.add_argument("--progress", action="store_true", help="show a progress bar (dsmr)")
    read.add_argument("--start", type=_utc_start, metavar="ISO-8601",
                      help="dsmr: the time of the first telegram, for telegrams without a timestamp "
                           "(DSMR 2.2, 3, Q3D); a time without a zone is UTC")
    read.add_argument("--interval", type=_telegram_interval, metavar="SECONDS",
                      help=f"dsmr: seconds between telegrams without a timestamp (with --start), "
                           f"{MIN_INTERVAL:g} to {MAX_INTERVAL:g}")
    read.set_defaults(func=_read)

    synth = inner.add_parser("synth", help="write a synthetic household as CSV or P1 telegrams")
    synth.add_argument("--seed", type=int, default=1, help="the same seed and options give the same data (default 1)")
    synth.add_argument("--start", default="2026-01-01", help="date of the first reading (default 2026-01-01)")
    synth.add_argument("--days", type=count(1, MAX_DAYS), default=31, help=f"days of readings, 1 to {MAX_DAYS} (default 31)")
    synth.add_argument("--resolution", default="15min", help="time between readings, dividing a day: "
                                                             "1s, 10s, 15min, 1h... (default 15min)")
    synth.add_argument("--household-type", default="family", choices=sorted(HOUSEHOLD_TYPES),
                       help="the household's consumption profile (default family)")
    synth.add_argument("--location", default="0000", type=_location, help="a label such as a postcode; households at other "
                                                          "locations get other data (default 0000)")
    synth.add_argument("--pv", action="store_true", help="the household has solar panels (it exports too)")
    synth.add_argument("--gas", action="store_true", help="the meter also reads a gas meter")
    synth.add_argument("--telegrams", choices=VARIANTS, help="write P1 telegrams of this variant instead of CSV")
    synth.add_argument("--out", type=parse_file, required=True, help="the file to write (replaced only once complete)")
    synth.set_defaults(func=_synth)


# Shown on stdout, values are rounded to a DSMR meter's resolution: registers 0.001 kWh, gas
# 0.001 m3, power 1 W (0.001 kW). A total summed from its tariffs and London's running sums
# carry float noise (0.1 + 0.2 = 0.30000000000000004) that no meter measured. --out and
# --json keep the exact floats: they are data for programs (the same numbers as read_csv and
# the Python API give), and a generic CSV may hold a finer resolution that rounding would lose.
DISPLAY_DECIMALS = {**dict.fromkeys(REGISTER_COLUMNS, 3), "gas_m3": 3, **dict.fromkeys(POWER_COLUMNS, 0)}

# From 2**53 on a float is a whole number, so rounding it is the identity; numpy's round
# multiplies by 10**decimals first, which turned 1e308 into inf on stdout.
WHOLE_FLOATS_FROM = 2.0 ** 53


def _display_rounded(readings: pd.DataFrame) -> pd.DataFrame:
    shown = readings.copy()
    for column, decimals in DISPLAY_DECIMALS.items():
        if column in shown:
            values = shown[column]
            small = values.abs() < WHOLE_FLOATS_FROM
            shown.loc[small, column] = values[small].round(decimals)
    return shown


def _source(text: str) -> str:
    """``meter read FILE``, as given (a Path would fold tcp:// into tcp:/); "" read the current
    directory, "unreadable CSV: : no such file" or ".: is a directory". An address is checked
    here too: "tcp://:" and "serial:" were refused only once the command ran."""
    try:
        is_address = check_address_source(text)
    except MeterDataError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not is_address:
        parse_file(text)
    return text


def _location(text: str) -> str:
    """``--location``: :func:`enerdatx.meter.synthetic.check_location`, its refusal argparse's usage error."""
    try:
        check_location(text)
    except MeterDataError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _utc_start(text: str) -> pd.Timestamp:
    try:
        return utc_timestamp(text)
    except MeterDataError:  # not a time, or one outside what readings can hold ("year 10000 is out of range")
        raise argparse.ArgumentTypeError(f"expected an ISO-8601 time from {FIRST_DAY} to {LAST_DAY}, "
                                         f"got {text!r}") from None


# Seconds between untimed telegrams. A meter sends one every 1 s (DSMR 5) to every 10 s
# (DSMR 2.2/3); a file of readings taken by hand or by a slow logger may be hourly or daily.
# Below 1 s every telegram would share its second with the next (1e-12 s timed them all
# alike: the whole file became duplicates); beyond a day it is no telegram interval, and
# 1e300 s overflowed pandas' Timedelta.
MIN_INTERVAL = 1.0
MAX_INTERVAL = 86_400.0


def _telegram_interval(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not (math.isfinite(seconds) and MIN_INTERVAL <= seconds <= MAX_INTERVAL):
        raise argparse.ArgumentTypeError(f"expected seconds between telegrams from {MIN_INTERVAL:g} "
                                         f"to {MAX_INTERVAL:g} (a day), got {text!r}")
    return seconds


def untimed_clock(start: pd.Timestamp, interval: float, timed: list[int]) -> Callable[[int], datetime]:
    """Time telegram ``index`` of a file at ``start + index * interval`` (its place in the file);
    ``timed`` gets the index of the first telegram it timed (one only: a file may hold millions)."""
    step = pd.Timedelta(seconds=interval)

    def clock(index: int) -> datetime:
        if not timed:
            timed.append(index)
        return (start + index * step).to_pydatetime()

    return clock


def _read(args: argparse.Namespace) -> int:
    # Options that do not go together are found after parsing: exit 1 with one line, as every
    # other refusal of a combination is (argparse's exit 2 is for one bad argument).
    if (args.start is None) != (args.interval is None):
        print("enerdatx: error: --start and --interval go together", file=sys.stderr)
        return 1
    if args.start is not None and args.format != "dsmr":
        print("enerdatx: error: --start/--interval time DSMR telegrams only", file=sys.stderr)
        return 1
    if args.progress and args.format != "dsmr":  # it was ignored, as --start once was
        print("enerdatx: error: --progress shows a bar for DSMR telegrams only", file=sys.stderr)
        return 1
    if args.device is not None and args.format == "dsmr":
        # A P1 port is one meter's: there is nothing to choose, and ignoring it would hide a mistake.
        print("enerdatx: error: --device chooses a meter in an OEHU or CSV file; DSMR telegrams are one "
              "meter's", file=sys.stderr)
        return 1
    stats = DSMRStats()
    if args.format == "dsmr":
        timed_by_clock: list[int] = []  # whether --start/--interval timed any telegram
        clock = None if args.start is None else untimed_clock(args.start, args.interval, timed_by_clock)
        readings = read_dsmr(args.file, errors="skip", stats=stats, progress=args.progress or None, clock=clock)
        if clock is not None and not timed_by_clock and stats.parsed:
            # Silently ignored, they hid the mistake of a user who meant to shift the times.
            print(f"note: {args.file}: every telegram carries its own timestamp; --start and --interval "
                  "time only telegrams without one, and timed none", file=sys.stderr)
        untimed = [e for e in stats.errors if NO_TIMESTAMP in str(e)]
        if untimed and clock is None:
            print(f"enerdatx: error: {args.file}: {stats.skipped} telegram(s) carry no timestamp "
                  "(DSMR 2.2, 3 or Q3D); pass --start ISO-8601 --interval SECONDS to time them",
                  file=sys.stderr)
            return 1
        for error in stats.errors:
            print(f"skipped {error}", file=sys.stderr)
        if stats.skipped > len(stats.errors):
            print(f"... and {stats.skipped - len(stats.errors)} more", file=sys.stderr)
        print(f"{stats.parsed} telegrams read, {stats.skipped} skipped", file=sys.stderr)
    else:
        try:
            if args.format == "oehu":
                readings = read_oehu(args.file, device_id=args.device, sort=False)
            else:
                # In file order: clean_readings sorts, and reports a file that was not in time order.
                readings = read_csv(args.file, meter=args.device, sort=False)
        except MeterChoiceError as exc:  # its message names the Python keyword (meter=, device_id=)
            print(f"enerdatx: error: {args.file}: {meter_choice(exc, '--device')}", file=sys.stderr)
            return 1
    if len(readings) == 0:
        print(f"enerdatx: error: {args.file}: no readings could be read", file=sys.stderr)
        return 1
    # What is written is what the report describes: sorted, duplicates dropped, glitches blanked.
    readings, report = clean_readings(readings)
    if not report.ok:
        print("quality: " + json.dumps(report.to_dict()), file=sys.stderr)
    if args.out:
        write_csv(readings, args.out)
        return 0
    try:
        if args.json:
            _print_json(readings)
        else:
            write_csv(_display_rounded(readings), sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (say `head`) has seen enough; silence the flush at exit as Python's docs advise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _print_json(readings: pd.DataFrame) -> None:
    out = sys.stdout
    # The times as write_csv gives them: a fraction of a second is kept (strftime dropped it).
    shown = readings.assign(gas_timestamp=utc_text(readings["gas_timestamp"]))
    names = list(shown.columns)
    for stamp, row in zip(utc_text(readings.index), shown.itertuples(index=False), strict=True):
        record: dict[str, Any] = {"timestamp": stamp}
        for name, value in zip(names, row, strict=True):
            record[name] = _json_value(value)
        out.write(json.dumps(record) + "\n")


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _synth(args: argparse.Namespace) -> int:
    if args.gas and args.telegrams in WITHOUT_GAS:  # the gas was made, then left out without a word
        print(f"enerdatx: error: --gas: {args.telegrams} telegrams carry no gas register "
              f"(those of {', '.join(v for v in VARIANTS if v not in WITHOUT_GAS)} do)", file=sys.stderr)
        return 1
    frame = synthetic_household(seed=args.seed, start=args.start, days=args.days, resolution=args.resolution,
                                pv=args.pv, gas=args.gas, location=args.location,
                                household_type=args.household_type)
    if args.telegrams and frame.index[0] != frame.index[0].floor("s"):
        # A telegram's time is in whole seconds: every reading was written that much earlier.
        print(f"enerdatx: error: --start: P1 telegrams carry times in whole seconds, not {args.start!r}",
              file=sys.stderr)
        return 1
    if args.telegrams:
        with atomic_output(args.out, what="write the telegrams", devices=True) as out:
            out.writelines(telegram.encode("ascii") for telegram in render_telegrams(frame, args.telegrams))
    else:
        write_csv(frame, args.out)
    print(f"{len(frame)} readings -> {args.out}", file=sys.stderr)
    return 0
