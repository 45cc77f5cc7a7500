"""Documents as hotels write them: what is not content goes, facts and Q:/A: answers stay."""

from __future__ import annotations

from posada.answers.excerpt import excerpt
from posada.knowledge.markdown import ParsedDocument, parse_document

# Written for these tests, with the noise real hotel exports carry.
NOISY = """---
document:
  title: "Cabaña Bambú"
  category: accommodations
accommodation:
  unit_type: cabin
  capacity: 3
  images: ["https://example.test/a.jpg"]
  pricing:
    base_price_low_season: 180000
    base_price_high_season: 210000
    currency: COP
  booking:
    check_in_time: "14:00:00"
    check_out_time: "11:00:00"
  display_order: 4
---

# Cabaña Bambú

## Overview {#overview}

**Q: ¿Qué es la Cabaña Bambú?**
**A:** Una cabaña de madera junto al jardín 🌴😉 con hamaca.

## Tarifas {#tarifas}

**Q: ¿Cuáles son las tarifas de la Cabaña Bambú?**
**A:** Estructura de precios:

### Tarifa estándar
- **Precio por noche**: $180.000 COP <!-- EXTRAE: base_price -->
- **Moneda**: pesos colombianos

## Galería

- **Imagen 1**: https://example.test/bambu-1.jpg <!-- EXTRAE: images -->
- **Imagen 2**: https://example.test/bambu-2.jpg

## Horarios

### Check-in
[PENDING_SCRAPING: Horario de check-in]

### Mascotas
No se admiten mascotas. Ver {#tarifas} para cargos.
"""


def _doc() -> ParsedDocument:
    return parse_document("cabins/bambu.md", NOISY)


def test_noise_never_reaches_a_chunk_or_an_faq_entry() -> None:
    doc = _doc()
    texts = [c.heading + c.content for c in doc.chunks] + [f.question + f.answer for f in doc.faqs]
    for noise in ("<!--", "EXTRAE", "{#", "**", "PENDING", "🌴", "😉", ".jpg", "Imagen 1"):
        assert not any(noise in t for t in texts), noise
    assert any("No se admiten mascotas. Ver para cargos." in c.content for c in doc.chunks)
    # A heading with only a placeholder under it answers nothing.
    assert not any(c.heading.endswith("Check-in") for c in doc.chunks)


def test_qa_blocks_become_faq_entries_that_run_into_their_subsections() -> None:
    faqs = {f.question: f.answer for f in _doc().faqs}
    assert faqs["¿Qué es la Cabaña Bambú?"].startswith("Una cabaña de madera")
    prices = faqs["¿Cuáles son las tarifas de la Cabaña Bambú?"]
    assert "Estructura de precios:" in prices
    assert "$180.000 COP" in prices


def test_a_section_that_fits_is_one_chunk_with_its_subsections() -> None:
    chunks = [c for c in _doc().chunks if "Tarifas" in c.heading]
    assert len(chunks) == 1
    assert "Tarifa estándar" in chunks[0].content
    assert "$180.000 COP" in chunks[0].content


def test_nested_front_matter_facts_are_one_readable_passage() -> None:
    facts = [c for c in _doc().chunks if c.heading.endswith("datos")]
    assert len(facts) == 1
    text = facts[0].content
    for line in (
        "Check-in (hora de entrada): 14:00",
        "Check-out (hora de salida): 11:00",
        "Precio por noche (temporada baja): $180.000 COP",
        "Precio por noche (temporada alta): $210.000 COP",
        "Capacidad (personas): 3",
    ):
        assert line in text
    assert "display" not in text.lower()
    assert "example.test" not in text


def test_the_excerpt_is_the_lines_that_answer() -> None:
    passage = (
        "¿Cómo entro al edificio?\n"
        "Bienvenidos a la casa, estamos felices de tenerte.\n"
        "Claves de acceso:\n"
        "- Portón: `4471`\n"
        "- Habitación: `9902`\n"
        "El check-out es a las 11:00 y el check-in desde las 14:00."
    )
    codes = excerpt("what is the door code?", passage)
    assert "`4471`" in codes
    assert "Bienvenidos" not in codes
    assert "check-out" not in codes
    assert not codes.startswith("¿")
    times = excerpt("a que hora es el checkout", passage)
    assert "11:00" in times
    assert "4471" not in times
