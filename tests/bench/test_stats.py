import pytest

from enerdatx.bench.stats import percentile


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
