"""Is it the same question? The guard in front of every reused answer (semantic cache, FAQ).

Similar is not the same: with the local model, "¿A qué hora es el check-in?" is nearer to
"¿A qué hora es el check-out?" than to many of its own paraphrases. An answer is reused
only when the new question is near enough AND asks about the same things:

- the same language (a Spanish answer does not serve an English question);
- the same kind of answer wanted: a time, a price, a place, a way, a code, a yes or no
  ("¿Hay caja fuerte?" is not "¿Cuál es el código de la caja fuerte?");
- the same concepts, from a small lexicon of what guests ask about, where near misses
  live: check-in / check-out, early / late, breakfast / lunch / dinner, pool / gym, Wi-Fi /
  door, diving / snorkelling, ...;
- the same other words of substance, outside that lexicon ("the lobby Wi-Fi" is not
  "the Wi-Fi of my room"; "a kids' club" is not "children");
- the same numbers (room 12 is not room 21; a date is not another date);
- the same names (capitalised words inside the sentence: "Coralina Divers" is not
  "Museo del Mar");
- no word marking the guest's own stay or the time of asking ("my booking", "today"):
  such questions are never reused at all (`is_reusable`).

The evidence check (the reused answer's main source is the new question's best passage)
is the caller's: it needs the retrieval.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from posada.answers.language import detect_language

# Surface forms (accents folded, lower case) -> the concept they name. Longer forms are
# matched first, so "late check-out" is {late, checkout}, never a bare "check".
_LEXICON: dict[str, tuple[str, ...]] = {
    "checkin": (
        "check in", "checkin", "check-in", "entrada", "llegada", "llegar", "llego", "entrar",
        "arrive", "arrival", "get into", "get the room", "ingreso",
    ),
    "checkout": (
        "check out", "checkout", "check-out", "salida", "salir", "dejar la habitacion", "leave",
        "vacate", "departure", "ultimo dia", "last day", "quedarme",
    ),
    "early": ("early", "temprano", "antes", "before"),
    "late": ("late", "tarde", "later", "despues", "after"),
    "breakfast": ("breakfast", "desayuno", "desayunar"),
    "lunch": ("lunch", "almuerzo", "almorzar"),
    "dinner": ("dinner", "cena", "cenar", "supper"),
    "pool": ("pool", "piscina", "swim", "nadar"),
    "gym": ("gym", "gimnasio"),
    "spa": ("spa", "massage", "masaje"),
    "wifi": ("wifi", "wi-fi", "internet", "red"),
    "door": ("door", "puerta", "key box", "caja de llaves", "llave", "key"),
    "safe": ("safe", "caja fuerte"),
    "diving": ("dive", "diving", "buceo", "bucear", "inmersion"),
    "snorkel": ("snorkel", "snorkelling", "snorkeling", "careteo"),
    "parking": ("parking", "park", "parqueadero", "parquear", "estacionamiento", "carro", "car"),
    "airport": ("airport", "aeropuerto"),
    "laundry": ("laundry", "lavanderia", "lavar", "wash", "ropa", "clothes"),
    "luggage": ("luggage", "bags", "suitcases", "equipaje", "maletas", "consigna"),
    "payment": ("payment", "pay", "pagar", "pago", "tarjeta", "card", "nequi", "cash", "efectivo"),
    "pets": ("pet", "pets", "dog", "cat", "mascota", "mascotas", "perro", "gato"),
    "smoking": ("smoke", "smoking", "vape", "fumar", "fumadores", "vapear"),
    "cancel": ("cancel", "cancellation", "cancelar", "cancelacion", "refundable", "reembolsable"),
    "children": ("baby", "cot", "crib", "children", "kids", "bebe", "cuna", "ninos", "extra bed"),
    "beach": ("beach", "playa", "beaches", "playas"),
    "reception": ("reception", "front desk", "recepcion"),
    "hot_water": ("hot water", "agua caliente", "water heater", "calentador"),
    "restaurant": ("restaurant", "restaurante"),
    "price": ("how much", "cuanto cuesta", "cuanto vale", "price", "precio", "cost", "costo"),
}  # fmt: skip

# Each concept's forms, longest first (sorted once, not at every question).
_FORMS = [(concept, sorted(forms, key=len, reverse=True)) for concept, forms in _LEXICON.items()]

# The guest's own stay, or the moment of asking: the answer is theirs alone, or expires.
_PERSONAL = re.compile(
    r"\b(my (booking|reservation|stay|bill|balance|check-?out|check-?in|room number|flight"
    r"|arrival|departure)|mi (reserva|estad[ií]a|cuenta|saldo|factura|check-?out|check-?in"
    r"|llegada|salida|vuelo)|i owe|debo pagar|cu[aá]nto debo"
    r"|today|tonight|tomorrow|right now|this (morning|afternoon|evening|week)|now"
    r"|hoy|esta (noche|tarde|ma[nñ]ana|semana)|ma[nñ]ana|ahora)\b",
    re.IGNORECASE,
)
# What kind of answer is wanted: a time, a price, a place, a way, a code, a yes or no.
# "¿Hay caja fuerte?" and "¿Cuál es el código de la caja fuerte?" share every concept.
_INTENTS = {
    "time": re.compile(
        r"\b(what time|when|a que hora|hasta que hora|desde que hora|cuando|horario|hours?|hora)\b"
    ),
    "price": re.compile(r"\b(how much|cuanto|cuanta|price|precio|cost|costs|costo|cobran|fee)\b"),
    "place": re.compile(r"\b(where|donde|dnd|adonde)\b"),
    "way": re.compile(r"\b(how (do|can|does|to)|como)\b"),
    "code": re.compile(r"\b(code|codigo|password|contrasena|clave|pin)\b"),
    "yes_no": re.compile(
        r"^(is|are|do|does|can|could|may|hay|tienen|tiene|aceptan|prestan|ofrecen|puedo|"
        r"se puede|existe|me guardan|hacen)\b"
    ),
}
# Words that carry no subject: question words, pronouns, articles, auxiliaries, courtesy.
# fmt: off
_FILLER = frozenset((
    "what", "whats", "when", "where", "which", "who", "why", "how", "much", "many", "the", "and",
    "for", "you", "your", "our", "are", "was", "were", "there", "this", "that", "these", "those",
    "does", "did", "can", "could", "would", "should", "will", "have", "has", "had", "get", "got",
    "any", "some", "with", "about", "from", "into", "please", "thanks", "thank", "also", "just",
    "need", "want", "like", "know", "tell", "give", "find", "room", "rooms", "hotel", "here",
    "time", "hours", "hour", "open", "close", "closes", "que", "cual", "cuales", "cuando",
    "donde", "dnd", "como", "cuanto", "cuanta", "cuantos", "cuantas", "quien", "por", "para",
    "los", "las", "una", "unos", "unas", "del", "con", "sin", "hay", "esta", "estan", "este",
    "esto", "eso", "esa", "ese", "son", "ser", "tienen", "tiene", "tengo", "puedo", "puede",
    "pueden", "podemos", "podria", "quiero", "queria", "necesito", "sabe", "saber", "hora",
    "horas", "horario", "abre", "cierra", "mas", "muy", "tambien", "favor", "gracias",
    "habitacion", "cuarto", "aqui", "alli", "dar", "das", "dame", "decir", "dice", "usted",
    "ustedes", "mis", "tus", "sus", "nos", "les",
))
# fmt: on
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_NAME = re.compile(r"(?<=[\w,;] )([A-ZÁÉÍÓÚÑ][\wáéíóúñ]+(?: [A-ZÁÉÍÓÚÑ][\wáéíóúñ]+)*)")
_GENERIC_NAMES = frozenset({"wifi", "wi-fi", "check", "nequi", "visa", "mastercard", "i"})


def fold(text: str) -> str:
    """Lower case, accents off, punctuation as spaces, one space between words."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s-]", " ", plain).replace("_", " ").split())


def _concepts(folded: str) -> tuple[frozenset[str], str]:
    """The concepts named, and the text left once their words are taken out."""
    found = set()
    padded = f" {folded} "
    for concept, forms in _FORMS:
        for form in forms:
            if f" {form} " in padded:
                found.add(concept)
                padded = padded.replace(f" {form} ", " ")
    return frozenset(found), padded


def _content(rest: str) -> frozenset[str]:
    """Words of substance outside the lexicon ("lobby", "club"), crudely singular."""
    words = set()
    for word in rest.split():
        if len(word) < 3 or word in _FILLER or word.isdigit():
            continue
        words.add(word[:-1] if word.endswith("s") and len(word) > 4 else word)
    return frozenset(words)


@dataclass(frozen=True)
class Signature:
    """What a question asks about, as far as the guard compares."""

    language: str
    intents: frozenset[str]
    concepts: frozenset[str]
    content: frozenset[str]
    numbers: frozenset[str]
    names: frozenset[str]


def signature(question: str) -> Signature:
    """The guard's view of a question."""
    folded = fold(question)
    concepts, rest = _concepts(folded)
    names = frozenset(fold(n) for n in _NAME.findall(question) if fold(n) not in _GENERIC_NAMES)
    return Signature(
        language=detect_language(question),
        intents=frozenset(name for name, pattern in _INTENTS.items() if pattern.search(folded)),
        concepts=concepts,
        content=_content(rest),
        numbers=frozenset(n.replace(",", ".") for n in _NUMBER.findall(question)),
        names=names,
    )


def is_reusable(question: str) -> bool:
    """Whether an answer to this question may be cached or served from a cache at all."""
    return _PERSONAL.search(question) is None


def same_question(asked: Signature, cached: Signature) -> bool:
    """Whether two questions ask the same thing, for the guard's part (no similarity)."""
    return (
        asked.language == cached.language
        and asked.intents == cached.intents
        and asked.concepts == cached.concepts
        and asked.content == cached.content
        and asked.numbers == cached.numbers
        and asked.names == cached.names
    )
