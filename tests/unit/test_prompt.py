"""The prompt builder: instructions, passages, recent turns, all within the budget."""

from __future__ import annotations

from posada.answers.context_window import best_sentence, sentences, window
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


MANUAL = (
    "Bienvenidos a la casa. La recepción abre todos los días. El check-out es a las 12:00 del "
    "mediodía. Si necesitan más tiempo, pregunten en recepción. Las toallas se cambian cada "
    "dos días. El desayuno no está incluido.\n"
    "- Piscina: de 8:00 a 20:00\n"
    "- Gimnasio: en el primer piso"
)


def test_sentences_split_prose_and_keep_list_items_whole() -> None:
    units = sentences(MANUAL)
    assert units[2] == (0, "El check-out es a las 12:00 del mediodía.")
    assert units[-2:] == [(1, "- Piscina: de 8:00 a 20:00"), (2, "- Gimnasio: en el primer piso")]
    assert sentences("Son las 7 p.m. y cierra. Abre a las 3.5 km") == [
        (0, "Son las 7 p.m. y cierra."),
        (0, "Abre a las 3.5 km"),
    ]


def test_the_window_keeps_the_matching_sentence_and_its_neighbours() -> None:
    question = "a que hora es el check-out?"
    assert best_sentence(question, sentences(MANUAL)) == 2
    one = window(question, MANUAL, around=1)
    assert one == (
        "La recepción abre todos los días. El check-out es a las 12:00 del mediodía. "
        "Si necesitan más tiempo, pregunten en recepción."
    )
    two = window(question, MANUAL, around=2)
    assert two.startswith("Bienvenidos a la casa.")
    assert two.endswith("cada dos días.")
    # An English question finds the Spanish time by the kind of value it asks for.
    assert "12:00" in window("what time do we leave the room", MANUAL, around=0)
    # Sentences of other lines keep their own lines.
    assert window("hasta que hora la piscina", MANUAL, around=1).split("\n") == [
        "El desayuno no está incluido.",
        "- Piscina: de 8:00 a 20:00",
        "- Gimnasio: en el primer piso",
    ]


def test_a_window_at_an_edge_or_without_a_match_keeps_as_many_sentences() -> None:
    edge = window("gimnasio piso", MANUAL, around=1)
    assert edge.split("\n") == [
        "El desayuno no está incluido.",
        "- Piscina: de 8:00 a 20:00",
        "- Gimnasio: en el primer piso",
    ]
    opening = window("zzz qqq", MANUAL, around=1)
    assert opening == (
        "Bienvenidos a la casa. La recepción abre todos los días. "
        "El check-out es a las 12:00 del mediodía."
    )
    assert window("check-out", "Una frase. Otra frase.", around=1) == "Una frase. Otra frase."


def test_the_prompt_sends_windows_of_at_most_max_passages_within_the_budget() -> None:
    passages = [_hit(n, MANUAL.replace("12:00", f"{10 + n}:00")) for n in range(1, 6)]
    question = "a que hora es el check-out?"
    small = build_prompt(
        hotel="H", question=question, passages=passages, history=[], budget=1000,
        max_passages=2, around=1,
    )  # fmt: skip
    assert [p.id for p in small.passages] == [1, 2]
    context = small.messages[0].content
    assert (
        "[Doc 1 › Section 1]\nLa recepción abre todos los días. El check-out es a las 11:00"
        in context
    )
    assert "Bienvenidos" not in context
    assert "Gimnasio" not in context
    assert "es a las 12:00" in context
    assert "13:00" not in context
    # The old mode: every passage whole, as many as the budget takes.
    whole = build_prompt(hotel="H", question=question, passages=passages, history=[], budget=1000)
    assert len(whole.passages) == 5
    assert whole.messages[0].content.count("Gimnasio") == 5
    assert whole.tokens["context"] > 3 * small.tokens["context"]
    # A window still counts against the budget: a tight one takes fewer of them.
    tight = build_prompt(
        hotel="H", question=question, passages=passages, history=[], budget=180, around=1
    )
    assert 0 < len(tight.passages) < 5
    assert sum(tight.tokens.values()) <= 180 + 8


def test_a_short_history_takes_only_the_room_it_needs_from_the_passages() -> None:
    passages = [_hit(n, f"passage {n} " + "word " * 60) for n in range(1, 5)]
    short = [ChatMessage("user", "hola"), ChatMessage("assistant", "¡Hola! ¿En qué te ayudo?")]
    alone = build_prompt(
        hotel="H", question="y la piscina?", passages=passages, history=[], budget=360
    )
    both = build_prompt(
        hotel="H", question="y la piscina?", passages=passages, history=short, budget=360
    )
    assert len(both.passages) == len(alone.passages) == 3
    assert both.messages[1:-1] == short
    # A long one still leaves the passages their share (context_share of the room).
    long = [ChatMessage("user", "x " * 400)] * 2
    squeezed = build_prompt(
        hotel="H", question="y la piscina?", passages=passages, history=long, budget=360
    )
    assert len(squeezed.passages) == 2
