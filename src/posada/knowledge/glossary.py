"""Hotel words in Spanish and English, to let a question in one language find text in the other.

The local embedding model is weak across languages and full-text search matches words,
so "door code" would never find "código de la puerta". The full-text side of retrieval
also searches each word's translations from this short glossary; the embedding and the
relevance measures still use the guest's own words.
"""

from __future__ import annotations

import re
import unicodedata

_PAIRS = """
door=puerta code=codigo password=clave,contrasena key=llave,clave keys=llaves
safe=caja,fuerte lockbox=caja,llaves wifi=wifi internet=internet network=red
room=habitacion,cuarto suite=suite apartment=apartamento bathroom=bano shower=ducha
towel=toalla towels=toallas beach=playa pool=piscina gym=gimnasio spa=spa massage=masaje
breakfast=desayuno dinner=cena lunch=almuerzo restaurant=restaurante bar=bar
price=precio cost=costo,precio fee=tarifa,cargo pay=pagar payment=pago cash=efectivo
card=tarjeta deposit=deposito cancel=cancelar cancellation=cancelacion refund=reembolso
parking=parqueadero,estacionamiento car=carro,auto taxi=taxi airport=aeropuerto
arrive=llegar arrival=llegada late=tarde early=temprano night=noche
checkin=entrada checkout=salida leave=salir hours=horario,horas time=hora schedule=horario
open=abre,abierto close=cierra,cerrado reception=recepcion quiet=silencio noise=ruido
pets=mascotas pet=mascota dog=perro smoking=fumar smoke=fumar children=ninos kids=ninos
baby=bebe crib=cuna cot=cuna laundry=lavanderia luggage=equipaje bags=maletas
air=aire conditioning=acondicionado hot=caliente water=agua trash=basura garbage=basura
bike=bicicleta bikes=bicicletas rent=alquilar,alquiler rental=alquiler snorkel=snorkel
dive=bucear,buceo diving=buceo tour=tour tours=tours kayak=kayak museum=museo
viewpoint=mirador sunset=atardecer ferry=ferry boat=lancha,bote island=isla
visitors=visitas guests=huespedes rules=reglas damage=dano,danos
"""


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _build() -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for pair in _PAIRS.split():
        english, spanish = pair.split("=")
        words = spanish.split(",")
        table.setdefault(english, set()).update(words)
        for word in words:
            table.setdefault(word, set()).add(english)
    return table


_TABLE = _build()


def translations(text: str) -> str:
    """The glossary's translations of the words in `text`, space-separated ('' if none)."""
    words = re.findall(
        r"[a-z]+",
        _fold(text)
        .replace("check-in", "checkin")
        .replace("check-out", "checkout")
        .replace("check in", "checkin")
        .replace("check out", "checkout"),
    )
    found: list[str] = []
    for word in words:
        for other in sorted(_TABLE.get(word, ())):
            if other not in words and other not in found:
                found.append(other)
    return " ".join(found)
