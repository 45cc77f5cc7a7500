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


# Hand cases, none of them in bench/labels/routing.yaml (the set the router is measured on).
@pytest.mark.parametrize(
    "question",
    [
        "What time is breakfast?",
        "clave wifi",
        "a q hora cierra el gym",
        "¿Tienen toallas de playa?",
        "hello?? is anybody there? what time does the sauna open",  # calls for attention
        "dime si el gimnasio abre los lunes",  # "si" as "whether", not a condition
        "Sí, ¿a qué hora abre la piscina?",  # "sí" is yes, not "si" (if)
        "si, gracias. y el codigo del wifi?",  # "si" typed without its accent: yes
        "¿y cuánto sale?",  # a follow-up: its "y" joins it to the last answer, not to a request
        "hola, soy la señora del 305, ya se que es temprano y que estaran ocupados con el "
        "desayuno de todos los huespedes, pero queria preguntarles una cosita: a que hora "
        "pasa el autobus al pueblo?",  # long, one fact
    ],
)
def test_one_fact_goes_to_the_small_model(question: str) -> None:
    assert choose_tier(question) == "small"


@pytest.mark.parametrize(
    "question",
    [
        "¿Qué nos recomiendas para cenar cerca?",  # advice
        "which is better for a rainy day, the sauna or the museum?",  # comparison
        "explain how the safe in the room works",  # steps
        "Si mañana hace sol podemos desayunar en la terraza?",  # a condition
        "a que hora abre el spa y cuanto cuesta la entrada por persona?",  # two facts
        "Where is the sauna? Do I need to book it?",  # two questions
        "the shower is broken",  # a complaint, four words
        "the heating isn't on and the room is freezing",  # something wrong, said
        "nos cobraron el parking y no usamos el auto",  # a charge disputed
    ],
)
def test_what_needs_more_than_one_fact_goes_to_the_large_model(question: str) -> None:
    assert choose_tier(question) == "large"
