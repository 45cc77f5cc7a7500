"""Choosing the model tier and the retrieval text without calling a model."""

from __future__ import annotations

import re
import unicodedata

from posada.providers.llm import ChatMessage
from posada.providers.registry import Tier

_FOLLOW_UP = re.compile(
    r"^\s*[¿¡]?\s*(y|e|and|also|tambi[eé]n|what about|how about|and the|y el|y la|y los|"
    r"y las|and on|y en)\b",
    re.IGNORECASE,
)
# Words that say nothing of what is asked about: a question made only of these ("how much
# is it?", "¿cuánto cuesta?", "what time?") leans on the one before it.
# fmt: off
_FUNCTION_WORDS = frozenset((
    "what", "when", "where", "how", "which", "who", "why", "much", "many", "is", "are", "was",
    "were", "be", "the", "a", "an", "it", "its", "that", "this", "there", "they", "them", "those",
    "these", "do", "does", "did", "can", "could", "may", "i", "we", "you", "me", "my", "our",
    "your", "to", "of", "for", "in", "on", "at", "by", "with", "and", "or", "also", "about",
    "cost", "costs", "price", "open", "close", "closes", "time", "hours", "hour", "please", "ok",
    "okay", "then", "one", "ones", "que", "qué", "cual", "cuál", "cuales", "cuáles", "cuando",
    "cuándo", "donde", "dónde", "como", "cómo", "cuanto", "cuánto", "cuanta", "cuánta", "cuantos",
    "cuántos", "quien", "quién", "por", "para", "el", "la", "los", "las", "un", "una", "unos",
    "unas", "es", "son", "está", "esta", "están", "estan", "hay", "y", "e", "o", "u", "de", "del",
    "a", "al", "en", "con", "lo", "le", "les", "eso", "esa", "ese", "esto", "ahí", "ahi", "allí",
    "alli", "me", "mi", "mis", "se", "nos", "puedo", "puede", "podemos", "cuesta", "cuestan",
    "vale", "valen", "precio", "hora", "horas", "horario", "abre", "cierra", "también", "tambien",
    "tiene", "tienen", "favor", "entonces",
))
# fmt: on
_WORD = re.compile(r"[\wáéíóúñü-]+", re.IGNORECASE)
# What makes a question need the large tier, by meaning (matched on lowercase text with
# accents removed, Spanish, English, Portuguese, French). One is enough.
_NEEDS_LARGE = re.compile(
    r"\b("
    # advice and recommendations
    r"recomend\w*|recommend\w*|recomiend\w*|suger\w*|sugier\w*|suggest\w*|aconsej\w*|conseil\w*|"
    r"consejos?|tips|should (i|we)|deberia\w*|(anything|something|things|what) to do|"
    r"(algo|cosas) (para|que) hacer"
    # planning
    r"|plan|planea\w*|planifica\w*|itinerar\w*|organi[zs]\w*"
    # comparing and judging
    r"|compar\w*|mejor|better|best|melhor|meilleur\w*|worth|vale la pena|vaut le coup|"
    r"conviene|diferencia|difference|which one|cual de (los|las)"
    # explaining: steps and reasons
    r"|explic\w*|explain\w*|expliqu\w*|walk me through|how (do|does|can|should) (i|we|you|it)|"
    r"como (hago|funciona|se usa|llego|puedo|podemos)|why|por que|pourquoi"
    # a situation to handle: what to do about it
    r"|what (should|can|could|do|would) (i|we|you) do|que (hago|hacemos|hacer|"
    r"puedo hacer|podemos hacer|pueden hacer)|what happens|que pasa con|help|ayuda|"
    r"urgente?|emergenc\w*"
    # complaints: something broken, wrong or never done
    r"|no funciona|not working|(doesn|isn|won)'?t work\w*|broken|ne marche|nao funciona|"
    r"quej\w*|complain\w*|reclam\w*|ruido|noise|loud|nunca|never|(in|un)?aceptable|"
    r"(in|un)?acceptable|charged|cobraron"
    r")\b"
)
# A second request joined to the first: "y también", "and also", or a conjunction (or a
# comma) opening a new question ("... y cuánto cuesta?", "..., and can we park?"). An
# unaccented "que" opens one only after a comma and before a question mark ("somos
# celíacos, qué podemos comer?"); elsewhere it is mostly "that" ("ya sé que es tarde").
_JOINED = re.compile(
    r"\b(y tambien|y ademas|and also|as well as|e tambem|et aussi)\b|,\s*que\b(?=[^?]*\?)"
    r"|(,|\by\b|\be\b|\band\b|\bet\b)\s+(si\b|if\b|cuanto|cuando|donde|como|cual|"
    r"quien|what|when|where|how|which|who|is\b|are\b|do\b|does\b|can\b|could\b|"
    r"will\b|hay\b|se puede|puedo\b|podemos\b)"
)
# A condition ("si cancelo hoy...", "if we arrive early...") opening the message or a
# clause; "si" inside a clause is mostly "whether" ("dime si hay toallas"), and one
# standing alone is "yes" typed without its accent.
_CONDITION = re.compile(r"(^|[,;:.!?]\s*)(si|if)\b(?!\s*([,.!]|$))")  # not "si, gracias"
# Something wrong, said rather than asked ("this isn't the room I booked"): a negation in
# a message that asks nothing (no question mark, no question word among its first words).
_NEGATION = re.compile(r"\b(no|not|nao|pas)\b|n't\b")
_ASKING = re.compile(
    r"[?]|^(\S+\s+){0,2}(que|cuanto|cuando|donde|como|cual|what|when|where|how|which)\b"
)
_QUESTION = re.compile(r"([^?]*)\?+")
LONG_WORDS = 50  # a message this long tells a story, whatever it asks


def _plain(text: str) -> str:
    """Lowercase without accents, so one spelling matches guests who type none."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _asks(question: str) -> int:
    """How many things the message asks: its questions of three words or more ("hola??
    alguien ahí?" only calls for attention), plus requests joined to one another."""
    text = _plain(question).lstrip(" ¿¡")
    marked = sum(len(_WORD.findall(q)) >= 3 for q in _QUESTION.findall(text))
    # a conjunction opening the message ("¿y cuánto cuesta?") joins it to the last answer
    joined = sum(m.start() > 0 for m in _JOINED.finditer(text))
    return max(1, marked) + joined


def choose_tier(question: str) -> Tier:
    """Large when answering needs more than one fact looked up: advice, a plan, a
    comparison, an explanation, a complaint, several questions, or a long story."""
    text = _plain(question)
    # "sí" (yes) is not "si" (if): the condition is read before accents are dropped
    condition = _CONDITION.search(question.lower().lstrip(" ¿¡"))
    if _NEEDS_LARGE.search(text) or condition or _asks(question) >= 2:
        return "large"
    if _NEGATION.search(text) and not _ASKING.search(text):
        return "large"
    return "large" if len(question.split()) > LONG_WORDS else "small"


def is_follow_up(question: str) -> bool:
    """A question leaning on the one before ("¿y el desayuno?", "how much is it?").

    It opens with "and", "y", "what about"..., or names nothing of its own: every word is a
    question word, a pronoun or a verb like "cost". "Check-out time?" and "wifi password"
    stand alone, however short.
    """
    if _FOLLOW_UP.match(question):
        return True
    words = [w.lower() for w in _WORD.findall(question)]
    return bool(words) and all(w in _FUNCTION_WORDS or w.isdigit() for w in words)


def retrieval_text(
    question: str, history: list[ChatMessage], *, follow_up: bool | None = None
) -> str:
    """What to search for: a follow-up (`follow_up`, found unless given) carries the
    guest's previous question along."""
    if not (is_follow_up(question) if follow_up is None else follow_up):
        return question
    previous = next((m.content for m in reversed(history) if m.role == "user"), None)
    return f"{previous} {question}" if previous else question
