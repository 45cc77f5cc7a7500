"""The benchmark's workload: reproducible from its seed, shaped as the issue describes."""

from __future__ import annotations

from collections import Counter
from datetime import date

from posada_bench.hotels import Stay, generate_hotel
from posada_bench.workload import Mix, build_sessions, demo_stays, describe, load_groups

TODAY = date(2026, 11, 30)


def _stays() -> list[Stay]:
    hotels = [generate_hotel(index=i, seed=3, today=TODAY) for i in range(2)]
    return demo_stays(today=TODAY) + [s for h in hotels for s in h.stays]


def test_the_same_seed_gives_the_same_sessions_and_another_seed_others() -> None:
    first = build_sessions(seed=11, count=300, stays=_stays())
    again = build_sessions(seed=11, count=300, stays=list(reversed(_stays())))
    other = build_sessions(seed=12, count=300, stays=_stays())
    assert first == again, "the order the stays come in does not matter"
    assert first != other
    assert generate_hotel(index=1, seed=3, today=TODAY) == generate_hotel(
        index=1, seed=3, today=TODAY
    )
    assert generate_hotel(index=1, seed=3, today=TODAY) != generate_hotel(
        index=1, seed=4, today=TODAY
    )


def test_sessions_have_the_mix_the_workload_promises() -> None:
    mix = Mix()
    sessions = build_sessions(seed=5, count=600, stays=_stays(), mix=mix)
    turns = [t for s in sessions for t in s.turns]
    assert all(mix.min_turns <= len(s.turns) <= mix.max_turns for s in sessions)
    assert all(s.turns[0].think_s == 0 and all(t.think_s >= 0 for t in s.turns) for s in sessions)
    assert 0.25 < sum(t.stream for t in turns) / len(turns) < 0.35
    assert 0.55 < sum(s.language == "es" for s in sessions) / len(sessions) < 0.65
    kinds = Counter(t.kind for t in turns)
    assert {"hotel", "unit", "tourism", "unanswerable", "follow_up"} <= set(kinds)
    # Zipf-like: the most asked group is asked far more than the least asked one.
    groups = Counter(t.group for t in turns if t.kind != "follow_up")
    order = [g.id for g in load_groups()]
    assert groups[order[0]] > 5 * groups[order[-1]] > 0
    # Repeated questions: most questions were asked before, word for word.
    texts = [t.text for t in turns]
    assert len(set(texts)) < 0.2 * len(texts)
    assert {s.stay.tenant for s in sessions} == {"casa-azul", *{s.tenant for s in _stays()}}
    summary = describe(sessions)
    assert summary["questions"] == len(turns)
    assert summary["by_kind"] == dict(sorted(kinds.items()))


def test_follow_ups_come_right_after_a_question_that_has_them() -> None:
    groups = {g.id: g for g in load_groups()}
    for session in build_sessions(seed=9, count=400, stays=_stays()):
        for before, turn in zip(session.turns, session.turns[1:], strict=False):
            if turn.kind == "follow_up":
                assert before.kind != "follow_up"
                assert turn.group == before.group
                assert turn.text in groups[before.group].follow_ups[session.language]


def test_the_labelled_groups_are_consistent() -> None:
    groups = load_groups()
    ids = {g.id for g in groups}
    assert len(ids) == len(groups)
    seen: dict[str, str] = {}
    for group in groups:
        assert group.kind in {"hotel", "unit", "tourism", "unanswerable"}
        assert len(group.questions["es"]) >= 2
        assert len(group.questions["en"]) >= 2
        assert set(group.negatives) <= ids - {group.id}
        for text in group.questions["es"] + group.questions["en"]:
            assert seen.setdefault(text.lower(), group.id) == group.id, f"{text!r} in two groups"
    # A hard negative goes both ways.
    by_id = {g.id: g for g in groups}
    for group in groups:
        for other in group.negatives:
            assert group.id in by_id[other].negatives, (group.id, other)


def test_each_generated_stay_is_one_login() -> None:
    for index in range(4):
        hotel = generate_hotel(index=index, seed=1, today=TODAY)
        logins = [(s.check_in, s.phone_last4) for s in hotel.stays]
        assert len(set(logins)) == len(logins)
        assert {s.unit for s in hotel.stays} == {
            name.removeprefix("units/").removesuffix(".md")
            for name in hotel.files
            if name.startswith("units/")
        }
        assert all(s.check_in <= TODAY for s in hotel.stays)
