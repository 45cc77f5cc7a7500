"""What is not content in a document as hotels write it, taken out before chunking.

Hotel documents come out of templates and export tools. Besides their facts they carry
extraction comments (`<!-- EXTRAE: base_price -->`), anchors (`{#tarifas}`), placeholder
lines for what nobody wrote yet (`[PENDING_SCRAPING: Horario de check-in]`), image
galleries, decorative emoji and bold markers. Left in, they are embedded, searched and
shown to guests; a section holding only a placeholder even became an FAQ "answer".
Every rule here is about the shape of the text, never about one hotel's words.
"""

from __future__ import annotations

import re

_COMMENT = re.compile(r"<!--.*?(-->|\Z)", re.DOTALL)
_ANCHOR = re.compile(r"\s*\{#[^}\n]*\}")
# `[PENDING_SCRAPING: ...]`, `[TODO]`, `[TBD: precio]`: an upper-case tag in brackets.
_PLACEHOLDER = re.compile(r"\[(?:[A-Z][A-Z0-9]*_)*[A-Z]{3,}[A-Z0-9_]*(?::[^\]\n]*)?\](?!\()")
_IMAGE_URL = re.compile(r"https?://\S+\.(?:jpe?g|png|gif|webp|svg|avif)(?:\?\S*)?", re.IGNORECASE)
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
# Pictographs, dingbats, flags, and the joiners and variation selectors that build them.
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U00002b00-\U00002bff"
    "\U0001f1e6-\U0001f1ff\u200d\ufe0e\ufe0f\u20e3\u2190-\u21ff]"
)
_RULE = re.compile(r"(-{3,}|\*{3,}|_{3,})")
# What is left of a line once its label is gone: "- Imagen 3:" with nothing after it.
_LABEL_ONLY = re.compile(r"^[-*+]?\s*[^:]{0,40}:?\s*$")
_QA_MARK = re.compile(r"^(\s*(?:[-*+]\s+)?)(Q|A|P|R)\s*:\s*", re.IGNORECASE)


def strip_inline(text: str) -> str:
    """One line without comments, anchors, placeholders, images, emoji and bold markers."""
    text = _COMMENT.sub("", text)
    text = _ANCHOR.sub("", text)
    text = _PLACEHOLDER.sub("", text)
    text = _IMAGE.sub("", text)
    text = _LINK.sub(_link, text)
    text = _EMOJI.sub("", text)
    text = text.replace("**", "").replace("__", "")
    return re.sub(r"[ \t]+", " ", text).strip()


def _link(match: re.Match[str]) -> str:
    label, address = match[1], match[2]
    # "[https://x.com](https://x.com)" says its address once; a label keeps its address.
    return label if label.strip() == address.strip() else f"{label} ({address})"


def clean_lines(lines: list[str]) -> list[str]:
    """The lines worth reading: no rules, no comment lines, no placeholders or galleries.

    A line that was only a placeholder, an image or an image address goes; so does a label
    whose value was one ("- Imagen 3: https://.../x.jpg"). Indentation is kept, so lists
    stay lists.
    """
    text = _COMMENT.sub("", "\n".join(lines))  # comments may span lines
    kept: list[str] = []
    for line in text.split("\n"):
        if _RULE.fullmatch(line.strip()):
            continue
        had_noise = bool(
            _PLACEHOLDER.search(line) or _IMAGE_URL.search(line) or _IMAGE.search(line)
        )
        cleaned = _IMAGE_URL.sub("", line)
        indent = re.match(r"\s*", cleaned)
        lead = indent[0] if indent else ""
        cleaned = strip_inline(cleaned)
        if had_noise and (not cleaned or _LABEL_ONLY.fullmatch(cleaned)):
            continue
        kept.append(f"{lead}{cleaned}" if cleaned else "")
    return kept


def clean_block(lines: list[str]) -> str:
    """A section's text, cleaned, with at most one blank line in a row."""
    text = "\n".join(clean_lines(lines))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def qa_marker(line: str) -> tuple[str, str] | None:
    """('Q' or 'A', the rest) for a 'Q: ...' / 'A: ...' line (also P:/R:), else None."""
    match = _QA_MARK.match(line)
    if match is None:
        return None
    mark = match[2].upper()
    return ("Q" if mark in ("Q", "P") else "A"), line[match.end() :].strip()


def clean_heading(text: str) -> str:
    """A heading as guests should read it: no anchor, markers, emoji or trailing colon."""
    return strip_inline(text).strip(" :")
