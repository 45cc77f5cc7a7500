"""The load test's Locust users, for `locust -f bench/locustfile.py` from the repo.

`posada loadtest` runs the same users with its own servers and guest file; by hand, set
`POSADA_LOADTEST_GUESTS` (and `POSADA_LOADTEST_RAW` for the raw timings) first.
"""

from __future__ import annotations

from posada_bench.locustfile import GuestUser

__all__ = ["GuestUser"]
