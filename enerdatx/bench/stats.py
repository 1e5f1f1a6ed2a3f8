"""Summary statistics shared by the benchmarks."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 <= q <= 1) of a non-empty sample: the smallest value
    with at least ``q`` of the sample at or below it (the median of [1, 2] is 1, p99 of 1..100 is 99)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
