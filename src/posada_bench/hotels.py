"""Generated hotels for the benchmark: the documents and reservations of a realistic guest house.

Each hotel is made from a seed: its name, 6 to 10 units, a Spanish and an English FAQ with
its own hours and prices, house rules, services, one private manual per unit (door code,
Wi-Fi, hot water) and a current stay in every unit. Around 25 documents and 150 passages:
the size of the real guest houses posada was tried on.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import date, timedelta

from posada.core.text import slugify

NAMES = [
    "Posada Las Palmas", "Hostal Marea Alta", "Hotel Brisa del Caribe", "Casa Manatí",
    "Posada El Faro", "Hotel Arrecife", "Casa de la Bahía", "Hostal Caracolí",
]  # fmt: skip
UNIT_NAMES = [
    "Almendro", "Bonga", "Ceiba", "Coco", "Guayacán", "Icaco", "Mangle", "Níspero", "Palma",
    "Roble", "Tamarindo", "Uva de Playa",
]  # fmt: skip
GUESTS = [
    "Ana Gómez", "Luis Herrera", "Camila Torres", "John Miller", "Sara Nilsson", "Diego Ruiz",
    "Paula Cárdenas", "Mark Evans", "Lucía Vargas", "Felipe Castro", "Emma Schulz",
    "Jorge Quintero",
]  # fmt: skip


@dataclass(frozen=True)
class Stay:
    """A current reservation: how its guest logs in."""

    tenant: str
    unit: str
    check_in: date
    phone_last4: str

    def login(self) -> dict[str, str]:
        """The body of `POST /api/guest/login` for this stay."""
        return {
            "tenant": self.tenant,
            "check_in": self.check_in.isoformat(),
            "phone_last4": self.phone_last4,
        }


@dataclass(frozen=True)
class Hotel:
    """A generated hotel: its documents (path -> Markdown) and reservations."""

    slug: str
    name: str
    files: dict[str, str]
    reservations_csv: str
    stays: list[Stay]


def _hour(rng: random.Random, low: int, high: int) -> str:
    return f"{rng.randint(low, high)}:{rng.choice(['00', '15', '30', '45'])}"


def _price(rng: random.Random, low: int, high: int) -> str:
    return f"{rng.randint(low, high) * 1000:,}".replace(",", ".") + " COP"


def _facts(rng: random.Random) -> dict[str, str]:
    return {
        "check_in": _hour(rng, 13, 16),
        "check_out": _hour(rng, 10, 12),
        "early": _hour(rng, 10, 12),
        "late": _hour(rng, 13, 15),
        "late_price": _price(rng, 30, 80),
        "breakfast_from": _hour(rng, 6, 8),
        "breakfast_to": _hour(rng, 9, 11),
        "breakfast_price": _price(rng, 25, 45),
        "dinner_from": _hour(rng, 18, 19),
        "dinner_to": _hour(rng, 21, 23),
        "pool_from": _hour(rng, 6, 9),
        "pool_to": _hour(rng, 18, 21),
        "gym_from": _hour(rng, 5, 7),
        "gym_to": _hour(rng, 20, 22),
        "parking": str(rng.randint(3, 12)),
        "parking_price": _price(rng, 15, 35),
        "transfer": _price(rng, 40, 90),
        "laundry": _price(rng, 20, 45),
        "pet_fee": _price(rng, 20, 60),
        "phone": f"+57 3{rng.randint(10, 29)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
        "reception_from": _hour(rng, 6, 8),
        "reception_to": _hour(rng, 21, 23),
        "deposit": str(rng.choice([20, 30, 50])),
        "free_days": str(rng.choice([3, 5, 7, 10])),
        "extra_bed": _price(rng, 50, 90),
    }


FAQ_ES = """---
title: "Preguntas frecuentes - {name}"
language: es
category: faq
---

# Preguntas frecuentes - {name}

{name} es una posada de {units} unidades en la isla. Recepción y WhatsApp: {phone}.

## ¿A qué hora es el check-in?

El check-in es a partir de las {check_in}. Al llegar pedimos el documento de cada adulto.

## ¿A qué hora es el check-out?

El check-out es hasta las {check_out}. Al salir, deje la llave en recepción.

## ¿Puedo hacer check-in temprano?

Sí, desde las {early} sin costo, sujeto a disponibilidad. Mientras tanto guardamos su equipaje.

## ¿Puedo hacer late check-out?

Sí, hasta las {late} por {late_price}, sujeto a disponibilidad; pídalo el día anterior.

## ¿A qué hora es el desayuno?

El desayuno se sirve de {breakfast_from} a {breakfast_to} en el comedor.
Si su tarifa no lo incluye cuesta {breakfast_price} por persona.

## ¿A qué hora es la cena?

El restaurante sirve la cena de {dinner_from} a {dinner_to}, de martes a domingo.

## ¿Cuál es el horario de la piscina?

La piscina abre de {pool_from} a {pool_to} todos los días. No hay salvavidas.

## ¿Tienen gimnasio?

Sí, el gimnasio abre de {gym_from} a {gym_to} y es gratis para los huéspedes.

## ¿Tienen parqueadero?

Tenemos {parking} cupos de parqueadero a {parking_price} la noche; resérvelo con anticipación.

## ¿Tienen traslado al aeropuerto?

Sí, el traslado privado cuesta {transfer} por vehículo (hasta 4 personas).
Resérvelo por WhatsApp al {phone} con 24 horas de anticipación.

## ¿Tienen servicio de lavandería?

Sí, cuesta {laundry} por bolsa de hasta 5 kg; entréguela en recepción antes de las 10:00.

## ¿Puedo dejar mi equipaje?

Sí, guardamos maletas gratis el día de llegada y el de salida, en el cuarto junto a recepción.

## ¿Qué medios de pago aceptan?

Efectivo en pesos, tarjetas Visa y Mastercard, Nequi y transferencia bancaria.

## ¿Aceptan mascotas?

Aceptamos perros y gatos pequeños con un cargo de {pet_fee} por estadía.

## ¿Cuál es el horario de recepción?

La recepción atiende de {reception_from} a {reception_to}; fuera de ese horario escriba al {phone}.

## ¿Se puede fumar?

No se permite fumar ni vapear dentro de las unidades; la zona de fumadores está en el jardín.

## ¿Cuál es la política de cancelación?

Pedimos un depósito del {deposit}%.
La cancelación es gratis hasta {free_days} días antes de la llegada.

## ¿Tienen cuna para bebé?

Sí, prestamos cunas gratis. Una cama extra cuesta {extra_bed} por noche.
"""

FAQ_EN = """---
title: "Frequently asked questions - {name}"
language: en
category: faq
---

# Frequently asked questions - {name}

{name} is a {units}-unit guest house on the island. Reception and WhatsApp: {phone}.

## What time is check-in?

Check-in is from {check_in}. On arrival we ask for an ID for every adult.

## What time is check-out?

Check-out is until {check_out}. When you leave, hand your key in at reception.

## Can I check in early?

Yes, from {early} at no cost, subject to availability. Meanwhile we keep your luggage.

## Can I get a late check-out?

Yes, until {late} for {late_price}, subject to availability; ask the day before.

## What time is breakfast?

Breakfast is served from {breakfast_from} to {breakfast_to} in the dining room.
If your rate does not include it, it costs {breakfast_price} per person.

## What time is dinner served?

The restaurant serves dinner from {dinner_from} to {dinner_to}, Tuesday to Sunday.

## What are the pool hours?

The pool is open from {pool_from} to {pool_to} every day. There is no lifeguard.

## Is there a gym?

Yes, the gym is open from {gym_from} to {gym_to} and is free for guests.

## Do you have parking?

We have {parking} parking spaces at {parking_price} per night; book one in advance.

## Do you offer an airport transfer?

Yes, the private transfer costs {transfer} per vehicle (up to 4 people).
Book it by WhatsApp at {phone} 24 hours ahead.

## Do you have a laundry service?

Yes, it costs {laundry} per bag of up to 5 kg; drop it at reception before 10:00.

## Can I store my luggage?

Yes, we keep bags for free on your arrival and departure days, in the room next to reception.

## What payment methods do you accept?

Cash in pesos, Visa and Mastercard cards, Nequi and bank transfer.

## Are pets allowed?

We accept small dogs and cats for a fee of {pet_fee} per stay.

## What are the reception hours?

Reception is open from {reception_from} to {reception_to}; outside those hours write to {phone}.

## Is smoking allowed?

Smoking and vaping are not allowed inside the units; the smoking area is in the garden.

## What is the cancellation policy?

We ask for a {deposit}% deposit. Cancellation is free up to {free_days} days before arrival.

## Do you have a baby cot?

Yes, cots are free. An extra bed costs {extra_bed} per night.
"""

UNIT = """---
title: "{kind_es} {unit}"
language: es
category: accommodations
unit_slug: {slug}
unit_name: "{unit}"
accommodation:
  unit_type: {kind}
  capacity: {capacity}
---

# {kind_es} {unit}

{kind_es} para {capacity} personas en el piso {floor}, con {view}.

## Comodidades

- Aire acondicionado
- Wi-Fi privado de la unidad
- Nevera y cafetera
- Caja fuerte digital

## Tarifas

- Temporada baja: {low} por noche.
- Temporada alta: {high} por noche.
"""

MANUAL = """---
title: "Manual {unit}"
language: es
category: manual
access_level: guest_only
unit_reference:
  unit_name: "{unit}"
  unit_id: {slug}
---

# Manual {unit}

Este manual es privado y solo para los huéspedes de {unit}.

## ¿Cuál es el código de la puerta?

La puerta se abre con el código **{door}#**.

## ¿Cuál es la clave del Wi-Fi?

- Red: **{network}**
- Clave: **{password}**

## Agua caliente

El calentador está en el baño; enciéndalo con el interruptor rojo y espere {minutes} minutos.

## Caja fuerte

Marque **{safe}** y presione la tecla verde para abrirla.
"""

RULES = """---
title: "Normas de la casa - {name}"
language: es
---

# Normas de la casa

## Silencio

Guardamos silencio de 22:00 a 7:00. Las fiestas no están permitidas.

## Visitantes

Los visitantes deben registrarse en recepción y salir antes de las 21:00.

## Toallas

Las toallas de playa se piden en recepción con un depósito de 20.000 COP.
"""

SERVICES = """---
title: "Servicios - {name}"
language: en
---

# Services at {name}

## Bicycles

Bicycles are lent for free from reception, from 8:00 to 18:00.

## Tours

Reception books boat tours to the cays and the mangrove kayak tour with local operators.

## Massages

Massages in your unit cost {massage} for 60 minutes; book them a day ahead.
"""


def generate_hotel(*, index: int, seed: int, today: date) -> Hotel:
    """The `index`-th generated hotel of the workload with this seed."""
    rng = random.Random(f"{seed}:{index}")
    name = NAMES[index % len(NAMES)]
    slug = f"bench-{slugify(name)}"
    units = rng.sample(UNIT_NAMES, rng.randint(6, 10))
    facts = {"name": name, "units": str(len(units)), **_facts(rng)}
    files = {
        "faq.es.md": FAQ_ES.format(**facts),
        "faq.en.md": FAQ_EN.format(**facts),
        "house-rules.md": RULES.format(**facts),
        "services.md": SERVICES.format(**facts, massage=_price(rng, 90, 180)),
    }
    rows = []
    stays: list[Stay] = []
    for number, unit in enumerate(units):
        unit_slug = slugify(unit)
        kind = rng.choice(["room", "apartment", "suite"])
        files[f"units/{unit_slug}.md"] = UNIT.format(
            unit=unit,
            slug=unit_slug,
            kind=kind,
            kind_es={"room": "Habitación", "apartment": "Apartamento", "suite": "Suite"}[kind],
            capacity=rng.randint(2, 6),
            floor=rng.randint(1, 3),
            view=rng.choice(["vista al mar", "vista al jardín", "balcón privado"]),
            low=_price(rng, 200, 500),
            high=_price(rng, 500, 900),
        )
        files[f"manuals/{unit_slug}-manual.md"] = MANUAL.format(
            unit=unit,
            slug=unit_slug,
            door=rng.randint(1000, 9999),
            network=f"{unit.replace(' ', '')}-{rng.randint(10, 99)}",
            password=f"{rng.choice(['Mar', 'Sol', 'Coral', 'Ola'])}{rng.randint(100, 999)}!",
            minutes=rng.randint(2, 10),
            safe=rng.randint(1000, 9999),
        )
        check_in = today - timedelta(days=rng.randint(0, 3))
        phone = f"{rng.randint(0, 9999):04d}"
        while any(s.phone_last4 == phone and s.check_in == check_in for s in stays):
            phone = f"{rng.randint(0, 9999):04d}"  # a login must name one stay
        guest = GUESTS[(index * 5 + number) % len(GUESTS)]
        check_out = check_in + timedelta(days=rng.randint(4, 8))
        rows.append(
            [f"B{index}-{number}", unit_slug, guest, phone, check_in.isoformat(),
             check_out.isoformat(), "checked_in"]
        )  # fmt: skip
        stays.append(Stay(slug, unit_slug, check_in, phone))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["external_ref", "unit", "guest_name", "phone_last4", "check_in", "check_out", "status"]
    )
    writer.writerows(rows)
    return Hotel(slug, name, files, out.getvalue(), stays)
