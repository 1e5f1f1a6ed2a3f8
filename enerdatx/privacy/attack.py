"""The linkage attack, reproduced: nearest neighbour from one week of a household to another.

As in Buchmann et al. (2013) and the weekly-profile baselines of Cretu et al. (2024), the
attacker holds one week of every household in a population (its training week) and a
released week of readings; it names the household whose training week is nearest (L1
distance, which measured best of L1, L2 and correlation on the reference population).
Top-k accuracy is the share of released weeks whose true household is among the k named.
Under chance the number of hits is Binomial(n, k / population); ``p_value`` is the
probability of at least as many hits by chance, so a small p says "better than chance".
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import comb

import numpy as np
import numpy.typing as npt
from scipy.spatial.distance import cdist
from scipy.stats import binom

from enerdatx.errors import PrivacyError

__all__ = ["METRIC", "LinkageResult", "coarsen", "linkage_attack", "aggregate_linkage", "chance_bound"]

METRIC = "cityblock"


@dataclass(frozen=True)
class LinkageResult:
    """How often the attack named the right household, against chance."""

    hits: int
    trials: int
    k: int
    chance: float  # probability of a hit by guessing
    resolution_slots: int  # 15-minute slots per value the attack saw

    def __post_init__(self) -> None:
        # One made by hand with 0 trials failed at .accuracy with a ZeroDivisionError.
        if _count("trials", self.trials) < 1 or not 0 <= _count("hits", self.hits) <= self.trials:
            raise PrivacyError(f"a linkage result needs 1 or more trials and 0 to trials hits, not {self.hits} "
                               f"of {self.trials}")
        if _count("k", self.k) < 1 or _count("resolution_slots", self.resolution_slots) < 1:
            raise PrivacyError("k and resolution_slots must be 1 or more")
        _probability("chance", self.chance)

    @property
    def accuracy(self) -> float:
        """Share of trials with a hit."""
        return self.hits / self.trials

    @property
    def p_value(self) -> float:
        """P(at least ``hits`` hits | guessing): small means clearly better than chance."""
        return float(binom.sf(self.hits - 1, self.trials, self.chance))

    def chance_bound(self, alpha: float = 0.001) -> float:
        """The accuracy guessing exceeds with probability at most ``alpha`` (one-sided binomial)."""
        return chance_bound(self.trials, self.chance, alpha)


def _probability(name: str, value: object, *, open_interval: bool = False) -> float:
    # scipy answered nan for a chance of 2 or an alpha of 2, and a TypeError for "0.5".
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise PrivacyError(f"{name} must be a number, not {value!r}")
    number = float(value)
    inside = 0 < number < 1 if open_interval else 0 <= number <= 1
    if not inside:  # nan is inside neither
        raise PrivacyError(f"{name} must be {'between 0 and 1 (exclusive)' if open_interval else 'from 0 to 1'}, "
                           f"not {value!r}")
    return number


def chance_bound(trials: int, chance: float, alpha: float = 0.001) -> float:
    """Smallest accuracy a guesser reaches with probability at most ``alpha`` over ``trials``."""
    if _count("trials", trials) < 1:  # 0 divided by zero; -3 and 1.5 gave nan
        raise PrivacyError(f"trials must be 1 or more, not {trials}")
    chance, alpha = _probability("chance", chance), _probability("alpha", alpha, open_interval=True)
    return float(binom.isf(alpha, trials, chance) + 1) / trials


def coarsen(rows: npt.ArrayLike, slots: int) -> np.ndarray:
    """Sum every ``slots`` consecutive 15-minute values (a coarser resolution); NaN stays NaN."""
    # A list or text failed with an AttributeError, "2" or True slots with numpy's TypeErrors.
    if _count("slots", slots) < 1:
        raise PrivacyError(f"slots must be 1 or more, not {slots}")
    try:
        rows = np.asarray(rows, dtype="float64")
    except (TypeError, ValueError) as error:
        raise PrivacyError(f"rows must be an array of numbers: {error}") from None
    if rows.ndim == 0:
        raise PrivacyError("rows must be an array of numbers (a row per household), not a single number")
    if rows.shape[-1] % slots:
        raise PrivacyError(f"{slots} slots do not divide a row of {rows.shape[-1]}")
    shaped = rows.reshape(*rows.shape[:-1], rows.shape[-1] // slots, slots)
    total = np.nansum(shaped, axis=-1)
    return np.where(np.isnan(shaped).all(axis=-1), np.nan, total)


def _filled(rows: np.ndarray) -> np.ndarray:
    # A gap should not look like zero consumption: fill it with the row's own mean.
    means = np.nanmean(np.where(np.isnan(rows).all(axis=1, keepdims=True), 0.0, rows), axis=1, keepdims=True)
    return np.where(np.isnan(rows), means, rows)


def distances(released: np.ndarray, known: np.ndarray) -> np.ndarray:
    """L1 distance from every released row to every known row."""
    if released.shape[1] != known.shape[1]:
        raise PrivacyError("released and known profiles must have the same length")
    return cdist(_filled(released), _filled(known), METRIC)


def ranks(released: np.ndarray, known: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """0-based rank of the true known row for every released row (0: the attack names it first)."""
    d = distances(released, known)
    own = d[np.arange(len(released)), truth][:, None]
    # Ties count against the attacker: the true row must be strictly nearer than the others.
    return (d <= own).sum(axis=1) - 1


def _profiles(name: str, rows: object) -> np.ndarray:
    """``rows`` as a float matrix (a household per row); a list, a 1-D row or text failed deep in numpy."""
    try:
        matrix = np.asarray(rows, dtype="float64")
    except (TypeError, ValueError) as error:
        raise PrivacyError(f"{name} must be a matrix of numbers (a household per row): {error}") from None
    if matrix.ndim != 2:
        raise PrivacyError(f"{name} must be a matrix of numbers (a household per row), not {matrix.ndim}-dimensional")
    if np.isinf(matrix).any():  # every distance to an infinite row is inf: that household lost, silently
        raise PrivacyError(f"{name} holds an infinite amount (NaN marks an unknown one)")
    return matrix


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise PrivacyError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def linkage_attack(train: np.ndarray, test: np.ndarray, k: int = 1, slots: int = 1) -> LinkageResult:
    """Top-k linkage of every household's test week to the training weeks of all, at ``slots`` x 15 min."""
    train, test = _profiles("train", train), _profiles("test", test)
    k, slots = _count("k", k), _count("slots", slots)  # k=1.5 gave a result with a chance of 1.5 / n
    if train.shape != test.shape or len(train) < 2:
        raise PrivacyError("train and test need the same households, at least two")
    if not 1 <= k < len(train):
        raise PrivacyError("k must be between 1 and the population size - 1")
    r = ranks(coarsen(test, slots), coarsen(train, slots), np.arange(len(train)))
    return LinkageResult(int((r < k).sum()), len(train), k, k / len(train), slots)


def aggregate_linkage(train: np.ndarray, test: np.ndarray, group_size: int, *, k: int = 1, repetitions: int = 20,
                      seed: int = 0, slots: int = 1) -> LinkageResult:
    """The attack on aggregates: each released week is the mean of ``group_size`` households.

    The attacker names the ``k`` nearest households per released aggregate; a hit is any
    member among them (the most generous reading for the attacker), so chance is
    1 - C(n - group_size, k) / C(n, k): ``group_size / n`` for k = 1. The population is cut
    into disjoint random groups ``repetitions`` times.
    """
    train, test = _profiles("train", train), _profiles("test", test)
    group_size, k, slots = _count("group_size", group_size), _count("k", k), _count("slots", slots)
    if _count("repetitions", repetitions) < 1:  # 0 gave a result of no trials, whose accuracy is 0 / 0
        raise PrivacyError(f"repetitions must be 1 or more, not {repetitions}")
    if _count("seed", seed) < 0:  # numpy's "expected non-negative integer"
        raise PrivacyError(f"seed must be 0 or more, not {seed}")
    n = len(train)
    if train.shape != test.shape or not 1 <= group_size <= n // 2:
        raise PrivacyError("aggregates need the same households and at least two groups")
    if not 1 <= k < n - group_size:
        raise PrivacyError("k must be between 1 and the population size - group size - 1")
    known = coarsen(train, slots)
    hits = trials = 0
    for repetition in range(repetitions):
        order = np.random.default_rng([seed, repetition]).permutation(n)
        groups = order[: n // group_size * group_size].reshape(-1, group_size)
        released = np.nanmean(coarsen(test, slots)[groups], axis=1)
        named = np.argsort(distances(released, known), axis=1, kind="stable")[:, :k]
        hits += int((groups[:, :, None] == named[:, None, :]).any(axis=(1, 2)).sum())
        trials += len(groups)
    chance = float(1 - Fraction(comb(n - group_size, k), comb(n, k)))
    return LinkageResult(hits, trials, k, chance, slots)
