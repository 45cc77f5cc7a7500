"""One timer: an answer's stages are timed on the request's figures, or on figures of their
own outside a request, never twice."""

from __future__ import annotations

import time

from posada.core import context


def test_a_stage_is_timed_once_on_the_request_figures() -> None:
    with context.measure() as stats:
        timer = context.current_or_new()
        assert timer is stats
        with timer.stage("lookup"):
            time.sleep(0.002)
        with context.stage("lookup"):  # a second pass adds to the same stage
            time.sleep(0.002)
    assert list(stats.stages) == ["lookup"]
    assert stats.stages["lookup"] >= 4.0
    timings = stats.timings()
    assert timings["total"] >= timings["lookup"]


def test_outside_a_request_the_answer_times_itself() -> None:
    assert context.current() is None
    timer = context.current_or_new()
    with timer.stage("embed"):
        pass
    with context.stage("ignored"):  # nothing measures: a no-op, not an error
        pass
    assert set(timer.timings()) == {"embed", "total"}
    assert context.current_or_new() is not timer
