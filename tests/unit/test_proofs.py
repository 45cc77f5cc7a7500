"""The scale proofs' pure parts: the most a limit grants in a time, judging a spread of
attempts, picking stays, reading the replicas' limits, and what nginx did with POSTs."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from posada.limits.buckets import Limit
from posada_bench.driver import Drive, Sample
from posada_bench.hotels import Stay
from posada_bench.scale.figures import parse_metrics
from posada_bench.scale.proofs import pick_stays
from posada_bench.scale.proofs_kill import judge_round, nginx_view, tagged, tally
from posada_bench.scale.proofs_limits import judge
from posada_bench.scale.proofs_parts import limits_of, most_granted, total
from posada_bench.workload import build_sessions

LOGIN = Limit(burst=10, per_hour=5, free=5, backoff_s=2, backoff_max_s=900)
CHAT = Limit(burst=10, per_hour=360)


def test_most_granted_counts_the_free_attempts_then_each_back_off() -> None:
    assert most_granted(LOGIN, 0.5) == 5
    assert most_granted(LOGIN, 2.5) == 6  # one back-off of 2 s
    assert most_granted(LOGIN, 6.5) == 7  # 2 s, then 4 s
    assert most_granted(LOGIN, 3600) == 15  # never past the burst and an hour's leak
    assert most_granted(CHAT, 0) == 10
    assert most_granted(CHAT, 1.0) == 10  # 0.1 a second leaks back
    assert most_granted(CHAT, 30.0) == 13


def test_most_granted_never_counts_fewer_than_the_buckets_grant() -> None:
    from posada.limits.buckets import _wait

    # Attempts as fast as the bucket takes them, on its own arithmetic (`_wait`).
    level, last, now, granted = 0.0, 0.0, 0.0, 0
    while now <= 40:
        if granted == 0 or _wait(level, last, now, LOGIN) <= 0:
            granted, level, last = granted + 1, level + 1, now
        now += 0.25
        level = max(0.0, level - 0.25 * LOGIN.rate_per_s)
    assert granted == most_granted(LOGIN, 40) == 9  # 5 free, then after 2, 4, 8 and 16 s


def _attempts(
    granted: dict[str, int], refused: dict[str, int], status: int
) -> list[tuple[str, int]]:
    return [(r, status) for r, n in granted.items() for _ in range(n)] + [
        (r, 429) for r, n in refused.items() for _ in range(n)
    ]


def test_judge_passes_a_shared_count_and_fails_a_count_per_replica() -> None:
    shared = _attempts({"r1": 2, "r2": 2, "r3": 1}, {"r1": 4, "r2": 4, "r3": 5}, 401)
    proof = judge("login", limit=LOGIN, results=shared, granted_status=401, elapsed_s=0.5,
                  what="wrong logins")  # fmt: skip
    assert proof.passed, proof.detail
    assert proof.counters["granted"] == 5
    assert proof.counters["if_each_replica_counted_alone"] == 15
    alone = _attempts({"r1": 5, "r2": 5, "r3": 5}, {"r1": 1, "r2": 1, "r3": 1}, 401)
    proof = judge("login", limit=LOGIN, results=alone, granted_status=401, elapsed_s=0.5,
                  what="wrong logins")  # fmt: skip
    assert not proof.passed
    assert "15 granted, expected 5 to 5" in proof.detail


def test_judge_fails_a_replica_that_never_refused_or_an_odd_status() -> None:
    quiet = [*_attempts({"r1": 3, "r2": 2}, {"r1": 5, "r2": 5}, 401), ("r3", 401)]
    proof = judge("login", limit=LOGIN, results=quiet, granted_status=401, elapsed_s=0.5,
                  what="wrong logins")  # fmt: skip
    assert not proof.passed
    assert "r3 never refused" in proof.detail
    odd = [*_attempts({"r1": 5}, {"r1": 1, "r2": 1, "r3": 1}, 200), ("r2", 500)]
    proof = judge("chat", limit=LOGIN, results=odd, granted_status=200, elapsed_s=0.5,
                  what="chats")  # fmt: skip
    assert "unexpected answers [('r2', 500)]" in proof.detail


def test_judge_names_the_replicas_that_lost_redis_when_a_limit_was_not_shared() -> None:
    alone = _attempts({"r1": 10, "r2": 6}, {"r1": 1, "r2": 1, "r3": 15}, 200)
    errors = {"r1": 0.0, "r2": 3.0, "r3": 0.0}
    proof = judge("chat", limit=CHAT, results=alone, granted_status=200, elapsed_s=1.0,
                  what="chats", redis_errors=errors)  # fmt: skip
    assert not proof.passed
    assert proof.detail.endswith("Redis failed meanwhile on {'r2': 3.0} (see posada_redis_errors)")
    assert proof.counters["redis_errors_per_replica"] == errors
    shared = _attempts({"r1": 4, "r2": 3, "r3": 3}, {"r1": 7, "r2": 8, "r3": 8}, 200)
    proof = judge("chat", limit=CHAT, results=shared, granted_status=200, elapsed_s=1.0,
                  what="chats", redis_errors=errors)  # fmt: skip
    assert proof.passed, proof.detail


def test_pick_stays_takes_hotels_in_turn_and_never_a_stay_twice() -> None:
    day = date(2026, 1, 1)
    stays = [Stay("a", f"u{i}", day, f"{i:04d}") for i in range(3)]
    stays += [Stay("b", "x", day, "1111"), Stay("a", "u0", day, "0000")]
    picked = pick_stays(stays, 4)
    assert [(s.tenant, s.unit) for s in picked] == [
        ("a", "u0"),
        ("b", "x"),
        ("a", "u1"),
        ("a", "u2"),
    ]
    with pytest.raises(ValueError, match="need 5 different stays"):
        pick_stays(stays, 5)


def test_limits_of_reads_the_replicas_environment_over_the_defaults() -> None:
    found = limits_of({"POSADA_LOGIN_STAY_FREE": "3", "POSADA_STAFF_LOGIN_BURST": "7",
                       "POSADA_CHAT_TOKEN_PER_MINUTE": "12"})  # fmt: skip
    assert (found.guest_login.free, found.guest_login.burst) == (3, 10)
    assert (found.staff_login.burst, found.staff_login.free) == (7, 5)
    assert (found.chat.burst, found.chat.per_hour) == (10, 720)


def test_total_adds_the_samples_whose_labels_match() -> None:
    samples = parse_metrics(
        "# TYPE posada_cache_outcomes counter\n"
        'posada_cache_outcomes_total{layer="exact",outcome="hit"} 2.0\n'
        'posada_cache_outcomes_total{layer="exact",outcome="miss"} 1.0\n'
        'posada_cache_outcomes_total{layer="semantic",outcome="hit"} 4.0\n'
        "# TYPE posada_llm_calls counter\n"
        "posada_llm_calls_total 3.0\n"
    )
    assert total(samples, "posada_cache_outcomes_total", outcome="hit") == 6
    assert total(samples, "posada_cache_outcomes_total", layer="exact", outcome="hit") == 2
    assert total(samples, "posada_llm_calls_total") == 3
    assert total(samples, "posada_answers_total") == 0


def _line(
    uri: str, status: str, upstream: str, *, rid: str = "a", conn: str = "1"
) -> dict[str, Any]:
    return {"method": "POST", "uri": uri, "status": status, "upstream": upstream,
            "request_id": rid, "connection": conn}  # fmt: skip


def _error(conn: str, what: str, addr: str) -> str:
    return (
        f"2026/12/02 15:33:04 [error] 1#1: *{conn} {what}, client: 127.0.0.1, server: _, "
        f'request: "POST /api/guest/chat HTTP/1.1", upstream: "http://{addr}/api/guest/chat", '
        'host: "127.0.0.1:4000"\n'
    )


CLOSED = "upstream prematurely closed connection while reading response header from upstream"
REFUSED = "connect() failed (111: Connection refused) while connecting to upstream"
ERROR = (
    _error("136", CLOSED, "127.0.0.1:2")
    + "2026/12/02 15:33:04 [warn] 1#1: *136 upstream server temporarily disabled while "
    "reading response header from upstream, client: 127.0.0.1, server: _, request: "
    '"POST /api/guest/chat HTTP/1.1"\n' + _error("7", REFUSED, "127.0.0.1:2")
)


def test_nginx_view_tells_a_post_moved_after_a_refused_connect_from_one_sent_again() -> None:
    lines = [
        _line("/api/guest/chat", "200", "127.0.0.1:2, 127.0.0.1:3", rid="a", conn="7"),
        _line("/api/guest/chat", "502", "127.0.0.1:2", rid="b", conn="136"),
        _line("/api/guest/login", "200", "127.0.0.1:1", rid="c"),
        {"method": "GET", "uri": "/api/guest/chat", "status": "200", "upstream": "x"},
    ]
    view = nginx_view(lines, ERROR)
    assert view == {"chat_posts": 2, "request_ids_not_unique": 0, "moved_to_another_replica": 1,
                    "sent_again_after_reaching_a_replica": [],
                    "failed_after_reaching_a_replica": 1, "answered_5xx_not_resent": 1,
                    "failures_without_their_request": []}  # fmt: skip


def test_nginx_view_matches_each_failure_to_its_own_request_not_to_a_count() -> None:
    # One POST sent on after it reached r2 and one unrelated 503: the counts would agree
    # (one failure after reaching a replica, one 5xx not moved), the requests do not.
    lines = [
        _line("/api/guest/chat", "200", "127.0.0.1:2, 127.0.0.1:3", rid="a", conn="136"),
        _line("/api/guest/chat", "503", "127.0.0.1:1", rid="b", conn="9"),
    ]
    view = nginx_view(lines, _error("136", CLOSED, "127.0.0.1:2"))
    assert view["sent_again_after_reaching_a_replica"] == ["a on 127.0.0.1:2"]
    assert view["failures_without_their_request"] == ["*136 on 127.0.0.1:2"]
    assert len(judge_round(_round([OK], ROWS, view), graceful=False)) == 2
    # A refused connect on another connection does not excuse it either.
    other = nginx_view(lines[:1], _error("8", REFUSED, "127.0.0.1:2"))
    assert other["sent_again_after_reaching_a_replica"] == ["a on 127.0.0.1:2"]
    # Two POSTs sharing an id (or logged without one) are not told apart: refused.
    same = nginx_view([_line("/api/guest/chat", "200", "127.0.0.1:1")] * 2, "")
    assert same["request_ids_not_unique"] == 2


def _round(samples: list[Sample], stored: dict[str, Any], nginx: dict[str, Any]) -> dict[str, Any]:
    rows = {"questions_of_the_round": stored["questions"], "stored_more_than_sent": [], **stored}
    return {"signal": "SIGTERM", "driver": tally(Drive(samples, 1.0, 1)), "stored": rows,
            "nginx": nginx}  # fmt: skip


CALM = nginx_view([], "")
OK = Sample("chat", True, 200, 5.0)
ROWS = {"questions": 1, "answers": 1, "incomplete": 0}


def test_judge_round_holds_the_graceful_stop_to_every_question_answered_and_stored() -> None:
    answered = [OK, Sample("stream", True, 200, 9.0)]
    rows = {"questions": 2, "answers": 2, "incomplete": 0}
    assert judge_round(_round(answered, rows, CALM), graceful=True) == []
    lost = {"questions": 1, "answers": 1, "incomplete": 0}
    assert judge_round(_round(answered, lost, CALM), graceful=True) == [
        "SIGTERM: 2 complete answers, 1 stored",
        "SIGTERM: 1 questions stored, 2 answered",
    ]
    cut = [*answered, Sample("stream", False, 200, 9.0)]
    rows3 = {"questions": 3, "answers": 2, "incomplete": 0}
    assert judge_round(_round(cut, rows3, CALM), graceful=True) == ["SIGTERM: 1 answers cut"]
    # Killed outright, a cut stream is what a lost process does: not against the promise.
    assert judge_round(_round(cut, rows3, CALM), graceful=False) == []
    twice = {"questions": 4, "answers": 2, "incomplete": 0}
    assert judge_round(_round(cut, twice, CALM), graceful=False) == [
        "SIGTERM: 4 questions stored of 3 sent"
    ]


def test_judge_round_counts_each_question_of_the_round_by_its_text() -> None:
    # As many rows as were sent, but one question stored twice (and another lost).
    rows = {**ROWS, "questions": 2, "stored_more_than_sent": ["where? (#x0.0.0)"]}
    cut = [OK, Sample("stream", False, 200, 9.0)]
    assert judge_round(_round(cut, rows, CALM), graceful=False) == [
        "SIGTERM: 1 questions stored twice, e.g. 'where? (#x0.0.0)'"
    ]
    # A stored question that is none of the round's: the texts were not counted right.
    other = {**ROWS, "questions_of_the_round": 0}
    assert judge_round(_round([OK], other, CALM), graceful=False) == [
        "SIGTERM: 1 questions stored, 0 of them the round's"
    ]


def test_tagged_sessions_ask_every_question_once() -> None:
    stays = [Stay("demo", "101", date(2026, 1, 1), "1234")]
    sessions = build_sessions(seed=3, count=40, stays=stays)
    plain = [t.text for s in sessions for t in s.turns]
    texts = [t.text for s in tagged(sessions, mark="k0") for t in s.turns]
    assert len(set(plain)) < len(plain)  # the workload repeats its questions
    assert len(set(texts)) == len(texts) == len(plain)
    assert all(t.startswith(p) for t, p in zip(texts, plain, strict=True))
