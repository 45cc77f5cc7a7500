"""The report of what posada could not answer: declined and thumbs-down questions,
rewordings counted once, within the window asked for; and the grouping's threshold, chosen
on the tuning half of a labelled set and checked on its test half."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from posada.runtime import Runtime
from posada.staff.report import SAME_QUESTION, embed_questions, group_indexes
from tests.support.abuse import app_client, make_hotel
from tests.support.same_question import TESTING, TUNING
from tests.support.staff_login import ask, guest_login, staff_login

GRID = [round(0.16 + 0.02 * n, 2) for n in range(18)]  # 0.16 .. 0.50
REAL = Path(__file__).resolve().parents[2] / "bench" / "labels" / "real"


def _interleaved(groups: list[list[str]]) -> tuple[list[str], list[int]]:
    """The wordings as guests would ask them over a month: the groups' wordings in turn."""
    texts: list[str] = []
    labels: list[int] = []
    for k in range(max(map(len, groups))):
        for label, group in enumerate(groups):
            if k < len(group):
                texts.append(group[k])
                labels.append(label)
    return texts, labels


def _pair_scores(found: list[list[int]], labels: list[int]) -> tuple[float, float]:
    """(precision, recall) of the pairs put in one group."""
    together = [(a, b) for g in found for i, a in enumerate(g) for b in g[i + 1 :]]
    right = sum(labels[a] == labels[b] for a, b in together)
    n = len(labels)
    same = sum(labels[a] == labels[b] for a in range(n) for b in range(a + 1, n))
    return right / max(1, len(together)), right / same


def _f_half(precision: float, recall: float) -> float:
    """F0.5: a merge of two questions hides one of them, worse than counting one twice."""
    return 1.25 * precision * recall / (0.25 * precision + recall) if precision + recall else 0


def _real(split: str) -> list[list[str]]:
    """The wordings of each fact of one half of bench/labels/real (in the repository)."""
    groups: list[list[str]] = []
    for path in sorted(REAL.glob("*.yaml")):
        for fact in (yaml.safe_load(path.read_text("utf-8")) or {}).get("facts") or []:
            wordings = [q["text"] for q in fact.get("questions") or []]
            if fact.get("split") == split and len(wordings) >= 2:
                groups.append(wordings)
    return groups


async def _scores(
    runtime: Runtime, groups: list[list[str]], threshold: float
) -> tuple[float, float, int, int]:
    """(pair precision, pair recall, groups found, wordings) of grouping `groups`."""
    texts, labels = _interleaved(groups)
    found = group_indexes(await embed_questions(runtime.query_embedder, texts), threshold=threshold)
    return (*_pair_scores(found, labels), len(found), len(texts))


async def test_the_threshold_is_the_tuning_halves_best_and_holds_on_the_test_halves(
    runtime: Runtime,
) -> None:
    tuning = (TUNING, _real("tune"))
    objective: dict[float, float] = {}
    for threshold in GRID:
        halves = [await _scores(runtime, groups, threshold) for groups in tuning]
        objective[threshold] = sum(_f_half(p, r) for p, r, *_ in halves) / len(halves)
    best = max(objective.values())
    # Measured: best 0.542 at 0.34, a plateau from 0.26 (0.537) to 0.42 (0.533).
    assert objective[SAME_QUESTION] >= best - 0.01, objective

    # The test halves, measured: 32 groups of 68 wordings (17 questions), pair precision
    # 0.65, recall 0.36; bench/labels/real: 102 groups of 360 wordings (72 facts), 0.41, 0.44.
    precision, recall, found, wordings = await _scores(runtime, TESTING, SAME_QUESTION)
    assert found <= wordings / 2
    assert precision >= 0.55
    assert recall >= 0.3
    precision, recall, found, wordings = await _scores(runtime, _real("test"), SAME_QUESTION)
    assert found <= wordings / 3
    assert precision >= 0.35
    assert recall >= 0.35


async def test_one_wording_and_its_order_give_one_group() -> None:
    vectors = np.eye(3, dtype=np.float32)
    assert group_indexes(vectors) == [[0], [1], [2]]
    same = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    assert group_indexes(same) == [[0, 1], [2]]


async def test_the_report_counts_rewordings_once_with_their_reasons(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "3001", 1), ("S2", "b", "3002", 1)])
    other = await make_hotel(runtime, [("S1", "a", "3001", 1)])
    async with app_client(runtime) as http:
        in_a = await guest_login(http, hotel, 1, "3001")
        in_b = await guest_login(http, hotel, 1, "3002")
        elsewhere = await guest_login(http, other, 1, "3001")
        first = await ask(http, in_a, "Is there a helipad for my helicopter?")
        await ask(http, in_a, "is there a helipad?", first["conversation_id"])
        landing = await ask(http, in_b, "Do you have a helipad for helicopters?")
        casino = await ask(http, in_b, "Is there a casino with roulette tables?")
        await ask(http, elsewhere, "Is there a helipad for my helicopter?")
        # An answer with a source, marked unhelpful by its guest.
        csrf = await staff_login(runtime, hotel, http, "manager")
        entry = {"question": "Where can I go diving?", "answer": "At the pier, 9 to 5."}
        assert (await http.post("/api/staff/faq", json=entry, headers=csrf)).status_code == 201
        answered = await ask(http, in_a, "Where can I go diving?")
        assert answered["sources"], answered
        async with runtime.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT max(id) FROM messages WHERE conversation_id = %s AND role = 'assistant'",
                (answered["conversation_id"],),
            )
            row = await cur.fetchone()
            assert row is not None
            marked = await http.post(
                f"/api/guest/messages/{row[0]}/feedback", json={"helpful": False}, headers=in_a
            )
            assert marked.status_code == 204
            # The casino question was asked 40 days ago.
            await conn.execute(
                "UPDATE messages SET created_at = now() - interval '40 days'"
                " WHERE conversation_id = %s",
                (casino["conversation_id"],),
            )

        report = (await http.get("/api/staff/reports/unanswered")).json()["groups"]
        assert [g["question"] for g in report] == [
            "Do you have a helipad for helicopters?",
            "Where can I go diving?",
        ]
        helipad, diving = report
        assert helipad["count"] == 3
        assert sorted(helipad["rewordings"]) == [
            "Is there a helipad for my helicopter?",
            "is there a helipad?",
        ]
        assert helipad["reasons"] == ["declined"]
        assert helipad["unit"] is None  # asked in both units
        assert set(helipad["conversation_ids"]) == {first["conversation_id"],
                                                    landing["conversation_id"]}  # fmt: skip
        assert diving["reasons"] == ["unhelpful"]
        assert diving["unit"] == "a"
        assert diving["count"] == 1
        assert diving["rewordings"] == []
        wider = (await http.get("/api/staff/reports/unanswered", params={"days": 60})).json()
        assert "Is there a casino with roulette tables?" in [g["question"] for g in wider["groups"]]
        for days in ("0", "367", "x"):
            response = await http.get("/api/staff/reports/unanswered", params={"days": days})
            assert response.status_code == 422
