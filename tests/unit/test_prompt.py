"""The prompt builder: instructions, passages, recent turns, all within the budget."""

from __future__ import annotations

from posada.answers.prompt import build_prompt
from posada.knowledge.retrieval import Hit
from posada.providers.llm import ChatMessage, estimate_tokens


def _hit(n: int, text: str) -> Hit:
    return Hit(
        kind="chunk",
        id=n,
        chunk_id=n,
        title=f"Doc {n}",
        source=f"d{n}.md",
        tenant_id=1,
        scope="hotel",
        unit_id=None,
        heading=f"Doc {n} › Section {n}",
        text=text,
        question=None,
        score=1.0 / n,
        similarity=0.5,
        vector_rank=n,
        text_rank=n,
        coverage=0.5,
        question_coverage=0.0,
    )


def test_prompt_names_the_hotel_the_language_and_the_sources() -> None:
    prompt = build_prompt(
        hotel="Hotel Casa Azul",
        question="¿A qué hora es el desayuno?",
        passages=[_hit(1, "El desayuno es de 7:15 a 10:30.")],
        history=[],
        budget=1000,
    )
    system = prompt.messages[0]
    assert system.role == "system"
    assert "Hotel Casa Azul" in system.content
    assert "Answer in Spanish" in system.content
    assert "[Doc 1 › Section 1]\nEl desayuno es de 7:15 a 10:30." in system.content
    assert prompt.messages[-1] == ChatMessage("user", "¿A qué hora es el desayuno?")
    english = build_prompt(
        hotel="H", question="What time is breakfast?", passages=[], history=[], budget=1000
    )
    assert "Answer in English" in english.messages[0].content
    assert "(no relevant passage found)" in english.messages[0].content


def test_prompt_tells_the_model_to_answer_in_portuguese_or_french() -> None:
    for question, language in (
        ("que horas abre o restaurante", "Portuguese"),
        ("a quelle heure ouvre le restaurant", "French"),
    ):
        prompt = build_prompt(hotel="H", question=question, passages=[], history=[], budget=1000)
        assert f"Answer in {language}, the language" in prompt.messages[0].content, question


def test_budget_keeps_best_passages_and_newest_turns() -> None:
    passages = [_hit(n, f"passage {n} " + "word " * 60) for n in range(1, 9)]
    history = [
        ChatMessage("user" if i % 2 == 0 else "assistant", f"turn {i} " + "x " * 40)
        for i in range(10)
    ]
    prompt = build_prompt(
        hotel="H", question="and the pool?", passages=passages, history=history, budget=400
    )
    assert sum(prompt.tokens.values()) <= 400 + 8
    assert [p.id for p in prompt.passages] == list(range(1, len(prompt.passages) + 1))
    assert 0 < len(prompt.passages) < 8
    turns = prompt.messages[1:-1]
    assert turns, "some history fits"
    assert turns[-1].content.startswith("turn 9"), "the newest turn is kept first"
    assert prompt.tokens["history"] == sum(estimate_tokens(t.content) + 4 for t in turns)


def test_an_empty_budget_still_sends_instructions_and_question() -> None:
    prompt = build_prompt(
        hotel="H",
        question="hola",
        passages=[_hit(1, "texto")],
        history=[ChatMessage("user", "antes")],
        budget=0,
    )
    assert [m.role for m in prompt.messages] == ["system", "user"]
    assert prompt.passages == []
