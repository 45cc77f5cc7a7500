"""May an answer given before answer this question? The guard in front of every reuse.

Similar is not the same: "¿A qué hora es el check-in?" sits next to "¿A qué hora es el
check-out?" in any embedding space. Demanding the same words, though, reuses nothing: a
hotel's guests never type a question the same way twice. So a reuse (semantic cache or
FAQ entry) needs three things, none of them tied to one hotel's vocabulary:

- the same evidence: the passage the earlier answer came from is this question's best
  passage (the caller checks it; it needs the retrieval);
- near enough: the embedding similarity clears a threshold calibrated on labelled
  rewordings (`POSADA_SEMANTIC_MIN_SIMILARITY`, `POSADA_FAQ_REUSE_MIN_SIMILARITY`);
- nothing in conflict (`conflicts`):
  - another language (a Spanish answer does not serve an English question);
  - other numbers (room 12 is not room 21; a date is not another date);
  - other names (capitalised words inside the sentence: "Coralina" is not "Jammin");
  - another kind of answer wanted, when both say: a time, a price, a place, a code, a yes
    or no ("¿Hay caja fuerte?" is not "¿Cuál es el código de la caja fuerte?");
  - the other side of a contrast guests draw everywhere: check-in / check-out, early /
    late, breakfast / lunch / dinner, opening / closing, low / high season, adults /
    children, the building / the room. Words in four languages; a question that names
    one side is never served the answer about the other, or about neither.

Questions about the guest's own stay or the moment of asking ("my booking", "tonight")
are never reused at all (`is_reusable`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from posada.core.language import detect_language
from posada.core.text import fold
from posada.knowledge.retrieval import Hit

# Each contrast: its sides and the forms (accents folded, lower case) that name them. Longer
# forms are matched first, so "late check-out" is {late, checkout}, never a bare "check".
_CONTRASTS: dict[str, dict[str, tuple[str, ...]]] = {
    "stay_end": {
        "checkin": (
            "check in", "checkin", "check-in", "entrada", "llegada", "llegar", "llego",
            "arrive", "arrival", "arriver", "arrivee", "chegada", "chegar",
        ),
        "checkout": (
            "check out", "checkout", "check-out", "salida", "salir", "dejar la habitacion",
            "leave", "vacate", "departure", "depart", "liberer", "saida", "sair",
            "entregar el cuarto", "entregar la habitacion",
        ),
    },
    "timing": {
        "early": ("early", "temprano", "antes de", "cedo", "tot"),
        "late": ("late", "tarde", "tardio", "mas tarde", "tarde demais"),
    },
    "meal": {
        "breakfast": ("breakfast", "desayuno", "desayunar", "cafe da manha", "petit dejeuner"),
        "lunch": ("lunch", "almuerzo", "almorzar", "almoco", "dejeuner"),
        "dinner": ("dinner", "cena", "cenar", "supper", "jantar", "diner"),
    },
    "hours": {
        "opens": ("open", "opens", "abre", "abren", "apertura", "ouvre", "abrem"),
        "closes": ("close", "closes", "cierra", "cierran", "cierre", "ferme", "fecha", "fecham"),
    },
    "season": {
        "low": ("low season", "temporada baja", "baja temporada", "basse saison", "baixa"),
        "high": ("high season", "temporada alta", "alta temporada", "haute saison"),
    },
    "age": {
        "adults": ("adult", "adults", "adulto", "adultos", "adulte", "adultes"),
        "children": (
            "child", "children", "kid", "kids", "nino", "ninos", "menor", "menores", "bebe",
            "baby", "enfant", "enfants", "crianca", "criancas",
        ),
    },
    "door": {
        "building": ("building", "edificio", "porton", "main door", "batiment", "predio", "reja"),
        "unit": (
            "room", "habitacion", "cuarto", "apartamento", "apartment", "apto", "chambre",
            "quarto", "appartement",
        ),
    },
}  # fmt: skip

# Contrasts that matter only to one kind of answer: "the room" sets a code apart from the
# building's, while "wifi in the room?" and "wifi?" ask the same.
_ONLY_FOR = {"door": "code"}

# Each side's forms, longest first (sorted once, not at every question).
_FORMS = sorted(
    ((f"{contrast}:{side}", form) for contrast, sides in _CONTRASTS.items()
     for side, forms in sides.items() for form in forms),
    key=lambda pair: len(pair[1]),
    reverse=True,
)  # fmt: skip

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
        r"\b(what time|when|a que hora|hasta que hora|desde que hora|cuando|horario|hours?|hora"
        r"|que horas|a que horas|quelle heure|heure|horaire)\b"
    ),
    "price": re.compile(
        r"\b(how much|cuanto|cuanta|price|precio|cost|costs|costo|cobran|fee|quanto|preco|custa"
        r"|combien|prix|tarif)\b"
    ),
    "place": re.compile(r"\b(where|donde|dnd|adonde|onde)\b"),
    "way": re.compile(r"\b(how (do|can|does|to)|como|comment)\b"),
    "code": re.compile(r"\b(code|codigo|password|contrasena|clave|pin|senha|mot de passe)\b"),
    "yes_no": re.compile(
        r"^(is|are|do|does|can|could|may|hay|tienen|tiene|aceptan|prestan|ofrecen|puedo|"
        r"se puede|existe|me guardan|hacen|tem|voces tem|posso|est ce que|y a t il|avez vous)\b"
    ),
}
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_NAME = re.compile(r"(?<=[\w,;] )([A-ZÁÉÍÓÚÑ][\wáéíóúñ]+(?: [A-ZÁÉÍÓÚÑ][\wáéíóúñ]+)*)")
_GENERIC_NAMES = frozenset({"wifi", "wi-fi", "check", "nequi", "visa", "mastercard", "i"})


def _sides(folded: str) -> frozenset[str]:
    """The contrast sides a question names ("stay_end:checkout", "meal:breakfast")."""
    found = set()
    padded = f" {folded} "
    for side, form in _FORMS:
        if f" {form} " in padded:
            found.add(side)
            padded = padded.replace(f" {form} ", " ")
    return frozenset(found)


@dataclass(frozen=True)
class Signature:
    """What a question asks about, as far as the guard compares."""

    language: str
    intents: frozenset[str]
    sides: frozenset[str]  # "contrast:side"
    numbers: frozenset[str]
    names: frozenset[str]


def signature(question: str, *, language: str | None = None) -> Signature:
    """The guard's view of a question (in `language`, detected unless given)."""
    folded = fold(question)
    names = frozenset(fold(n) for n in _NAME.findall(question) if fold(n) not in _GENERIC_NAMES)
    return Signature(
        language=language or detect_language(question),
        intents=frozenset(name for name, pattern in _INTENTS.items() if pattern.search(folded)),
        sides=_sides(folded),
        numbers=frozenset(n.replace(",", ".") for n in _NUMBER.findall(question)),
        names=names,
    )


def is_reusable(question: str) -> bool:
    """Whether an answer to this question may be cached or served from a cache at all."""
    return _PERSONAL.search(question) is None


class Anchored(Protocol):
    """An earlier answer (a cached one, an FAQ entry) and the passage it rests on."""

    @property
    def chunk_id(self) -> int | None: ...  # the passage

    @property
    def evidence_similarity(self) -> float | None: ...  # its question's nearness to it


def rests_on(entry: Anchored, chunks: list[Hit], *, within: int, max_drop: float) -> bool:
    """Whether an earlier answer's evidence is among this question's best passages, as firmly.

    Rewordings of one question do not always rank the same passage first (a hotel's
    documents say a thing in several places), so the evidence may be any of the first
    `within` passages. Being there is not enough: "¿Dónde se alquilan bicicletas?" finds
    the kayak passage when nothing else is about renting. So the new question must also
    sit about as near that passage as the entry's own question does (at most `max_drop`
    less similar).
    """
    for hit in chunks[:within]:
        if hit.id == entry.chunk_id:
            anchored = entry.evidence_similarity
            return anchored is None or hit.similarity >= anchored - max_drop
    return False


def conflicts(asked: Signature, cached: Signature) -> bool:
    """Whether anything the two questions say rules out one answer for both."""
    if asked.language != cached.language or asked.numbers != cached.numbers:
        return True
    if asked.names and cached.names and asked.names != cached.names:
        return True  # one naming a place the other does not: the evidence check's to judge
    if asked.intents and cached.intents and not asked.intents & cached.intents:
        return True
    wanted = asked.intents | cached.intents
    contrasts = {side.split(":")[0] for side in asked.sides | cached.sides}
    contrasts = {c for c in contrasts if c not in _ONLY_FOR or _ONLY_FOR[c] in wanted}
    return any(
        {s for s in asked.sides if s.startswith(f"{c}:")}
        != {s for s in cached.sides if s.startswith(f"{c}:")}
        for c in contrasts
    )
