"""Text as posada compares it: folded for matching, slugged for names in addresses."""

from __future__ import annotations

import re
import unicodedata


def fold(text: str) -> str:
    """Lower case, accents off, punctuation as spaces, one space between words."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s-]", " ", plain).replace("_", " ").split())


def slugify(text: str) -> str:
    """ASCII, lowercase, hyphen-separated: 'Habitación Kaya' -> 'habitacion-kaya'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
