"""Parse a Markdown document with YAML front matter into sections, chunks and FAQ entries.

Pure functions, no I/O: the ingest service reads files and stores what this returns.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from posada.core.errors import InvalidInput
from posada.core.text import slugify
from posada.knowledge.cleaning import clean_heading
from posada.knowledge.facts import fact_lines
from posada.knowledge.sections import (
    HEADING_SEPARATOR,
    MAX_CHUNK_CHARS,
    cut,
    is_question,
    parse_sections,
)

__all__ = ["HEADING_SEPARATOR", "MAX_CHUNK_CHARS", "is_question"]


class DocumentError(InvalidInput):
    """A document that cannot be ingested; names the file and line."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}")
        self.source = source
        self.line = line


@dataclass(frozen=True)
class UnitInfo:
    """The unit a document describes (accommodation) or belongs to (manual)."""

    slug: str
    name: str
    unit_type: str | None = None
    capacity: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """One retrievable passage: the heading path it sits under and its text."""

    ordinal: int
    heading: str
    content: str

    @property
    def embedding_text(self) -> str:
        """What the embedding model reads: heading and text together."""
        return chunk_embedding_text(self.heading, self.content)


def chunk_embedding_text(heading: str, content: str) -> str:
    """What the embedding model reads of a chunk (at ingest and at `posada reembed`)."""
    return f"{heading}\n{content}"


@dataclass(frozen=True)
class FaqEntry:
    """A question the document answers, and the chunk holding the answer."""

    question: str
    answer: str
    chunk_ordinal: int


@dataclass(frozen=True)
class ParsedDocument:
    """Everything ingest needs from one file."""

    source: str
    title: str
    language: str | None
    metadata: dict[str, Any]
    content_hash: str
    chunks: list[Chunk]
    faqs: list[FaqEntry]
    accommodation: UnitInfo | None  # set when the document describes a unit
    manual_for: UnitInfo | None  # set when the document is private to a unit
    warnings: list[str] = field(default_factory=list)


def parse_document(source: str, text: str, *, unit_override: str | None = None) -> ParsedDocument:
    """Parse one document; raise DocumentError naming the line of the first problem."""
    if "\x00" in text:
        raise DocumentError(source, 1, "binary content, not a Markdown document")
    # A byte-order mark would hide the front matter, and with it `access_level: guest_only`.
    text = text.removeprefix("\ufeff")
    metadata, body, body_line, warnings = _split_front_matter(source, text)
    title = _title(metadata, body, source)
    accommodation = _accommodation(metadata, source, title)
    manual_for = _manual_unit(metadata, source, unit_override)
    chunks, faqs = _chunks(body, title)
    chunks += _facts_chunk(metadata, title, len(chunks))
    if not chunks:
        raise DocumentError(source, body_line, "the document has no text to answer from")
    digest = hashlib.sha256(f"{unit_override or ''}\n{text}".encode()).hexdigest()
    return ParsedDocument(
        source=source,
        title=title,
        language=_language(metadata, source),
        metadata=_jsonable(metadata),
        content_hash=digest,
        chunks=chunks,
        faqs=faqs,
        accommodation=accommodation,
        manual_for=manual_for,
        warnings=warnings,
    )


def _split_front_matter(source: str, text: str) -> tuple[dict[str, Any], str, int, list[str]]:
    """(front matter, body, line where the body starts, warnings).

    Split by hand to keep line numbers. A front-matter line YAML cannot read is dropped
    with a warning (real documents have stray indentation), as long as the rest parses:
    the body is what guests need.
    """
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return {}, text, 1, []
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        raise DocumentError(source, 1, "front matter opened with '---' is never closed")
    front = lines[1:end]
    numbers = list(range(2, end + 1))  # each kept line's number in the file
    warnings: list[str] = []
    for _attempt in range(4):
        try:
            loaded = yaml.safe_load("".join(front)) if "".join(front).strip() else {}
            break
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            bad = mark.line if mark is not None else -1
            if not 0 <= bad < len(front):
                line = numbers[bad] if 0 <= bad < len(numbers) else end + 1
                raise DocumentError(source, line, f"invalid YAML front matter: {problem}") from exc
            warnings.append(f"{source}:{numbers[bad]}: front matter line ignored ({problem})")
            del front[bad], numbers[bad]
    else:
        raise DocumentError(source, 2, "invalid YAML front matter")
    if not isinstance(loaded, dict):
        raise DocumentError(source, 2, "front matter must be a YAML mapping")
    return loaded, "".join(lines[end + 1 :]), end + 2, warnings


def _get(metadata: dict[str, Any], key: str) -> Any:
    """A key at the top level or under `document:` (both layouts are in use)."""
    if key in metadata:
        return metadata[key]
    document = metadata.get("document")
    return document.get(key) if isinstance(document, dict) else None


def _title(metadata: dict[str, Any], body: str, source: str) -> str:
    title = _get(metadata, "title")
    if isinstance(title, str) and title.strip():
        return title.strip()
    match = re.search(r"^#\s+(.+)$", body, flags=re.MULTILINE)
    if match:
        return clean_heading(match[1])
    stem = source.rsplit("/", 1)[-1].removesuffix(".md")
    return stem.replace("-", " ").replace("_", " ").title()


def _accommodation(metadata: dict[str, Any], source: str, title: str) -> UnitInfo | None:
    details = metadata.get("accommodation")
    destination = metadata.get("destination")
    is_unit = (
        isinstance(details, dict)
        or _get(metadata, "category") == "accommodations"
        or (isinstance(destination, dict) and destination.get("table") == "accommodation_units")
    )
    if not is_unit:
        return None
    details = details if isinstance(details, dict) else {}
    stem = source.rsplit("/", 1)[-1].removesuffix(".md")
    slug = slugify(str(metadata.get("unit_slug") or stem))
    name = metadata.get("unit_name") or details.get("name") or stem.replace("-", " ").title()
    return UnitInfo(
        slug=_unit_slug(slug, source),
        name=str(name),
        unit_type=str(details["unit_type"]) if details.get("unit_type") else None,
        capacity=_capacity(details.get("capacity"), source),
        details=_jsonable(details),
    )


def _manual_unit(
    metadata: dict[str, Any], source: str, unit_override: str | None
) -> UnitInfo | None:
    if unit_override:
        return UnitInfo(slug=_unit_slug(slugify(unit_override), source), name=unit_override)
    reference = metadata.get("unit_reference")
    private = _get(metadata, "access_level") == "guest_only"
    if not isinstance(reference, dict):
        if private or reference is not None:
            raise DocumentError(
                source,
                1,
                "a guest_only document needs `unit_reference: {unit_name: ...}` or --unit",
            )
        return None
    name = reference.get("unit_name")
    unit_id = reference.get("unit_id")
    if name:
        return UnitInfo(slug=_unit_slug(slugify(str(name)), source), name=str(name))
    if unit_id:
        return UnitInfo(slug=_unit_slug(slugify(str(unit_id)), source), name=str(unit_id))
    raise DocumentError(source, 1, "unit_reference names no unit (unit_name or unit_id)")


def _unit_slug(slug: str, source: str) -> str:
    """A usable unit slug; an empty one would merge units and their private manuals."""
    if not slug:
        raise DocumentError(source, 1, "the unit's name gives no slug; set `unit_slug`")
    return slug


def _capacity(value: Any, source: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 10_000:
        raise DocumentError(source, 1, f"accommodation capacity {value!r} is not a guest count")
    return value


def _language(metadata: dict[str, Any], source: str) -> str | None:
    language = _get(metadata, "language")
    if language is None or isinstance(language, str):
        return language
    raise DocumentError(source, 1, f"language must be a code like 'es', not {language!r}")


def _chunks(body: str, title: str) -> tuple[list[Chunk], list[FaqEntry]]:
    """The document's chunks and FAQ entries, every heading path led by the title."""
    pieces, found = cut(parse_sections(body), title)
    chunks: list[Chunk] = []
    for piece in pieces:
        path = piece.path
        if not path or slugify(path[0]) != slugify(title):
            path = [title, *path]
        chunks.append(Chunk(len(chunks), HEADING_SEPARATOR.join(path), piece.text))
    faqs: list[FaqEntry] = []
    seen: set[str] = set()
    for question, answer, ordinal in found:
        if question.lower() not in seen:
            seen.add(question.lower())
            faqs.append(FaqEntry(question, answer, ordinal))
    return chunks, faqs


def _facts_chunk(metadata: dict[str, Any], title: str, ordinal: int) -> list[Chunk]:
    """Front-matter facts (hours, prices, capacity) as one chunk of the document's scope."""
    lines = fact_lines(metadata)
    if not lines:
        return []
    heading = f"{title}{HEADING_SEPARATOR}datos"
    return [Chunk(ordinal=ordinal, heading=heading, content="\n".join(lines))]


def _jsonable(value: Any) -> Any:
    """YAML gives dates and other types JSON cannot hold; keep the rest as it is."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
