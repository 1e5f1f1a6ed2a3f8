"""Ingest DSMR P1 telegrams at 10-second rate: telegrams/s and peak memory, vs bare dsmr-parser.

The telegrams (a synthetic household, DSMR 5 with gas) are written to a file by a
child process, so the peak RSS measured here is the ingest's alone: frame by frame
through read_dsmr_stream, binned to 15-minute consumption by bin_stream. The
baseline is dsmr-parser's own TelegramParser (full V5 spec, its CRC) on the first
telegrams of the same file.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser
from tqdm.auto import tqdm

from enerdatx.bench.limits import count
from enerdatx.files import parse_file
from enerdatx.meter.dsmr import DSMRStats, TelegramFramer, read_dsmr_stream
from enerdatx.meter.resample import bin_stream
from enerdatx.meter.synthetic import synthetic_household
from enerdatx.meter.telegrams import render_telegrams

STEP_S = 10  # seconds between telegrams
INTERVAL = "15min"  # the bins of the ingest
# Binning needs one whole interval: telegrams on both of its edges, 0 s and 900 s (the synthetic
# household starts on one), so 91; fewer failed with "too few readings" after writing the file.
MIN_TELEGRAMS = pd.Timedelta(INTERVAL) // pd.Timedelta(seconds=STEP_S) + 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``enerdatx bench meter``."""
    parser.add_argument("--telegrams", type=count(MIN_TELEGRAMS, 10_000_000), default=100_000,
                        help=f"how many {STEP_S}-second telegrams (at least {MIN_TELEGRAMS}: one {INTERVAL} interval)")
    parser.add_argument("--baseline", type=count(1, 10_000_000), default=20_000, help="telegrams for the dsmr-parser baseline")
    parser.add_argument("--chunk-size", type=count(1, 1_000_000), default=10_000, help="readings per frame in the stream")
    parser.add_argument("--file", type=telegram_file, help="keep the telegram file here (default: a temp file)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")


def telegram_file(text: str) -> Path:
    """``--file``: a path the telegrams can be written to, checked before the child process writes
    them (which failed with its traceback on a directory or in a missing directory)."""
    path = parse_file(text)
    parent = path.parent
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a directory")
    if path.exists() and not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: not a regular file")
    if path.exists():
        # The benchmark writes its own telegrams there: a file named by mistake (a real meter
        # recording, read as "the file to ingest") was overwritten without a word.
        raise argparse.ArgumentTypeError(f"{text}: exists; --file names a new file for the generated telegrams")
    if not parent.exists():
        raise argparse.ArgumentTypeError(f"{text}: the directory {parent} does not exist")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {parent} is not a directory")
    if not os.access(path if path.exists() else parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text}: permission denied")
    return path


def _write_telegrams(path: str, count: int) -> None:
    days = -(-count * STEP_S // 86400)
    frame = synthetic_household(seed=7, start="2026-01-01", days=days, resolution=f"{STEP_S}s", pv=True,
                                gas=True)
    with open(path, "w", encoding="ascii", newline="") as out:
        for i, telegram in enumerate(render_telegrams(frame.iloc[:count], "v5")):
            out.write(telegram)
            if i % 100_000 == 0:
                out.flush()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Generate, then ingest and time; returns the figures."""
    tmp = None
    if args.file is None:
        tmp = tempfile.NamedTemporaryFile(prefix="p1-", suffix=".txt", delete=False)
        tmp.close()
        path = Path(tmp.name)
    else:
        path = args.file
    try:
        started = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(target=_write_telegrams,
                                                             args=(str(path), args.telegrams))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"telegram generation failed (exit {child.exitcode})")
        generate_s = time.perf_counter() - started
        baseline = _baseline(path, min(args.baseline, args.telegrams))
        rss_before = _peak_rss_mb()
        stats = DSMRStats()
        started, cpu_started = time.perf_counter(), time.process_time()
        bar = tqdm(total=args.telegrams, unit=" telegrams", disable=not args.progress, mininterval=1)
        frames = read_dsmr_stream(path, chunk_size=args.chunk_size, stats=stats, progress=bar)
        consumption = bin_stream(frames, INTERVAL)
        bar.close()
        ingest_s = time.perf_counter() - started
        ingest_cpu_s = time.process_time() - cpu_started
        return {
            "telegrams": args.telegrams,
            "file_mb": round(path.stat().st_size / 1e6, 1),
            "generate_s": round(generate_s, 1),
            "ingest_s": round(ingest_s, 1),
            "ingest_cpu_s": round(ingest_cpu_s, 1),
            "ingest_telegrams_per_s": round(stats.parsed / ingest_s),
            # Per CPU second: what the code costs, whatever else shares the machine.
            "ingest_telegrams_per_cpu_s": round(stats.parsed / ingest_cpu_s),
            "baseline_dsmr_parser_telegrams_per_cpu_s": round(baseline),
            "speedup_vs_baseline": round(stats.parsed / ingest_cpu_s / baseline, 2),
            "parsed": stats.parsed,
            "skipped": stats.skipped,
            "intervals_15min": len(consumption),
            "import_kwh_total": round(float(consumption["import_kwh"].sum()), 3),
            "peak_rss_mb_before_ingest": rss_before,
            "peak_rss_mb": _peak_rss_mb(),
            "chunk_size": args.chunk_size,
        }
    finally:
        if tmp is not None:
            os.unlink(path)


def _baseline(path: Path, count: int) -> float:
    """dsmr-parser alone (full V5 spec, its own CRC check): telegrams per CPU second."""
    framer = TelegramFramer()
    telegrams: list[str] = []
    with open(path, encoding="ascii", newline="") as handle:
        while len(telegrams) < count and (chunk := handle.read(1 << 16)):
            telegrams.extend(t for _, t, _ in framer.feed(chunk))
    telegrams = telegrams[:count]
    parser = TelegramParser(telegram_specifications.V5)
    started = time.process_time()
    for telegram in telegrams:
        parser.parse(telegram)
    return len(telegrams) / (time.process_time() - started)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


