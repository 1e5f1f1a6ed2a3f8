"""Energy-community data unions: pooled, securely aggregated readings sold as one data set.

``secagg`` masks each member's readings so that the operator sees only the total;
``union`` holds the signed terms, membership records, rounds, and the revenue split.
"""

from __future__ import annotations

from enerdatx.union.secagg import MaskedContribution, Round, mask_values, unmask_sum
from enerdatx.union.union import (
    JOIN,
    LEAVE,
    Contribution,
    DataUnion,
    UnionAggregate,
    UnionMember,
    UnionTerms,
    laplace_scale,
    split_revenue,
)

__all__ = [
    "JOIN", "LEAVE", "Contribution", "DataUnion", "MaskedContribution", "Round", "UnionAggregate",
    "UnionMember", "UnionTerms", "laplace_scale", "mask_values", "split_revenue", "unmask_sum",
]
