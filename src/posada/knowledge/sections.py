"""A document's body as a tree of sections, cut into chunks, with the FAQ entries it holds.

Chunks follow the document's own structure: a section goes whole into one chunk, with
its subsections, when that fits (a price list under "Tarifas" stays with its heading);
a longer one gives its own text and then each subsection. Sections under a question
heading are never merged: each is an answer of its own. FAQ entries come from question
headings and from `Q:` / `A:` blocks, the answer running on into the subsections below
it ("Q: ¿Cuáles son las tarifas? A: Estructura de precios:" and then the prices).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt

from posada.knowledge.cleaning import clean_block, clean_heading, qa_marker

MAX_CHUNK_CHARS = 1800  # e5 reads 512 word pieces; on the tuning half 1800 beat 1000
MAX_FAQ_ANSWER_CHARS = 1500
HEADING_SEPARATOR = " › "


@dataclass
class Section:
    """A heading, the text right under it, and the sections nested below."""

    level: int  # 0: the text before the first heading
    heading: str
    text: str  # cleaned; Q:/A: markers taken off
    pairs: list[tuple[str, str]]  # the Q:/A: blocks in `text`
    children: list[Section] = field(default_factory=list)

    def whole(self) -> str:
        """Its text and every subsection's, each subsection under its heading."""
        parts = [self.text] if self.text else []
        for child in self.children:
            body = child.whole()
            if body:
                parts.append(f"{child.heading}\n{body}" if child.heading else body)
        return "\n\n".join(parts)

    def asks(self) -> bool:
        """Whether this heading or one below it is a question."""
        return is_question(self.heading) or any(c.asks() for c in self.children)


@dataclass(frozen=True)
class Piece:
    """A chunk before it is numbered: its heading path and text."""

    path: list[str]
    text: str


def is_question(text: str) -> bool:
    """A heading that asks something: '¿...?' or '...?'."""
    stripped = text.strip()
    return stripped.endswith("?") or stripped.startswith("¿")


def parse_sections(body: str) -> Section:
    """The tree of sections; markdown-it finds the headings (not '#' inside code)."""
    tokens = MarkdownIt("commonmark").parse(body)
    lines = body.splitlines()
    marks: list[tuple[int, int, int, str]] = []  # (level, first line, line after, text)
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.map is not None:
            marks.append((int(token.tag[1]), token.map[0], token.map[1], tokens[index + 1].content))
    first = marks[0][1] if marks else len(lines)
    root = _section(0, "", lines[:first])
    stack = [root]
    for position, (level, _start, after, text) in enumerate(marks):
        end = marks[position + 1][1] if position + 1 < len(marks) else len(lines)
        section = _section(level, clean_heading(text), lines[after:end])
        while stack[-1].level >= level:
            stack.pop()
        stack[-1].children.append(section)
        stack.append(section)
    return root


def _section(level: int, heading: str, lines: list[str]) -> Section:
    """A section's text without its Q:/A: markers, and the pairs they marked."""
    kept: list[str] = []
    pairs: list[tuple[str, list[str]]] = []
    for line in clean_block(lines).split("\n"):
        marked = qa_marker(line)
        if marked is not None and marked[0] == "Q" and marked[1]:
            pairs.append((marked[1], []))
            kept.append(marked[1])
            continue
        if marked is not None and marked[0] == "A":
            line = marked[1]
            if not line:
                continue
        if pairs:
            pairs[-1][1].append(line)
        kept.append(line)
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    return Section(level, heading, text, [(q, "\n".join(a).strip()) for q, a in pairs])


def cut(root: Section, title: str) -> tuple[list[Piece], list[tuple[str, str, int]]]:
    """The chunks, and the FAQ entries as (question, answer, index of their chunk)."""
    pieces: list[Piece] = []
    faqs: list[tuple[str, str, int]] = []
    _emit(root, [], pieces, faqs, title)
    return pieces, faqs


def _emit(
    section: Section,
    path: list[str],
    pieces: list[Piece],
    faqs: list[tuple[str, str, int]],
    title: str,
) -> None:
    path = [*path, section.heading] if section.heading else path
    whole = section.whole()
    merge = section.level >= 2 and not any(c.asks() for c in section.children)
    at = len(pieces)  # the chunk that will hold this section's own text
    if merge and whole and len(whole) <= MAX_CHUNK_CHARS:
        pieces.append(Piece(path, whole))
        _entries(section, at, faqs, nested=True)
        return
    pieces.extend(Piece(path, text) for text in split(section.text) if section.text)
    for child in section.children:
        _emit(child, path, pieces, faqs, title)
    if at < len(pieces):  # else nothing was under this heading at all
        _entries(section, at, faqs, nested=False)


def _entries(section: Section, at: int, faqs: list[tuple[str, str, int]], *, nested: bool) -> None:
    """The FAQ entries of a section (and, merged into one chunk, of its subsections)."""
    whole = section.whole()
    if is_question(section.heading) and whole:
        faqs.append((section.heading, _answer(whole), at))
    for number, (question, answer) in enumerate(section.pairs):
        if number == len(section.pairs) - 1:  # the last answer runs on into the subsections
            below = "\n\n".join(f"{c.heading}\n{c.whole()}" for c in section.children if c.whole())
            answer = f"{answer}\n\n{below}".strip() if below else answer
        if answer:
            faqs.append((question, _answer(answer), at))
    if nested:
        for child in section.children:
            _entries(child, at, faqs, nested=True)


def _answer(text: str) -> str:
    return text if len(text) <= MAX_FAQ_ANSWER_CHARS else text[:MAX_FAQ_ANSWER_CHARS].rstrip()


def split(text: str) -> list[str]:
    """Pieces of at most MAX_CHUNK_CHARS, cut between paragraphs, then lines, where possible."""
    if len(text) <= MAX_CHUNK_CHARS:
        return [text]
    pieces: list[str] = []
    current = ""
    for block in re.split(r"(\n\n|\n)", text):
        if len(current) + len(block) > MAX_CHUNK_CHARS and current.strip():
            pieces.append(current.strip())
            current = ""
        while len(block) > MAX_CHUNK_CHARS:  # one enormous line: cut it
            pieces.append(block[:MAX_CHUNK_CHARS].strip())
            block = block[MAX_CHUNK_CHARS:]
        current += block
    if current.strip():
        pieces.append(current.strip())
    return pieces
