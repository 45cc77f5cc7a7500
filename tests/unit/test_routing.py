"""Local routing: follow-ups and tiers, without a model."""

from __future__ import annotations

import pytest

from posada.answers.routing import choose_tier, is_follow_up, retrieval_text
from posada.providers.llm import ChatMessage


@pytest.mark.parametrize(
    "question",
    [
        "¿y el desayuno?",
        "and on Sundays?",
        "how much is it?",
        "¿Cuánto cuesta?",
        "what time?",
        "¿a qué hora abre?",
        "What about parking?",
        "also for kids?",
        "y para niños?",
    ],
)
def test_questions_that_lean_on_the_one_before(question: str) -> None:
    assert is_follow_up(question)


@pytest.mark.parametrize(
    "question",
    [
        "Check-out time?",
        "wifi password",
        "clave wifi",
        "gym hours",
        "hora de salida",
        "¿Cuánto cuesta el late check-out?",
        "How much is the airport transfer?",
        "Where can I dive?",
        "door code",
    ],
)
def test_short_questions_that_stand_alone(question: str) -> None:
    assert not is_follow_up(question)


def test_a_follow_up_is_searched_with_the_previous_question() -> None:
    history = [ChatMessage("user", "What are the gym hours?"), ChatMessage("assistant", "6-21")]
    assert retrieval_text("and on Sundays?", history) == "What are the gym hours? and on Sundays?"
    assert retrieval_text("wifi password", history) == "wifi password"
    assert retrieval_text("how much is it?", []) == "how much is it?"


def test_long_or_multi_part_questions_go_to_the_large_model() -> None:
    assert choose_tier("What time is breakfast?") == "small"
    assert choose_tier("What time is breakfast? And where is the pool? How much is it?") == "large"
