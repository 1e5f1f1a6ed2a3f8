"""Robustness figures: fuzzing, crashes, network faults, fraud under loss, floods, bad input.

Fuzzing and crash consistency, trades under network faults, fraud proofs under packet loss,
floods, and every entry point under bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from enerdatx.bench.crash import kill_loop
from enerdatx.bench.faults import PROFILES
from enerdatx.bench.limits import count
from enerdatx.bench.scenarios import faulty_trades, flood, fraud_detection_seconds
from enerdatx.files import atomic_output, parse_file

ROOT = Path(__file__).resolve().parent.parent.parent
PARTS = ("fuzz", "crash", "faults", "fraud", "flood", "entry")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``enerdatx bench robustness``."""
    parser.add_argument("--only", action="append", choices=PARTS, help="run only these parts (repeatable)")
    parser.add_argument("--fuzz-seconds", type=count(1, 86_400), default=10, help="atheris time per fuzz target")
    parser.add_argument("--kills", type=count(1, 10_000), default=50, help="SIGKILLs of the crash-consistency worker")
    parser.add_argument("--traders", type=count(1, 50), default=3, help="sellers and buyers per fault profile (n x n trades)")
    parser.add_argument("--fraud-runs", type=count(1, 1_000), default=5, help="forks timed under 20%% loss")
    parser.add_argument("--flood-packets", type=count(1, 10_000_000), default=20_000, help="hostile packets in the flood")
    parser.add_argument("--markdown", type=parse_file, help="also write the tables of docs/robustness.md here")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen parts and return their figures."""
    parts = args.only or PARTS
    progress = not args.no_progress
    if args.markdown:
        check_writable(args.markdown, "--markdown")  # before the run, not after it
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="enerdatx-robustness-") as scratch:
        base = Path(scratch)
        if "fuzz" in parts:
            result["fuzz"] = fuzz_figures(args.fuzz_seconds, progress=progress)
        if "crash" in parts:
            bar = tqdm(total=args.kills, desc="kills", disable=not progress, leave=False)
            report = kill_loop(base / "crash", args.kills, progress=lambda n: bar.update(1))
            bar.close()
            result["crash"] = report.as_dict()
        if "faults" in parts:
            result["faults"] = asyncio.run(_fault_figures(base / "faults", args.traders, progress))
        if "fraud" in parts:
            result["fraud"] = asyncio.run(_fraud_figures(base / "fraud", args.fraud_runs))
        if "flood" in parts:
            result["flood"] = asyncio.run(_flood_figures(base / "flood", args.flood_packets))
        if "entry" in parts:
            from enerdatx.bench.entry import entry_figures

            result["entry"] = entry_figures(base / "entry")
    if args.markdown:  # whole or not at all: a disk that fills midway keeps the file that was there
        with atomic_output(args.markdown, what="write the tables") as out:
            out.write(markdown(result).encode())
    return result


def check_writable(path: Path, option: str) -> None:
    """Raise ValueError unless ``path`` can be written (a file, in an existing directory we may write to).

    The file is opened for appending (nothing is truncated) and removed again if that made it.
    """
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a directory")
    existed = path.exists() or path.is_symlink()
    try:
        with open(path, "a"):
            pass
    except FileNotFoundError:
        raise ValueError(f"{option} {path}: no such directory {path.parent}") from None
    except NotADirectoryError:
        raise ValueError(f"{option} {path}: {path.parent} is not a directory") from None
    except OSError as exc:
        raise ValueError(f"{option} {path}: cannot write there ({exc.strerror or exc})") from None
    if not existed:
        path.unlink(missing_ok=True)


# --- fuzzing ----------------------------------------------------------------------------------


def fuzz_figures(seconds: int, *, progress: bool = False) -> dict[str, Any]:
    """Per target: atheris executions in ``seconds``, new crashers, saved crashers that now pass."""
    if not (ROOT / "fuzz" / "targets.py").exists():
        return {"skipped": "the fuzz/ directory of a source checkout is needed"}
    try:
        import atheris  # noqa: F401
    except ImportError:
        return {"skipped": "atheris is not installed (pip install -e .[test])"}
    sys.path.insert(0, str(ROOT))
    from fuzz.targets import TARGETS

    names = sorted(TARGETS)
    bar = tqdm(total=len(names), desc="fuzz targets", disable=not progress, leave=False)

    def one(name: str) -> tuple[str, dict[str, Any]]:
        figures = _fuzz_one(name, seconds)
        bar.update(1)
        return name, figures

    # The saved crashers, before (the fuzzers add new ones) and here, on this thread: the network
    # targets share one running peer, which only the thread that started it may drive and stop.
    saved = {name: _saved_crashers(name) for name in names}
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        figures = dict(pool.map(one, names))
    bar.close()
    try:
        for name in names:
            figures[name]["saved_crashers"] = len(saved[name])
            figures[name]["saved_crashers_fixed"] = sum(_passes(TARGETS[name], path) for path in saved[name])
    finally:
        if "fuzz.network" in sys.modules:
            sys.modules["fuzz.network"].close_harness()  # now, not at exit (when its loop has no executor)
    return figures


def _saved_crashers(name: str) -> list[Path]:
    crashers = ROOT / "fuzz" / "crashers" / name
    return sorted(crashers.glob("*")) if crashers.exists() else []


def _passes(target: Any, path: Path) -> bool:
    try:
        target(path.read_bytes())
    except Exception:  # noqa: BLE001 - a saved crasher that still crashes
        return False
    return True


def _fuzz_one(name: str, seconds: int) -> dict[str, Any]:
    before = set(_saved_crashers(name))
    run = subprocess.run(
        [sys.executable, "-m", "fuzz.run", name, "--", f"-max_total_time={seconds}", "-print_final_stats=1"],
        cwd=ROOT, capture_output=True, text=True, timeout=seconds + 300,
    )
    executions = re.findall(r"stat::number_of_executed_units:\s+(\d+)", run.stderr)
    new = sorted(set(_saved_crashers(name)) - before)
    return {"executions": int(executions[-1]) if executions else 0, "seconds": seconds,
            "new_crashers": [p.name for p in new]}


# --- faults, fraud, flood -------------------------------------------------------------------


async def _fault_figures(base: Path, traders: int, progress: bool) -> dict[str, Any]:
    runs: list[tuple[str, Any, dict[str, Any]]] = [(name, PROFILES[name], {}) for name in PROFILES]
    runs += [("restart_mid_trade", PROFILES["loss_20"], {"restart_seller_mid_trade": True}),
             ("partition_1s", PROFILES["none"], {"partition_seconds": 1.0})]
    figures = {}
    for index, (name, profile, extra) in enumerate(tqdm(runs, desc="fault profiles", disable=not progress, leave=False)):
        report = await faulty_trades(base / name, profile, sellers=traders, buyers=traders, seed=index, **extra)
        figures[name] = report.as_dict()
    return figures


async def _fraud_figures(base: Path, runs: int) -> dict[str, Any]:
    seconds = [await fraud_detection_seconds(base / str(seed), peers=20, loss=0.2, seed=seed) for seed in range(runs)]
    return {"peers": 20, "loss": 0.2, "runs": runs, "median_seconds": round(statistics.median(seconds), 3),
            "max_seconds": round(max(seconds), 3)}


async def _flood_figures(base: Path, packets: int) -> dict[str, Any]:
    baseline = await flood(base / "baseline", packets=0)
    flooded = await flood(base / "flood", packets=packets)
    return {**flooded, "baseline_peak_heap_mib": baseline["flood_peak_heap_mib"],
            "baseline_cpu_seconds": baseline["flood_cpu_seconds"]}


# --- the tables of docs/robustness.md ----------------------------------------------------------


def markdown(result: dict[str, Any]) -> str:
    """The figures as the markdown tables of docs/robustness.md."""
    out: list[str] = []
    if isinstance(result.get("fuzz"), dict) and "skipped" not in result["fuzz"]:
        out += ["| fuzz target | executions | seconds | new crashers | saved crashers (fixed) |",
                "| --- | ---: | ---: | ---: | ---: |"]
        for name, f in result["fuzz"].items():
            out.append(f"| `{name}` | {f['executions']:,} | {f['seconds']} | {len(f['new_crashers'])} | "
                       f"{f['saved_crashers']} ({f['saved_crashers_fixed']}) |")
        out.append("")
    if "crash" in result:
        c = result["crash"]
        phases = ", ".join(f"{k} {v}" for k, v in sorted(c["phases_killed"].items()))
        out += ["| crash consistency | value |", "| --- | ---: |",
                f"| SIGKILLs | {c['kills']} ({phases}) |",
                f"| consistent after the kill | {c['consistent_after_kill']} |",
                f"| inconsistencies found | {len(c['problems'])} |",
                f"| trades resumed after a kill (proposal sent again / agreement opened) | "
                f"{c['resumed']['resent']} / {c['resumed']['opened']} |",
                f"| trades stuck after the last clean run | {c['stuck_after_final_run']} |",
                f"| listings / purchases / blocks checked at the end | {c['listings']} / {c['purchases']} / {c['blocks']} |",
                f"| wall time | {c['seconds']} s |", ""]
    if "faults" in result:
        out += ["| fault profile | trades | completed | failed cleanly | listing not seen | recovered after heal | "
                "inconsistent | seconds |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, f in result["faults"].items():
            out.append(f"| {name} | {f['attempted']} | {f['completed']} | {f['failed_cleanly']} | "
                       f"{f['listing_not_seen']} | {f['recovered_after_heal']} | {f['inconsistent']} | {f['seconds']} |")
        out.append("")
    if "fraud" in result:
        f = result["fraud"]
        out += ["| fraud under 20% loss | value |", "| --- | ---: |",
                f"| peers | {f['peers']} |", f"| forks timed | {f['runs']} |",
                f"| until every honest peer holds the proof: median | {f['median_seconds']} s |",
                f"| ... slowest | {f['max_seconds']} s |", ""]
    if "flood" in result:
        f = result["flood"]
        out += ["| flood of one seller | value |", "| --- | ---: |",
                f"| hostile packets | {f['flood_packets']:,} |",
                f"| peak Python heap growth: flooded / one trade alone | {f['flood_peak_heap_mib']} / "
                f"{f['baseline_peak_heap_mib']} MiB |",
                f"| CPU time: flooded / one trade alone | {f['flood_cpu_seconds']} / {f['baseline_cpu_seconds']} s |",
                f"| packets the seller sent in answer | {f['flood_answers_sent']:,} |",
                f"| dropped unread (TrustChain / market rate and size limits) | {f['flood_dropped_trustchain']:,} / "
                f"{f['flood_dropped_market']:,} |",
                f"| honest trade completed during the flood | {'yes' if f['flood_honest_trade_completed'] else 'no'} |", ""]
    if "entry" in result:
        from enerdatx.bench.entry import markdown as entry_markdown

        out += entry_markdown(result["entry"])
    return "\n".join(out)
