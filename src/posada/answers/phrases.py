"""The fixed sentences a guest reads in a chat answer, in each language posada detects."""

from __future__ import annotations

from typing import Literal

from posada.core.language import Language

Phrase = Literal["no_information", "error", "handoff_waiting", "handoff_back"]

PHRASES: dict[Phrase, dict[Language, str]] = {
    # The extractive answer when nothing relevant was found.
    "no_information": {
        "es": "No tengo esa información. Por favor pregunta en recepción.",
        "en": "I don't have that information. Please ask at reception.",
        "pt": "Não tenho essa informação. Por favor, pergunte na recepção.",
        "fr": "Je n'ai pas cette information. Merci de demander à la réception.",
    },
    # A streamed answer that failed part-way (the `error` event).
    "error": {
        "es": "Algo salió mal; vuelve a preguntar, por favor.",
        "en": "Something went wrong; please ask again.",
        "pt": "Algo deu errado; pergunte de novo, por favor.",
        "fr": "Un problème est survenu ; merci de reposer votre question.",
    },
    # The guest asked for a person (or pressed "talk to reception"): posada stays silent.
    "handoff_waiting": {
        "es": "Una persona de recepción te responderá aquí en breve.",
        "en": "A person from reception will answer you here shortly.",
        "pt": "Uma pessoa da recepção vai responder aqui em breve.",
        "fr": "Une personne de la réception va vous répondre ici sous peu.",
    },
    # Staff handed the conversation back: posada answers again.
    "handoff_back": {
        "es": "Recepción ha terminado; puedo responder tus preguntas otra vez.",
        "en": "Reception has finished; I can answer your questions again.",
        "pt": "A recepção terminou; posso responder às suas perguntas de novo.",
        "fr": "La réception a terminé ; je peux de nouveau répondre à vos questions.",
    },
}


def phrase(key: Phrase, language: str) -> str:
    """The sentence in `language`; English for a language it is not written in (a guest
    who writes neither Spanish nor Portuguese nor French is likelier to read English)."""
    texts = PHRASES[key]
    return texts[language] if language in texts else texts["en"]
