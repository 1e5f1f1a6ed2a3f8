import pytest

from enerdatx.bench.stats import percentile, percentile_ms


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([2.0, 1.0], 0.5, 1.0),  # the nearest rank: ceil(0.5 * 2) = 1st
        (list(range(1, 101)), 0.99, 99),
        (list(range(1, 101)), 0.50, 50),
        (list(range(1, 11)), 0.5, 5),
        ([7.0], 0.99, 7.0),
        ([3.0, 1.0, 2.0], 0.0, 1.0),
        ([3.0, 1.0, 2.0], 1.0, 3.0),
    ],
)
def test_percentile_is_the_nearest_rank(values, q, expected):
    assert percentile(values, q) == expected


def test_percentile_ms_is_milliseconds_rounded():
    assert percentile_ms([0.0012345, 0.002], 0.5) == 1.23
    assert percentile_ms([0.0012345], 0.99, digits=3) == 1.234


def test_percentile_ms_of_no_sample_is_none():
    # An empty sample (no trade completed) has no quantile: null in the JSON, not an IndexError.
    assert percentile_ms([], 0.5) is None
    assert percentile_ms((), 0.99) is None
