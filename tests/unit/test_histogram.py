"""The latency histogram: a percentile read off it is the upper bound of the bucket that
holds the exact nearest-rank value, and histograms merge by adding."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from posada.observe import histogram
from posada.observe.window import percentile as exact_percentile


def _bucket_bounds(ms: float) -> tuple[float, float]:
    i = histogram.bucket_of(ms)
    return (histogram.BOUNDS[i - 1] if i else 0.0), histogram.BOUNDS[i]


def test_bounds_grow_by_about_nine_percent_from_50_microseconds_to_ten_minutes() -> None:
    bounds = histogram.BOUNDS
    assert bounds[0] == 0.05
    assert bounds[-1] >= 600_000 > bounds[-2]
    ratios = [b / a for a, b in itertools.pairwise(bounds)]
    assert min(ratios) == pytest.approx(2 ** (1 / 8), rel=1e-3)
    assert max(ratios) == pytest.approx(2 ** (1 / 8), rel=1e-3)
    assert len(bounds) + 1 == histogram.SIZE


@pytest.mark.parametrize("ms", [0.0, 0.05, 0.0501, 1.0, 7.3, 250.0, 2000.0, 599_999.0])
def test_a_duration_falls_in_the_bucket_whose_upper_bound_is_the_first_at_or_above(
    ms: float,
) -> None:
    lower, upper = _bucket_bounds(ms)
    assert lower < ms <= upper or (ms == 0.0 and upper == histogram.BOUNDS[0])


def test_beyond_the_last_bound_is_the_overflow_bucket_read_as_the_last_bound() -> None:
    counts = histogram.empty()
    histogram.add(counts, 10_000_000.0)
    assert counts[-1] == 1
    assert histogram.percentile(counts, 50) == histogram.BOUNDS[-1]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("p", [1, 50, 90, 95, 99, 100])
def test_percentiles_hold_the_exact_nearest_rank_value(seed: int, p: float) -> None:
    rng = random.Random(seed)
    n = rng.choice([1, 2, 3, 19, 100, 1001])
    # Milliseconds as the window keeps them (three decimals), over a wide range.
    values = [round(math.exp(rng.uniform(math.log(0.06), math.log(120_000))), 3) for _ in range(n)]
    counts = histogram.empty()
    for ms in values:
        histogram.add(counts, ms)
    exact = exact_percentile(sorted(values), p)
    lower, upper = _bucket_bounds(exact)
    read = histogram.percentile(counts, p)
    assert read == upper
    assert lower < exact <= read
    assert read <= exact * 2 ** (1 / 8) * 1.0001, "never more than one step above"


def test_merging_is_adding_and_the_same_as_counting_everything_in_one() -> None:
    rng = random.Random(7)
    parts = [[rng.uniform(0.1, 5000) for _ in range(rng.randint(0, 300))] for _ in range(5)]
    histograms = []
    together = histogram.empty()
    for part in parts:
        counts = histogram.empty()
        for ms in part:
            histogram.add(counts, ms)
            histogram.add(together, ms)
        histograms.append(counts)
    assert histogram.merge(histograms) == together
    everything = sorted(ms for part in parts for ms in part)
    for p in (50, 95, 99):
        assert (
            histogram.percentile(together, p) == _bucket_bounds(exact_percentile(everything, p))[1]
        )


def test_a_shorter_histogram_counts_as_zeros_beyond_its_end() -> None:
    assert histogram.merge([[1, 2], [0, 0, 3]])[:4] == [1, 2, 3, 0]
    assert histogram.merge([]) == histogram.empty()
    assert histogram.percentile(histogram.empty(), 99) == 0.0
