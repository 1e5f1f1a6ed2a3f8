"""The reproduced linkage attack: better than chance on single households, chance on aggregates of 5."""

from __future__ import annotations

import numpy as np
import pytest

from enerdatx.errors import PrivacyError
from enerdatx.privacy import aggregate_linkage, linkage_attack, london_households, reference_population
from enerdatx.privacy.attack import chance_bound, coarsen

ALPHA = 0.001  # one-sided: the chance of a guesser reaching the bound


@pytest.fixture(scope="module")
def population():
    return reference_population()


def test_the_population_holds_the_london_sample_and_synthetic_households(population):
    assert len(population) == 120 and population.days == 14
    assert [name for name in population.names if name.startswith("london:")] == [
        "london:MAC900001", "london:MAC900002"]
    assert not np.isnan(population.wh).any()


def test_linkage_at_15_minutes_is_clearly_better_than_chance(population):
    result = linkage_attack(population.week(0), population.week(1), k=1)
    assert result.trials == 120 and result.chance == pytest.approx(1 / 120)
    # Guessing reaches this accuracy with probability <= 0.1 %; the attack must beat it.
    assert result.accuracy >= result.chance_bound(ALPHA)
    assert result.p_value < ALPHA
    top5 = linkage_attack(population.week(0), population.week(1), k=5)
    assert top5.hits >= result.hits


def test_aggregates_of_five_bring_linkage_to_chance(population):
    single = aggregate_linkage(population.week(0), population.week(1), 1, repetitions=20)
    pooled = aggregate_linkage(population.week(0), population.week(1), 5, repetitions=20)
    assert pooled.chance == pytest.approx(5 / 120)
    # Individually released weeks are found far beyond chance; aggregates are not (the bound
    # is what a guesser exceeds with probability 0.1 %), and the same attack finds far fewer.
    assert single.accuracy >= single.chance_bound(ALPHA)
    assert pooled.accuracy < pooled.chance_bound(ALPHA)
    assert pooled.accuracy < single.accuracy / 3


def test_the_attack_is_not_lucky_on_shuffled_weeks(population):
    # A control that can fail: with the test weeks of other households, the attack is at chance.
    shuffled = np.random.default_rng(1).permutation(len(population))
    result = linkage_attack(population.week(0), population.week(1)[shuffled], k=1)
    hits_by_chance = int((shuffled == np.arange(len(population))).sum())
    assert result.hits <= hits_by_chance + chance_bound(120, 1 / 120, ALPHA) * 120


def test_coarsening_sums_slots_and_keeps_gaps():
    rows = np.array([[1.0, 2.0, np.nan, np.nan, 5.0, np.nan]])
    assert coarsen(rows, 2).tolist()[0][:1] == [3.0]
    assert np.isnan(coarsen(rows, 2)[0, 1]) and coarsen(rows, 2)[0, 2] == 5.0
    with pytest.raises(PrivacyError):
        coarsen(rows, 4)


def test_bad_attack_parameters_are_refused(population):
    with pytest.raises(PrivacyError):
        linkage_attack(population.week(0), population.week(1)[:10])
    with pytest.raises(PrivacyError):
        linkage_attack(population.week(0), population.week(1), k=120)
    with pytest.raises(PrivacyError):
        population.week(2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda w: linkage_attack(w, w, k=1.5), "k must be a whole number, not 1.5"),  # was a result, chance 1.5 / n
        (lambda w: linkage_attack(w, w, k=True), "k must be a whole number, not True"),
        (lambda w: linkage_attack(w[0], w[0]), "train must be a matrix of numbers .* not 1-dimensional"),  # IndexError
        (lambda w: linkage_attack(np.full(w.shape, "a"), w), "train must be a matrix of numbers"),  # a TypeError
        (lambda w: aggregate_linkage(w, w, 2, repetitions=0), "repetitions must be 1 or more"),  # 0 trials: 0 / 0
        (lambda w: aggregate_linkage(w, w, True), "group_size must be a whole number, not True"),  # TypeError
        (lambda w: aggregate_linkage(w, w, 2, seed="x"), "seed must be a whole number"),  # numpy's ValueError
    ],
)
def test_the_attacks_refuse_what_is_not_a_population_or_a_count(population, call, message):
    with pytest.raises(PrivacyError, match=message):
        call(population.week(0))


def test_a_list_of_rows_is_a_population_too(population):
    week = population.week(0)
    assert linkage_attack(week.tolist(), week.tolist()) == linkage_attack(week, week)


@pytest.mark.parametrize(("call", "message"), [
    # pandas' own "Unknown datetime string format, unable to parse: x"
    (lambda: reference_population(start="x"), "start is a date such as '2026-03-02', not 'x'"),
    (lambda: reference_population("120"), "households is a whole number, not '120'"),  # a TypeError
    (lambda: reference_population(days=14.0), "days is a whole number, not 14.0"),
    (lambda: london_households(start="x"), "start is a date"),
    (lambda: london_households(days=0), "days is a whole number from 1 to 28"),  # households with no readings
    (lambda: london_households(days=29), "days is a whole number from 1 to 28"),
])
def test_a_population_asked_of_no_date_or_count_is_refused(call, message):
    with pytest.raises(PrivacyError, match=message):
        call()


@pytest.mark.parametrize(("args", "message"), [
    ((0, 0.5), "trials must be 1 or more, not 0"),  # ZeroDivisionError
    ((-3, 0.5), "trials must be 1 or more"),  # nan
    ((1.5, 0.5), "trials must be a whole number, not 1.5"),  # nan
    ((True, 0.5), "trials must be a whole number, not True"),  # a bound for one trial
    ((10, 2.0), "chance must be from 0 to 1, not 2.0"),  # nan
    ((10, -0.1), "chance must be from 0 to 1"),
    ((10, float("nan")), "chance must be from 0 to 1, not nan"),
    ((10, "0.5"), "chance must be a number, not '0.5'"),  # numpy's UFuncTypeError
    ((10, 0.5, 0.0), r"alpha must be between 0 and 1 \(exclusive\), not 0.0"),  # 1.1, an accuracy above 1
    ((10, 0.5, 1.0), "alpha must be between 0 and 1"),
    ((10, 0.5, 2), "alpha must be between 0 and 1"),  # nan
])
def test_a_chance_bound_of_no_trials_or_no_probability_is_refused(args, message):
    with pytest.raises(PrivacyError, match=message):
        chance_bound(*args)


def test_a_chance_bound_takes_numpy_numbers_and_the_ends_of_chance():
    assert chance_bound(np.int64(120), np.float64(1 / 120)) == chance_bound(120, 1 / 120)
    assert chance_bound(10, 0) == pytest.approx(0.1) and chance_bound(10, 1) > 1  # never / always by guessing


@pytest.mark.parametrize(("rows", "slots", "message"), [
    (np.ones((2, 8)), "2", "slots must be a whole number, not '2'"),  # '<' not supported for str and int
    (np.ones((2, 8)), True, "slots must be a whole number, not True"),  # numpy's "an integer is required"
    (np.ones((2, 8)), 1.5, "slots must be a whole number, not 1.5"),
    (np.ones((2, 8)), 0, "slots must be 1 or more, not 0"),
    ("abc", 1, "rows must be an array of numbers"),  # an AttributeError: no .shape
    (np.array([["a", "b"]]), 1, "rows must be an array of numbers"),  # numpy's TypeError from add.reduce
    (np.float64(3), 1, "not a single number"),  # an IndexError
    ([[1, 2], [3]], 1, "rows must be an array of numbers"),  # ragged
])
def test_coarsening_refuses_what_is_no_rows_or_no_count(rows, slots, message):
    with pytest.raises(PrivacyError, match=message):
        coarsen(rows, slots)


def test_coarsening_takes_a_list_of_rows():
    assert coarsen([[1, 2, 3, 4]], 2).tolist() == [[3.0, 7.0]]  # an AttributeError: no .shape


@pytest.mark.parametrize(("call", "message"), [
    (lambda: aggregate_linkage(np.ones((20, 8)), np.ones((20, 8)), 2, seed=-1), "seed must be 0 or more"),  # numpy's
    (lambda: reference_population(seed=-1), "seed is a whole number, 0 or more, not -1"),  # numpy's ValueError
    (lambda: reference_population(start=[1]), "start is a date"),  # "unhashable type: 'list'" from the cache
    (lambda: reference_population(london="no"), "london is True or False, not 'no'"),  # joined the London sample
    # A start at 13:00 made a population whose days are no UTC days; a start in another zone a Sunday.
    (lambda: reference_population(start="2026-03-02T13:00"), "starts at midnight .* not 2026-03-02T13:00:00"),
    (lambda: reference_population(start="2026-03-02T00:00+05:00"), "starts at midnight .* on a Monday"),
    # Two households of no readings joined the population, as if they used nothing.
    (lambda: reference_population(start="2030-03-04"), "the London sample has no readings of MAC900001"),
    (lambda: london_households(start="2030-03-04"), "the London sample has no readings"),
])
def test_a_population_of_no_seed_start_or_sample_is_refused(call, message):
    with pytest.raises(PrivacyError, match=message):
        call()


def test_a_population_outside_the_london_weeks_is_synthetic_only():
    population = reference_population(start="2030-03-04", london=False)
    assert not np.isnan(population.wh).any() and not any(name.startswith("london:") for name in population.names)


@pytest.mark.parametrize("week", [1.0, "0", True, None])
def test_a_week_is_a_whole_number(population, week):
    with pytest.raises(PrivacyError, match="a week is a whole number"):  # TypeErrors; True was week 1
        population.week(week)


@pytest.mark.parametrize("fields", [
    (0, 0, 1, 0.5, 1),  # .accuracy was a ZeroDivisionError
    (5, 3, 1, 0.5, 1),  # more hits than trials: an accuracy above 1
    (1, 3, 0, 0.5, 1),
    (1, 3, 1, 1.5, 1),  # a p_value of nan
    (1, 3, 1, 0.5, 0),
    (1.5, 3, 1, 0.5, 1),
])
def test_a_linkage_result_of_no_trials_or_no_chance_is_refused(fields):
    from enerdatx.privacy import LinkageResult

    with pytest.raises(PrivacyError):
        LinkageResult(*fields)


def test_an_infinite_amount_is_refused_by_the_attacks(population):
    week = population.week(0).copy()
    week[3, 5] = np.inf  # household 3 was counted as never found, silently
    with pytest.raises(PrivacyError, match="train holds an infinite amount"):
        linkage_attack(week, population.week(1))
    with pytest.raises(PrivacyError, match="test holds an infinite amount"):
        aggregate_linkage(population.week(0), week, 2)
