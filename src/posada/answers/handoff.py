"""Whether a guest's message asks for a person instead of posada (no LLM call).

"I want to talk to a human at reception" is a request; "is there someone at reception at
night?" is a question about the staff, which posada answers. A request names a person
(a human, someone, reception, the manager...) as whom the guest wants to talk to, be
contacted by, or have instead of posada; a question asks when, where or whether. The
words are the guest page's four languages' own (es, en, pt, fr), nothing of a hotel's
documents, so the next hotel needs nothing changed. Built on the labelled messages of
tests/unit/handoff_labels.py (tuning) and measured on a set written after it was frozen.
"""

from __future__ import annotations

import re

from posada.core.text import fold

# Who a guest may ask for, folded (lower case, no accents, apostrophes as spaces).
_PERSON = r"""human|humans|person|someone|somebody|anyone|anybody|staff|staff member|
    member of staff|reception|receptionist|front desk|desk|agent|operator|manager|employee|
    humano|humana|persona|alguien|recepcion|recepcionista|encargado|encargada|gerente|
    empleado|empleada|agente|operador|personal|
    pessoa|alguem|recepcao|atendente|funcionario|funcionaria|responsavel|
    humain|personne|quelqu un|receptionniste|responsable|employe|employee"""
# Persons that, wanted or said alone, can only mean "not posada".
_STRONG = r"""human|real person|agent|operator|person|humano|persona|persona real|agente|
    pessoa|atendente|humain|personne|vraie personne"""
# Talking to someone, or being put through to them.
_TALK = r"""talk|speak|chat|contact|reach|transfer|connect|through|
    hablar|comunicar|comunicarme|comuniqueme|comunica|contactar|chatear|pasame|pasa|
    falar|conversar|contatar|passa|
    parler|discuter|contacter|joindre|passez"""
# Being contacted by someone ("can someone call me", "que me escriba alguien").
_CONTACTS_ME = r"""contact me|message me|call me|text me|write me|get back to me|
    me contactar|me contacte|me escriba|me escriban|me atienda|me llame|me llamen|
    me chamar|me chame|me puede contactar|me pueden contactar|me puede llamar|
    me pode chamar|me pode contatar|me ligue|me liguem|me contatar|me contacter|m appeler|
    me rappeler"""
_WANT = r"""want|need|d like|would like|get me|quiero|necesito|quisiera|quero|preciso|
    gostaria|veux|voudrais|besoin|souhaite"""
_ARTICLE = r"(?:(?:a|an|un|una|um|uma|une|de|d|the|el|la|o|a)\s+){0,2}"
_CAN = r"(?:i\s+)?(?:can|could|may|pueda|puedo|possa|posso|eu possa|je peux|je puisse|peux)"
_POLITE = r"(?:please|por favor|porfa|s il vous plait|svp)"


def _words(alternatives: str) -> str:
    return "|".join(w.strip().replace(" ", r"\s+") for w in alternatives.split("|"))


_P, _S = _words(_PERSON), _words(_STRONG)
_REQUEST = re.compile(
    rf"""\b(?:{_words(_TALK)})\b(?:\s+\S+){{0,4}}?\s+(?:{_P})\b
    |\b(?:{_P})\b(?:\s+\S+){{0,3}}?\s+{_CAN}\s+(?:{_words(_TALK)})\b
    |\b(?:{_words(_CONTACTS_ME)})\b
    |\b(?:{_words(_WANT)})\s+{_ARTICLE}(?:{_S})\b""",
    re.VERBOSE,
)
_BARE = re.compile(rf"(?:{_POLITE}\s+)?{_ARTICLE}(?:{_S}|{_P})(?:\s+{_POLITE})?")
_CONTACTED = re.compile(rf"\b(?:{_words(_CONTACTS_ME)})\b")
_PERSON_RE = re.compile(rf"\b(?:{_P})\b")
# Asking when, where or how to reach someone is a question about the staff.
_ASKS = re.compile(
    r"""^(?:what\s+time|when|where|how|at\s+what|a\s+que\s+hora|cuando|donde|como|
    a\s+que\s+horas|que\s+horas|quando|onde|a\s+quelle\s+heure|quand|ou|comment)\b""",
    re.VERBOSE,
)
# "Do I need to talk to reception to get towels?": whether it is needed, not a wish.
_MUST = re.compile(
    r"""\b(?:do\s+i\s+(?:need|have)\s+to|should\s+i|must\s+i|tengo\s+que|hay\s+que|debo|
    tenho\s+que|devo|dois\s+je|faut\s+il|preciso)\b.*\b(?:to\s+get|para|pour|in\s+order)\b""",
    re.VERBOSE,
)
_NOT = re.compile(
    r"\b(?:don\s+t|do\s+not|no|nao|ne|pas|never|nunca|jamais)\s+(?:want|quiero|quero|veux)\b"
)


def asks_for_person(message: str) -> bool:
    """Whether the guest asks to talk to a person (and not about the staff)."""
    text = fold(message.replace("’", "'").replace("-", " "))
    if not text or len(text) > 300:
        return False
    if _BARE.fullmatch(text) and not text.startswith(("reception", "recepcion")):
        return True
    if _ASKS.match(text) or _NOT.search(text):
        return False
    if "?" in message and _MUST.search(text):
        return False
    if _CONTACTED.search(text) and not _PERSON_RE.search(text):
        return False
    return _REQUEST.search(text) is not None
