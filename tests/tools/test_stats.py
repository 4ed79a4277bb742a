"""The one percentile (nearest rank) that the benchmarks and the load generator report."""

from __future__ import annotations

import pytest

from tools.stats import percentile


def test_known_values_of_one_to_a_hundred():
    values = list(range(1, 101))
    assert percentile(values, 0.0) == 1
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile(values, 0.07) == 7  # 0.07 * 100 is 7.000000000000001 in floating point


def test_nearest_rank_is_always_one_of_the_values_never_an_interpolation():
    assert percentile([4, 1, 3, 2], 0.5) == 2  # interpolation would say 2.5
    assert percentile([1, 2, 3, 4, 5], 0.95) == 5  # interpolation would say 4.8
    assert percentile([10, 20, 30], 0.34) == 20
    assert percentile([10, 20, 30], 0.33) == 10


def test_order_and_iterables_do_not_matter():
    assert percentile(reversed(range(1, 101)), 1.0) == 100
    assert percentile((x for x in [3.5, 1.5, 2.5]), 0.5) == 2.5
    assert percentile([7.0], 0.0) == percentile([7.0], 0.99) == 7.0


def test_no_values_or_a_q_outside_0_to_1_is_an_error():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1, 2], 95)
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1, 2], -0.1)
