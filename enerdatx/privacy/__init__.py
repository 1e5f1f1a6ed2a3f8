"""Measured privacy: how identifying a data set is, before it is listed (docs/privacy.md).

``privacy_report(dataset)`` reproduces a published linkage attack (nearest neighbour on
weekly profiles) on a reference population, measures the uniqueness of the household's
daily profiles, says what the descriptor reveals, and repeats the figures after coarsening.
``PrivacyPolicy`` refuses to list above a risk threshold.
"""

from __future__ import annotations

from enerdatx.privacy.attack import LinkageResult, aggregate_linkage, linkage_attack
from enerdatx.privacy.population import Population, london_households, reference_population
from enerdatx.privacy.report import (
    METHOD,
    CoarseningRow,
    PrivacyPolicy,
    PrivacyReport,
    descriptor_reveals,
    privacy_report,
    with_privacy_summary,
)

__all__ = [
    "METHOD",
    "CoarseningRow",
    "LinkageResult",
    "Population",
    "PrivacyPolicy",
    "PrivacyReport",
    "aggregate_linkage",
    "descriptor_reveals",
    "linkage_attack",
    "london_households",
    "privacy_report",
    "reference_population",
    "with_privacy_summary",
]
