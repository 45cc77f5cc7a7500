"""A latency histogram that merges by adding: fixed bounds, counts per bucket.

Minutes, hours, days and replicas of the persisted figures (posada.observe.rollup) merge
by summing their counts, so a percentile over any window and any set of replicas is read
off the sum. Bounds grow by 2^(1/8) from 0.05 ms to 10 minutes (about 9% apart): a
percentile read here is the upper bound of the bucket that holds the nearest-rank value
the request window would give, never more than 9% above it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

_STEP = 2 ** (1 / 8)
_FIRST_MS = 0.05
_LAST_MS = 600_000.0

# BOUNDS[i] is bucket i's inclusive upper bound; the last bucket holds everything above.
BOUNDS: tuple[float, ...] = tuple(
    round(_FIRST_MS * _STEP**k, 6)
    for k in range(math.ceil(math.log(_LAST_MS / _FIRST_MS, _STEP)) + 1)
)
SIZE = len(BOUNDS) + 1


def bucket_of(ms: float) -> int:
    """The bucket a duration falls in: the first whose upper bound is at least `ms`."""
    return bisect.bisect_left(BOUNDS, ms)


def empty() -> list[int]:
    """A histogram with nothing in it."""
    return [0] * SIZE


def add(counts: list[int], ms: float) -> None:
    """Count one duration in."""
    counts[bucket_of(ms)] += 1


def merge(histograms: Iterable[Sequence[int]]) -> list[int]:
    """The sum of several histograms (shorter ones count as zero beyond their end)."""
    total = empty()
    for counts in histograms:
        for i, n in enumerate(counts):
            if i >= len(total):
                total.extend([0] * (i + 1 - len(total)))
            total[i] += n
    return total


def percentile(counts: Sequence[int], p: float) -> float:
    """The upper bound of the bucket holding the nearest-rank `p`th percentile (0 if empty).

    Above the last bound there is no bound to give: the last bound is returned.
    """
    n = sum(counts)
    if n == 0:
        return 0.0
    rank = max(1, math.ceil(p / 100 * n))
    seen = 0
    for i, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return BOUNDS[min(i, len(BOUNDS) - 1)]
    return BOUNDS[-1]
