"""Guests' languages: detection of es/en/pt/fr, and fixed answers in the guest's language."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from posada.answers.phrases import PHRASES, phrase
from posada.answers.prompt import LANGUAGES as NAMES
from posada.api.routes import chat as routes
from posada.core.language import LANGUAGES, detect_language
from tests.support.helpers import LoginAs

# Written for this test, none of them in bench/labels/languages.yaml.
MESSAGES = {
    "es": ["a q hora se sirve el almuerzo", "necesito otra almohada", "hay wifi en la playa?"],
    "en": ["can i get a late check out", "where do i leave the key", "is the pool heated"],
    "pt": ["onde fica o elevador", "vcs tem toalha de praia?", "o wifi nao conecta"],
    "fr": ["ou est l'ascenseur", "vous avez des serviettes de plage", "le wifi ne marche plus"],
}


def test_the_test_messages_are_not_the_benchmarks() -> None:
    path = Path(__file__).parents[2] / "bench" / "labels" / "languages.yaml"
    labels = yaml.safe_load(path.read_text(encoding="utf-8"))
    bench = {m for half in labels.values() for messages in half.values() for m in messages}
    assert not bench & {m for messages in MESSAGES.values() for m in messages}


@pytest.mark.parametrize(
    ("language", "message"), [(lang, m) for lang, ms in MESSAGES.items() for m in ms]
)
def test_short_messages_in_each_language(language: str, message: str) -> None:
    assert detect_language(message) == language


@pytest.mark.parametrize("message", ["", "   ", "???", "123", "ok", "👍"])
def test_nothing_to_tell_by_is_spanish(message: str) -> None:
    assert detect_language(message) == "es"


@pytest.mark.parametrize(
    ("message", "language"),
    [("hola", "es"), ("thanks", "en"), ("obrigado", "pt"), ("merci", "fr")],
)
def test_one_word_greetings(message: str, language: str) -> None:
    # The model alone is unsure of these (it reads "hola" as English, "merci" as Spanish).
    assert detect_language(message) == language


def test_every_fixed_phrase_and_language_name_exists_in_each_language() -> None:
    for key, texts in PHRASES.items():
        assert set(texts) == set(LANGUAGES), key
        assert len(set(texts.values())) == len(LANGUAGES), f"{key}: one text per language"
    assert set(NAMES) == set(LANGUAGES)
    assert phrase("error", "de") == PHRASES["error"]["en"]


@pytest.mark.parametrize(
    ("question", "start"),
    [
        ("Tem um heliporto para o meu helicóptero?", "Não tenho essa informação"),
        ("Y a-t-il un héliport pour mon hélicoptère ?", "Je n'ai pas cette information"),
        ("¿Hay un helipuerto para mi helicóptero?", "No tengo esa información"),
    ],
)
async def test_i_dont_know_comes_back_in_the_questions_language(
    client: httpx.AsyncClient, login_as: LoginAs, question: str, start: str
) -> None:
    auth = await login_as("caracola")
    response = await client.post("/api/guest/chat", json={"message": question}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["layer"] == "extractive"
    assert body["answer"].startswith(start)
    assert body["sources"] == []


async def test_a_stream_that_fails_says_so_in_the_guests_language(
    client: httpx.AsyncClient, login_as: LoginAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    # The answer is written, then building the closing `done` event fails.
    monkeypatch.setattr(routes, "_response", broken)
    auth = await login_as("caracola")
    response = await client.post(
        "/api/guest/chat/stream", json={"message": "qual a senha do cofre"}, headers=auth
    )
    assert response.status_code == 200
    last = response.text.strip().split("\n\n")[-1]
    assert last.startswith("event: error")
    assert PHRASES["error"]["pt"] in last
