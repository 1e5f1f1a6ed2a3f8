"""Privacy report of a year of 15-minute readings, and a data union's secure aggregation of 100 members.

The report is timed cold (the reference population of its season built first, as for the
first report of a season) and warm (population cached, as for every later one); the
baseline in the same run is cutting the same data set (what listing costs without a
report). The union round is timed per member (its masks against every other member) and
for the aggregator's unmasking; the baseline is summing the same plain vectors.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from enerdatx.bench.limits import count
from enerdatx.bench.stats import percentile
from enerdatx.crypto import Identity
from enerdatx.meter import cut_dataset, synthetic_household
from enerdatx.privacy import privacy_report
from enerdatx.privacy.population import clear_population_cache
from enerdatx.union.secagg import Round, mask_values, unmask_sum

# Each member masks against every other: the round's time grows with the square of the members
# (200 take about 10 s here), so beyond this it runs for hours rather than measuring anything.
MAX_MEMBERS = 1_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``enerdatx bench privacy``."""
    parser.add_argument("--days", type=count(1, 3660), default=365, help="days of 15-minute readings in the report")
    parser.add_argument("--repeats", type=count(1, 1_000), default=5, help="warm reports to time")
    parser.add_argument("--members", type=count(2, MAX_MEMBERS), default=100,
                        help=f"members of the union round (2 to {MAX_MEMBERS:,})")
    parser.add_argument("--union-days", type=count(1, 3660), default=7, help="days of 15-minute intervals per round")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")


def _seconds(function: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def _cpu_seconds(function: Any) -> tuple[float, float, Any]:
    # CPU time too: what the code costs, whatever else shares the machine.
    cpu = time.process_time()
    wall, result = _seconds(function)
    return wall, time.process_time() - cpu, result


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time the report and the union round; returns the figures."""
    readings = synthetic_household(seed=11, start="2026-01-01", days=args.days, pv=True)
    cut_s, dataset = _seconds(lambda: cut_dataset(readings, resolution="15min", location="2628",
                                                  household_type="family"))
    clear_population_cache()
    cold_s, cold_cpu_s, report = _cpu_seconds(lambda: privacy_report(dataset))
    warm_runs = [_cpu_seconds(lambda: privacy_report(dataset)) for _ in range(args.repeats)]
    warm, warm_cpu = [run[0] for run in warm_runs], [run[1] for run in warm_runs]

    length = 2 * 96 * args.union_days  # Wh per interval and a reading count per interval
    members = [Identity.from_seed(i.to_bytes(32, "big")) for i in range(1, args.members + 1)]
    round_ = Round(bytes(32), tuple(sorted(m.public_key for m in members)), length)
    rng = np.random.default_rng(0)
    values = [rng.integers(0, 2000, length) for _ in members]
    mask_s = []
    contributions = []
    for member, vector in tqdm(list(zip(members, values, strict=True)), disable=not args.progress,
                               desc="masking", leave=False):
        seconds, contribution = _seconds(lambda m=member, v=vector: mask_values(m, round_, v))
        mask_s.append(seconds)
        contributions.append(contribution)
    unmask_s, total = _seconds(lambda: unmask_sum(round_, contributions))
    plain_s, plain = _seconds(lambda: np.sum(values, axis=0))
    return {
        "report_days": args.days,
        "report_intervals": dataset.descriptor["n_readings"],
        "report_cold_s": round(cold_s, 3),
        "report_cold_cpu_s": round(cold_cpu_s, 3),
        "report_warm_median_s": round(percentile(warm, 0.5), 3),
        "report_warm_median_cpu_s": round(percentile(warm_cpu, 0.5), 3),
        "report_warm_max_s": round(max(warm), 3),
        "report_goal_s": 2.0,
        "baseline_cut_dataset_s": round(cut_s, 3),
        "report_score": report.score,
        "population": report.population,
        "union_members": args.members,
        "union_values_per_member": length,
        "union_mask_per_member_median_s": round(percentile(mask_s, 0.5), 4),
        "union_mask_per_member_max_s": round(max(mask_s), 4),
        "union_unmask_s": round(unmask_s, 4),
        "union_round_sequential_s": round(sum(mask_s) + unmask_s, 3),
        "baseline_plain_sum_s": round(plain_s, 4),
        "union_sum_exact": bool(np.array_equal(total, plain)),
    }
