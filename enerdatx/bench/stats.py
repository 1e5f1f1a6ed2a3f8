"""Summary statistics shared by the benchmarks."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 <= q <= 1) of a non-empty sample: the smallest value
    with at least ``q`` of the sample at or below it (the median of [1, 2] is 1, p99 of 1..100 is 99)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def percentile_ms(values: Sequence[float], q: float, digits: int = 2) -> float | None:
    """:func:`percentile` of a sample in seconds, as milliseconds rounded to ``digits``; None (JSON null)
    for an empty sample, which has no quantile (no trade completed, or none was asked for)."""
    return round(1000 * percentile(values, q), digits) if values else None
