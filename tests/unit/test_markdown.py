"""Parsing documents: front matter, heading-aware chunks, FAQ extraction, units."""

from __future__ import annotations

import pytest

from posada.knowledge.markdown import MAX_CHUNK_CHARS, DocumentError, parse_document

FAQ = """---
title: "Preguntas frecuentes"
language: es
---
# Preguntas frecuentes

## Horarios

### ¿A qué hora es el check-in?
Desde las 15:00.

### ¿A qué hora es el check-out?
Hasta las 11:00.

## Notas
Texto sin pregunta.
"""


def test_question_heading_stays_with_its_answer() -> None:
    doc = parse_document("faq.md", FAQ)
    by_heading = {c.heading: c.content for c in doc.chunks}
    assert by_heading["Preguntas frecuentes › Horarios › ¿A qué hora es el check-in?"] == (
        "Desde las 15:00."
    )
    assert by_heading["Preguntas frecuentes › Horarios › ¿A qué hora es el check-out?"] == (
        "Hasta las 11:00."
    )
    assert doc.title == "Preguntas frecuentes"
    assert doc.language == "es"


def test_faq_entries_come_from_question_headings_only() -> None:
    doc = parse_document("faq.md", FAQ)
    assert [(f.question, f.answer) for f in doc.faqs] == [
        ("¿A qué hora es el check-in?", "Desde las 15:00."),
        ("¿A qué hora es el check-out?", "Hasta las 11:00."),
    ]
    assert doc.chunks[doc.faqs[1].chunk_ordinal].content == "Hasta las 11:00."


def test_q_and_a_pairs_inside_a_section_are_faq_entries() -> None:
    text = "# Manual\n\n## Llegada\n**Q: ¿Dónde dejo el carro?**\n**A:** En la calle.\n"
    doc = parse_document("m.md", text)
    assert [(f.question, f.answer) for f in doc.faqs] == [("¿Dónde dejo el carro?", "En la calle.")]


def test_unit_manual_is_detected_from_unit_reference() -> None:
    text = (
        "---\ndocument:\n  access_level: guest_only\nunit_reference:\n"
        "  unit_name: Misty Morning\n  unit_id: misty-morning-apt\n---\n# Manual\nCódigo 1234\n"
    )
    doc = parse_document("manual.md", text)
    assert doc.manual_for is not None
    assert doc.manual_for.slug == "misty-morning"
    assert doc.accommodation is None


def test_guest_only_document_without_unit_is_an_error() -> None:
    with pytest.raises(DocumentError, match="unit_reference"):
        parse_document("m.md", "---\naccess_level: guest_only\n---\n# Manual\ntext\n")


def test_unit_override_makes_any_document_private() -> None:
    doc = parse_document("m.md", "# Manual\nCódigo 1234\n", unit_override="coral")
    assert doc.manual_for is not None
    assert doc.manual_for.slug == "coral"


def test_accommodation_document_describes_a_unit() -> None:
    text = (
        "---\ntitle: Habitación Kaya\ncategory: accommodations\naccommodation:\n"
        "  unit_type: room\n  capacity: 2\n---\n# Kaya\nUna habitación.\n"
    )
    doc = parse_document("rooms/kaya.md", text)
    assert doc.accommodation is not None
    assert (doc.accommodation.slug, doc.accommodation.name) == ("kaya", "Kaya")
    assert (doc.accommodation.unit_type, doc.accommodation.capacity) == ("room", 2)
    # front-matter facts become answerable text
    assert any("Capacidad (personas): 2" in c.content for c in doc.chunks)


def test_long_sections_are_split_and_keep_their_heading() -> None:
    paragraph = "Una frase sobre la piscina del hotel. " * 10
    text = "# Servicios\n\n## Piscina\n\n" + "\n\n".join([paragraph] * 8)
    doc = parse_document("s.md", text)
    assert len(doc.chunks) > 1
    assert all(len(c.content) <= MAX_CHUNK_CHARS for c in doc.chunks)
    assert {c.heading for c in doc.chunks} == {"Servicios › Piscina"}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("---\ntitle: x\n", 1, "never closed"),
        ("---\ntitle: [a, b\n---\nbody\n", 3, "invalid YAML"),
        ("---\n- a\n- b\n---\nbody\n", 2, "mapping"),
        ("---\ntitle: x\n---\n\n", 4, "no text"),
    ],
)
def test_broken_documents_name_their_line(text: str, line: int, message: str) -> None:
    with pytest.raises(DocumentError, match=message) as caught:
        parse_document("broken.md", text)
    assert caught.value.line == line
    assert caught.value.message.startswith(f"broken.md:{line}:")


def test_a_stray_front_matter_line_is_dropped_with_a_warning() -> None:
    text = '---\ntitle: "Llegada"\nlanguage: es\n  location: "x"\n---\n# Llegada\nEn taxi.\n'
    doc = parse_document("arrival.md", text)
    assert doc.title == "Llegada"
    assert doc.warnings == [
        "arrival.md:4: front matter line ignored (mapping values are not allowed here)"
    ]


def test_content_hash_changes_with_content_and_unit() -> None:
    a = parse_document("a.md", "# A\ntext\n")
    assert a.content_hash == parse_document("a.md", "# A\ntext\n").content_hash
    assert a.content_hash != parse_document("a.md", "# A\ntext!\n").content_hash
    assert a.content_hash != parse_document("a.md", "# A\ntext\n", unit_override="x").content_hash


def test_a_byte_order_mark_does_not_hide_a_private_manual() -> None:
    text = (
        "\ufeff---\naccess_level: guest_only\nunit_reference:\n  unit_name: Coral\n---\n# M\n1234\n"
    )
    doc = parse_document("manual.md", text)
    assert doc.manual_for is not None
    assert doc.manual_for.slug == "coral"


@pytest.mark.parametrize(
    ("front", "message"),
    [
        ("unit_reference:\n  unit_name: '!!!'", "gives no slug"),
        ("category: accommodations\nunit_slug: '***'", "gives no slug"),
        ("accommodation:\n  capacity: true", "capacity True"),
        ("accommodation:\n  capacity: 99999999999", "capacity 99999999999"),
        ("language: {a: 1}", "language must be a code"),
    ],
)
def test_unusable_front_matter_values_are_refused(front: str, message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        parse_document("odd.md", f"---\n{front}\n---\n# Odd\ntext\n")


def test_capacity_may_be_written_as_a_string() -> None:
    doc = parse_document("u.md", "---\naccommodation:\n  capacity: '4'\n---\n# U\ntext\n")
    assert doc.accommodation is not None
    assert doc.accommodation.capacity == 4
