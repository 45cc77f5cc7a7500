"""Facts that live in front matter, as one passage a guest can search and read.

Listings keep hours, prices and phones under `business:`; unit descriptions keep check-in
and check-out times, prices and capacity under `accommodation:` (nested: `pricing:`,
`booking:`, `amenities:`). These are often the only place a fact is written, so they are
rendered as lines ("Check-out: 12:00", "Precio por noche (temporada baja): $150.000 COP")
in a chunk of the document's own scope. The labels name the keys export tools write; any
other key is read as its name with spaces. Bookkeeping keys (display order, image lists,
status flags) are left out.
"""

from __future__ import annotations

import re
from typing import Any

FACT_SECTIONS = ("business", "accommodation")

_LABELS = {
    "check_in_time": "Check-in (hora de entrada)",
    "check_out_time": "Check-out (hora de salida)",
    "base_price_low_season": "Precio por noche (temporada baja)",
    "base_price_high_season": "Precio por noche (temporada alta)",
    "price_per_person_low": "Precio por persona adicional (temporada baja)",
    "price_per_person_high": "Precio por persona adicional (temporada alta)",
    "minimum_stay": "Estadía mínima (noches)",
    "capacity": "Capacidad (personas)",
    "adults": "Adultos",
    "children": "Niños",
    "bed_configuration": "Camas",
    "size_m2": "Tamaño (m²)",
    "floor_number": "Piso",
    "view_type": "Vista",
    "unit_type": "Tipo",
    "features": "Comodidades",
    "special_features": "Características",
}
_SKIP = frozenset(
    {
        "images", "status", "is_featured", "display_order", "categories", "day_restrictions",
        "base_adults", "base_children", "currency", "id", "unit_type_detail", "category",
        "tenant_id",
    }
)  # fmt: skip
_TIME = re.compile(r"^(\d{1,2}):(\d{2}):00$")


def fact_lines(metadata: dict[str, Any]) -> list[str]:
    """The front matter's facts, one 'label: value' line each."""
    lines: list[str] = []
    for key in FACT_SECTIONS:
        section = metadata.get(key)
        if isinstance(section, dict):
            _walk(section, _currency(section), lines)
    return lines


def _currency(section: dict[str, Any]) -> str:
    pricing = section.get("pricing")
    found = pricing.get("currency") if isinstance(pricing, dict) else section.get("currency")
    return str(found) if found else ""


def _walk(section: dict[str, Any], currency: str, lines: list[str]) -> None:
    for name, value in section.items():
        name = str(name)
        if name in _SKIP:
            continue
        if isinstance(value, dict):
            _walk(value, currency, lines)
            continue
        shown = _value(name, value, currency)
        if shown:
            lines.append(f"{_LABELS.get(name, name.replace('_', ' ').capitalize())}: {shown}")


def _value(name: str, value: Any, currency: str) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, list):
        items = [str(v).replace("_", " ") for v in value if isinstance(v, str | int | float)]
        return ", ".join(items)
    if "price" in name and isinstance(value, int | float):
        if not value:
            return ""
        amount = f"{value:,.0f}".replace(",", ".")
        return f"${amount} {currency}".strip()
    text = str(value).strip()
    time = _TIME.match(text)
    return f"{int(time[1]):02d}:{time[2]}" if time else text
